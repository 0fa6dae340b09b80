"""``exman ls`` without pandas prints what it prints with pandas.

The listing is made from plain lists where :mod:`exman.look.plain` can type
every column as pandas would; these tests list real roots with values of
every kind YAML gives, both ways, and compare the text byte for byte.
"""

from __future__ import annotations

import math
import os
import re
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import assume, example, given, settings
from hypothesis import strategies as st

import exman
from exman.commands import annotate, manage
from exman.commands.listing import ls, render
from exman.look.plain import PlainFrame
from exman.record.store import ExmanError, Root

#: each parameter's value in runs 1, 2, 3…, as YAML (None: not given)
FAMILIES: dict[str, list[str | None]] = {
    "int": ["1", "2", "1", "3", "-4", "2"],
    "int_none": ["1", None, "2", None, "9007199254740992", "3"],
    "float": ["0.1", "0.25", "0.001", "0.1", "-2.0", "1.0e+300"],
    "float_nan": [".nan", "0.5", ".inf", "-.inf", None, "0.5"],
    "int_float": ["1", "2.5", "3", "-0.0", "0.0", "1"],
    "bool": ["true", "false", "true", "true", "false", "true"],
    "bool_none": ["true", None, "false", "true", None, "true"],
    "text": ["a", "b c", "'1'", "ünï", "漢字", "a"],
    "text_none": ["x", None, "y", "x", None, "''"],
    "timelike": [
        "'2026-01-01T10:00:00'",
        "'2026-01-02T10:00:00'",
        "plain",
        None,
        "'2026-01-01T10:00:00'",
        "plain",
    ],
    "lists": ["[1, 2]", "[]", "[a, [b]]", None, "[1, 2]", "[1.5, true]"],
    "dicts": ["{a: 1}", "{b: [1]}", None, "{}", "{a: 1}", "{c: null}"],
    "mixed": ["1", "a", "2.5", "true", None, "[1]"],
    "nothing": [None] * 6,
    "same": ["7"] * 6,
    "control": ['"a\\tb"', '"\\x1b[31mred"', "plain", '"a\\nb"', None, "x"],
}
#: results of runs 1, 2, 3… (None: none); names that clash with columns
RESULTS: dict[str, list[Any]] = {
    "acc": [0.5, 0.75, None, 1, 0.25, None],
    "best": ["x", "y", None, "x", None, "z"],
    "status": [1, 2, 3, 4, 5, 6],
    "note": ["n", None, "m", None, None, None],
}


def _runs(root: Path, families: dict[str, list[str | None]], n: int) -> None:
    parser = exman.ExParser(root=root)
    for name in families:
        parser.add_argument(f"--{name}", type=yaml.safe_load, default=None)
    for i in range(n):
        argv = []
        for name, values in families.items():
            value = values[i % len(values)]
            if value is not None:
                argv.append(f"--{name}={value}")
        if i == 4:
            argv.append("--tmp")
        ns = parser.parse_args(argv)
        if i == 2:
            with pytest.raises(ValueError), ns.safe_experiment:
                raise ValueError("asked to fail\tbadly")
            continue
        with ns.safe_experiment:
            exman.result(
                **{k: v[i] for k, v in RESULTS.items() if v[i % len(v)] is not None}
            )


@pytest.fixture(scope="module")
def many(tmp_path_factory: pytest.TempPathFactory) -> Root:
    """Runs of every kind of value: 1, 2, 4, 6 in runs/, 3 failed, 5 in tmp/."""
    root = tmp_path_factory.mktemp("many") / "exman"
    _runs(root, FAMILIES, 6)
    annotate.tag(Root(root), [1, 4], ["baseline", "b:c"])
    annotate.note(Root(root), [2], "a note\twith a tab")
    manage.mark(Root(root), "best", [1, 2])
    return Root(root)


def _both(root: Root, **options: Any) -> Any:
    """The listing made without pandas where possible, and with it: the
    same in every format."""
    quick = ls(root, plain=True, **options)
    full = ls(root, **options)
    assert not isinstance(full, PlainFrame)
    for fmt in ("table", "csv", "json"):
        expected = render(full, fmt, root=root)
        assert render(quick, fmt, root=root) == expected, (fmt, options)
    return quick


OPTIONS: list[dict[str, Any]] = [
    {},
    {"all_columns": True},
    {"columns": "id,float,text,time,root"},
    {"failed": True, "tmp": True},
    {"failed": True, "tmp": True, "all_columns": True},
    {"failed": True, "status": "failed"},
    {"failed": True, "status": "completed,failed"},
    {"status": "running"},
    {"marked": "best"},
    {"sort": "float"},
    {"sort": "-float_nan", "failed": True},
    {"sort": "int_none,-id", "tmp": True},
    {"sort": "-text_none", "failed": True, "tmp": True},
    {"sort": "bool,-int"},
    {"sort": "-time"},
    {"sort": "started", "all_columns": True},
    {"sort": "-acc", "limit": 2},
    {"last": 2},
    {"last": 0},
    {"limit": 0, "failed": True},
    {"columns": "text,text_none,timelike,control,lists,dicts,mixed"},
]


