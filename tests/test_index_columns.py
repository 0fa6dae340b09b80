"""The compact columns of the index's rows: the values they hold, whatever
their form, and what the cache keeps of them.

A column of ints or floats is an array, one of few distinct strings, bools
and None is coded, anything else a list; each form gives back exactly the
Python values it was made of (types included), and a DataFrame made from
the cache is the one made from the run folders.
"""

from __future__ import annotations

import array
import pathlib
import pickle
from typing import Any

import pytest
from _index_runs import make_run

from exman.index import Index
from exman.look import cache, columns
from exman.look.cache import CacheFile
from exman.record.store import Root

VALUES: dict[str, list[Any]] = {
    "ints": [3, -(2**63), 2**63 - 1, 0],
    "floats": [0.5, -0.0, float("inf"), 1e300],
    "a big int": [1, 2**64],
    "ints and floats": [1, 2.5, 3, 4.5],
    "ints and None": [1, None, 3, None],
    "bools": [True, False, True, True],
    "bools and None": [True, None, None, False],
    "strings": ["mlp", "cnn", "mlp", "mlp"],
    "strings and None": ["a", None, "a", None],
    "strings that equal others' values": ["True", "1", "True", "None"],
    "one None": [None, None, None, None],
    "unique strings": ["a", "b", "c", "d"],
    "bools and ints": [True, 1, False, 0],
    "lists": [[1], [1], [], None],
    "dicts": [{"a": 1}, {"a": 1}, {}, {}],
    "empty": [],
}


def same(values: Any, expected: list[Any]) -> None:
    got = list(values)
    assert got == expected
    assert [type(v) for v in got] == [type(v) for v in expected]


@pytest.mark.parametrize("name", list(VALUES))
def test_a_column_holds_its_values(name: str) -> None:
    values = VALUES[name]
    column = columns.compact(list(values))
    same(column, values)
    stored = pickle.loads(pickle.dumps(columns.to_plain(column), protocol=4))
    same(columns.from_plain(stored, len(values)), values)
    positions = list(range(len(values)))[::-1]
    same(columns.take(column, positions), [values[p] for p in positions])
    doubled = columns.concat([(column, len(values)), (None, 2), (column, len(values))])
    same(doubled, [*values, None, None, *values])
    assert columns.has_values(column) == any(v is not None for v in values)


def test_the_forms() -> None:
    assert isinstance(columns.compact([1, 2]), array.array)
    assert isinstance(columns.compact([1.0, 2.0]), array.array)
    assert isinstance(columns.compact(["a", "a", None, "a"]), columns.Coded)
    assert isinstance(columns.compact([True, 1]), list)  # 1 == True: not coded
    assert isinstance(columns.compact(["a", "b", "c"]), list)  # no repeats


@pytest.mark.parametrize("value", [None, "crashed", True, 2.5, 7, 2**70, [1], "x" * 3])
@pytest.mark.parametrize("name", ["ints", "floats", "strings", "bools and None"])
def test_a_cell_changed(name: str, value: Any) -> None:
    values = list(VALUES[name])
    section = {"c": columns.compact(list(values))}
    columns.set_cell(section, "c", 1, value)
    values[1] = value
    same(section["c"], values)


def test_a_coded_column_takes_more_than_256_values() -> None:
    coded = columns.compact(["a", "b"] * 3)
    assert isinstance(coded, columns.Coded)
    for i in range(300):
        coded[i % 6] = str(i)
    assert coded[5] == "299"
    stored = columns.from_plain(columns.to_plain(coded), 6)
    same(stored, list(coded))


@pytest.mark.parametrize(
    "plain",
    [
        ("q", b"\0" * 7),
        ("d", "not bytes"),
        ("coded", ["a"], "B", b"\x01"),
        ("coded", ["a"], "I", b"\x00\x00\x00\x01"),
        ("coded", [["a"]], "B", b"\x00"),
        ("coded", ["a"], "Q", b"\0" * 8),
        ("x", b"\0" * 8),
        ["a", "b"],
        {"a": 1},
    ],
)
def test_a_damaged_column_is_refused(plain: Any) -> None:
    assert columns.from_plain(plain, 1) is None


def test_a_warm_load_is_the_load_from_the_folders(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(cache, "RACY_NS", -(10**15))
    root = tmp_path / "exman"
    for i in range(4):
        make_run(root, {k: v[i] for k, v in VALUES.items() if len(v) == 4})
    cold = Index(root, cache=False).info()
    Index(root).info()
    stored, _ = CacheFile(Root(root), "runs").read()
    assert isinstance(stored.params["ints"], array.array)
    assert isinstance(stored.params["strings"], columns.Coded)
    assert isinstance(stored.record["status"], columns.Coded)
    warm = Index(root).info()
    assert warm.equals(cold)
    assert warm.dtypes.equals(cold.dtypes)
    assert list(warm.columns) == list(cold.columns)
