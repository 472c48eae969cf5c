"""Manifests from code, their differences in words, and type names (offline)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any, Literal

import pytest
from pydantic import BaseModel

from pgflow import Context, Flow
from pgflow.cli._since import parse_since
from pgflow.dsl.compat import schema_of
from pgflow.manifest import differences, from_flow, from_migrations, render_diff, render_manifest
from pgflow.manifest.build import short_duration
from pgflow.manifest.types import schema_title, type_title


class Order(BaseModel):
    order_id: int


class Receipt(BaseModel):
    total: float


def shop(*, timeout: int = 10, reorder: bool = False, extra: bool = False) -> Flow:
    flow = Flow("shop", input=Order, timeout=30, retention="30d")
    flow.step("load", lambda input: [1, 2])

    def price(n, ctx: Context) -> float:  # type: ignore[no-untyped-def]
        return n * 1.0

    if reorder:
        flow.step("tax", lambda load: 0.2, depends_on=["load"])
        flow.map("price", price, array="load", timeout=timeout)
    else:
        flow.map("price", price, array="load", timeout=timeout)
        flow.step("tax", lambda load: 0.2, depends_on=["load"])

    def total(price: list[float], tax: float, ctx: Context) -> Receipt:
        return Receipt(total=sum(price) * (1 + tax))

    flow.step("total", total, depends_on=["price", "tax"], if_={"tax": 0.2}, when_unmet="fail")
    if extra:
        flow.step("email", lambda total: None, depends_on=["total"])
    return flow


def test_a_manifest_from_code_has_types_options_and_conditions() -> None:
    manifest = from_flow(shop(), "shop.py")
    assert (manifest.source, manifest.location, manifest.input_type) == ("code", "shop.py", "Order")
    assert manifest.options == {"max_attempts": 3, "base_delay": 1, "timeout": 30}
    assert manifest.retention == "30d"
    assert [s.step_slug for s in manifest.steps] == ["load", "price", "tax", "total"]
    price, total = manifest.steps[1], manifest.steps[3]
    assert (price.step_type, price.depends_on, price.options["timeout"]) == ("map", ("load",), 10)
    assert [(p.name, p.receives, p.type) for p in price.parameters or ()] == [
        ("n", "element", "any")
    ]
    assert total.output_type == "Receipt"
    assert [(p.name, p.type) for p in total.parameters or ()] == [
        ("price", "array of number"),
        ("tax", "number"),
    ]  # the Context is not an input
    assert total.required_input_pattern == {"tax": 0.2}
    assert (total.when_unmet, total.when_exhausted) == ("fail", "fail")
    dumped = manifest.model_dump(mode="json")
    assert "shape" not in dumped and dumped["steps"][3]["depends_on"] == ["price", "tax"]


def test_the_text_form_lists_each_step_with_what_it_needs() -> None:
    text = render_manifest(from_flow(shop(), "shop.py"))
    assert text.startswith("flow shop (code: shop.py)\n  checksum  ")
    assert "  retention 30d\n" in text
    assert "2. price (map) -> array of number\n   after          load\n" in text
    assert "   receives       n: any (each element)\n" in text
    assert '   if_            {"tax": 0.2}\n   when_unmet     fail\n' in text


def test_identical_manifests_have_no_differences() -> None:
    a, b = from_flow(shop(), "a.py"), from_flow(shop(), "b.py")
    assert differences(a, b) == []
    rendered = render_diff(a, b, [])
    assert rendered.endswith(f"no differences (checksum {a.checksum[:12]})\n")


def test_every_shape_and_option_difference_is_named() -> None:
    before = from_flow(shop(), "old.py").model_copy(update={"source": "database"})
    after = from_flow(shop(timeout=20, reorder=True, extra=True), "new.py")
    found = differences(before, after)
    assert [(d.kind, d.text) for d in found] == [
        ("shape", "step `email` is new (position 5, single, depends on `total`)"),
        (
            "shape",
            "step order: load, price, tax, total (deployed) → load, tax, price, total (code)",
        ),
        ("option", "step `price` option `timeout`: 10 (deployed) → 20 (code)"),
    ]
    text = render_diff(before, after, found)
    assert "3 differences" in text and "Shape changed (checksum" in text
    assert "`shop_v2`" in text and "- step `email` is new" in text
    assert "Options and input type (a deploy updates them in place):" in text


def test_changed_conditions_dependencies_and_removed_steps() -> None:
    before = from_flow(shop(extra=True), "old.py").model_copy(update={"source": "migrations"})
    changed = Flow("shop", input=Order, timeout=30)
    changed.step("load", lambda input: [1, 2])
    changed.map("price", lambda n: n, array="load", timeout=10)
    changed.step("tax", lambda load, price: 0.2, depends_on=["load", "price"])
    changed.step("total", lambda price, tax: 1, depends_on=["price", "tax"], if_not={"tax": 0})
    texts = [d.text for d in differences(before, from_flow(changed, "new.py"))]
    assert texts == [
        "step `email` is removed (it is in the migrations flow, not in the code)",
        "step `tax`: depends on: `load` (migrations) → `load`, `price` (code)",
        'step `total`: if_: {"tax": 0.2} (migrations) → none (code)',
        'step `total`: if_not: none (migrations) → {"tax": 0} (code)',
        "step `total`: when_unmet: fail (migrations) → skip (code)",
        "flow option `retention`: 30d (migrations) → not set (code)",
    ]


@pytest.mark.parametrize(
    ("annotation", "title"),
    [
        (str, "string"),
        (int | None, "integer | null"),
        (list[Receipt], "array of Receipt"),
        (dict[str, float], "object of number"),
        (tuple[int, str], "[integer, string]"),
        (Literal["a", "b"], '"a" | "b"'),
        (Any, "any"),
    ],
)
def test_type_titles(annotation: Any, title: str) -> None:
    assert type_title(schema_of(annotation, "validation")) == title


def test_stored_schema_titles() -> None:
    stored = schema_of(Order, "validation")
    assert stored is not None
    assert schema_title({**dict(stored.resolved()), "$defs": dict(stored.defs)}) == "Order"
    assert schema_title(True) == "any"
    assert schema_title(None) is None


def test_durations() -> None:
    assert short_duration(timedelta(days=30)) == "30d"
    assert short_duration("14 days") == "2w"
    assert short_duration(5400) == "90m"
    assert short_duration("1 mon") == "1 mon"
    assert parse_since("12h") == timedelta(hours=12)
    moment = parse_since("2026-11-28T09:30")
    assert isinstance(moment, object) and moment.utcoffset() is not None  # type: ignore[union-attr]
    with pytest.raises(ValueError):
        parse_since("yesterday")


def test_migrations_give_the_options_the_last_calls_set(tmp_path: Path) -> None:
    (tmp_path / "1_create.sql").write_text(
        "select pgflow.create_flow('shop', timeout => 30, retention => '30 days');\n"
        "select pgflow.add_step('shop', 'load', timeout => 10);\n"
        "select pgflow.add_step('shop', 'tax', array['load'], start_delay => '5');\n"
    )
    (tmp_path / "2_tune.sql").write_text(
        "select pgflow.create_flow('shop', max_attempts => 5, timeout => 45);\n"
        "select pgflow.add_step('shop', 'load');\n"
        "select pgflow.add_step('shop', 'tax', array['load'], start_delay => 5);\n"
    )
    (manifest,) = from_migrations(tmp_path).values()
    assert (manifest.source, manifest.location) == ("migrations", str(tmp_path / "2_tune.sql"))
    assert manifest.options == {"max_attempts": 5, "base_delay": 1, "timeout": 45}
    assert manifest.retention is None  # the last create_flow left it out
    load, tax = manifest.steps
    assert load.options == dict.fromkeys(("max_attempts", "base_delay", "timeout", "start_delay"))
    assert (tax.depends_on, tax.options["start_delay"]) == (("load",), 5)
    assert manifest.input_type is None and load.output_type is None
