"""Flow sources the Alembic tests write into their temporary projects."""

from __future__ import annotations

GREET = """
from pgflow import Flow

flow = Flow("greet", max_attempts=5)


@flow.step()
def hello(input: dict) -> dict:
    return {"ok": True}


@flow.step(depends_on=["hello"], if_={"hello": {"ok": True}})
def shout(hello: dict) -> str:
    return "HI"
"""

GREET_CHANGED = GREET.replace('if_={"hello": {"ok": True}}', 'if_={"hello": {"ok": False}}')

REPORT = """
from pgflow import Flow

flow = Flow("report")


@flow.step()
def build(input: dict) -> int:
    return 1
"""

GREET_V2 = GREET_CHANGED.replace('Flow("greet"', 'Flow("greet_v2"')

GREET_AND_REPORT = (
    GREET
    + """

report = Flow("report")


@report.step()
def build(input: dict) -> int:
    return 1
"""
)
