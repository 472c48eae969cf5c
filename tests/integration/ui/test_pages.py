"""The pages against a real Postgres: flows, runs with filters, one run, bad addresses."""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import psycopg
from psycopg import sql
from starlette.testclient import TestClient

from pgflow.cli._preview import format_size
from pgflow.ui.store import VALUE_CAP
from tests.integration.ui.conftest import Runner
from tests.integration.ui.flows import GATE, gated, shop
from tests.integration.ui.pages import node_classes, section


def rows(html: str) -> list[str]:
    """The run ids of the runs table, top to bottom."""
    return re.findall(r'<tr data-run="([^"]+)"', html)


def test_flows_page_draws_every_deployed_flow(viewer: TestClient) -> None:
    page = viewer.get("/flows")
    assert page.status_code == 200
    shop_card = section(page.text, "flow-shop")
    assert node_classes(shop_card) == {
        "load": "st-none",
        "price": "st-none map",
        "label": "st-none",
        "total": "st-none",
    }
    assert (
        shop_card.count('class="edge"') == 4
    )  # load->price, load->label, price->total, label->total
    assert "map · 1 dep" in shop_card and "step · 2 deps" in shop_card
    assert node_classes(section(page.text, "flow-gated")).keys() == {"first", "hold"}
    assert 'href="/runs?flow=shop"' in shop_card


def test_flows_page_counts_runs_by_status(viewer: TestClient, runner: Runner) -> None:
    runner.start(gated, {})
    runner.start(gated, {})
    card = section(viewer.get("/flows").text, "flow-gated")
    assert ">2 started</a>" in card and ">0 completed</a>" in card


def test_runs_are_listed_newest_first_and_filtered_by_flow_status_and_time(
    viewer: TestClient, runner: Runner
) -> None:
    first = runner.start(gated, {"note": "one"})
    second = runner.start(shop, {"order_id": 2})
    everything = viewer.get("/runs")
    assert everything.status_code == 200
    assert rows(everything.text) == [str(second.run_id), str(first.run_id)]
    assert rows(viewer.get("/runs?flow=gated").text) == [str(first.run_id)]
    assert rows(viewer.get("/runs?status=started&since=1h").text) == [
        str(second.run_id),
        str(first.run_id),
    ]
    none = viewer.get("/runs?status=completed")
    assert rows(none.text) == [] and "No runs match these filters" in none.text
    future = (datetime.now(UTC) + timedelta(days=1)).date().isoformat()
    assert rows(viewer.get(f"/runs?since={future}").text) == []


def test_bad_filters_are_named_and_ignored(viewer: TestClient, runner: Runner) -> None:
    run = runner.start(gated, {})
    page = viewer.get("/runs?status=bogus&since=yesterday-ish&before=soon")
    assert page.status_code == 200
    assert "Ignored: unknown status &#39;bogus&#39;" in page.text
    assert "&#39;yesterday-ish&#39; is not a duration" in page.text
    assert "the &#39;before&#39; position is not a timestamp" in page.text
    assert rows(page.text) == [str(run.run_id)]


def test_older_runs_are_one_link_away(viewer: TestClient, runner: Runner) -> None:
    started = [runner.start(gated, {"note": str(i)}) for i in range(52)]
    newest = viewer.get("/runs?flow=gated")
    assert rows(newest.text) == [str(r.run_id) for r in reversed(started[2:])]
    link = re.search(r'<a href="(/runs\?[^"]*before=[^"]+)">Older runs', newest.text)
    assert link, "no link to older runs"
    older = viewer.get(link.group(1).replace("&amp;", "&"))
    assert rows(older.text) == [str(started[1].run_id), str(started[0].run_id)]
    assert "Older runs" not in older.text


def price_task_counts(url: str, run_id: uuid.UUID) -> dict[str, int]:
    """How many of the run's ``price`` elements ended in each status, from the tables."""
    with psycopg.connect(url) as conn:
        found = conn.execute(
            "select status, count(*) from pgflow.step_tasks"
            " where run_id = %s and step_slug = 'price' group by status",
            (run_id,),
        ).fetchall()
    return {status: count for status, count in found}


