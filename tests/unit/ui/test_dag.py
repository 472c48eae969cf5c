"""The DAG layout: layers by dependency depth, ordering, edges, labels, odd input."""

from __future__ import annotations

from typing import Any

from pgflow.ui.dag import GAP_X, LABEL_CHARS, NODE_HEIGHT, NODE_WIDTH, layout


def step(slug: str, *deps: str, kind: str = "single") -> dict[str, Any]:
    return {"step_slug": slug, "step_type": kind, "deps": list(deps)}


def test_layers_follow_the_longest_dependency_path() -> None:
    drawn = layout([step("a"), step("b", "a"), step("c", "a"), step("d", "b", "c"), step("e", "a")])
    layer = {node.slug: node.layer for node in drawn.nodes}
    assert layer == {"a": 0, "b": 1, "c": 1, "e": 1, "d": 2}
    x = {node.slug: node.x for node in drawn.nodes}
    assert x["b"] == x["c"] == x["e"] == x["a"] + NODE_WIDTH + GAP_X


def test_a_step_one_layer_below_its_deepest_dependency() -> None:
    drawn = layout([step("a"), step("b", "a"), step("c", "b"), step("d", "a", "c")])
    assert {n.slug: n.layer for n in drawn.nodes}["d"] == 3


def test_each_dependency_is_an_edge_into_the_left_side_of_its_step() -> None:
    drawn = layout([step("a"), step("b", "a"), step("c", "a", "b")])
    assert [(e.source, e.target) for e in drawn.edges] == [("a", "b"), ("a", "c"), ("b", "c")]
    nodes = {n.slug: n for n in drawn.nodes}
    ab = drawn.edges[0].path
    assert ab.startswith(f"M{nodes['a'].x + NODE_WIDTH},{nodes['a'].y + NODE_HEIGHT // 2} ")
    assert ab.endswith(f" {nodes['b'].x},{nodes['b'].y + NODE_HEIGHT // 2}")


def test_steps_are_ordered_by_their_dependencies_to_avoid_crossings() -> None:
    # z depends on the lower root, y on the upper one: y is drawn above z.
    drawn = layout([step("r1"), step("r2"), step("z", "r2"), step("y", "r1")])
    ys = {n.slug: n.y for n in drawn.nodes}
    assert ys["r1"] < ys["r2"]
    assert ys["y"] < ys["z"]


def test_size_covers_every_node_and_map_steps_are_marked() -> None:
    drawn = layout([step("a"), step("b", "a", kind="map"), step("c", "a")])
    assert all(
        n.x + NODE_WIDTH <= drawn.width and n.y + NODE_HEIGHT <= drawn.height for n in drawn.nodes
    )
    assert [n.is_map for n in drawn.nodes] == [False, True, False]


def test_long_slugs_are_cut_in_the_label_only() -> None:
    slug = "a_very_long_step_slug_that_does_not_fit"
    node = layout([step(slug)]).nodes[0]
    assert node.slug == slug
    assert len(node.label) == LABEL_CHARS and node.label.endswith("…")


def test_unknown_dependencies_are_ignored_and_no_steps_draw_nothing() -> None:
    drawn = layout([step("a", "missing")])
    assert drawn.edges == () and drawn.nodes[0].layer == 0
    empty = layout([])
    assert (empty.nodes, empty.edges, empty.width, empty.height) == ((), (), 0, 0)
