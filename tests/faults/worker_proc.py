"""A worker process of the fault-injection suite: ``python -m tests.faults.worker_proc URL``.

It serves the flows listed in ``FLOWS`` of the module named by ``FAULTS_FLOWS`` (default
:mod:`tests.faults.flows`) with a real :class:`pgflow.Worker` (settings small enough for
leases to expire quickly) until SIGTERM or SIGKILL. The URL is also put in
``PGFLOW_DATABASE_URL``, where sync handlers find it (``ctx.env``).
"""

from __future__ import annotations

import importlib
import logging
import os
import sys

from pgflow import Worker


def main() -> None:
    url, concurrency = sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 8
    os.environ["PGFLOW_DATABASE_URL"] = url
    logging.basicConfig(
        level=logging.INFO,
        format=f"%(asctime)s pid={os.getpid()} %(levelname)s %(name)s %(message)s",
    )
    flows = importlib.import_module(os.environ.get("FAULTS_FLOWS", "tests.faults.flows")).FLOWS
    Worker(
        flows,
        url,
        concurrency=concurrency,
        poll_interval=0.2,
        retry_base_delay=0.02,
        heartbeat_interval=1.0,
        shutdown_grace=2.0,
    ).run()


if __name__ == "__main__":
    main()
