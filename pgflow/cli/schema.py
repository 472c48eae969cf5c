"""CLI commands (schema)."""

from __future__ import annotations