@pytest.mark.parametrize("options", OPTIONS, ids=repr)
def test_the_listing_without_pandas_is_the_listing_with_it(
    many: Root, options: dict[str, Any]
) -> None:
    quick = _both(many, **options)
    assert isinstance(quick, PlainFrame)  # pandas was not needed


@pytest.mark.parametrize(
    "options",
    [
        {"sort": "lists"},  # pandas decides how lists compare (here: it refuses)
        {"sort": "mixed"},
        {"query": "float > 0.2"},
        {"columns": "id,id"},
    ],
    ids=repr,
)
def test_what_pandas_must_decide_is_left_to_it(
    many: Root, options: dict[str, Any]
) -> None:
    try:
        quick = _both(many, **options)
    except ExmanError as e:  # the same error either way
        with pytest.raises(ExmanError) as second:
            ls(many, plain=True, **options)
        assert str(second.value) == str(e)
    else:
        assert not isinstance(quick, PlainFrame)


@pytest.mark.parametrize(
    "values",
    [
        ["12345678901234567890", "1"],  # beyond int64
        ["9007199254740993", None],  # a float would round it
        ["2020-01-01", "2020-01-02"],  # YAML dates
        ["2020-01-01 10:00:00", "2020-01-02 10:00:00"],  # YAML timestamps
        [".nan", "a"],  # pandas makes text of it, NaN missing
    ],
    ids=repr,
)
def test_columns_pandas_types_its_own_way_are_left_to_it(
    root: Path, values: Sequence[str | None]
) -> None:
    _runs(root, {"odd": list(values), "other": ["1", "2"]}, 2)
    assert not isinstance(_both(Root(root), all_columns=True), PlainFrame)


@pytest.mark.parametrize(
    "time",
    [
        "1999-13-40T2026-01-01T12:00:00",  # longer
        "2026-01-01 12:00:00",  # ISO 8601 too, but not how exman writes it
        "2026-01-01t12:00:00",
        "2026-13-01T12:00:00",  # no such month
        "2026-01-01T24:00:00",
        "\uff12\uff10\uff12\uff16-01-01T12:00:00",  # digits, not ASCII ones
        "2026-01-01T12:00:0\u0663",
        "2026-01-01T120000.5",
        "+026-01-01T12:00:00",
    ],
    ids=repr,
)
def test_a_hand_edited_time_is_left_to_pandas(root: Path, time: str) -> None:
    _runs(root, {"x": ["1", "2"]}, 2)
    first = next((root / "runs").iterdir()) / "params.yaml"
    text = first.read_text()
    edited = re.sub(r"^time: .*$", f"time: '{time}'", text, flags=re.M)
    assert edited != text
    first.write_text(edited)
    assert not isinstance(_both(Root(root)), PlainFrame)


def test_the_same_errors_either_way(many: Root) -> None:
    for options in ({"sort": "nope"}, {"columns": "id,nope"}, {"status": "done"}):
        with pytest.raises(ExmanError) as quick:
            ls(many, plain=True, **options)
        with pytest.raises(ExmanError) as full:
            ls(many, **options)
        assert str(quick.value) == str(full.value)
        assert "nope" in str(quick.value) or "done" in str(quick.value)


def test_exman_ls_does_not_import_pandas(many: Root) -> None:
    probe = (
        "import sys; from exman.cli import main; code = main(sys.argv[1:]); "
        "sys.stdout.flush(); print('pandas' in sys.modules, file=sys.stderr); "
        "sys.exit(code)"
    )
    for argv in ([], ["-a", "-f", "csv"], ["--sort", "-float", "--last", "2"]):
        done = subprocess.run(
            [sys.executable, "-c", probe, "--root", str(many.path), "ls", *argv],
            capture_output=True,
            text=True,
        )
        assert done.returncode == 0, done.stderr
        assert done.stderr.strip().endswith("False"), (argv, done.stderr)
        assert done.stdout.startswith("id,") or "id" in done.stdout.splitlines()[0]
    done = subprocess.run(
        [sys.executable, "-c", probe, "--root", str(many.path), "ls", "-q", "int > 1"],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr.strip().endswith("True")  # a query is pandas' work


def test_the_listing_sees_an_edited_deleted_or_marked_run(root: Path) -> None:
    """The listing reads through the index's cache: a change to the run
    folders shows at the next listing, as in ``Index.info()``."""
    _runs(root, {"x": ["1", "2", "3"]}, 3)
    first = ls(root, plain=True, columns="id,x")
    assert isinstance(first, PlainFrame)
    assert list(first.columns["x"].values) == [1, 2]  # run 3 failed
    folder = next(p for p in (root / "runs").iterdir() if p.name.startswith("000002"))
    params = folder / "params.yaml"
    edited = params.with_suffix(".new")
    edited.write_text(params.read_text().replace("x: 2", "x: 20"))
    edited.replace(params)
    assert list(ls(root, plain=True, columns="id,x").columns["x"].values) == [1, 20]
    manage.delete(Root(root), [1])
    assert list(ls(root, plain=True, columns="id").columns["id"].values) == [2]
    manage.mark(Root(root), "best", [2])
    marked = ls(root, plain=True, marked="best", columns="id,x")
    assert list(marked.columns["x"].values) == [20]


def test_a_folder_that_is_no_root_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ExmanError, match="is not an exman root"):
        ls(Root(tmp_path), plain=True)


