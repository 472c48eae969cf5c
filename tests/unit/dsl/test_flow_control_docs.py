"""Every ```python block of docs/flow-control.md runs; its errors are the real messages."""

from __future__ import annotations

import re
import sys
import types
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

import pgflow
from pgflow.compiler import compile_flow

DOC = Path(__file__).resolve().parents[3] / "docs" / "flow-control.md"
TEXT = DOC.read_text(encoding="utf-8")
BLOCKS = re.findall(r"^```python\n(.*?)^```", TEXT, re.MULTILINE | re.DOTALL)


def test_every_example_runs_and_defines_its_limits(monkeypatch: pytest.MonkeyPatch) -> None:
    module = types.ModuleType("pgflow_docs_flow_control")
    monkeypatch.setitem(sys.modules, module.__name__, module)
    for index, block in enumerate(BLOCKS):
        code = compile(block, f"{DOC.name} example {index + 1}", "exec")
        exec(code, module.__dict__)  # noqa: S102 - running our own documentation
    orders = module.__dict__["orders"]
    assert [(x.step, x.kind, x.max, x.key) for x in orders.limits] == [
        (None, "concurrency", 20, None),
        ("charge", "concurrency", 5, None),
        ("ship", "concurrency", 1, "customer_id"),
    ]
    sql = compile_flow(orders).sql
    shown = TEXT.split("```sql\n", 1)[1].split("```", 1)[0]
    assert shown in sql  # the compiled call shown is the real one
    notify = module.__dict__["notify"]
    assert [(x.step, x.max, x.per, x.key) for x in notify.limits] == [
        ("send_sms", 100, 60, None),
        ("call_webhook", 5, 1, "tenant"),
    ]


class Order(BaseModel):
    order_id: int
    customer_id: str


def message(**options: Any) -> str:
    flow = pgflow.Flow("orders", input=Order)
    with pytest.raises(pgflow.DefinitionError) as caught:
        flow.step("ship", lambda input: 1, **options)
    return f"{caught.value}"


def test_the_error_messages_shown_are_the_real_ones() -> None:
    shown = TEXT.split("## Bad limits", 1)[1].split("```text\n", 1)[1].split("```", 1)[0]
    assert message(concurrency=pgflow.Limit(1, key="customer")) in shown
    with pytest.raises(pgflow.DefinitionError) as caught:
        pgflow.Flow("notify").step("send_sms", lambda input: 1, rate_limit="100/fortnight")
    assert f"{caught.value}" in shown
    with pytest.raises(pgflow.DefinitionError) as caught:
        pgflow.Flow("orders", input=Order).step("charge", lambda input: 1, concurrency=0)
    assert f"{caught.value}" in shown
