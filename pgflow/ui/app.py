"""The Starlette application of ``pgflow ui``: routes, shared state and error pages.

:func:`create_app` builds the app for given settings and database. Its lifespan opens a
small pool for page reads and actions, the :class:`~pgflow.ui.hub.Hub` (one LISTEN
connection) and the :class:`~pgflow.ui.feeds.Feeds`; all are closed on shutdown. In
read-only mode the action routes do not exist.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Final

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from pgflow.db.connection import open_async_pool
from pgflow.errors import DatabaseError, PgflowError, UnknownRunError
from pgflow.ui.actions import cancel, retry
from pgflow.ui.feeds import Feeds
from pgflow.ui.hub import Hub
from pgflow.ui.pages import flows_page, run_events, run_page, runs_events, runs_page
from pgflow.ui.security import Guard
from pgflow.ui.settings import UiSettings
from pgflow.ui.viewer import Viewer, viewer_of

__all__ = ["create_app"]

POOL_SIZE: Final = 4


async def _pgflow_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, PgflowError)
    viewer = viewer_of(request)
    if isinstance(exc, UnknownRunError):
        return viewer.error(request, 404, "No such run", message=exc.message, hint=exc.hint)
    unreachable = isinstance(exc, DatabaseError) and (exc.sqlstate or "08").startswith("08")
    if unreachable:
        title, status = "The database cannot be reached", 503
    else:
        title, status = "The database refused", 403 if exc.sqlstate == "42501" else 400
    return viewer.error(
        request, status, title, message=exc.message, hint=exc.hint or "", reload=unreachable
    )


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    viewer = viewer_of(request)
    if exc.status_code == 404:
        return viewer.error(request, 404, "Not found", message=f"Nothing at {request.url.path}.")
    return viewer.error(request, exc.status_code, exc.detail)


def _routes(read_only: bool) -> list[BaseRoute]:
    routes: list[BaseRoute] = [
        Route("/", lambda request: RedirectResponse("/runs", 303)),
        Route("/flows", flows_page, name="flows"),
        Route("/runs", runs_page, name="runs"),
        Route("/runs/{run_id}", run_page, name="run"),
        Route("/events/runs", runs_events),
        Route("/events/runs/{run_id}", run_events),
        Mount("/static", StaticFiles(packages=[("pgflow.ui", "static")]), name="static"),
    ]
    if not read_only:
        routes += [
            Route("/runs/{run_id}/cancel", cancel, methods=["POST"]),
            Route("/runs/{run_id}/retry", retry, methods=["POST"]),
        ]
    return routes


def create_app(
    settings: UiSettings, conninfo: str, reader_conninfo: str | None = None
) -> Starlette:
    """The viewer for ``settings`` on the database at ``conninfo``; pages read from
    ``reader_conninfo`` (a read replica) when given."""
    viewer = Viewer(settings, conninfo, reader_conninfo=reader_conninfo)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        viewer.pool = await open_async_pool(conninfo, min_size=1, max_size=POOL_SIZE, check=True)
        if reader_conninfo is not None:
            viewer.reader_pool = await open_async_pool(
                reader_conninfo, min_size=1, max_size=POOL_SIZE, check=True
            )
        viewer.hub = Hub(conninfo)
        viewer.feeds = Feeds(viewer.hub)
        await viewer.hub.start()
        try:
            yield
        finally:
            await viewer.feeds.close()
            await viewer.hub.stop()
            await viewer.pool.close()
            if viewer.reader_pool is not None:
                await viewer.reader_pool.close()

    app = Starlette(
        routes=_routes(settings.read_only),
        middleware=[Middleware(Guard, token=settings.token, names=settings.names)],
        exception_handlers={PgflowError: _pgflow_error, HTTPException: _http_error},
        lifespan=lifespan,
    )
    app.state.viewer = viewer
    return app
