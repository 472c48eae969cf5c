"""A real headless browser for the viewer's tests: Debian's Chromium driven by Playwright.

Playwright never downloads a browser here: it launches the system ``/usr/bin/chromium``
(``.ci/run`` installs the Debian package when it is missing) with the flags a machine
without outside network needs. Without Chromium the browser tests are skipped, except in
CI (``CI`` set), where they fail.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

CHROMIUM = os.environ.get("PGFLOW_TEST_CHROMIUM", "/usr/bin/chromium")
FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOTS = os.environ.get("PGFLOW_UI_SCREENSHOTS")  # a folder: save the docs' screenshots


def chromium_or_skip() -> str:
    """The Chromium executable; skip (fail in CI) when there is none."""
    if Path(CHROMIUM).is_file() or shutil.which(CHROMIUM):
        return CHROMIUM
    message = (
        f"no Chromium at {CHROMIUM}: install Debian's chromium package (apt-get install chromium)"
    )
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """One headless Chromium for the module (a fresh context per test)."""
    executable = chromium_or_skip()
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=executable, args=FLAGS, headless=True)
        yield launched
        launched.close()


def screenshot(page: Page, name: str) -> None:
    """Save a full-page screenshot as ``<folder>/<name>.png`` when asked to."""
    if SCREENSHOTS:
        Path(SCREENSHOTS).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(SCREENSHOTS) / f"{name}.png"), full_page=True)
