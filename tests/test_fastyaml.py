"""load_document gives exactly what yaml.load with the safe C loader gives."""

from __future__ import annotations

import datetime
import math
import pathlib
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from exman.look.fastyaml import load_document
from exman.record.params import dump_params

DOCUMENTS = [
    "",
    "a: 1\n",
    "a: -0\nb: +12\nc: 0\nd: 007\ne: 0x1f\nf: 0b101\ng: 1_000\nh: 1:30\n",
    "a: 1.5\nb: -.5\nc: +1.\nd: 1e5\ne: 1.0e+5\nf: .inf\ng: -.INF\nh: .nan\n",
    "a: 1_000.5\nb: 1:30.5\nc: 6.8523015e+5\nd: 0.\n",
    "a: yes\nb: No\nc: on\nd: OFF\ne: true\nf: False\ng: y\nh: n\n",
    "a: ~\nb: null\nc: Null\nd:\ne: ''\nf: 'null'\n",
    "a: 2020-01-02\nb: 2020-01-02 03:04:05\nc: 2020-01-02T03:04:05.5+02:00\n",
    "a: !!binary aGVsbG8=\nb: !!set {x, y}\n",
    "c: !!omap [a: 1, b: 2]\nd: !!pairs [a: 1]\n",
    "base: &b {x: 1, y: 2}\nder:\n  <<: *b\n  y: 3\n",
    "a: &l [1, 2]\nb: *l\n",
    "? [1, 2]\n: x\n",
    "{1: a, 2.5: b, null: c, true: d}\n",
    "a: !!str 12\nb: !!int '12'\nc: !!float '1'\nd: !!null ''\ne: !!bool yes\n",
    "a: 'quoted: yes'\nb: \"x\\ty\\u00e9\"\n",
    "c: |\n  block\n  text\nd: >\n  folded\n  text\n",
    "a: [1, [2, [3, {b: [4]}]]]\n",
    "- 1\n- a\n",
    "just a string\n",
    "a: 1\na: 2\n",
    "a: =\n",
    "a: !custom 1\n",
    "a: !!python/tuple [1, 2]\n",
    "a: [\n",
    "a: 1\n---\nb: 2\n",
    "ünï: cødé\n",
    "a: " + "[" * 60 + "]" * 60 + "\n",
]


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a):
        return math.isnan(b)
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return list(a) == list(b) and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return bool(a == b)


def _both(text: str | bytes) -> tuple[Any, Any]:
    try:
        expected: Any = yaml.load(text, Loader=yaml.CSafeLoader)
    except Exception as e:  # the loader may raise more than YAMLError
        expected = type(e)
    try:
        got: Any = load_document(text.encode() if isinstance(text, str) else text)
    except Exception as e:
        got = type(e)
    return expected, got


@pytest.mark.parametrize("text", DOCUMENTS)
def test_same_as_the_safe_loader(text: str) -> None:
    expected, got = _both(text)
    if isinstance(expected, type):
        assert got is expected
    else:
        assert _same(got, expected), (got, expected)


def test_a_recursive_alias_is_built_by_pyyaml() -> None:
    got = load_document(b"&a [1, *a]\n")
    assert got[0] == 1 and got[1] is got


def test_unsafe_tags_raise_and_run_nothing(tmp_path: pathlib.Path) -> None:
    marker = tmp_path / "ran"
    text = f"a: !!python/object/apply:os.system ['touch {marker}']\n"
    with pytest.raises(yaml.YAMLError):
        load_document(text.encode())
    assert not marker.exists()


def test_invalid_utf8_raises() -> None:
    with pytest.raises(yaml.YAMLError):
        load_document(b"a: \xff\xfe\n")


def test_a_memo_shared_between_documents() -> None:
    memo: dict[str, str] = {}
    assert load_document(b"a: 1\nb: 'x'\n", memo) == {"a": 1, "b": "x"}
    assert load_document(b"a: '1'\nb: x\nc: 1\n", memo) == {"a": "1", "b": "x", "c": 1}
    assert memo["1"].endswith(":int")


scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=20)
    | st.dates()
    | st.datetimes(min_value=datetime.datetime(1900, 1, 1))
    | st.binary(max_size=10)
)
values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.text(max_size=8) | st.integers(), inner, max_size=4)
    ),
    max_leaves=12,
)


@settings(max_examples=150, deadline=None)
@given(st.dictionaries(st.text(min_size=1, max_size=12), values, max_size=8))
def test_params_files_round_trip_as_with_the_safe_loader(
    params: dict[str, Any],
) -> None:
    text = dump_params(params, time=datetime.datetime(2026, 1, 2, 3, 4, 5), id=7)
    expected, got = _both(text)
    assert _same(got, expected), (got, expected)


@settings(max_examples=150, deadline=None)
@given(values, st.sampled_from([None, True, False]))
def test_any_dump_style_loads_as_with_the_safe_loader(value: Any, flow: Any) -> None:
    text = yaml.safe_dump({"v": value, "w": [value, value]}, default_flow_style=flow)
    expected, got = _both(text)
    assert _same(got, expected), (got, expected)


@settings(max_examples=100, deadline=None)
@given(st.text(max_size=40))
def test_any_text_loads_or_fails_as_with_the_safe_loader(text: str) -> None:
    expected, got = _both(text)
    if isinstance(expected, type):
        assert isinstance(got, type)
    else:
        assert _same(got, expected), (got, expected)
