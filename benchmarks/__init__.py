"""The pgflow benchmark suite: ``python -m benchmarks [--quick] [--database-url URL]``.

Runs every workload of issue 6 against a fresh database, on two layers (the SQL core
driven by a minimal claim → complete loop, and the real :class:`pgflow.Worker`), side by
side with pgbench and Procrastinate on the same server, and writes
``benchmarks/results/latest.md`` and ``raw.jsonl``. See ``docs/performance.md``.

Modules:

- ``config``: sizes, worker counts, batch sizes (full and ``--quick``);
- ``server``: the embedded server in a temp dir, or a fresh database on a URL; machine facts;
- ``flows``: the benchmark flows and what their steps output;
- ``crew``: long-lived worker processes, started together behind a barrier;
- ``core_loop``, ``worker_layer``: the two layers' drain, serve and probe commands;
- ``workloads``, ``latency``, ``growth``, ``dbstats``, ``peers``: what is measured;
- ``suite``: the order of the run; ``report``: Markdown and JSON lines.
"""

from __future__ import annotations