def test_exman_ls_does_not_import_the_parser_yaml_or_typing(root: Path) -> None:
    """Each costs an ``exman`` command milliseconds it does not need:
    typing and dataclasses (with inspect) about 15 ms, configargparse and
    PyYAML about 20 ms (the ``exman`` package imports its parser only when
    a script asks for it; runs made by exman carry a JSON copy of their
    parameters), threading 2 ms (the metrics writer's), textwrap 1 ms (its
    patterns, for exman's own help only). Without site (-S),
    no .pth file of the interpreter imports them. (Text wider than ASCII is
    measured with rich, which imports typing.)"""
    _runs(root, {"x": ["1", "2", "3"]}, 3)
    slow = [
        *("configargparse", "dataclasses", "inspect", "textwrap", "threading"),
        *("typing", "yaml"),
    ]
    probe = (
        "import sys; from exman.cli import main; code = main(sys.argv[1:]); "
        f"sys.stdout.flush(); print(sorted(set({slow!r}) & set(sys.modules)), "
        "file=sys.stderr); sys.exit(code)"
    )
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
    for argv in ([], ["-a", "-f", "json"]):
        done = subprocess.run(
            [sys.executable, "-S", "-c", probe, "--root", str(root), "ls", *argv],
            capture_output=True,
            text=True,
            env=env,
        )
        assert done.returncode == 0, done.stderr
        assert done.stderr.strip().endswith("[]"), (argv, done.stderr)


def test_a_listing_makes_only_the_columns_it_looks_at(
    many: Root, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The run folders (``root``) are neither shown nor looked at by a
    default listing: that column is never made; ``--all`` makes it."""
    from exman.look import plain

    made: list[str] = []
    real = plain._folders

    def folders(*args: Any, **kwargs: Any) -> list[str]:
        made.append("root")
        return real(*args, **kwargs)

    monkeypatch.setattr(plain, "_folders", folders)
    assert isinstance(_both(many), PlainFrame)
    assert made == []
    assert isinstance(_both(many, all_columns=True), PlainFrame)
    assert made == ["root"]


def test_a_parameter_no_run_changed_is_left_out_unmade(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A default listing leaves out the parameters with one value in every
    run; those kept as one value (codes into it) are not made to find out."""
    from exman.look import plain

    _runs(tmp_path, {"x": ["1", "2"], "same": ["'a'"], "none": [None]}, 4)
    asked: list[str] = []
    real = plain._Made.__getitem__

    def getitem(self: Any, name: str) -> Any:
        asked.append(name)
        return real(self, name)

    monkeypatch.setattr(plain._Made, "__getitem__", getitem)
    for options in ({}, {"failed": True, "tmp": True}):
        asked.clear()
        listing = _both(Root(tmp_path), **options)
        assert "x" in listing.columns
        assert not {"same", "none", "tmp", "name"} & set(listing.columns)
        assert not {"same", "none", "name"} & set(asked), options


#: floats that a column repeats (a parameter's values), the two zeros, the
#: values that format to words, and any other
_FLOATS = st.one_of(
    st.sampled_from([0.1, 0.25, -2.0, 1e300, 0.0, -0.0, math.nan, math.inf, -math.inf]),
    st.floats(),
)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(_FLOATS, min_size=1, max_size=4).flatmap(
        lambda pool: st.lists(st.sampled_from(pool), max_size=80)
    )
    | st.lists(_FLOATS, max_size=80)
)
@example([0.0, -0.0] * 5)
def test_a_column_of_floats_is_written_as_each_float_alone(values: list[float]) -> None:
    """The table's floats, formatted once per distinct value where a column
    repeats them, are each float's own text: -0.0 stays "-0", NaN is ""."""
    from exman.commands.listing import _float_texts

    assert _float_texts(values) == [f"{v:.6g}" if v == v else "" for v in values]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(_FLOATS, st.none()), min_size=1, max_size=40))
def test_a_column_of_floats_and_gaps_is_made_as_pandas_makes_it(
    values: list[float | None],
) -> None:
    """Every gap (None, NaN) becomes the one NAN, whichever way the column
    is checked for gaps; the numbers stay what they are."""
    from exman.look.plain import NAN, _inferred

    assume(any(value is not None for value in values))  # else not a float column
    column = _inferred(list(values))
    assert column is not None and column.kind == "f"
    assert len(column.values) == len(values)
    for got, value in zip(column.values, values):
        if value is None or value != value:
            assert got is NAN
        else:
            assert got == value and math.copysign(1, got) == math.copysign(1, value)
