"""A number's or a flow's call path as a picture: configuration data -> graph -> SVG.

Pure functions (no Flask): `build_graph` walks the configuration (plain data as
`ConfigEditor.data()` returns it, possibly with one unsaved item swapped in) from a root
(a number, flow, chain, menu, department or queue) and returns nodes and labelled edges.
An entity reached twice is drawn once (edges meet at it); an entity reached again while it
is still being expanded (a loop) becomes a "back to X" node, so the walk always ends and
the graph has no cycles. `layout` puts nodes in left-to-right layers, `render_svg` draws
them with every text escaped.

Texts go through the caller's `gettext` (English by default), so the picture reads in the
page's language.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any
from xml.sax.saxutils import escape, quoteattr

from pydantic import ValidationError

from appliance.config.destination import Destination

Gettext = Callable[[str], str]
Linker = Callable[[str, str], str | None]

ROOT_KINDS = ("number", "flow", "chain", "voice_menu", "department", "queue")
_SECTIONS = {"number": ("numbers", "number"), "flow": ("flows", "key"),
             "chain": ("forwarding_chains", "key"), "voice_menu": ("voice_menus", "key"),
             "department": ("departments", "key"), "queue": ("queues", "key"),
             "voicemail": ("voicemail_boxes", "key"), "employee": ("employees", "extension"),
             "schedule": ("schedules", "key"), "webhook": ("webhooks", "key"),
             "prompt": ("prompts", "key")}
_MAX_NODES = 400  # a picture bigger than this is unreadable anyway; the rest is summarised


def _identity(text: str) -> str:
    return text


@dataclass(frozen=True)
class Node:
    """A box in the picture: what it is (`kind`), a title and a few detail lines."""

    id: str
    kind: str  # number, flow, greeting, department, voice_menu, queue, voicemail, chain,
    # step, employee, external, sip_uri, webhook, fax, callback, hangup, back, missing, more
    title: str
    details: tuple[str, ...] = ()
    ref: tuple[str, str] | None = None  # (kind, key) of the configured item it shows


@dataclass(frozen=True)
class Edge:
    """An arrow from one node to another, with a short label ("key 1", "after 20 s")."""

    source: str
    target: str
    label: str = ""


@dataclass
class Graph:
    """Nodes in discovery order (the root first) and the edges between them."""

    nodes: list[Node] = field(default_factory=list)
    edges: list[Edge] = field(default_factory=list)

    def node(self, node_id: str) -> Node:
        """The node with that id."""
        return next(n for n in self.nodes if n.id == node_id)

    def refs(self) -> set[tuple[str, str]]:
        """Every configured item the picture shows, as (kind, key)."""
        return {n.ref for n in self.nodes if n.ref is not None}


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def _items(data: dict[str, Any], section: str) -> list[dict[str, Any]]:
    value = data.get(section)
    if not isinstance(value, list):
        return []
    return [item for item in value if isinstance(item, dict)]


def find_item(data: dict[str, Any], kind: str, key: str) -> dict[str, Any] | None:
    """The configured item of `kind` named `key`, or None."""
    if kind not in _SECTIONS:
        return None
    section, field_name = _SECTIONS[kind]
    for item in _items(data, section):
        if _text(item.get(field_name)) == key:
            return item
    return None


def parse_destination(value: Any) -> Destination | None:
    """A destination from configuration data, or None when it is not a valid one."""
    if value is None:
        return None
    try:
        return Destination.model_validate(value)
    except (ValidationError, ValueError, TypeError):
        return None


def _seconds(value: Any, default: int) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else default


class _Builder:
    """One walk over the configuration; see `build_graph`."""

    def __init__(self, data: dict[str, Any], gettext: Gettext) -> None:
        self.data = data
        self.gettext = gettext
        self.graph = Graph()
        self.done: dict[tuple[str, str], str] = {}  # expanded item -> its node id
        self.path: list[tuple[str, str]] = []  # items being expanded (for loops)
        self.leaves: dict[tuple[str, ...], str] = {}
        self.counter = 0
        self.truncated = False

    # --- helpers ------------------------------------------------------------------------
    def add(self, kind: str, title: str, details: Iterable[str] = (),
            ref: tuple[str, str] | None = None) -> str:
        self.counter += 1
        node_id = f"n{self.counter}"
        self.graph.nodes.append(Node(node_id, kind, title, tuple(d for d in details if d), ref))
        return node_id

    def link(self, source: str, target: str, label: str = "") -> None:
        self.graph.edges.append(Edge(source, target, label))

    def name_of(self, kind: str, key: str) -> str:
        item = find_item(self.data, kind, key)
        name = _text(item.get("name")) if item else ""
        return f"{name} ({key})" if name and name != key else key

    def employee_name(self, extension: str) -> str:
        item = find_item(self.data, "employee", extension)
        name = _text(item.get("name")) if item else ""
        return f"{extension} {name}".strip()

    def leaf(self, key: tuple[str, ...], kind: str, title: str, details: Iterable[str] = (),
             ref: tuple[str, str] | None = None) -> str:
        """A node without outgoing edges, drawn once however often it is reached."""
        if key not in self.leaves:
            self.leaves[key] = self.add(kind, title, details, ref)
        return self.leaves[key]

    def missing(self, kind: str, key: str) -> str:
        gettext = self.gettext
        return self.leaf(("missing", kind, key), "missing", gettext("Not found"),
                         [f"{kind}: {key}"])

    # --- destinations -------------------------------------------------------------------
    def destination(self, raw: Any) -> str:
        """The node a destination leads to (expanding the item it names)."""
        gettext = self.gettext
        dest = parse_destination(raw)
        if dest is None:
            return self.leaf(("invalid", repr(raw)[:80]), "missing",
                             gettext("Invalid destination"), [repr(raw)[:60]])
        kind, target = dest.kind, dest.target or ""
        if kind in ("flow", "chain", "voice_menu", "department", "queue"):
            return self.item(kind, target)
        if kind == "voicemail":
            item = find_item(self.data, "voicemail", target)
            if item is None:
                return self.missing(kind, target)
            return self.leaf(("voicemail", target), "voicemail", gettext("Voicemail"),
                             [self.name_of("voicemail", target)], ("voicemail", target))
        if kind == "employee":
            item = find_item(self.data, "employee", target)
            if item is None:
                return self.missing(kind, target)
            details = [self.employee_name(target)]
            after = item.get("ring_mobile_after", 10)
            if item.get("mobiles") and isinstance(after, int) and not isinstance(after, bool):
                details.append(gettext("mobile after %(seconds)s s") % {"seconds": after})
            return self.leaf(("employee", target), "employee", gettext("Employee"), details,
                             ("employee", target))
        if kind == "external":
            details = [target]
            if dest.line:
                details.append(gettext("via line %(line)s") % {"line": dest.line})
            return self.leaf(("external", target, dest.line or ""), "external",
                             gettext("External number"), details)
        if kind == "sip_uri":
            return self.leaf(("sip_uri", target), "sip_uri", gettext("SIP address"), [target])
        if kind == "webhook":
            ref = ("webhook", target) if find_item(self.data, "webhook", target) else None
            return self.leaf(("webhook", target), "webhook", gettext("Webhook"), [target], ref)
        if kind == "fax":
            return self.leaf(("fax", target), "fax", gettext("Fax"), [target])
        if kind == "callback":
            return self.leaf(("callback",), "callback", gettext("Callback request"))
        return self.leaf(("hangup",), "hangup", gettext("Hang up"))

    def item(self, kind: str, key: str) -> str:
        """The node of a configured item, expanded once; a loop back becomes a "back to" node."""
        gettext = self.gettext
        ref = (kind, key)
        if ref in self.path:
            return self.add("back", gettext("Back to %(name)s") % {
                "name": self.name_of(kind, key)}, (), ref)
        if ref in self.done:
            return self.done[ref]
        item = find_item(self.data, kind, key)
        if item is None:
            return self.missing(kind, key)
        if len(self.graph.nodes) >= _MAX_NODES:
            self.truncated = True
            return self.leaf(("more",), "more", gettext("More steps not shown"))
        self.path.append(ref)
        try:
            node_id = getattr(self, f"expand_{kind}")(item, key)
        finally:
            self.path.pop()
        self.done[ref] = node_id
        return node_id

    # --- items --------------------------------------------------------------------------
    def expand_number(self, item: dict[str, Any], key: str) -> str:
        gettext = self.gettext
        details = [_text(item.get("label")),
                   gettext("line %(line)s") % {"line": item["line"]} if item.get("line") else ""]
        if item.get("enabled") is False:
            details.append(gettext("disabled"))
        node_id = self.add("number", key, details, ("number", key))
        rc = self.data.get("repeat_caller")
        flow = _text(item.get("flow"))
        if (isinstance(rc, dict) and rc.get("enabled") and item.get("repeat_caller", True)
                is not False):
            check = self.add("repeat", gettext("Repeat caller?"),
                             [gettext("a caller known from history or the CRM")])
            self.link(node_id, check)
            manager = self.leaf(("manager",), "employee", gettext("Their manager"),
                                [gettext("if busy or no answer: the normal flow")])
            self.link(check, manager, gettext("known"))
            self.link(check, self.item("flow", flow), gettext("otherwise"))
        else:
            self.link(node_id, self.item("flow", flow))
        return node_id

    def expand_flow(self, item: dict[str, Any], key: str) -> str:
        gettext = self.gettext
        schedule = _text(item.get("schedule"))
        details = [_text(item.get("name"))]
        if schedule:
            details.append(gettext("schedule: %(name)s") % {"name": self.name_of("schedule",
                                                                               schedule)})
        node_id = self.add("flow", gettext("Call flow %(key)s") % {"key": key}, details,
                           ("flow", key))
        labels = {"always": gettext("always"), "open": gettext("open"),
                  "closed": gettext("closed"), "holiday": gettext("holiday"),
                  "backup": gettext("backup (no power or internet)")}
        branches = item.get("branches")
        for branch in branches if isinstance(branches, list) else []:
            if not isinstance(branch, dict):
                continue
            when = _text(branch.get("when") or "always")
            label = labels.get(when, when)
            greeting = branch.get("greeting")
            source = node_id
            if greeting:
                greet = self.add("greeting", gettext("Greeting"),
                                 [self.name_of("prompt", _text(greeting))])
                self.link(node_id, greet, label)
                source, label = greet, ""
            self.link(source, self.destination(branch.get("to")), label)
        return node_id

    def expand_department(self, item: dict[str, Any], key: str) -> str:
        gettext = self.gettext
        strategies = {
            "all_at_once": gettext("all at once"), "one_after_another":
            gettext("one after another"), "cascading": gettext("cascading"),
            "longest_idle": gettext("longest idle"), "fewest_calls": gettext("fewest calls"),
            "random": gettext("random"), "round_robin_memory": gettext("round robin"),
            "fixed_order": gettext("fixed order")}
        strategy = _text(item.get("strategy") or "all_at_once")
        members = item.get("members")
        names = [self.employee_name(_text(m)) for m in members] if isinstance(
            members, list) else []
        shown = names[:6] + ([gettext("and %(count)s more") % {"count": len(names) - 6}]
                             if len(names) > 6 else [])
        timeout = _seconds(item.get("timeout"), 60)
        details = [_text(item.get("name")), strategies.get(strategy, strategy),
                   gettext("rings up to %(seconds)s s") % {"seconds": timeout}, *shown]
        if not names:
            details.append(gettext("nobody to ring"))
        node_id = self.add("department", gettext("Department"), details, ("department", key))
        if item.get("overflow") is not None:
            self.link(node_id, self.destination(item["overflow"]),
                      gettext("after %(seconds)s s, busy or no answer") % {"seconds": timeout})
        return node_id

    def expand_voice_menu(self, item: dict[str, Any], key: str) -> str:
        gettext = self.gettext
        details = [_text(item.get("name"))]
        if item.get("greeting"):
            details.append(gettext("greeting: %(name)s") % {
                "name": self.name_of("prompt", _text(item["greeting"]))})
        if item.get("direct_dial", True) is not False:
            details.append(gettext("extensions can be dialled"))
        node_id = self.add("voice_menu", gettext("Voice menu"), details, ("voice_menu", key))
        keys = item.get("keys")
        if isinstance(keys, dict):
            for digit in sorted(keys, key=lambda d: (_text(d) in "*#", _text(d))):
                self.link(node_id, self.destination(keys[digit]),
                          gettext("key %(digit)s") % {"digit": digit})
        timeout = _seconds(item.get("timeout"), 5)
        self.link(node_id, self.destination(item.get("default")),
                  gettext("no key in %(seconds)s s or a wrong key") % {"seconds": timeout})
        return node_id

    def expand_queue(self, item: dict[str, Any], key: str) -> str:
        gettext = self.gettext
        agents = item.get("agents")
        count = len(agents) if isinstance(agents, list) else 0
        details = [_text(item.get("name")),
                   gettext("%(count)s agents") % {"count": count}]
        if item.get("skip_waiting"):
            details.append(gettext("no waiting when nobody is free"))
        node_id = self.add("queue", gettext("Queue"), details, ("queue", key))
        keys = item.get("keys")
        if isinstance(keys, dict):
            for digit in sorted(keys, key=_text):
                self.link(node_id, self.destination(keys[digit]),
                          gettext("key %(digit)s") % {"digit": digit})
        wait = _seconds(item.get("max_wait"), 300)
        self.link(node_id, self.destination(item.get("overflow")),
                  gettext("after %(seconds)s s waiting") % {"seconds": wait})
        return node_id

    def expand_chain(self, item: dict[str, Any], key: str) -> str:
        gettext = self.gettext
        node_id = self.add("chain", gettext("Forwarding chain"), [_text(item.get("name"))],
                           ("chain", key))
        previous, label = node_id, ""
        steps = item.get("steps")
        for step in steps if isinstance(steps, list) else []:
            if not isinstance(step, dict):
                continue
            dest = parse_destination(step.get("to"))
            target = gettext("invalid") if dest is None else self.describe(dest)
            timeout = _seconds(step.get("timeout"), 20)
            step_id = self.add("step", gettext("Ring %(who)s") % {"who": target},
                               [gettext("for %(seconds)s s") % {"seconds": timeout}],
                               None if dest is None or dest.target is None
                               or dest.kind not in ("department", "queue", "employee")
                               else (dest.kind, dest.target))
            self.link(previous, step_id, label)
            previous, label = step_id, gettext("after %(seconds)s s") % {"seconds": timeout}
        self.link(previous, self.destination(item.get("final")),
                  label or gettext("then"))
        return node_id

    def describe(self, dest: Destination) -> str:
        """A destination in a few words, for a chain step."""
        target = dest.target or ""
        if dest.kind == "employee":
            return self.employee_name(target)
        if dest.kind in ("department", "queue"):
            return self.name_of(dest.kind, target)
        return target


def build_graph(data: dict[str, Any], root_kind: str, root_key: str, *,
                gettext: Gettext = _identity) -> Graph:
    """The call path from one number, flow, chain, menu, department or queue as a graph."""
    if root_kind not in ROOT_KINDS:
        raise ValueError(f"cannot draw a {root_kind!r}")
    builder = _Builder(data if isinstance(data, dict) else {}, gettext)
    builder.item(root_kind, root_key)
    return builder.graph


# --- layout and drawing ---------------------------------------------------------------------

NODE_W = 210
LINE_H = 16
PAD = 8
TOP = 36  # room above the first row for the labels of edges that rise into it
GAP_X = 130  # room for two short lines of an edge's label
PORT_GAP = 32  # between labelled edges leaving one box (a label has two lines)
GAP_Y = 18
CHARS = 26  # per line at 12 px: Cyrillic and Latin both fit in NODE_W
_COLOURS = {
    "number": ("#1f5fbf", "#ffffff"), "flow": ("#e7eefb", "#17202f"),
    "repeat": ("#efe7fb", "#17202f"), "greeting": ("#fff7d6", "#17202f"),
    "department": ("#dcf3e6", "#17202f"), "voice_menu": ("#e0f2f7", "#17202f"),
    "queue": ("#e3f0e8", "#17202f"), "chain": ("#f1e9dd", "#17202f"),
    "step": ("#faf4ea", "#17202f"), "voicemail": ("#f4e6f4", "#17202f"),
    "employee": ("#e6f4ea", "#17202f"), "external": ("#fdeede", "#17202f"),
    "back": ("#eeeeee", "#5d6677"), "missing": ("#fde4e1", "#b42318"),
    "hangup": ("#eeeeee", "#17202f"),
}


# Characters XML 1.0 cannot hold (controls, surrogates): a name typed with one must not
# break the whole picture.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def _wrap(text: str, width: int = CHARS, lines: int = 2) -> list[str]:
    """Up to `lines` lines of at most `width` characters; the rest ends in an ellipsis."""
    words, out, current = _NOT_XML.sub("\ufffd", text).split(), [], ""
    for word in words:
        while len(word) > width:
            if current:
                out.append(current)
                current = ""
            out.append(word[:width - 1] + "…")
            word = ""
        if not word:
            continue
        if current and len(current) + 1 + len(word) > width:
            out.append(current)
            current = word
        else:
            current = f"{current} {word}".strip()
    if current:
        out.append(current)
    if len(out) > lines:
        out = out[:lines]
        out[-1] = out[-1][:width - 1].rstrip() + "…"
    return out


@dataclass(frozen=True)
class Box:
    """A node placed: its top-left corner, size and the lines of text in it."""

    node: Node
    x: int
    y: int
    w: int
    h: int
    lines: tuple[tuple[str, bool], ...]  # (text, bold)


@dataclass
class Layout:
    """Placed nodes and the picture's size."""

    boxes: dict[str, Box]
    width: int
    height: int
    # Edges that skip columns pass through a free slot in each column between (edge index ->
    # the slot's y per skipped column), so that no line runs behind a box.
    routes: dict[int, list[int]] = field(default_factory=dict)

    def column_x(self, column: int) -> int:
        """The left edge of a column."""
        return PAD + column * (NODE_W + GAP_X)


