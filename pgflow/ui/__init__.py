"""``pgflow ui``: the run viewer, a small web app served by the package.

Flows with their DAGs, runs filtered and live, and one run live: its DAG coloured by step
status, map progress, a timing chart, errors with tracebacks, capped input/output previews,
and the retry and cancel actions (absent with ``--read-only``). Starlette, uvicorn and
Jinja2 come with the ``ui`` extra (``pip install 'pgflow-py[ui]'``); nothing else in pgflow
imports this package. See docs/ui.md.
"""

from __future__ import annotations
