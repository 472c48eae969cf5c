"""Reading the viewer's HTML in tests: sections, attributes and the CSRF token."""

from __future__ import annotations

import re

from starlette.testclient import TestClient


def section(html: str, element_id: str) -> str:
    """The text from the element with ``id=element_id`` to the next ``</section>``."""
    start = html.index(f'id="{element_id}"')
    return html[start : html.index("</section>", start)]


def node_classes(html: str) -> dict[str, str]:
    """``{step slug: class attribute}`` of every DAG node in ``html``."""
    found = re.findall(r'<g class="node ([^"]*)" data-step="([^"]*)"', html)
    return {slug: classes for classes, slug in found}


def csrf_of(client: TestClient, run_id: object) -> str:
    """Open a run page (which sets the CSRF cookie) and return the token its forms carry."""
    page = client.get(f"/runs/{run_id}")
    assert page.status_code == 200, page.text
    match = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert match, "the run page has no action form"
    return match.group(1)