def test_a_failed_run_shows_its_dag_map_progress_timing_errors_and_values(
    viewer: TestClient, runner: Runner, deployed: str
) -> None:
    runner.start_worker()
    run = runner.finish(shop, {"order_id": 7, "items": ["apple", "bad<x>", "fig"]})
    assert run.status == "failed"
    page = viewer.get(f"/runs/{run.run_id}")
    assert page.status_code == 200
    html = page.text
    assert node_classes(html) == {
        "load": "st-completed",
        "price": "st-failed map",
        "label": "st-completed",
        "total": "st-cancelled",
    }
    maps = section(html, "maps")
    assert "<strong>3</strong> of 3 elements finished" in maps
    # The failure cancels whichever siblings were not yet reported (they race it), so the
    # line must show what the tables hold: one failed, the rest completed or cancelled.
    counts = price_task_counts(deployed, run.run_id)
    assert counts["failed"] == 1 and sum(counts.values()) == 3
    assert set(counts) <= {"completed", "failed", "cancelled"}
    for status, n in counts.items():
        assert f'<span class="status st-{status}">{n} {status}</span>' in maps
    assert "<code>[1]</code> builtins.ValueError" in maps or "<code>[1]</code> ValueError" in maps
    timing = section(html, "timing")
    assert [s for s in ("load", "price", "label") if f"<th>{s}</th>" in timing] == [
        "load",
        "price",
        "label",
    ]
    errors = section(html, "errors")
    assert "raise ValueError(f&#34;no price for &lt;b&gt;{item}&lt;/b&gt;&#34;)" in errors
    assert "<b>bad<x></b>" not in html  # the error text is shown, never interpreted
    values = section(html, "values")
    assert "&#34;order_id&#34;: 7" in values
    assert re.search(r'data-key="output-load".*?&#34;apple&#34;', values, re.DOTALL)


def test_markup_in_outputs_is_escaped(viewer: TestClient, runner: Runner) -> None:
    GATE.set()
    runner.start_worker()
    run = runner.finish(gated, {"note": "<img src=x onerror=alert(1)>"})
    assert run.status == "completed"
    html = viewer.get(f"/runs/{run.run_id}").text
    assert "&lt;script&gt;window.__pwned = true&lt;/script&gt;" in html
    assert "<script>window.__pwned" not in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html and "<img src=x" not in html


def test_values_stored_by_reference_show_as_references_with_their_size(
    viewer: TestClient, runner: Runner
) -> None:
    large = runner.start(gated, {"note": "x" * (VALUE_CAP + 1)})  # over the inline limit
    assert large.input["size"] == VALUE_CAP + 1 + len('{"note": ""}') - 1
    page = viewer.get(f"/runs/{large.run_id}")
    assert page.status_code == 200
    assert f"&lt;stored: {format_size(large.input['size'])}&gt;" in section(page.text, "values")
    assert len(page.content) < 100_000


def test_huge_and_undecodable_values_show_as_markers(
    viewer: TestClient, runner: Runner, deployed: str
) -> None:
    with psycopg.connect(deployed, autocommit=True) as conn:  # values kept inline
        conn.execute("select pgflow.set_setting('inline_limit_bytes', 268435455)")
    huge = runner.start(gated, {"note": "x" * (VALUE_CAP + 1)})
    page = viewer.get(f"/runs/{huge.run_id}")
    assert page.status_code == 200
    assert "&lt;truncated: 256.0 KiB&gt;" in section(page.text, "values")
    assert len(page.content) < 100_000  # the value itself never reaches the page
    deep = json.dumps({"note": "x", "deep": json.loads("[" * 300 + "]" * 300)})
    with psycopg.connect(deployed, autocommit=True) as conn:
        row = conn.execute(
            "select run_id from pgflow.start_flow('gated', %s::jsonb)", [deep]
        ).fetchone()
    assert row is not None
    odd = viewer.get(f"/runs/{row[0]}")
    assert odd.status_code == 200
    assert "&lt;undecodable: it is nested more than 200 levels deep" in section(odd.text, "values")


def test_bad_addresses_are_404_pages_with_a_way_back(viewer: TestClient) -> None:
    for path, says in [
        (f"/runs/{uuid.uuid4()}", "unknown run"),
        ("/runs/not-a-run-id", "is not a run id"),
        ("/nothing/here", "Nothing at /nothing/here"),
    ]:
        page = viewer.get(path)
        assert page.status_code == 404, path
        assert says in page.text
        assert '<a href="/runs">← Back to the runs</a>' in page.text
    home = viewer.get("/")
    assert home.status_code == 303 and home.headers["location"] == "/runs"


def test_a_page_says_when_the_database_cannot_be_reached(
    make_viewer: Callable[..., TestClient], reader_url: str, deployed: str
) -> None:
    viewer = make_viewer(url=reader_url, read_only=True)
    assert viewer.get("/runs").status_code == 200
    info = psycopg.conninfo.conninfo_to_dict(reader_url)
    database = sql.Identifier(str(info["dbname"]))
    with psycopg.connect(deployed, autocommit=True) as conn:
        conn.execute(sql.SQL("revoke connect on database {} from public").format(database))
        conn.execute(
            "select pg_terminate_backend(pid) from pg_stat_activity where usename = %s",
            [info["user"]],
        )
    try:
        away = viewer.get("/runs")
        assert away.status_code == 503
        assert "The database cannot be reached" in away.text
        assert 'data-reload="5"' in away.text  # the page retries by itself
    finally:
        with psycopg.connect(deployed, autocommit=True) as conn:
            conn.execute(sql.SQL("grant connect on database {} to public").format(database))
    # the pool reconnects by itself (with its backoff): the page comes back without a restart
    deadline = time.monotonic() + 15
    while (back := viewer.get("/runs")).status_code != 200 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert back.status_code == 200