def layout(graph: Graph) -> Layout:
    """Left-to-right layers: each node one layer after its furthest parent."""
    known = {n.id for n in graph.nodes}
    children: dict[str, list[str]] = {n.id: [] for n in graph.nodes}
    incoming = dict.fromkeys(known, 0)
    for edge in graph.edges:
        if edge.source in known and edge.target in known:
            children[edge.source].append(edge.target)
            incoming[edge.target] += 1
    # Longest path by Kahn's order: the graph is acyclic by construction (loops end in a
    # "back to" node); anything left over by a bug would simply stay in the first column.
    layer = dict.fromkeys(known, 0)
    ready = [n.id for n in graph.nodes if incoming[n.id] == 0]
    while ready:
        current = ready.pop()
        for child in children[current]:
            layer[child] = max(layer[child], layer[current] + 1)
            incoming[child] -= 1
            if incoming[child] == 0:
                ready.append(child)
    nodes_by_id = {n.id: n for n in graph.nodes}
    columns: dict[int, list[str]] = {}
    for node in graph.nodes:
        columns.setdefault(layer[node.id], []).append(node.id)
    parents: dict[str, list[str]] = {n.id: [] for n in graph.nodes}
    outgoing = dict.fromkeys(known, 0)
    skips: dict[int, list[str]] = {}  # edge index -> its slots, one per skipped column
    for i, edge in enumerate(graph.edges):
        if edge.source not in known or edge.target not in known:
            continue
        outgoing[edge.source] += 1
        previous = edge.source
        for column in range(layer[edge.source] + 1, layer[edge.target]):
            slot = f"~{i}~{column}"
            columns.setdefault(column, []).append(slot)
            parents[slot] = [previous]
            skips.setdefault(i, []).append(slot)
            previous = slot
        parents[edge.target].append(previous)
    boxes: dict[str, Box] = {}
    slot_y: dict[str, int] = {}
    centres: dict[str, float] = {}
    height = 0
    for column, members in sorted(columns.items()):
        # Each box near the middle of its parents (fewer crossings); discovery order on ties.
        def centre(member: str) -> float:
            ys = [centres[p] for p in parents[member] if p in centres]
            return sum(ys) / len(ys) if ys else 0.0

        ordered = sorted(members, key=centre) if column else members
        y = TOP
        for member in ordered:
            if member not in nodes_by_id:  # a slot for a line passing through
                slot_y[member] = y + 6
                centres[member] = y + 6
                y += 12 + GAP_Y // 2
                continue
            node = nodes_by_id[member]
            lines = [(line, True) for line in _wrap(node.title, CHARS - 3, 2)]
            for detail in node.details[:8]:
                lines += [(line, False) for line in _wrap(detail, CHARS + 2, 2)]
            h = max(PAD * 2 + LINE_H * len(lines), outgoing[node.id] * PORT_GAP,
                    len(parents[node.id]) * 12 + PAD)
            boxes[node.id] = Box(node, PAD + column * (NODE_W + GAP_X), y, NODE_W, h,
                                 tuple(lines))
            centres[member] = y + h / 2
            y += h + GAP_Y
        height = max(height, y)
    width = PAD * 2 + (max(columns, default=0) + 1) * (NODE_W + GAP_X) - GAP_X
    routes = {i: [slot_y[slot] for slot in slots] for i, slots in skips.items()}
    return Layout(boxes, width, max(height, 40), routes)


