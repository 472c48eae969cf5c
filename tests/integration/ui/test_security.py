"""Who may use the viewer: the token, the Host check, the headers of every response."""

from __future__ import annotations

from collections.abc import Callable

from starlette.testclient import TestClient

from tests.integration.ui.conftest import BASE

TOKEN = "s3cret-token-for-tests-only"


def test_with_a_token_every_request_needs_it(make_viewer: Callable[..., TestClient]) -> None:
    viewer = make_viewer(token=TOKEN, port=8765)
    for path in ("/runs", "/flows", "/static/ui.js", "/events/runs", "/runs?token=wrong-" + TOKEN):
        refused = viewer.get(path)
        assert refused.status_code == 401, path
        assert "needs its token" in refused.text
    assert viewer.post("/runs/x/cancel").status_code == 401
    assert viewer.get("/runs", headers={"authorization": f"Bearer {TOKEN}x"}).status_code == 401


def test_the_token_in_the_address_becomes_a_cookie(make_viewer: Callable[..., TestClient]) -> None:
    viewer = make_viewer(token=TOKEN, port=8765)
    first = viewer.get(f"/runs?flow=shop&token={TOKEN}")
    assert first.status_code == 303
    assert first.headers["location"] == "/runs?flow=shop"  # the token leaves the address bar
    cookie = first.headers["set-cookie"]
    assert cookie.startswith(f"pgflow_ui_token_8765={TOKEN};")
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie
    assert viewer.get("/runs?flow=shop").status_code == 200  # the client kept the cookie
    assert viewer.get("/static/ui.css").status_code == 200


def test_a_bearer_header_works_without_a_cookie(make_viewer: Callable[..., TestClient]) -> None:
    viewer = make_viewer(token=TOKEN)
    assert viewer.get("/flows", headers={"authorization": f"Bearer {TOKEN}"}).status_code == 200


def test_without_a_token_only_loopback_host_names_are_answered(viewer: TestClient) -> None:
    for host in ("127.0.0.1:8765", "localhost:8765", "[::1]:8765", "localhost"):
        assert viewer.get("/runs", headers={"host": host}).status_code == 200, host
    for host in ("evil.example", "evil.example:8765", "10.0.0.1:8765", ""):
        rebound = viewer.get("/runs", headers={"host": host})
        assert rebound.status_code == 400, host
        assert "Unexpected Host header" in rebound.text


def test_with_a_token_any_host_name_is_answered(make_viewer: Callable[..., TestClient]) -> None:
    viewer = make_viewer(host="0.0.0.0", token=TOKEN)
    assert (
        viewer.get(
            "/runs", headers={"host": "pgflow.example:8765", "authorization": f"Bearer {TOKEN}"}
        ).status_code
        == 200
    )


def test_every_response_forbids_inline_scripts_and_framing(viewer: TestClient) -> None:
    for response in (
        viewer.get("/runs"),
        viewer.get("/nope"),
        TestClient(viewer.app, base_url="http://evil.example").get("/"),
    ):
        policy = response.headers["content-security-policy"]
        assert "script-src 'self'" in policy and "frame-ancestors 'none'" in policy
        assert "unsafe-inline" not in policy
        assert response.headers["x-content-type-options"] == "nosniff"
    page = viewer.get("/runs").text
    assert "<script>" not in page and " on" not in page.split("<main>")[0].lower().replace(
        " one", ""
    )
    assert page.count("<script ") == 1 and '<script src="/static/ui.js" defer></script>' in page


def test_pages_set_a_strict_csrf_cookie_once(viewer: TestClient) -> None:
    first = viewer.get("/runs")
    cookie = first.headers["set-cookie"]
    assert (
        cookie.startswith("pgflow_ui_csrf_8765=")
        and "SameSite=strict" in cookie
        and "HttpOnly" in cookie
    )
    assert "set-cookie" not in viewer.get("/runs").headers
    assert BASE.endswith(":8765")
