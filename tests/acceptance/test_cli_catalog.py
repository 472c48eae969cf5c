"""`pgflow flows`, `pgflow inspect` and `pgflow diff` end to end (real Postgres)."""

from __future__ import annotations

import json
from pathlib import Path

import psycopg
from click.testing import CliRunner, Result

from pgflow.cli import main

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
WEBSITE = EXAMPLES / "website_analysis.py"


def pgflow(db_url: str, *args: str) -> Result:
    return CliRunner().invoke(main, [*args, "--database-url", db_url])


def assert_user_error(result: Result, *fragments: str) -> None:
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error: ")]
    assert len(errors) == 1, result.stderr
    assert any(line.startswith("Hint: ") for line in result.stderr.splitlines()), result.stderr
    for fragment in fragments:
        assert fragment in result.stderr, result.stderr


def changed_website(tmp_path: Path) -> Path:
    """A copy of the website example whose `summary` step waits for `sentiment` too and
    has a longer timeout."""
    text = WEBSITE.read_text()
    old = "@flow.step(depends_on=[website], timeout=10)\nasync def summary(website: Page)"
    new = (
        "@flow.step(depends_on=[website, sentiment], timeout=20)\n"
        "async def summary(website: Page, sentiment: float)"
    )
    assert text.count(old) == 1
    path = tmp_path / "website_analysis.py"
    path.write_text(text.replace(old, new))
    return path


def test_flows_lists_deployed_flows_with_run_counts(db_url: str, tmp_path: Path) -> None:
    empty = pgflow(db_url, "flows")
    assert empty.exit_code == 0 and empty.stdout == ""
    assert "No flows are deployed" in empty.stderr and "pgflow deploy" in empty.stderr
    assert json.loads(pgflow(db_url, "flows", "--json").stdout) == []

    assert pgflow(db_url, "deploy", str(WEBSITE)).exit_code == 0
    quick = tmp_path / "quick.py"
    quick.write_text("from pgflow import Flow\nflow = Flow('quick').step('s', lambda input: 1)\n")
    assert pgflow(db_url, "deploy", str(quick)).exit_code == 0
    with psycopg.connect(db_url, autocommit=True) as conn:
        for _ in range(2):
            conn.execute("select pgflow.start_flow('website_analysis', '{\"url\": \"x\"}')")
        conn.execute("select pgflow.cancel_run(run_id) from pgflow.start_flow('quick', '{}')")

    listed = json.loads(pgflow(db_url, "flows", "--json").stdout)
    assert [f["flow_slug"] for f in listed] == ["quick", "website_analysis"]
    website = listed[1]
    assert set(website) == {"flow_slug", "checksum", "status", "steps", "created_at", "runs"}
    assert (website["status"], website["steps"], len(website["checksum"])) == ("ready", 4, 64)
    assert website["runs"] == {"started": 2, "completed": 0, "failed": 0, "cancelled": 0}
    assert listed[0]["runs"]["cancelled"] == 1
    text = pgflow(db_url, "flows").stdout
    assert "website_analysis" in text and website["checksum"][:12] in text
    assert "cancelled" in text.splitlines()[0]


def test_the_unknown_slug_hint_points_at_pgflow_flows(db_url: str) -> None:
    with psycopg.connect(db_url, autocommit=True) as conn:
        try:
            conn.execute("select pgflow.start_flow('nope', '{}')")
        except psycopg.Error as exc:
            assert exc.sqlstate == "PGF02"
            assert "`pgflow flows` lists what is deployed" in (exc.diag.message_hint or "")
        else:
            raise AssertionError("an unknown flow started")


def test_inspect_code_shows_the_manifest_with_types() -> None:
    result = CliRunner().invoke(main, ["inspect", str(WEBSITE)])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == f"flow website_analysis (code: {WEBSITE})"
    assert "  input     Input" in lines
    assert "  options   max_attempts=3, base_delay=1, timeout=30" in lines
    assert "3. summary (single) -> string" in lines
    assert "   receives       input: Input, website: Page, sentiment: number, summary: string" in (
        lines
    )
    as_json = json.loads(CliRunner().invoke(main, ["inspect", str(WEBSITE), "--json"]).stdout)
    (manifest,) = as_json
    assert set(manifest) == {
        "flow_slug",
        "source",
        "location",
        "checksum",
        "status",
        "created_at",
        "input_type",
        "options",
        "retention",
        "priority",
        "limits",
        "steps",
    }
    summary = manifest["steps"][2]
    assert set(summary) == {
        "step_slug",
        "step_type",
        "depends_on",
        "returns_array",
        "parameters",
        "output_type",
        "options",
        "required_input_pattern",
        "forbidden_input_pattern",
        "when_unmet",
        "when_exhausted",
    }
    assert summary["options"] == {
        "max_attempts": None,
        "base_delay": None,
        "timeout": 10,
        "start_delay": None,
    }
    assert summary["parameters"] == [{"name": "website", "receives": "dependency", "type": "Page"}]


def test_inspect_a_deployed_slug_reads_the_database(db_url: str) -> None:
    assert pgflow(db_url, "deploy", str(WEBSITE)).exit_code == 0
    code = json.loads(CliRunner().invoke(main, ["inspect", str(WEBSITE), "--json"]).stdout)[0]
    result = pgflow(db_url, "inspect", "website_analysis", "--json")
    assert result.exit_code == 0, result.output
    (deployed,) = json.loads(result.stdout)
    assert (deployed["source"], deployed["status"]) == ("database", "ready")
    assert deployed["checksum"] == code["checksum"]
    assert deployed["options"] == code["options"]
    assert [s["step_slug"] for s in deployed["steps"]] == [s["step_slug"] for s in code["steps"]]
    for mine, theirs in zip(deployed["steps"], code["steps"], strict=True):
        assert mine["options"] == theirs["options"]
        assert mine["depends_on"] == theirs["depends_on"]
        assert mine["parameters"] is None and mine["output_type"] is None  # not stored
    text = pgflow(db_url, "inspect", "website_analysis").stdout
    assert "1. website (single) -> ?" in text
    assert "(step input and output types are known from code: `pgflow inspect FLOWS`)" in text


