"""The package's layers and its import graph, read from the source.

``record/`` (a run's folder) is at the bottom, ``look/`` and ``parser``
stand on it, ``index`` on both, ``sweep/`` on the index, ``commands/`` on
everything below and ``cli`` on top. Every import counts, including those
inside functions and under ``TYPE_CHECKING``: a lazy import that climbs a
layer is still a dependency that climbs.
"""

from __future__ import annotations

import ast
import pathlib
import re

import pytest

PACKAGE = pathlib.Path(__file__).resolve().parent.parent / "exman"
DESIGN = PACKAGE.parent / "docs" / "design.rst"

#: what each part of the package may import, besides itself
ALLOWED: dict[str, set[str]] = {
    "record": set(),
    "look": {"record"},
    "parser": {"record"},
    "index": {"record", "look"},
    "sweep": {"record", "look", "index"},
    "views": {"record", "look", "index"},
    "commands": {"record", "look", "parser", "index", "sweep", "views"},
    "cli": {"record", "look", "parser", "index", "sweep", "commands", "exman"},
    "__main__": {"cli"},
    # the public face: lazy attributes for Index and sweep
    "exman": {"record", "parser", "index", "sweep"},
}

#: import cycles that are known and scheduled to go; each entry must still
#: exist (the test says when one can be removed from this list)
KNOWN_CYCLES: set[frozenset[str]] = set()


def module_name(path: pathlib.Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules() -> dict[str, pathlib.Path]:
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def imports(name: str, path: pathlib.Path, known: set[str]) -> set[str]:
    """Every module of the package that ``name`` imports, anywhere in it."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            # "from pkg import submodule" depends on the submodule
            subs = [f"{mod}.{a.name}" for a in node.names]
            targets = [s for s in subs if s in known] or [mod]
        else:
            continue
        for target in targets:
            while target and target not in known:
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    return found


def part(name: str) -> str:
    """The layer a module belongs to: its folder, or its own name at the top."""
    parts = name.split(".")
    return parts[1] if len(parts) > 1 else "exman"


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    known = modules()
    return {name: imports(name, path, set(known)) for name, path in known.items()}


def test_the_graph_is_read(graph: dict[str, set[str]]) -> None:
    # guards the reader itself: a parse that finds nothing would pass the rest
    assert "exman.record.store" in graph["exman.parser"]
    assert "exman.record.errors" in graph["exman.record.lock"]
    assert "exman.look.cache" in graph["exman.index"]
    assert "exman.sweep.jobs" in graph["exman.sweep.runner"]  # a lazy import
    assert "exman.commands.manage" in graph["exman.commands.cli_manage"]


def test_every_module_has_a_layer(graph: dict[str, set[str]]) -> None:
    assert {part(name) for name in graph} <= set(ALLOWED)


def test_imports_point_down(graph: dict[str, set[str]]) -> None:
    climbing = sorted(
        f"{name} imports {target}"
        for name, targets in graph.items()
        for target in targets
        if part(target) != part(name) and part(target) not in ALLOWED[part(name)]
    )
    assert climbing == []


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_cycles_are_found() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycles(graph: dict[str, set[str]]) -> None:
    # a package's __init__ importing its own modules is how packages work;
    # a module importing its package's __init__ back would be a cycle
    found = {frozenset(c) for c in cycles(graph)}
    assert found - KNOWN_CYCLES == set()
    gone = KNOWN_CYCLES - found
    assert not gone, f"remove from KNOWN_CYCLES, they are mended: {gone}"


def test_the_layers_point_one_way() -> None:
    # a layer may import those below it, never one that imports it back:
    # with a loop in ALLOWED, two layers could grow into one
    assert cycles(ALLOWED) == []
    assert not any(name in allowed for name, allowed in ALLOWED.items())


def module_map() -> dict[str, str]:
    """The entries of design.rst's module map: layer (or module) -> text."""
    text = DESIGN.read_text()
    section = text[text.index("\nModules\n") : text.index("\nDecisions\n")]
    entries: dict[str, str] = {}
    name = None
    for line in section.splitlines():
        header = re.match(r"^``(\w+)/?``(:|\s*$)", line)
        if header is not None:
            name = header.group(1)
            entries[name] = ""
        if name is not None:
            entries[name] += line + "\n"
    return entries


def test_the_design_page_names_every_module() -> None:
    # docs/design.rst is the map of the code: a module it does not name is
    # one a newcomer cannot place, and a layer it does not describe one more
    entries = module_map()
    assert {"record", "look", "sweep", "views", "commands"} <= set(entries)
    missing = []
    for name, path in modules().items():
        if path.name in ("__init__.py", "__main__.py"):
            continue
        parts = name.split(".")
        entry = entries.get(parts[1], "")
        if f"``{parts[-1]}``" not in entry:
            missing.append(name)
    assert missing == [], f"docs/design.rst's module map does not name {missing}"
