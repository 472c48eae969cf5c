"""Flows the viewer's tests deploy: a diamond with a map, a failing step, a gated step."""

from __future__ import annotations

import threading

from pydantic import BaseModel

from pgflow import Flow


class Order(BaseModel):
    order_id: int
    items: list[str] = []


shop = Flow("shop", input=Order, max_attempts=1)


@shop.step()
def load(input: Order) -> list[str]:
    return input.items


@shop.map(array="load")
def price(item: str) -> int:
    if item.startswith("bad"):
        raise ValueError(f"no price for <b>{item}</b>")
    return len(item)


@shop.step(depends_on=["load"])
def label(load: list[str]) -> str:
    return f"{len(load)} items"


@shop.step(depends_on=["price", "label"])
def total(price: list[int], label: str) -> dict[str, object]:
    return {"total": sum(price), "label": label}


# A step that waits for the test to open a gate, so a page can watch the run live.
GATE = threading.Event()


class Ticket(BaseModel):
    note: str = ""


gated = Flow("gated", input=Ticket, max_attempts=1)


@gated.step()
def first(input: Ticket) -> str:
    return "<script>window.__pwned = true</script>"


@gated.step(depends_on=["first"])
def hold(first: str) -> str:
    if not GATE.wait(30):
        raise TimeoutError("the test never opened the gate")
    return "done"
