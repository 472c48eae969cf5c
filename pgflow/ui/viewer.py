"""What every request handler of the viewer shares, and how pages are rendered.

The :class:`Viewer` lives in ``app.state.viewer``; the app's lifespan fills in the pool,
the hub and the feeds. :meth:`Viewer.page` renders a full page with the CSRF token the
action forms carry.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from jinja2 import Environment
from psycopg_pool import AsyncConnectionPool
from starlette.requests import Request
from starlette.responses import Response
from starlette.templating import Jinja2Templates

from pgflow.ui.feeds import Feeds
from pgflow.ui.hub import Hub
from pgflow.ui.render import environment
from pgflow.ui.security import csrf_token
from pgflow.ui.settings import UiSettings
from pgflow.ui.store import Store

__all__ = ["Viewer", "viewer_of"]


@dataclass(eq=False)
class Viewer:
    """What every request handler shares: settings, templates, store, hub and feeds."""

    settings: UiSettings
    conninfo: str
    env: Environment = field(default_factory=environment)
    pool: AsyncConnectionPool | None = None
    # page reads from a read replica when one is given (pgflow ui --reader-url); actions and
    # LISTEN stay on the primary: a replica cannot write, and notifications are not replicated
    reader_conninfo: str | None = None
    reader_pool: AsyncConnectionPool | None = None
    hub: Hub | None = None
    feeds: Feeds | None = None
    templates: Jinja2Templates = field(init=False)

    def __post_init__(self) -> None:
        self.templates = Jinja2Templates(env=self.env)

    @property
    def store(self) -> Store:
        """The page reads (available while the app runs)."""
        assert self.pool is not None, "the viewer is not started"
        if self.reader_pool is not None and self.reader_conninfo is not None:
            return Store(self.reader_pool, self.reader_conninfo)
        return Store(self.pool, self.conninfo)

    @property
    def live(self) -> Feeds:
        """The live feeds (available while the app runs)."""
        assert self.feeds is not None, "the viewer is not started"
        return self.feeds

    def page(
        self, request: Request, name: str, context: Mapping[str, Any], status_code: int = 200
    ) -> Response:
        """Render a full page; sets the CSRF cookie when the browser has none yet."""
        names = self.settings.names
        csrf, new = csrf_token(request, names)
        full = {
            "page": "",
            "title": "pgflow",
            "reload": False,
            "request": request,
            "read_only": self.settings.read_only,
            "csrf": csrf,
            "db_down": self.hub is not None and not self.hub.connected,
            **context,
        }
        response = self.templates.TemplateResponse(request, name, full, status_code=status_code)
        response.headers["cache-control"] = "no-store"
        if new:
            response.set_cookie(names.csrf, csrf, httponly=True, samesite="strict")
        return response

    def error(self, request: Request, status_code: int, title: str, **context: Any) -> Response:
        """An error page with a link back to the runs."""
        context = {"message": "", "hint": "", "reload": False, **context}
        return self.page(request, "error.html", {"title": title, **context}, status_code)


def viewer_of(request: Request) -> Viewer:
    """The viewer serving this request."""
    viewer: Viewer = request.app.state.viewer
    return viewer
