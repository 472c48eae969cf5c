"""CLI commands (flows)."""

from __future__ import annotations
