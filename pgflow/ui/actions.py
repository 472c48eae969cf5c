"""The actions of the run page: cancel and retry (POST, CSRF-checked; absent in read-only).

Each goes through the public client (:meth:`pgflow.AsyncClient.cancel`,
:meth:`pgflow.AsyncClient.retry`) on the viewer's pool, then redirects to the run page
with a notice. A refused action (a retry of a run whose flow changed shape, a role
without the privilege) shows the error and its hint.
"""

from __future__ import annotations

import uuid
from typing import Final
from urllib.parse import parse_qs

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from pgflow.client import AsyncClient
from pgflow.errors import UnknownRunError
from pgflow.ui.security import csrf_ok
from pgflow.ui.viewer import Viewer, viewer_of

__all__ = ["cancel", "retry"]

MAX_FORM_BYTES: Final = 4096
_CSRF_REFUSED = (
    "The form was not sent from this viewer's page, or it is too old to trust: reload the "
    "run page and try again."
)


async def _checked(request: Request) -> tuple[Viewer, uuid.UUID, Response | None]:
    viewer = viewer_of(request)
    text = request.path_params["run_id"]
    try:
        run_id = uuid.UUID(text)
    except ValueError:
        raise UnknownRunError(f"{text!r} is not a run id", run_id=text) from None
    if not csrf_ok(request, viewer.settings.names, await _csrf_field(request)):
        refused = viewer.error(request, 403, "Action refused", message=_CSRF_REFUSED)
        return viewer, run_id, refused
    return viewer, run_id, None


async def _csrf_field(request: Request) -> str | None:
    """The ``csrf`` field of a small url-encoded form (the only kind the pages send)."""
    if request.headers.get("content-type", "").split(";")[0] != "application/x-www-form-urlencoded":
        return None
    body = await request.body()
    if len(body) > MAX_FORM_BYTES:
        return None
    try:
        values = parse_qs(body.decode("latin-1"), max_num_fields=10).get("csrf")
    except ValueError:  # too many fields
        return None
    return values[0] if values else None


def _client(viewer: Viewer) -> AsyncClient:
    assert viewer.pool is not None, "the viewer is not started"
    return AsyncClient(pool=viewer.pool)


def _back(run_id: uuid.UUID, notice: str) -> Response:
    return RedirectResponse(f"/runs/{run_id}?notice={notice}", status_code=303)


async def cancel(request: Request) -> Response:
    """Cancel a live run: its queued and running tasks are never worked on again."""
    viewer, run_id, refused = await _checked(request)
    if refused is not None:
        return refused
    before = await viewer.store.run(run_id)
    if before is None:
        raise UnknownRunError(f"unknown run {run_id}", run_id=run_id)
    after = await _client(viewer).cancel(run_id)
    changed = before.run["status"] == "started" and after.status == "cancelled"
    return _back(run_id, "cancelled" if changed else "unchanged")


async def retry(request: Request) -> Response:
    """Retry a failed or cancelled run where it stopped."""
    viewer, run_id, refused = await _checked(request)
    if refused is not None:
        return refused
    before = await viewer.store.run(run_id)
    if before is None:
        raise UnknownRunError(f"unknown run {run_id}", run_id=run_id)
    await _client(viewer).retry(run_id)
    changed = before.run["status"] in ("failed", "cancelled")
    return _back(run_id, "retried" if changed else "unchanged")
