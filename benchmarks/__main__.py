"""``python -m benchmarks [--database-url URL] [--quick] [--out DIR]``."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from benchmarks.config import FULL, QUICK

DEFAULT_OUT = Path(__file__).resolve().parent / "results"


def main(argv: list[str] | None = None) -> int:
    """Run the suite and print where the report is."""
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="Run pgflow's benchmark suite against a fresh database and write "
        "latest.md and raw.jsonl.",
    )
    parser.add_argument(
        "--database-url",
        help="a Postgres server to use (a fresh database is created there and dropped "
        "afterwards); default: a private embedded Postgres in a temporary directory",
    )
    parser.add_argument("--quick", action="store_true", help="about 10x smaller sizes (< 1 min)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"default: {DEFAULT_OUT}")
    args = parser.parse_args(argv)
    logging.basicConfig(format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    logging.getLogger("benchmarks").setLevel(logging.INFO)

    from benchmarks.suite import run_suite

    path = run_suite(QUICK if args.quick else FULL, args.database_url, args.out)
    print(f"report: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