def _ports(graph: Graph, placed: Layout) -> dict[int, tuple[int, int]]:
    """Where each edge leaves its source and enters its target (y), spread along the sides
    in the order of the other ends, so that edges and labels do not pile up."""
    boxes = placed.boxes
    leaving: dict[str, list[int]] = {}
    entering: dict[str, list[int]] = {}
    for i, edge in enumerate(graph.edges):
        if edge.source in boxes and edge.target in boxes:
            leaving.setdefault(edge.source, []).append(i)
            entering.setdefault(edge.target, []).append(i)

    def spread(box: Box, edges: list[int], other: Callable[[int], float]) -> dict[int, int]:
        ordered = sorted(edges, key=other)
        step = box.h / len(ordered)
        return {e: int(box.y + step * (k + 0.5)) for k, e in enumerate(ordered)}

    out_y: dict[int, int] = {}
    in_y: dict[int, int] = {}

    def first(e: int) -> float:
        slots = placed.routes.get(e)
        return slots[0] if slots else boxes[graph.edges[e].target].y

    def last(e: int) -> float:
        slots = placed.routes.get(e)
        return slots[-1] if slots else boxes[graph.edges[e].source].y

    for node_id, edges in leaving.items():
        out_y.update(spread(boxes[node_id], edges, first))
    for node_id, edges in entering.items():
        in_y.update(spread(boxes[node_id], edges, last))
    return {e: (out_y[e], in_y[e]) for e in out_y}


