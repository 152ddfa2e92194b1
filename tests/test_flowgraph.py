"""The call-flow diagram: configuration -> graph -> SVG, on the demo office and on generated
configurations (never crashes, every reachable destination drawn, loops cut)."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from appliance.config.yamlio import config_to_data, parse_yaml
from webui.flowgraph import Graph, build_graph, find_item, parse_destination, render_svg

DEMO = Path(__file__).resolve().parents[1] / "appliance" / "config" / "demo.yaml"


@pytest.fixture(scope="module")
def demo() -> dict[str, Any]:
    return config_to_data(parse_yaml(DEMO.read_text(encoding="utf-8")))


def titles(graph: Graph) -> list[str]:
    return [n.title for n in graph.nodes]


def edge_labels(graph: Graph) -> dict[tuple[str, str], str]:
    by_id = {n.id: n for n in graph.nodes}
    return {(by_id[e.source].title, by_id[e.target].title): e.label for e in graph.edges}


def test_main_number_of_the_demo(demo: dict[str, Any]) -> None:
    graph = build_graph(demo, "number", "+74955550001")
    assert titles(graph) == [
        "+74955550001", "Repeat caller?", "Their manager", "Call flow main",
        "Forwarding chain", "Ring 105 Дмитрий Соколов", "Ring +79165550105", "Voicemail",
        "Greeting", "Department", "Voicemail", "Greeting"]
    labels = edge_labels(graph)
    assert labels[("Call flow main", "Forwarding chain")] == "backup (no power or internet)"
    assert labels[("Ring 105 Дмитрий Соколов", "Ring +79165550105")] == "after 20 s"
    assert labels[("Department", "Voicemail")] == "after 45 s, busy or no answer"
    assert labels[("Repeat caller?", "Their manager")] == "known"
    sales = next(n for n in graph.nodes if n.kind == "department")
    assert sales.details[:3] == ("Отдел продаж", "one after another", "rings up to 45 s")
    assert "102 Мария Иванова" in sales.details
    # The general voicemail is reached from the chain and from the closed branch: drawn once.
    general = [n for n in graph.nodes if n.ref == ("voicemail", "general")]
    assert len(general) == 1
    assert sum(1 for e in graph.edges if e.target == general[0].id) == 2


def test_menu_number_of_the_demo(demo: dict[str, Any]) -> None:
    graph = build_graph(demo, "number", "+79165550002")
    labels = {e.label for e in graph.edges}
    assert {"key 0", "key 1", "key 2", "key 9", "no key in 5 s or a wrong key",
            "after 180 s waiting"} <= labels
    assert graph.refs() >= {("voice_menu", "main"), ("department", "sales"),
                            ("queue", "support"), ("employee", "101"),
                            ("voicemail", "general"), ("voicemail", "sales")}
    svg = render_svg(graph)
    ET.fromstring(svg)  # well-formed XML
    assert "Главное меню" in svg


def test_texts_go_through_gettext(demo: dict[str, Any]) -> None:
    russian = {"key %(digit)s": "клавиша %(digit)s", "Voice menu": "Голосовое меню"}
    graph = build_graph(demo, "voice_menu", "main", gettext=lambda t: russian.get(t, t))
    assert "Голосовое меню" in titles(graph)
    assert "клавиша 1" in {e.label for e in graph.edges}


def test_a_loop_through_menus_becomes_a_back_to_node() -> None:
    data = {"voice_menus": [
        {"key": "a", "name": "A", "keys": {"1": {"voice_menu": "b"}}, "default": "hangup"},
        {"key": "b", "name": "B", "keys": {"0": {"voice_menu": "a"}}, "default": "hangup"}]}
    graph = build_graph(data, "voice_menu", "a")
    back = [n for n in graph.nodes if n.kind == "back"]
    assert [n.title for n in back] == ["Back to A (a)"]
    assert len([n for n in graph.nodes if n.kind == "hangup"]) == 1


def test_missing_items_and_invalid_destinations_are_shown() -> None:
    data = {"flows": [{"key": "f", "branches": [
        {"when": "open", "to": {"department": "gone"}},
        {"when": "closed", "to": {"bogus": 1}}]}]}
    graph = build_graph(data, "flow", "f")
    kinds = [n.kind for n in graph.nodes]
    assert kinds.count("missing") == 2
    assert "department: gone" in graph.nodes[1].details


def test_text_is_escaped_in_the_svg() -> None:
    evil = '<script>alert("x")</script>&'
    data = {"flows": [{"key": "f", "name": evil, "branches": [{"to": "hangup"}]}]}
    svg = render_svg(build_graph(data, "flow", "f"), link=lambda k, key: f'/x?a="{key}"&b')
    assert "<script>" not in svg
    assert "&lt;script&gt;" in svg
    ET.fromstring(svg)


def test_unknown_root_kind_is_refused() -> None:
    with pytest.raises(ValueError):
        build_graph({}, "employee", "101")


# --- generated configurations ----------------------------------------------------------------

KEYS = ["a", "b", "c", "d"]
EXTS = ["101", "102", "103"]


def destinations() -> st.SearchStrategy[Any]:
    return st.one_of(
        st.sampled_from(["hangup", "callback"]),
        st.builds(lambda k, t: {k: t},
                  st.sampled_from(["department", "voice_menu", "queue", "voicemail", "flow",
                                   "chain"]), st.sampled_from([*KEYS, "zz"])),
        st.builds(lambda t: {"employee": t}, st.sampled_from([*EXTS, "999"])),
        st.just({"external": "+79161234567", "line": "sim1"}),
        st.just({"sip_uri": "sip:a@10.0.0.1"}),
        st.just({"webhook": "hook"}),
        # junk a half-typed form can hold
        st.one_of(st.none(), st.integers(), st.text(max_size=8),
                  st.dictionaries(st.text(max_size=4), st.text(max_size=4), max_size=2)),
    )


def configs() -> st.SearchStrategy[dict[str, Any]]:
    key = st.sampled_from(KEYS)
    keymap = st.dictionaries(st.sampled_from(list("0123456789*#")), destinations(), max_size=4)
    flow = st.fixed_dictionaries({"key": key, "branches": st.lists(st.fixed_dictionaries(
        {"when": st.sampled_from(["open", "closed", "holiday", "backup", "always"]),
         "to": destinations()}, optional={"greeting": st.sampled_from(["welcome", "x"])}),
        max_size=4)}, optional={"schedule": st.sampled_from(["office", "none"])})
    return st.fixed_dictionaries({
        "employees": st.just([{"extension": e, "name": f"E{e}", "mobiles": ["+79160000000"]}
                              for e in EXTS]),
        "flows": st.lists(flow, max_size=4),
        "departments": st.lists(st.fixed_dictionaries(
            {"key": key, "members": st.lists(st.sampled_from(EXTS), max_size=3)},
            optional={"overflow": destinations(), "timeout": st.integers(5, 100)}),
            max_size=4),
        "voice_menus": st.lists(st.fixed_dictionaries(
            {"key": key, "keys": keymap, "default": destinations()}), max_size=4),
        "queues": st.lists(st.fixed_dictionaries(
            {"key": key, "overflow": destinations(), "keys": keymap}), max_size=4),
        "forwarding_chains": st.lists(st.fixed_dictionaries(
            {"key": key, "steps": st.lists(st.fixed_dictionaries(
                {"to": destinations(), "timeout": st.integers(1, 60)}), max_size=3),
             "final": destinations()}), max_size=4),
        "voicemail_boxes": st.just([{"key": k, "name": k.upper()} for k in KEYS[:2]]),
        "numbers": st.just([{"number": "+74950000000", "flow": "a"}]),
        "repeat_caller": st.fixed_dictionaries({"enabled": st.booleans()}),
    })


def reachable(data: dict[str, Any], kind: str, key: str) -> set[tuple[str, str]]:
    """Every configured item a call from (kind, key) can reach, found independently."""
    found: set[tuple[str, str]] = set()
    todo = [(kind, key)]
    while todo:
        current = todo.pop()
        if current in found:
            continue
        item = find_item(data, *current)
        if item is None:
            continue
        found.add(current)
        raw: list[Any] = []
        if current[0] == "number":
            raw = [{"flow": item.get("flow")}]
        elif current[0] == "flow":
            raw = [b.get("to") for b in item.get("branches", [])]
        elif current[0] == "department":
            raw = [item.get("overflow")]
        elif current[0] in ("voice_menu", "queue"):
            raw = [*item.get("keys", {}).values(),
                   item.get("default" if current[0] == "voice_menu" else "overflow")]
        elif current[0] == "chain":
            raw = [item.get("final")]  # steps ring someone; they are drawn, not expanded
        for value in raw:
            dest = parse_destination(value)
            if dest is not None and dest.target is not None and dest.kind in (
                    "flow", "chain", "voice_menu", "department", "queue", "voicemail",
                    "employee"):
                todo.append((dest.kind, dest.target))
    return found


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(configs(), st.sampled_from(["number", "flow", "voice_menu", "department", "queue",
                                   "chain"]), st.sampled_from([*KEYS, "+74950000000"]))
def test_generated_configs_draw_every_reachable_item(data: dict[str, Any], kind: str,
                                                     key: str) -> None:
    graph = build_graph(data, kind, key)  # terminates and never raises
    assert graph.nodes
    ids = {n.id for n in graph.nodes}
    assert len(ids) == len(graph.nodes)
    assert all(e.source in ids and e.target in ids for e in graph.edges)
    assert reachable(data, kind, key) <= graph.refs()
    # No cycles: loops end in "back to" nodes, which have no way out.
    backs = {n.id for n in graph.nodes if n.kind == "back"}
    assert not any(e.source in backs for e in graph.edges)
    svg = render_svg(graph)
    root = ET.fromstring(svg)
    assert root.tag.endswith("svg")
    assert not re.search(r"<script", svg)


@settings(max_examples=100, deadline=None)
@given(st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=10),
                    lambda inner: st.lists(inner, max_size=3)
                    | st.dictionaries(st.text(max_size=10), inner, max_size=3), max_leaves=30),
       st.sampled_from(["number", "flow", "voice_menu", "department", "queue", "chain"]),
       st.text(max_size=10))
def test_arbitrary_data_never_crashes(data: Any, kind: str, key: str) -> None:
    wrapped = {"flows": data, "voice_menus": data, "numbers": data, "departments": data,
               "queues": data, "forwarding_chains": data, "repeat_caller": data}
    ET.fromstring(render_svg(build_graph(wrapped, kind, key)))
    ET.fromstring(render_svg(build_graph(data if isinstance(data, dict) else {}, kind, key)))
