"""``python -m benchmarks [--database-url URL] [--quick] [--out DIR]``, or a focused run:
``python -m benchmarks --only SCENARIOS [--workers LIST] [--json FILE]``."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable
from pathlib import Path

from benchmarks.config import FULL, QUICK, Config
from benchmarks.report_baseline import LAYERS, THROUGHPUT

DEFAULT_OUT = Path(__file__).resolve().parent / "results"
SCENARIOS = (*THROUGHPUT, "contention")


def _names(allowed: tuple[str, ...]) -> Callable[[str], tuple[str, ...]]:
    def parse(text: str) -> tuple[str, ...]:
        names = tuple(dict.fromkeys(n.strip() for n in text.split(",") if n.strip()))
        unknown = [n for n in names if n not in allowed]
        if unknown or not names:
            raise argparse.ArgumentTypeError(
                f"unknown {', '.join(unknown) or 'empty list'}; choose from {', '.join(allowed)}"
            )
        return names

    return parse


def _counts(text: str) -> tuple[int, ...]:
    try:
        counts = tuple(dict.fromkeys(int(n) for n in text.split(",")))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected e.g. 4 or 1,4,8") from None
    if not counts or min(counts) < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: worker counts must be 1 or more")
    return counts


def parser() -> argparse.ArgumentParser:
    """The command line (see ``docs/performance.md``)."""
    p = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="Run pgflow's benchmark suite against a fresh database and write "
        "latest.md and raw.jsonl; with --only, run just some scenarios and print (and "
        "--json: write) their figures.",
    )
    p.add_argument(
        "--database-url",
        help="a Postgres server to use (a fresh database is created there and dropped "
        "afterwards); default: a private embedded Postgres in a temporary directory",
    )
    p.add_argument("--quick", action="store_true", help="about 10x smaller sizes (< 1 min)")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"default: {DEFAULT_OUT}")
    focused = p.add_argument_group("focused run (nothing is written under --out)")
    focused.add_argument(
        "--only",
        type=_names(SCENARIOS),
        metavar="SCENARIOS",
        help=f"comma-separated, from: {', '.join(SCENARIOS)}",
    )
    focused.add_argument(
        "--workers", type=_counts, metavar="LIST", help="worker counts, e.g. 4 or 1,4,8 (default 4)"
    )
    focused.add_argument(
        "--layers",
        type=_names(LAYERS),
        default=LAYERS,
        metavar="LAYERS",
        help=f"throughput layers, from: {', '.join(LAYERS)} (default: all)",
    )
    focused.add_argument(
        "--repetitions", type=int, default=1, metavar="N", help="repetitions (default 1)"
    )
    focused.add_argument("--json", type=Path, metavar="FILE", help="write the figures here")
    return p


def main(argv: list[str] | None = None) -> int:
    """Run the suite (or a focused run) and print where the report is."""
    p = parser()
    args = p.parse_args(argv)
    if args.only is None and (args.json or args.workers or args.repetitions != 1):
        p.error("--workers, --json and --repetitions go with --only")
    if args.repetitions < 1:
        p.error("--repetitions must be 1 or more")
    logging.basicConfig(format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    logging.getLogger("benchmarks").setLevel(logging.INFO)
    config = QUICK if args.quick else FULL
    if args.only is not None:
        return _focused(args, config, argv)

    from benchmarks.suite import run_suite

    path = run_suite(config, args.database_url, args.out)
    print(f"report: {path}")
    return 0


def _focused(args: argparse.Namespace, config: Config, argv: list[str] | None) -> int:
    from benchmarks import focused, report_baseline
    from benchmarks.records import Records

    focus = focused.Focus(
        scenarios=args.only,
        workers=args.workers or (4,),
        layers=args.layers,
        repetitions=args.repetitions,
        json_path=args.json,
        command=("python", "-m", "benchmarks", *(sys.argv[1:] if argv is None else argv)),
    )
    result = focused.run_focused(config, args.database_url, focus)
    records = Records(result["records"])
    skipped = result["skipped"].get("pgflow")
    for section in (
        report_baseline.focused_section(records, focus.workers),
        report_baseline.baseline_section(records, focus.workers, skipped),
        report_baseline.contention_section(records, focus.workers),
    ):
        if section:
            print(section + "\n")
    load = " → ".join(
        " / ".join(f"{v:.2f}" for v in result[k]) for k in ("loadavg_before", "loadavg_after")
    )
    print(f"load average (1/5/15 min): {load}; {result['wall_seconds']} s")
    if args.json:
        print(f"figures: {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
