"""The pages: flows, runs (filtered, live) and one run (live), with their event streams.

A page is rendered whole on the server. Its live part is then replaced by what the
page's event stream (``/events/...``, server-sent events) pushes: a fragment rendered by
the view's shared :class:`~pgflow.ui.feeds.Feed`, once per change for every browser.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any, Final

from starlette.datastructures import QueryParams
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from pgflow.cli._since import parse_since
from pgflow.errors import UnknownRunError
from pgflow.models import RUN_STATUSES
from pgflow.ui.dag import layout
from pgflow.ui.feeds import END, Message, Produce, Snapshot
from pgflow.ui.render import render_fragment
from pgflow.ui.store import RunFilter
from pgflow.ui.viewer import Viewer, viewer_of
from pgflow.ui.views import run_view

__all__ = ["flows_page", "run_events", "run_page", "runs_events", "runs_page"]

RUN_TICK: Final = 2.0  # seconds between refreshes of a live run without a notification
RUNS_TICK: Final = 3.0
RUN_PAUSE: Final = 0.1  # the shortest time between two refreshes of one view
RUNS_PAUSE: Final = 0.5
KEEPALIVE: Final = 15.0
LIVE_RUNS_FOLLOWED: Final = 100  # run channels a runs view listens on, at most
NOTICES: Final = {
    "cancelled": "Run cancelled: its queued and running tasks will not be worked on again.",
    "retried": "Run retried: its failed and cancelled steps run again.",
    "unchanged": "Nothing to do: the run had already finished or was already running.",
}


async def flows_page(request: Request) -> Response:
    """Every deployed flow with its DAG and its runs by status."""
    viewer = viewer_of(request)
    flows = await viewer.store.flows()
    cards = [{**flow, "dag": layout(flow["steps"]), "subtitles": _kinds(flow)} for flow in flows]
    return viewer.page(request, "flows.html", {"page": "flows", "flows": cards})


def _kinds(flow: dict[str, Any]) -> dict[str, str]:
    """The second line of each step's box on the flows page: its type and dependencies."""
    kinds = {}
    for step in flow["steps"]:
        deps = len(step["deps"])
        edges = f"{deps} dep{'s' if deps != 1 else ''}" if deps else "root"
        kinds[step["step_slug"]] = f"{'map' if step['step_type'] == 'map' else 'step'} · {edges}"
    return kinds


def _filter(params: QueryParams) -> tuple[RunFilter, list[str]]:
    """The runs filter from the query string, and what was wrong in it (then ignored)."""
    problems: list[str] = []
    status = params.get("status") or None
    if status is not None and status not in RUN_STATUSES:
        problems.append(f"unknown status {status!r} (use one of: {', '.join(RUN_STATUSES)})")
        status = None
    since = None
    if params.get("since"):
        try:
            since = parse_since(params["since"])
        except (ValueError, OverflowError):
            problems.append(f"{params['since']!r} is not a duration (15m, 2h, 7d) or a date")
    before = None
    if params.get("before"):
        try:
            before = datetime.fromisoformat(params["before"])
        except ValueError:
            problems.append("the 'before' position is not a timestamp: showing the newest runs")
    return RunFilter(params.get("flow") or None, status, since, before), problems


def _runs_context(runs: list[dict[str, Any]], run_filter: RunFilter) -> dict[str, Any]:
    more = len(runs) == run_filter.limit
    return {
        "runs": runs,
        "filtered": any((run_filter.flow_slug, run_filter.status, run_filter.since)),
        "older": runs[-1]["started_at"].isoformat() if more else None,
    }


def _runs_producer(viewer: Viewer, run_filter: RunFilter, query: str) -> Produce:
    async def produce() -> Snapshot:
        runs = await viewer.store.runs(run_filter)
        context = {**_runs_context(runs, run_filter), "query": query}
        html = render_fragment(viewer.env, "runs_table.html", context)
        live = [r["run_id"] for r in runs if r["status"] == "started"][:LIVE_RUNS_FOLLOWED]
        channels = frozenset(f"pgflow_run_{run_id}" for run_id in live)
        return Snapshot(Message("runs", json.dumps({"html": html})), channels, RUNS_TICK)

    return produce


