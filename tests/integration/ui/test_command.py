"""``pgflow ui`` as a user runs it: a real process that serves until Ctrl+C."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path

from click.testing import CliRunner

from pgflow.cli import main

PGFLOW = str(Path(sys.executable).parent / "pgflow")  # the installed console script


def test_serves_until_interrupted(deployed: str) -> None:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(
        [PGFLOW, "ui", "--port", "0", "--read-only", "--database-url", deployed],
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert process.stderr is not None
        line = process.stderr.readline()
        match = re.match(
            r"pgflow ui \(read-only\): open (http://127\.0\.0\.1:\d+/) \(Ctrl\+C to stop\)", line
        )
        assert match, line
        with urllib.request.urlopen(match.group(1) + "flows", timeout=10) as response:
            page = response.read().decode()
        assert response.status == 200 and 'id="flow-shop"' in page
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=15) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        if process.stderr is not None:
            process.stderr.close()


def test_a_port_in_use_is_a_one_line_error(deployed: str) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = CliRunner().invoke(main, ["ui", "--port", str(port), "--database-url", deployed])
    assert result.exit_code == 1
    assert f"Error: port {port} on 127.0.0.1 is already in use" in result.stderr
    assert (
        f"Hint: stop what listens there, or pick another port: pgflow ui --port {port + 1}"
        in result.stderr
    )


def test_an_unreachable_database_is_a_one_line_error() -> None:
    url = "postgresql://nobody@127.0.0.1:1/nowhere?connect_timeout=1"
    result = CliRunner().invoke(main, ["ui", "--port", "0", "--database-url", url])
    assert result.exit_code == 1
    assert "Error: could not connect to Postgres" in result.stderr
    assert "Traceback" not in result.output
