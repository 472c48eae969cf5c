"""Cancel and retry from the run page: CSRF, read-only mode, and the reader role."""

from __future__ import annotations

from collections.abc import Callable

from starlette.testclient import TestClient

from pgflow import Client
from tests.integration.ui.conftest import BASE, Runner
from tests.integration.ui.flows import gated, shop
from tests.integration.ui.pages import csrf_of

FORM = {"content-type": "application/x-www-form-urlencoded"}


def status_of(runner: Runner, run_id: object) -> str:
    return runner.client.get_run(str(run_id)).status


def test_cancel_stops_a_live_run_and_says_so(viewer: TestClient, runner: Runner) -> None:
    run = runner.start(gated, {})
    token = csrf_of(viewer, run.run_id)
    done = viewer.post(f"/runs/{run.run_id}/cancel", data={"csrf": token})
    assert done.status_code == 303
    assert done.headers["location"] == f"/runs/{run.run_id}?notice=cancelled"
    assert status_of(runner, run.run_id) == "cancelled"
    page = viewer.get(done.headers["location"]).text
    assert "Run cancelled" in page and 'id="run-status">cancelled' in page
    again = viewer.post(f"/runs/{run.run_id}/cancel", data={"csrf": token})
    assert again.headers["location"].endswith("?notice=unchanged")


def test_retry_starts_a_failed_run_again(viewer: TestClient, runner: Runner) -> None:
    runner.start_worker()
    run = runner.finish(shop, {"order_id": 1, "items": ["bad"]})
    assert run.status == "failed"
    runner.stop_worker()
    token = csrf_of(viewer, run.run_id)
    done = viewer.post(f"/runs/{run.run_id}/retry", data={"csrf": token})
    assert done.headers["location"] == f"/runs/{run.run_id}?notice=retried"
    assert status_of(runner, run.run_id) == "started"
    live = viewer.get(done.headers["location"]).text
    assert "Run retried" in live
    assert f'<form method="post" action="/runs/{run.run_id}/cancel" data-when="live"' in live


def test_posts_without_the_right_csrf_token_change_nothing(
    viewer: TestClient, runner: Runner
) -> None:
    run = runner.start(gated, {})
    token = csrf_of(viewer, run.run_id)
    url = f"/runs/{run.run_id}/cancel"
    refusals = [
        viewer.post(url, data={}),
        viewer.post(url, data={"csrf": token[:-1] + ("A" if token[-1] != "A" else "B")}),
        viewer.post(url, data={"csrf": token}, headers={"origin": "http://evil.example"}),
        viewer.post(url, data={"csrf": token}, headers={"sec-fetch-site": "cross-site"}),
        viewer.post(
            url, content=f'{{"csrf": "{token}"}}', headers={"content-type": "application/json"}
        ),
    ]
    fresh = TestClient(viewer.app, base_url=BASE)  # no cookie: a token alone is not enough
    refusals.append(fresh.post(url, data={"csrf": token}, headers=FORM))
    assert [r.status_code for r in refusals] == [403] * 6
    assert "Action refused" in refusals[0].text
    assert status_of(runner, run.run_id) == "started"
    same_origin = viewer.post(url, data={"csrf": token}, headers={"origin": BASE})
    assert same_origin.status_code == 303
    assert status_of(runner, run.run_id) == "cancelled"


def test_read_only_has_no_actions(make_viewer: Callable[..., TestClient], runner: Runner) -> None:
    viewer = make_viewer(read_only=True)
    run = runner.start(gated, {})
    page = viewer.get(f"/runs/{run.run_id}")
    assert page.status_code == 200
    assert '<form method="post"' not in page.text and "read-only" in page.text
    posted = viewer.post(f"/runs/{run.run_id}/cancel", data={"csrf": "x" * 43})
    assert posted.status_code == 404  # the action routes do not exist
    assert status_of(runner, run.run_id) == "started"


def test_the_reader_role_reads_every_page_in_read_only_mode(
    make_viewer: Callable[..., TestClient], runner: Runner, reader_url: str
) -> None:
    runner.start_worker()
    failed = runner.finish(shop, {"order_id": 3, "items": ["ok", "bad"]})
    viewer = make_viewer(url=reader_url, read_only=True)
    for path in ("/flows", "/runs?flow=shop&status=failed&since=1h", f"/runs/{failed.run_id}"):
        page = viewer.get(path)
        assert page.status_code == 200, (path, page.text[:2000])
    assert "raise ValueError" in viewer.get(f"/runs/{failed.run_id}").text


def test_an_action_the_role_may_not_take_is_refused_with_a_hint(
    make_viewer: Callable[..., TestClient], runner: Runner, reader_url: str
) -> None:
    run = runner.start(gated, {})
    viewer = make_viewer(url=reader_url)
    refused = viewer.post(f"/runs/{run.run_id}/cancel", data={"csrf": csrf_of(viewer, run.run_id)})
    assert refused.status_code == 403
    assert "permission denied" in refused.text and "pgflow_reader" in refused.text
    with Client(runner.url) as client:
        assert client.get_run(run.run_id).status == "started"
