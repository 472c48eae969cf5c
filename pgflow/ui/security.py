"""Who may use the viewer: the token, the Host check, CSRF, and the response headers.

* Without a token the viewer listens on a loopback address only and answers only requests
  whose ``Host`` names a loopback address, so a web page elsewhere cannot reach it through
  DNS rebinding.
* With a token every request must carry it: ``?token=`` once (the viewer then sets a
  cookie and redirects to the same URL without it), the cookie, or an
  ``Authorization: Bearer`` header. Comparisons take constant time.
* Actions are POSTs carrying a CSRF token equal to the browser's CSRF cookie, from the
  viewer's own origin.
* Every response forbids inline scripts and framing (Content-Security-Policy), so even
  markup that slipped into a page could not run.
"""

from __future__ import annotations

import hmac
import ipaddress
import secrets
from dataclasses import dataclass
from typing import Final
from urllib.parse import urlencode

from starlette.datastructures import MutableHeaders
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["Guard", "Names", "csrf_ok", "csrf_token", "is_loopback"]

HEADERS: Final = {
    "content-security-policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    ),
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "same-origin",  # no-referrer would make form POSTs say Origin: null
}
_UNAUTHORISED = (
    "<!doctype html><title>pgflow ui: token needed</title>"
    "<h1>This run viewer needs its token</h1>"
    "<p>Open the address <code>pgflow ui</code> printed when it started (it ends in "
    "<code>?token=...</code>), or send the header <code>Authorization: Bearer TOKEN</code>.</p>"
)
_BAD_HOST = (
    "<!doctype html><title>pgflow ui: unexpected host</title>"
    "<h1>Unexpected Host header</h1><p>Without a token this viewer answers only requests "
    "addressed to localhost. Open it as <code>http://127.0.0.1:PORT/</code>, or start it "
    "with <code>--token</code>.</p>"
)


@dataclass(frozen=True, slots=True)
class Names:
    """Cookie names, per port: browsers share cookies between ports of one host."""

    port: int

    @property
    def token(self) -> str:
        """The cookie that carries the token."""
        return f"pgflow_ui_token_{self.port}"

    @property
    def csrf(self) -> str:
        """The cookie that carries the CSRF token."""
        return f"pgflow_ui_csrf_{self.port}"


def is_loopback(host: str) -> bool:
    """Whether a host name or address is a loopback one (``localhost``, ``127.x``, ``::1``)."""
    name = host.strip().strip("[]").lower()
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def _host_name(header: str) -> str:
    """``127.0.0.1:8765`` -> ``127.0.0.1``; ``[::1]:8765`` -> ``::1``."""
    if header.startswith("["):
        return header[1 : header.find("]")] if "]" in header else header
    return header.rsplit(":", 1)[0] if header.count(":") == 1 else header


def _same(given: str | None, expected: str) -> bool:
    return given is not None and hmac.compare_digest(given.encode(), expected.encode())


class Guard:
    """ASGI middleware: the Host check, the token, and the security headers."""

    def __init__(self, app: ASGIApp, *, token: str | None, names: Names) -> None:
        self.app = app
        self.token = token
        self.names = names

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        refusal = self._refusal(Request(scope))
        if refusal is not None:
            await refusal(scope, receive, _with_headers(send))
            return
        await self.app(scope, receive, _with_headers(send))

    def _refusal(self, request: Request) -> Response | None:
        if self.token is None:
            host = _host_name(request.headers.get("host", ""))
            return None if is_loopback(host) else HTMLResponse(_BAD_HOST, status_code=400)
        if _same(request.query_params.get("token"), self.token):
            return self._remember(request)
        header = request.headers.get("authorization", "")
        bearer = header[7:] if header[:7].lower() == "bearer " else None
        if _same(request.cookies.get(self.names.token), self.token) or _same(bearer, self.token):
            return None
        return HTMLResponse(_UNAUTHORISED, status_code=401)

    def _remember(self, request: Request) -> Response:
        """Set the token cookie and redirect to the same address without ``token=``."""
        query = urlencode([(k, v) for k, v in request.query_params.multi_items() if k != "token"])
        target = request.url.path + (f"?{query}" if query else "")
        response = RedirectResponse(target, status_code=303)
        response.set_cookie(self.names.token, self.token or "", httponly=True, samesite="lax")
        return response


def _with_headers(send: Send) -> Send:
    async def sending(message: Message) -> None:
        if message["type"] == "http.response.start":
            headers = MutableHeaders(scope=message)
            for name, value in HEADERS.items():
                headers.setdefault(name, value)
        await send(message)

    return sending


def csrf_token(request: Request, names: Names) -> tuple[str, bool]:
    """The browser's CSRF token, and whether it is new (the response must set the cookie)."""
    current = request.cookies.get(names.csrf)
    if current and len(current) >= 32:
        return current, False
    return secrets.token_urlsafe(32), True


def csrf_ok(request: Request, names: Names, submitted: str | None) -> bool:
    """Whether a POST carries the browser's CSRF token and comes from this origin."""
    origin = request.headers.get("origin")
    if origin is not None and origin != f"{request.url.scheme}://{request.url.netloc}":
        return False
    if request.headers.get("sec-fetch-site", "same-origin") not in ("same-origin", "none"):
        return False
    cookie = request.cookies.get(names.csrf)
    return bool(cookie) and _same(submitted, cookie or "")
