"""How big a YAML document becomes once its aliases are expanded.

An alias (``*a``) stands for the whole node its anchor (``&a``) names, so a
few hundred bytes of nested aliases can stand for billions of values (the
"billion laughs"). PyYAML builds such a document cheaply, sharing one
object per anchor, but everything that walks the values afterwards (the
fast loader of :mod:`exman.look.fastyaml`, ``--config``, ``exman ls``,
``repr``, ``json.dumps``) pays for every copy. :func:`check_expansion`
measures the expanded size on the composed nodes, in time linear in the
document, and refuses a document that would grow out of proportion to its
text.
"""

from __future__ import annotations

import yaml
from yaml.nodes import MappingNode, Node, SequenceNode

__all__ = ["ALLOWANCE", "AliasBomb", "check_expansion", "expansion_limit"]

#: values a document may expand to beyond its length in bytes
ALLOWANCE = 10_000


class AliasBomb(yaml.YAMLError):
    """A document whose aliases expand to far more values than its text holds."""


def expansion_limit(size: int) -> int:
    """The most values a document of ``size`` bytes (or characters) may hold.

    A document without aliases holds fewer values than it has characters,
    so this only ever refuses documents that repeat nodes through aliases.
    """
    return size + ALLOWANCE


def _children(node: Node) -> list[Node]:
    if isinstance(node, SequenceNode):
        return list(node.value)
    if isinstance(node, MappingNode):
        return [part for pair in node.value for part in pair]
    return []


def check_expansion(node: Node, size: int) -> int:
    """The number of values ``node`` stands for with every alias expanded.

    A node reached again through an alias counts once more each time (its
    size, not 1); a node reached from inside itself (a recursive document)
    counts as 1, since it is built as a reference.

    :param size: the length of the document's text.
    :raises AliasBomb: the expanded size passes :func:`expansion_limit`.
    """
    limit = expansion_limit(size)
    sizes: dict[int, int] = {}
    open_: set[int] = set()  # nodes whose children are being counted
    stack: list[tuple[Node, bool]] = [(node, False)]
    while stack:
        current, done = stack.pop()
        key = id(current)
        if done:
            open_.discard(key)
            total = 1 + sum(sizes.get(id(c), 1) for c in _children(current))
            if total > limit:
                raise AliasBomb(
                    f"its aliases expand to more than {limit} values from "
                    f"{size} bytes of text (nested '*' references): refused"
                )
            sizes[key] = total
            continue
        if key in sizes or key in open_:
            continue  # counted already, or a recursive reference
        children = _children(current)
        if not children:
            sizes[key] = 1
            continue
        open_.add(key)
        stack.append((current, True))
        stack.extend((child, False) for child in children)
    return sizes.get(id(node), 1)