def _query_without(params: QueryParams, *names: str) -> str:
    kept = [(k, v) for k, v in params.multi_items() if k not in names and v]
    return str(QueryParams(kept))


async def runs_page(request: Request) -> Response:
    """Runs newest first, filtered by flow, status and time; live."""
    viewer = viewer_of(request)
    run_filter, problems = _filter(request.query_params)
    runs = await viewer.store.runs(run_filter)
    context = {
        "page": "runs",
        "flows": await viewer.store.flow_slugs(),
        "statuses": RUN_STATUSES,
        "filter": run_filter,
        "params": request.query_params,
        "problems": problems,
        "query": _query_without(request.query_params, "before"),
        "events": "/events/runs?" + _query_without(request.query_params),
        **_runs_context(runs, run_filter),
    }
    return viewer.page(request, "runs.html", context)


def _run_id(request: Request) -> uuid.UUID:
    text = request.path_params["run_id"]
    try:
        return uuid.UUID(text)
    except ValueError:
        raise UnknownRunError(
            f"{text!r} is not a run id: run ids are UUIDs",
            hint="pick a run from the runs page",
            run_id=text,
        ) from None


async def _run_context(viewer: Viewer, run_id: uuid.UUID) -> dict[str, Any]:
    data = await viewer.store.run(run_id)
    if data is None:
        raise UnknownRunError(
            f"unknown run {run_id}",
            hint="it may have been pruned, or deleted with its flow by `pgflow deploy --dev`",
            run_id=run_id,
        )
    return {"view": run_view(data.run, data.steps, data.errors)}


def _run_producer(viewer: Viewer, run_id: uuid.UUID) -> Produce:
    async def produce() -> Snapshot:
        try:
            context = await _run_context(viewer, run_id)
        except UnknownRunError:
            return Snapshot(Message("gone", "{}"))
        view = context["view"]
        html = render_fragment(viewer.env, "run_live.html", context)
        data = {"status": view.run["status"], "steps": view.statuses, "html": html}
        return Snapshot(Message("run", json.dumps(data)), tick=RUN_TICK if view.is_live else None)

    return produce


async def run_page(request: Request) -> Response:
    """One run: its DAG by step status, map progress, timing, errors, values; live."""
    viewer = viewer_of(request)
    run_id = _run_id(request)
    context = await _run_context(viewer, run_id)
    notice = NOTICES.get(request.query_params.get("notice", ""))
    extra = {"page": "run", "run_id": run_id, "notice": notice, "events": f"/events/runs/{run_id}"}
    return viewer.page(request, "run.html", {**context, **extra})


async def _stream(queue: asyncio.Queue[Message]) -> AsyncIterator[str]:
    yield "retry: 2000\n\n"
    while True:
        try:
            async with asyncio.timeout(KEEPALIVE):
                message = await queue.get()
        except TimeoutError:
            yield ": keep-alive\n\n"
            continue
        if message is END:
            return
        yield f"event: {message.event}\ndata: {message.data}\n\n"


def _sse(
    viewer: Viewer, key: Any, produce: Produce, channels: frozenset[str], pause: float
) -> Response:
    async def body() -> AsyncIterator[str]:
        async with viewer.live.subscribe(key, produce, channels, pause) as queue:
            async for chunk in _stream(queue):
                yield chunk

    headers = {"cache-control": "no-store", "x-accel-buffering": "no"}
    return StreamingResponse(body(), media_type="text/event-stream", headers=headers)


async def runs_events(request: Request) -> Response:
    """The runs table of the given filters, each time it changes (server-sent events)."""
    viewer = viewer_of(request)
    run_filter, _ = _filter(request.query_params)
    query = _query_without(request.query_params, "before")
    produce = _runs_producer(viewer, run_filter, query)
    key = ("runs", run_filter)
    return _sse(viewer, key, produce, frozenset({"pgflow_tasks"}), RUNS_PAUSE)


async def run_events(request: Request) -> Response:
    """A run's live part each time it changes (server-sent events)."""
    viewer = viewer_of(request)
    run_id = _run_id(request)
    channels = frozenset({f"pgflow_run_{run_id}"})
    return _sse(viewer, ("run", run_id), _run_producer(viewer, run_id), channels, RUN_PAUSE)
