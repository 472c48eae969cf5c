"""Copy the latest full run's tables into ``docs/performance.md``.

``python -m benchmarks.docsync`` replaces what lies between the ``<!-- results:start -->``
and ``<!-- results:end -->`` markers of the page with the machine facts and the main
tables of ``benchmarks/results/latest.md`` (the profiles stay in latest.md). It refuses a
``--quick`` report.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

__all__ = ["main", "render"]

ROOT = Path(__file__).resolve().parent.parent
START, END = "<!-- results:start -->", "<!-- results:end -->"
SECTIONS = (
    "## Throughput",
    "## Fan-out",
    "## Idle latency",
    "## Growth",
    "## Cost per task",
    "## Side by side,",
    "## Side by side with pgflow",
    "## Contention",
    "## Targets",
)


def render(latest: str, machine: dict[str, object]) -> str:
    """The block that goes between the markers."""
    parts = [_machine(machine)]
    for title in SECTIONS:
        if title in latest:
            parts.append(_section(latest, title))
    return "\n\n".join(parts)


def _machine(m: dict[str, object]) -> str:
    settings = m["settings"]
    assert isinstance(settings, dict)
    load_start, load_end = m["loadavg_at_start"], m.get("loadavg_at_end")
    return (
        f"Run of {m['utc']} ({m.get('wall_seconds')} s): {m['cores']} cores ({m['cpu_model']}), "
        f"{m['memory_gib']} GiB, {m['os']}, Python {m['python']}, psycopg {m['psycopg']}, "
        f"{str(m['postgres']).split(' on ')[0]} ({m['server']} server, stock settings but "
        f"max_connections {settings['max_connections']} and pg_stat_statements preloaded: "
        f"shared_buffers {settings['shared_buffers']}, synchronous_commit "
        f"{settings['synchronous_commit']}, fsync {settings['fsync']}, data checksums "
        f"{settings.get('data_checksums', '?')}). Postgres, the workers and the client share "
        f"the {m['cores']} cores. **The machine was shared**: other test suites ran during the "
        "run "
        f"(load average {_load(load_start)} at start, {_load(load_end)} at end), so figures "
        "vary by tens of percent between repetitions and between runs; compare ratios taken "
        "in the same run."
    )


def _load(values: object) -> str:
    if not isinstance(values, list | tuple):
        return "?"
    return " / ".join(f"{v:.1f}" for v in values)


def _section(latest: str, title: str) -> str:
    start = latest.index(title)
    end = latest.find("\n## ", start + len(title))
    text = latest[start : end if end != -1 else None].strip()
    text = text.split("\n### Ratios")[0].strip()
    return "#" + text  # one level down inside the docs page


def main(argv: list[str] | None = None) -> int:
    """Update docs/performance.md from benchmarks/results/ (paths may be given)."""
    args = argv if argv is not None else sys.argv[1:]
    results = Path(args[0]) if args else ROOT / "benchmarks" / "results"
    page = Path(args[1]) if len(args) > 1 else ROOT / "docs" / "performance.md"
    machine = json.loads((results / "raw.jsonl").read_text().splitlines()[0])
    if machine.get("run") != "full":
        print("refusing: the latest results are from a --quick run", file=sys.stderr)
        return 1
    doc = page.read_text()
    head, _, rest = doc.partition(START)
    _, _, tail = rest.partition(END)
    block = render((results / "latest.md").read_text(), machine)
    page.write_text(f"{head}{START}\n{block}\n{END}{tail}")
    print(f"updated {page}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
