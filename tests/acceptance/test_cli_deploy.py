"""`pgflow deploy FLOWS [--dev]` end to end through the CLI."""

from __future__ import annotations

import textwrap
from pathlib import Path

from click.testing import CliRunner

from pgflow.cli import main

FLOW_V1 = """
from pgflow import Flow

flow = Flow("greet")

@flow.step()
def hello(input: dict) -> str:
    return "hi"
"""

FLOW_V2 = (
    FLOW_V1
    + """
@flow.step(depends_on=["hello"])
def shout(hello: str) -> str:
    return hello.upper()
"""
)


def deploy(db_url: str, path: Path, *args: str):
    result = CliRunner().invoke(main, ["deploy", str(path), "--database-url", db_url, *args])
    return result.exit_code, result.output


def test_deploy_created_unchanged_refused_recreated(db_url, tmp_path):
    flows = tmp_path / "flows.py"
    flows.write_text(textwrap.dedent(FLOW_V1))
    code, out = deploy(db_url, flows)
    assert code == 0 and "created" in out and "greet" in out
    code, out = deploy(db_url, flows)
    assert code == 0 and "unchanged" in out

    flows.write_text(textwrap.dedent(FLOW_V2))
    code, out = deploy(db_url, flows)
    assert code == 1
    assert "refused" in out and "step 2 ('shout') is missing in the deployed" in out
    assert "greet_v2" in out and "Traceback" not in out

    code, out = deploy(db_url, flows, "--dev")
    assert code == 0 and "recreated" in out and "deleted 0 run(s)" in out


def test_deploy_reports_a_broken_flows_file_without_traceback(db_url, tmp_path):
    flows = tmp_path / "broken.py"
    flows.write_text("from pgflow import Flow\nflow = Flow('x')\nraise RuntimeError('kaput')\n")
    code, out = deploy(db_url, flows)
    assert code == 1
    assert "kaput" in out and "broken.py" in out
