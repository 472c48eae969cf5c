"""CLI commands (runs)."""

from __future__ import annotations
