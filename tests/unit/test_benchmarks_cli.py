"""The benchmark suite's command line and the figures a focused run writes (no runs here)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

bench_main = pytest.importorskip("benchmarks.__main__")  # a source checkout, not an sdist
from benchmarks import focused, report_baseline  # noqa: E402
from benchmarks.config import FULL  # noqa: E402
from benchmarks.markdown import X  # noqa: E402
from benchmarks.records import Records  # noqa: E402


def test_only_workers_and_json_are_parsed(tmp_path: Path) -> None:
    args = bench_main.parser().parse_args(
        ["--only", "independent, contention,independent", "--workers", "1,4", "--json",
         str(tmp_path / "x.json")]
    )  # fmt: skip
    assert args.only == ("independent", "contention")
    assert args.workers == (1, 4)
    assert args.json == tmp_path / "x.json"
    assert args.layers == ("core", "worker", "sqlapi", "pgflow")
    assert args.repetitions == 1


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--only", "independent,nope"], "unknown nope; choose from independent, chain"),
        (["--only", ""], "unknown empty list"),
        (["--only", "chain", "--workers", "0"], "worker counts must be 1 or more"),
        (["--only", "chain", "--workers", "four"], "expected e.g. 4 or 1,4,8"),
        (["--only", "chain", "--layers", "worker,celery"], "unknown celery"),
        (["--only", "chain", "--repetitions", "0"], "--repetitions must be 1 or more"),
        (["--json", "x.json"], "--workers, --json and --repetitions go with --only"),
        (["--workers", "4"], "--workers, --json and --repetitions go with --only"),
    ],
)
def test_bad_arguments_exit_2_saying_why(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        bench_main.main(argv)
    assert exited.value.code == 2
    assert message in capsys.readouterr().err


def test_help_lists_every_scenario(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        bench_main.main(["--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert "from: independent, chain, diamond, fanout, contention" in help_text
    assert "from: core, worker, sqlapi, pgflow" in help_text


def drain(layer: str, rate: float, workload: str = "independent") -> dict[str, Any]:
    return {"kind": "drain", "workload": workload, "layer": layer, "workers": 4,
            "tasks_per_s": rate, "seconds": 1.0}  # fmt: skip


def contended(variant: str, rate: float, lock: float) -> dict[str, Any]:
    waits = {"samples": 10, "workers": {"Lock:object": {"mean": lock, "max": 2}}, "writer": {}}
    return {"kind": "contention", "variant": variant, "workers": 4, "tasks_per_s": rate,
            "waits": waits, "writer": {"tps": 500.0, "wal_mib_per_s": 9.0}}  # fmt: skip


def test_summary_has_x_pgflow_ratios_and_the_contention_ratio() -> None:
    records = Records(
        [drain("worker", 3000), drain("worker", 1000), drain("sqlapi", 600),
         drain("pgflow", 400), drain("core", 900, "chain"),
         contended("wakeups", 800, 0.5), contended("silent", 1000, 0.0)]
    )  # fmt: skip
    summary = report_baseline.summary(records, [4])
    independent = summary["independent"]["4"]
    assert independent["tasks_per_s"] == {"worker": 2000, "sqlapi": 600, "pgflow": 400}
    assert independent["x_pgflow"] == {"worker": 5.0, "sqlapi": 1.5}
    assert "x_pgflow" not in summary["chain"]["4"]  # no baseline measured for chains
    contention = summary["contention"]["4"]
    assert contention["ratio_with_over_without"] == 0.8
    assert contention["waits_mean_backends"]["wakeups"]["workers"]["Lock:object"] == 0.5
    assert contention["waits_mean_backends"]["silent"]["writer"]["IO:WALSync"] == 0.0
    assert report_baseline.summary(Records([drain("pgflow", 0)]), [4])["independent"]["4"][
        "tasks_per_s"
    ] == {"pgflow": 0}
    table = report_baseline.baseline_section(records, [4], None)
    assert f"| independent | 4 | 2,000 ±50% | 600 | 400 | 5.00{X} | 1.50{X} |" in table
    skipped = report_baseline.baseline_section(records, [4], "pgflow 0.8.1 baseline skipped: x")
    assert skipped.endswith("pgflow 0.8.1 baseline skipped: x")


def test_focused_json_has_the_figures_the_machine_and_the_commit(tmp_path: Path) -> None:
    command = ("python", "-m", "benchmarks", "--only", "independent")
    focus = focused.Focus(("independent",), (4,), json_path=tmp_path / "x", command=command)
    facts = {"cores": 2, "cpu_model": "x", "memory_gib": 1.0, "postgres": "PostgreSQL 18.6"}
    result = focused._result(FULL, focus, facts, {"pgflow": None}, [drain("worker", 10)],
                             (1.0, 2.0, 3.0), 0.0)  # fmt: skip
    shape = json.loads(json.dumps(result, default=str))
    assert shape["kind"] == "focused"
    assert shape["command"][-2:] == ["--only", "independent"]
    assert shape["loadavg_before"] == [1.0, 2.0, 3.0] and len(shape["loadavg_after"]) == 3
    assert shape["machine"]["cores"] == 2 and shape["machine"]["kernel"]
    assert shape["machine"]["postgres"] == "PostgreSQL 18.6"
    assert shape["utc"].endswith("Z") and shape["wall_seconds"] > 0
    assert shape["summary"]["independent"]["4"]["tasks_per_s"] == {"worker": 10}
    assert shape["config"]["independent_runs"] == FULL.independent_runs
    assert shape["skipped"] == {"pgflow": None} and shape["records"][0]["layer"] == "worker"
    commit = shape["pgflow_commit"]
    assert commit is None or (len(commit) == 40 and isinstance(shape["pgflow_dirty"], bool))
    assert not math.isnan(shape["summary"]["independent"]["4"]["tasks_per_s"]["worker"])
