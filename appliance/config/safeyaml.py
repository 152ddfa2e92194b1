"""A hardened YAML reader for configuration files written by people.

On top of yaml.SafeLoader (no arbitrary objects) it:
- caps the document size before parsing;
- resolves plain scalars YAML-1.2 style: only true/false are booleans (`country: NO` stays
  "NO"), no octal or sexagesimal integers (`0101` stays "0101", `18:00` stays "18:00"), no
  implicit timestamps;
- allows only the plain tags (str, int, float, bool, null, seq, map);
- measures how big the document becomes once aliases are expanded, and refuses "billion
  laughs" alias bombs and self-referencing structures before anything walks them;
- refuses duplicate mapping keys (a repeated `employees:` would silently drop the first).
"""

from __future__ import annotations

import re
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from .errors import ConfigError

MAX_DOCUMENT_BYTES = 5 * 1024 * 1024
MAX_EXPANDED_NODES = 1_000_000
MAX_DEPTH = 64

_ALLOWED_TAGS = frozenset({
    "tag:yaml.org,2002:str",
    "tag:yaml.org,2002:int",
    "tag:yaml.org,2002:float",
    "tag:yaml.org,2002:bool",
    "tag:yaml.org,2002:null",
    "tag:yaml.org,2002:seq",
    "tag:yaml.org,2002:map",
})


class _Loader(yaml.SafeLoader):
    """SafeLoader with YAML 1.2 core-schema scalar resolution."""


# Replace the inherited YAML 1.1 resolvers (a class attribute, set once at import).
_Loader.yaml_implicit_resolvers = {}
_SCALAR_FORMS = {
    "tag:yaml.org,2002:bool": re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
    "tag:yaml.org,2002:int": re.compile(r"^[-+]?(?:0|[1-9][0-9]*)$"),
    "tag:yaml.org,2002:float": re.compile(
        r"^[-+]?(?:[0-9]+\.[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?$"),
    "tag:yaml.org,2002:null": re.compile(r"^(?:~|null|Null|NULL|)$"),
}
_FIRST_CHARS = {
    "tag:yaml.org,2002:bool": list("tTfF"),
    "tag:yaml.org,2002:int": list("-+0123456789"),
    "tag:yaml.org,2002:float": list("-+0123456789."),
    "tag:yaml.org,2002:null": ["~", "n", "N", ""],
}


def _install_resolvers() -> None:
    for tag, form in _SCALAR_FORMS.items():
        _Loader.add_implicit_resolver(tag, form, _FIRST_CHARS[tag])


_install_resolvers()


def _position(node: Node) -> str:
    mark = node.start_mark
    return f"line {mark.line + 1}, column {mark.column + 1}"


def _check_tree(root: Node) -> None:
    """Refuse unknown tags, duplicate keys, cycles, excessive depth and expanded size."""
    sizes: dict[int, int] = {}  # id(node) -> expanded size, memoised: aliases share nodes
    on_path: set[int] = set()
    # Iterative post-order walk, so a deep document cannot exhaust the Python stack here.
    stack: list[tuple[Node, bool, int]] = [(root, False, 1)]
    while stack:
        node, done, depth = stack.pop()
        key = id(node)
        if done:
            on_path.discard(key)
            children = _children(node)
            total = 1 + sum(sizes[id(c)] for c in children)
            if total > MAX_EXPANDED_NODES:
                raise ConfigError(
                    f"the document is too large once its aliases (*name) are expanded "
                    f"(more than {MAX_EXPANDED_NODES} values); refusing it"
                )
            sizes[key] = total
            continue
        if key in sizes:
            continue  # an alias to an anchor already measured
        if key in on_path:
            raise ConfigError(f"{_position(node)}: an alias refers to its own anchor (a loop)")
        if depth > MAX_DEPTH:
            raise ConfigError(f"{_position(node)}: nested more than {MAX_DEPTH} levels deep")
        if node.tag not in _ALLOWED_TAGS:
            raise ConfigError(f"{_position(node)}: YAML tag {node.tag!r} is not allowed here")
        form = _SCALAR_FORMS.get(node.tag)
        if form is not None and not (isinstance(node, ScalarNode) and form.match(node.value)):
            # An explicit `!!int abc` would crash PyYAML's constructor; refuse it here.
            raise ConfigError(f"{_position(node)}: {node.value!r} does not fit tag {node.tag!r}")
        if isinstance(node, MappingNode):
            _check_keys(node)
        on_path.add(key)
        stack.append((node, True, depth))
        for child in _children(node):
            if id(child) in on_path:
                raise ConfigError(
                    f"{_position(child)}: an alias refers to its own anchor (a loop)")
            stack.append((child, False, depth + 1))
    expanded = sizes[id(root)]
    if expanded > 10 * len(sizes) + 10_000:
        # Aliases legitimately save some repetition; a hundredfold blow-up is an attack.
        raise ConfigError(
            f"aliases (*name) expand this document to {expanded} values from {len(sizes)}; "
            f"refusing it"
        )


def _children(node: Node) -> list[Node]:
    if isinstance(node, SequenceNode):
        return list(node.value)
    if isinstance(node, MappingNode):
        return [part for pair in node.value for part in pair]
    return []


def _check_keys(node: MappingNode) -> None:
    seen: set[str] = set()
    for key_node, _value in node.value:
        if not isinstance(key_node, ScalarNode):
            raise ConfigError(f"{_position(key_node)}: a mapping key must be a plain value")
        if key_node.value == "<<" and key_node.tag == "tag:yaml.org,2002:merge":
            raise ConfigError(f"{_position(key_node)}: merge keys (<<) are not supported")
        if key_node.value in seen:
            raise ConfigError(f"{_position(key_node)}: duplicate key {key_node.value!r}")
        seen.add(key_node.value)


def load_yaml(text: str | bytes) -> Any:
    """Parse one YAML document safely; ConfigError on anything malformed or hostile."""
    if isinstance(text, bytes):
        if len(text) > MAX_DOCUMENT_BYTES:
            raise ConfigError(f"the document is larger than {MAX_DOCUMENT_BYTES} bytes")
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ConfigError(f"the document is not UTF-8 text: {exc}") from None
    if len(text) > MAX_DOCUMENT_BYTES or len(text.encode("utf-8", "replace")) > MAX_DOCUMENT_BYTES:
        raise ConfigError(f"the document is larger than {MAX_DOCUMENT_BYTES} bytes")
    loader: _Loader | None = None
    try:
        loader = _Loader(text)  # the reader already rejects control characters here
        node = loader.get_single_node()
        if node is None:
            return None
        _check_tree(node)
        return loader.construct_document(node)
    except yaml.MarkedYAMLError as exc:
        where = ""
        if exc.problem_mark is not None:
            where = f"line {exc.problem_mark.line + 1}, column {exc.problem_mark.column + 1}: "
        raise ConfigError(f"{where}not valid YAML: {exc.problem or exc}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"not valid YAML: {exc}") from None
    except (ValueError, TypeError, IndexError, KeyError, OverflowError) as exc:
        # Defence in depth: PyYAML constructors raise these on odd input.
        raise ConfigError(f"not valid YAML: {exc}") from None
    except RecursionError:
        raise ConfigError(f"the document is nested too deeply (limit {MAX_DEPTH})") from None
    finally:
        if loader is not None:
            loader.dispose()