def test_inspect_bad_references_are_one_line_errors(db_url: str, tmp_path: Path) -> None:
    assert_user_error(
        pgflow(db_url, "inspect", "nope"), "no flow 'nope' is deployed", "pgflow flows"
    )
    assert_user_error(pgflow(db_url, "inspect", str(tmp_path / "missing.py")), "missing.py")


def test_diff_against_the_deployed_flow(db_url: str, tmp_path: Path) -> None:
    missing = pgflow(db_url, "diff", str(WEBSITE))
    assert missing.exit_code == 3, missing.output
    assert (
        missing.stdout == "flow `website_analysis`: is not deployed (`pgflow deploy` creates it)\n"
    )

    assert pgflow(db_url, "deploy", str(WEBSITE)).exit_code == 0
    same = pgflow(db_url, "diff", str(WEBSITE))
    assert same.exit_code == 0, same.output
    assert same.stdout.startswith(f"flow `website_analysis`: code ({WEBSITE}) vs deployed (")
    assert same.stdout.rstrip().endswith(")") and "no differences (checksum" in same.stdout

    changed = pgflow(db_url, "diff", str(changed_website(tmp_path)))
    assert changed.exit_code == 3, changed.output
    lines = changed.stdout.splitlines()
    assert lines[0].endswith(": 2 differences")
    assert lines[1].startswith("Shape changed (checksum ")
    assert lines[2] == (
        "- step `summary`: depends on: `website` (deployed) → `sentiment`, `website` (code)"
    )
    assert lines[3] == "Options and input type (a deploy updates them in place):"
    assert lines[4] == "- step `summary` option `timeout`: 10 (deployed) → 20 (code)"


def test_diff_against_a_migrations_folder(db_url: str, tmp_path: Path) -> None:
    migrations = tmp_path / "migrations"
    assert pgflow(db_url, "compile", str(WEBSITE), "-o", str(migrations)).exit_code == 0
    same = CliRunner().invoke(main, ["diff", str(WEBSITE), "--against", str(migrations)])
    assert same.exit_code == 0, same.output
    assert "vs migrations (" in same.stdout and "no differences" in same.stdout
    changed = CliRunner().invoke(
        main, ["diff", str(changed_website(tmp_path)), "--against", str(migrations)]
    )
    assert changed.exit_code == 3
    assert "`website` (migrations) → `sentiment`, `website` (code)" in changed.stdout
    other = tmp_path / "other"
    other.mkdir()
    absent = CliRunner().invoke(main, ["diff", str(WEBSITE), "--against", str(other)])
    assert absent.exit_code == 3
    assert f"is not defined by the migrations in {other}" in absent.stdout
    assert_user_error(
        CliRunner().invoke(main, ["diff", str(WEBSITE), "--against", str(tmp_path / "nope")]),
        "no such folder",
    )


def test_diff_sees_option_changes_made_in_the_database(db_url: str) -> None:
    assert pgflow(db_url, "deploy", str(WEBSITE)).exit_code == 0
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("update pgflow.flows set opt_max_attempts = 7")
        conn.execute("update pgflow.steps set opt_start_delay = 5 where step_slug = 'save'")
    result = pgflow(db_url, "diff", str(WEBSITE))
    assert result.exit_code == 3
    assert result.stdout.splitlines()[1:] == [
        "Options and input type (a deploy updates them in place):",
        "- flow option `max_attempts`: 7 (deployed) → 3 (code)",
        "- step `save` option `start_delay`: 5 (deployed) → not set (code)",
    ]


LIMITED = """
import pgflow

flow = pgflow.Flow("limited_calls", concurrency={flow_limit})


@flow.step(rate_limit="100/min", concurrency=pgflow.Limit(2, key="tenant"))
def call(input: dict) -> int:
    return 1
"""


def test_inspect_and_diff_show_limits_from_code_and_database(db_url: str, tmp_path: Path) -> None:
    path = tmp_path / "limited.py"
    path.write_text(LIMITED.format(flow_limit=20), encoding="utf-8")
    code = CliRunner().invoke(main, ["inspect", str(path)])
    assert code.exit_code == 0, code.output
    limits = (
        "  limits    concurrency limit (flow) 20; concurrency limit call 2 per tenant; "
        "rate limit call 100 per 60 s"
    )
    assert limits in code.stdout.splitlines()
    assert pgflow(db_url, "deploy", str(path)).exit_code == 0
    deployed = pgflow(db_url, "inspect", "limited_calls", "--json")
    (manifest,) = json.loads(deployed.stdout)
    assert manifest["limits"] == {
        "concurrency limit (flow)": "20",
        "concurrency limit call": "2 per tenant",
        "rate limit call": "100 per 60 s",
    }
    path.write_text(LIMITED.format(flow_limit=5), encoding="utf-8")
    changed = pgflow(db_url, "diff", str(path))
    assert changed.exit_code == 3, changed.output
    assert "- `concurrency limit (flow)`: 20 (deployed) → 5 (code)" in changed.stdout.splitlines()
