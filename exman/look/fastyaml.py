"""YAML's safe C loader, with its two slow Python steps made cheaper.

With ``yaml.CSafeLoader`` the text is scanned and parsed in C, but two steps
stay in Python: resolving the tag of every plain scalar (a loop of regular
expressions) and constructing the Python values from the nodes (a generic,
recursive constructor with bookkeeping for anchors and generators). For the
small flat mappings of ``params.yaml`` those two steps are most of the time.

:func:`load_document` keeps libyaml's parser and PyYAML's resolver and
constructor semantics, and only

* memoises the resolver's answer per scalar text (it depends on nothing
  else when no path resolvers are registered, as in the safe loader), and
* builds strings, nulls, booleans, plain decimal ints, plain floats, lists
  and mappings with string-like keys directly from the nodes.

Anything else — another tag, an octal or sexagesimal number, ``.inf``, a
merge key, a timestamp, ``!!binary``, ``!!set``, a deeply nested (or
recursive, through aliases) document — goes to PyYAML's own safe constructor
for the whole document, so the result is the one ``yaml.load(...,
Loader=yaml.CSafeLoader)`` gives, and an unsafe tag such as
``!!python/object`` raises as it does there. Nothing here parses YAML text.
"""

from __future__ import annotations

import re

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from ..record.yamlsize import check_expansion

# not typing's: importing typing would slow every command's start
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

try:
    from yaml import CSafeLoader as _SafeLoader
except ImportError:  # pragma: no cover - PyYAML built without libyaml
    from yaml import SafeLoader as _SafeLoader  # type: ignore[assignment]

__all__ = ["load_document"]

_PREFIX = "tag:yaml.org,2002:"
_STR, _NULL, _BOOL = _PREFIX + "str", _PREFIX + "null", _PREFIX + "bool"
_INT, _FLOAT = _PREFIX + "int", _PREFIX + "float"
_MAP, _SEQ = _PREFIX + "map", _PREFIX + "seq"
_KEY_TAGS = frozenset({_STR, _NULL, _BOOL, _INT, _FLOAT})
# the subsets of YAML 1.1 ints and floats that Python's int()/float() read
# exactly as PyYAML's constructors do (no "_", no leading 0, no base 60)
_PLAIN_INT = re.compile(r"[-+]?(?:0|[1-9][0-9]*)\Z").match
_PLAIN_FLOAT = re.compile(
    r"[-+]?(?:[0-9]+\.[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?\Z"
).match
_BOOLS = yaml.constructor.SafeConstructor.bool_values
_MAX_DEPTH = 50


class _Other(Exception):
    """The document holds something only PyYAML's constructor builds."""


class _Loader(_SafeLoader):
    """The safe loader whose resolver remembers its answers in ``memo``."""

    memo: dict[str, str]
    # Path resolvers are never registered here, so the resolver's path
    # bookkeeping, called around every node, has nothing to do: C callables
    # that ignore their arguments are much cheaper than the Python no-ops.
    descend_resolver: Any = {}.get
    ascend_resolver: Any = tuple

    def resolve(self, kind: Any, value: Any, implicit: Any) -> Any:
        if kind is ScalarNode and implicit[0]:
            tag = self.memo.get(value)
            if tag is None:
                tag = super().resolve(kind, value, implicit)
                if len(self.memo) < 65536:
                    self.memo[value] = tag
            return tag
        return super().resolve(kind, value, implicit)


def _scalar(node: ScalarNode) -> Any:
    tag, value = node.tag, node.value
    if tag == _STR:
        return value
    if tag == _NULL:
        return None
    if tag == _INT and _PLAIN_INT(value):
        return int(value)
    if tag == _FLOAT and _PLAIN_FLOAT(value):
        return float(value)
    if tag == _BOOL:
        flag = _BOOLS.get(value.lower())
        if flag is not None:
            return flag
    raise _Other


def _build(node: Node, depth: int) -> Any:
    if type(node) is ScalarNode:
        return _scalar(node)
    if depth > _MAX_DEPTH:
        raise _Other
    if type(node) is MappingNode and node.tag == _MAP:
        mapping = {}
        for key_node, value_node in node.value:
            if type(key_node) is not ScalarNode or key_node.tag not in _KEY_TAGS:
                raise _Other
            key = key_node.value if key_node.tag == _STR else _scalar(key_node)
            if type(value_node) is ScalarNode and value_node.tag == _STR:
                mapping[key] = value_node.value
            else:
                mapping[key] = _build(value_node, depth + 1)
        return mapping
    if type(node) is SequenceNode and node.tag == _SEQ:
        return [_build(item, depth + 1) for item in node.value]
    raise _Other


def load_document(data: bytes | str, memo: dict[str, str] | None = None) -> Any:
    """``yaml.load(data, Loader=yaml.CSafeLoader)``, faster.

    :param memo: a dict shared by the calls of one batch (resolved tags).
    :raises yaml.YAMLError: invalid YAML, an unknown or unsafe tag, more
        than one document, aliases that expand out of proportion to the text
        (:class:`~exman.record.yamlsize.AliasBomb`), and whatever PyYAML
        raises for malformed values.
    """
    loader = _Loader(data)
    loader.memo = {} if memo is None else memo
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        # only an alias ("*name") can make a document expand
        if b"*" in data if isinstance(data, bytes) else "*" in data:
            check_expansion(node, len(data))
        try:
            return _build(node, 0)
        except _Other:
            return loader.construct_document(node)
    finally:
        loader.dispose()
