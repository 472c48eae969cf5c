"""Analyse a website: fetch a page, score its sentiment and summarise it in parallel, save.

A diamond-shaped flow::

    website ──► sentiment ──┐
        └─────► summary ────┴─► save

``sentiment`` and ``summary`` run at the same time as soon as ``website`` is done; ``save``
waits for both (and reads the page's title from ``website`` too). The network is simulated
locally (a few canned pages and a short sleep), so the example runs anywhere. Run it end to
end on the embedded Postgres:

    pgflow run examples/website_analysis.py --input '{"url": "https://example.com/pricing"}'

It prints ``{"save": {...}}``: the report ``save`` returned.
"""

from __future__ import annotations

import asyncio
import hashlib
import re

from pydantic import BaseModel, Field

from pgflow import Context, Flow


class Input(BaseModel):
    """The run input: the page to analyse."""

    url: str = Field(pattern=r"^https?://", description="an http(s) URL")


class Page(BaseModel):
    """What ``website`` fetched."""

    url: str
    title: str
    text: str


class Report(BaseModel):
    """What ``save`` stored."""

    report_id: str
    url: str
    title: str
    sentiment: float
    summary: str


flow = Flow("website_analysis", input=Input, max_attempts=3, base_delay=1, timeout=30)

_PAGES = {
    "/pricing": (
        "Pricing",
        (
            "Our plans are simple and fair. Teams love the free tier. "
            "Upgrading is easy, and support is excellent. Cancelling is painless."
        ),
    ),
    "/outage": (
        "Status: partial outage",
        (
            "Checkout is slow and some payments fail. We are sorry for the bad experience. "
            "Engineers are working on a fix."
        ),
    ),
}
_POSITIVE = {"simple", "fair", "love", "free", "easy", "excellent", "painless", "fix"}
_NEGATIVE = {"slow", "fail", "sorry", "bad", "outage"}


async def _fetch(url: str) -> tuple[str, str]:
    """Pretend to download ``url``: a short sleep and a canned page."""
    await asyncio.sleep(0.05)
    path = "/" + url.split("://", 1)[1].partition("/")[2]
    return _PAGES.get(path, ("Welcome", f"This is the home page of {url}. It is simple."))


@flow.step()
async def website(input: Input, ctx: Context) -> Page:
    """Fetch the page (async: network I/O runs on the event loop)."""
    ctx.logger.info("fetching %s (attempt %d)", input.url, ctx.attempt)
    title, text = await _fetch(input.url)
    return Page(url=input.url, title=title, text=text)


@flow.step(depends_on=[website])
def sentiment(website: Page) -> float:
    """Score the text from -1 (negative) to 1 (positive); sync, so it runs in a thread."""
    words = re.findall(r"[a-z]+", website.text.lower())
    positive = sum(w in _POSITIVE for w in words)
    negative = sum(w in _NEGATIVE for w in words)
    return round((positive - negative) / max(positive + negative, 1), 2)


@flow.step(depends_on=[website], timeout=10)
async def summary(website: Page) -> str:
    """Summarise the page: its first sentence and its length."""
    await asyncio.sleep(0.02)  # a call to a summarisation service would go here
    first = website.text.split(". ")[0].rstrip(".")
    return f"{first}. ({len(website.text.split())} words)"


@flow.step(depends_on=[website, sentiment, summary])
async def save(input: Input, website: Page, sentiment: float, summary: str) -> Report:
    """Store the report (here: build it; a real flow would write it with ctx.connection())."""
    report_id = hashlib.sha256(f"{input.url}|{summary}".encode()).hexdigest()[:12]
    return Report(
        report_id=report_id,
        url=input.url,
        title=website.title,
        sentiment=sentiment,
        summary=summary,
    )