def render_svg(graph: Graph, *, link: Linker | None = None, title: str = "",
               css_class: str = "flowgraph") -> str:
    """The graph as an inline SVG document (every text escaped; no scripts)."""
    placed = layout(graph)
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" class={quoteattr(css_class)} '
           f'viewBox="0 0 {placed.width} {placed.height}" width="{placed.width}" '
           f'height="{placed.height}" role="img" font-family="system-ui, sans-serif" '
           f'font-size="12">']
    if title:
        out.append(f"<title>{escape(_NOT_XML.sub('', title))}</title>")
    out.append('<defs><marker id="fg-arrow" viewBox="0 0 10 10" refX="10" refY="5" '
               'markerWidth="7" markerHeight="7" orient="auto-start-reverse">'
               '<path d="M0,0 L10,5 L0,10 z" fill="#5d6677"/></marker></defs>')
    labels = []
    ports = _ports(graph, placed)
    for i, edge in enumerate(graph.edges):
        if i not in ports:
            continue
        a, b = placed.boxes[edge.source], placed.boxes[edge.target]
        (y1, y2), x1, x2 = ports[i], a.x + a.w, b.x
        # Through the free slot of every skipped column: a curve across each gap, a straight
        # line across each column.
        column = (a.x - PAD) // (NODE_W + GAP_X)
        d, x, y = f"M{x1},{y1}", x1, y1
        for k, slot in enumerate(placed.routes.get(i, [])):
            left = placed.column_x(column + 1 + k)
            mid = (x + left) // 2
            d += f" C{mid},{y} {mid},{slot} {left},{slot} L{left + NODE_W},{slot}"
            x, y = left + NODE_W, slot
        mid = (x + x2) // 2
        d += f" C{mid},{y} {mid},{y2} {x2},{y2}"
        out.append(f'<path d="{d}" fill="none" stroke="#5d6677" stroke-width="1.4" '
                   f'marker-end="url(#fg-arrow)"/>')
        if edge.label:
            # At the start of the edge, where it still runs level: one line above it, one
            # below (a long label is cut with an ellipsis; the full text is the tooltip).
            for k, line in enumerate(_wrap(edge.label, 22, 2)):
                labels.append(f'<text x="{x1 + 5}" y="{y1 - 4 + k * 15}" fill="#17202f" '
                              f'font-size="11" paint-order="stroke" stroke="#ffffff" '
                              f'stroke-width="3"><title>{escape(_NOT_XML.sub("", edge.label))}'
                              f'</title>{escape(line)}</text>')
    for box in placed.boxes.values():
        fill, ink = _COLOURS.get(box.node.kind, ("#ffffff", "#17202f"))
        dash = ' stroke-dasharray="4 3"' if box.node.kind in ("back", "missing") else ""
        shape = (f'<g class="fg-node fg-{escape(box.node.kind)}">'
                 f'<rect x="{box.x}" y="{box.y}" width="{box.w}" height="{box.h}" rx="6" '
                 f'fill="{fill}" stroke="#9aa3b2"{dash}/>')
        for i, (line, bold) in enumerate(box.lines):
            weight = ' font-weight="600"' if bold else ""
            shape += (f'<text x="{box.x + PAD}" y="{box.y + PAD + 12 + i * LINE_H}" '
                      f'fill="{ink}"{weight}>{escape(line)}</text>')
        shape += "</g>"
        href = link(*box.node.ref) if link is not None and box.node.ref is not None else None
        if href:
            shape = f"<a href={quoteattr(_NOT_XML.sub('', href))}>{shape}</a>"
        out.append(shape)
    out.extend(labels)  # labels last, so that no line crosses them
    out.append("</svg>")
    return "".join(out)
