"""The payload of the views is the same however it is computed, and the
live server rebuilds it no more than a fifth of the time.

The table's cells and paths are made without a call per cell where the
dtype says the answer; the reference here is the plain per-cell
conversion, compared as JSON text (which tells ``1`` from ``1.0`` and
``true``) on roots holding every kind of value.
"""

from __future__ import annotations

import datetime
import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

import exman
from exman.commands import manage
from exman.record.store import Root
from exman.views import data, server

#: each parameter's value in runs 1, 2, 3…, as YAML (None: not given)
FAMILIES: dict[str, list[str | None]] = {
    "int": ["1", "2", "1", "-4", "9007199254740993", "2"],
    "int_none": ["1", None, "2", None, "3", "4"],
    "float": ["0.1", "0.25", "0.001", "-2.0", "1.0e+300", "1.5"],
    "float_nan": [".nan", "0.5", ".inf", "-.inf", None, "0.5"],
    "int_float": ["1", "2.5", "3", "-0.0", "0.0", "1"],
    "bool": ["true", "false", "true", "true", "false", "true"],
    "bool_none": ["true", None, "false", "true", None, "true"],
    "text": ["a", "b c", "'1'", "ünï", "漢字", "a..b"],
    "text_none": ["x", None, "y", "x", None, "''"],
    "date": ["2026-01-01", "2026-01-02", None, "2026-03-01", "2026-01-01", None],
    "stamp": ["2026-01-01 10:00:00", None, "2026-01-02 10:00:00", None, None, None],
    "lists": ["[1, 2]", "[]", "[a, [b]]", None, "[.nan, .inf]", "[1.5, true]"],
    "dicts": ["{a: 1}", "{b: [1]}", None, "{}", "{a: .nan}", "{c: null}"],
    "mixed": ["1", "a", "2.5", "true", None, "[1]"],
    "numbers": ["1", ".nan", "2.5", None, ".inf", "3"],
    "nothing": [None] * 6,
}
#: results of runs 1, 2, 3… (None: none)
RESULTS: dict[str, list[Any]] = {
    "acc": [0.5, math.inf, None, 1, math.nan, None],
    "best": ["x", None, None, True, None, [1, None]],
}


SCRIPT = """\
import json, math, sys

import yaml

import exman

i, names, results = int(sys.argv[1]), json.loads(sys.argv[2]), sys.argv[3]
parser = exman.ExParser(root=sys.argv[4])
for name in names:
    parser.add_argument(f"--{name}", type=yaml.safe_load, default=None)
args = parser.parse_args(sys.argv[5:])
with args.safe_experiment:
    if i == 2:
        raise ValueError("asked to fail")
    for step in range(3):
        exman.log(step=step, loss=1 / (1 + step + i), note="text")
    exman.result(**eval(results, {"inf": math.inf, "nan": math.nan}))
"""


def _runs(root: Path, n: int) -> None:
    """Run ``n`` real processes; the third fails, the fourth is a --tmp run."""
    script = root.parent / "main.py"
    script.write_text(SCRIPT)
    for i in range(n):
        argv = [f"--{k}={v[i]}" for k, v in FAMILIES.items() if v[i] is not None]
        if i == 3:
            argv.append("--tmp")
        results = {k: v[i] for k, v in RESULTS.items() if v[i] is not None}
        names = json.dumps(list(FAMILIES))
        subprocess.run(
            [sys.executable, script, str(i), names, repr(results), root, *argv],
            check=i != 2,
            capture_output=True,
            timeout=120,
        )


@pytest.fixture(scope="module")
def every_kind(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Runs of every kind of value: one failed, one in tmp/, two marked, one
    in a folder outside the root that the index links to."""
    base = tmp_path_factory.mktemp("kinds")
    root = base / "exman"
    _runs(root, len(FAMILIES["int"]))
    folders = sorted((root / "runs").iterdir())
    manage.mark(Root(root), "best", [1, 2])
    moved = base / "elsewhere" / folders[-1].name
    moved.parent.mkdir()
    folders[-1].rename(moved)
    link = next((root / "index").glob(f"{folders[-1].name}*"))
    link.unlink()
    os.symlink(moved / "params.yaml", link)
    return root


def _old_plain(value: Any) -> Any:
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, (list, tuple)):
        return [_old_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _old_plain(v) for k, v in value.items()}
    if hasattr(value, "item"):
        try:
            return _old_plain(value.item())
        except (TypeError, ValueError):
            pass
    return str(value)


def _old_missing(value: Any) -> bool:
    if isinstance(value, (list, dict, tuple)):
        return False
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def _old_column(column: pd.Series) -> tuple[str, list[Any]]:
    """The conversion of a column a cell at a time: the reference."""
    dtype = column.dtype
    if pd.api.types.is_bool_dtype(dtype):
        return "bool", [_old_plain(v) for v in column.tolist()]
    if pd.api.types.is_datetime64_any_dtype(dtype):
        tz = getattr(dtype, "tz", None) is not None
        fmt = "%Y-%m-%dT%H:%M:%SZ" if tz else "%Y-%m-%d %H:%M:%S"
        text = column.dt.strftime(fmt)
        return "time", [None if pd.isna(v) else v for v in text.tolist()]
    if pd.api.types.is_numeric_dtype(dtype):
        return "number", [_old_plain(v) for v in column.tolist()]
    cells = [None if _old_missing(v) else _old_plain(v) for v in column.tolist()]
    kinds = {type(v) for v in cells if v is not None}
    if kinds <= {str}:
        return "string", cells
    if kinds <= {int, float} and bool not in kinds:
        return "number", cells
    if kinds <= {bool}:
        return "bool", cells
    return "json", cells


def _old_relative(folders: list[Path], root: Path) -> list[str]:
    return [os.path.relpath(f, root) for f in folders]


def _text(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, allow_nan=False)


def _reference(monkeypatch: pytest.MonkeyPatch, **options: Any) -> dict[str, Any]:
    with monkeypatch.context() as m:
        m.setattr(data, "_column", _old_column)
        m.setattr(data, "_relative", _old_relative)
        return data.payload(**options)


@pytest.mark.parametrize("options", [{}, {"tmp": True}, {"source": "best"}])
def test_the_payload_is_the_one_made_a_cell_at_a_time(
    every_kind: Path, monkeypatch: pytest.MonkeyPatch, options: dict[str, Any]
) -> None:
    index = exman.Index(every_kind)
    new = data.payload(index, details=False, **options)
    old = _reference(monkeypatch, index=index, details=False, **options)
    new["generated"] = old["generated"] = ""
    assert _text(new) == _text(old)
    paths = [row[-1] for row in new["rows"]]
    assert any(p.startswith("tmp/") for p in paths) == bool(options.get("tmp"))
    if not options:
        assert any(p.startswith("fails/") for p in paths)
        assert any(p.startswith("../") for p in paths)
        types = {c["name"]: c["type"] for c in new["columns"]}
        assert types["lists"] == types["mixed"] == "json"
        assert types["numbers"] == "number"
        assert len(new["curves"]["loss"]) == 4  # all but the failed and tmp/


def test_the_payload_from_a_root_given_as_a_relative_path(
    every_kind: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(every_kind.parent)
    index = exman.Index("exman")
    new = data.payload(index, details=False)
    old = _reference(monkeypatch, index=index, details=False)
    new["generated"] = old["generated"] = ""
    assert _text(new) == _text(old)


TZ = datetime.timezone.utc
#: columns of every dtype pandas may give a frame's column
COLUMNS = {
    "int64": pd.Series([1, -2, 2**62], dtype="int64"),
    "uint8": pd.Series([1, 0, 255], dtype="uint8"),
    "float64": pd.Series([0.1, math.nan, -math.inf]),
    "float32": pd.Series([0.1, math.inf, 2.5], dtype="float32"),
    "Int64": pd.Series([1, None, 3], dtype="Int64"),
    "Float64": pd.Series([1.5, None, math.nan], dtype="Float64"),
    "bool": pd.Series([True, False, True]),
    "boolean": pd.Series([True, None, False], dtype="boolean"),
    "complex": pd.Series([1 + 2j, 0j, 3j]),
    "datetime": pd.Series(
        pd.to_datetime(["2026-01-01 00:00:00", None, "2026-01-02 03:04:05"])
    ),
    "datetime_tz": pd.Series(
        [datetime.datetime(2026, 1, 1, tzinfo=TZ), None, None],
        dtype="datetime64[ns, UTC]",
    ),
    "datetime_us": pd.Series(
        [
            pd.Timestamp("0999-12-31 23:59:59.75"),
            pd.Timestamp("1969-12-31 23:59:59.5"),
            pd.NaT,
            pd.Timestamp("9999-12-31 23:59:59.999999"),
        ],
        dtype="datetime64[us]",
    ),
    "datetime_before_1970": pd.Series(
        pd.to_datetime(["1969-12-31 23:59:59.5", "1677-09-22 00:00:00.1"])
    ),
    "datetime_paris": pd.Series(
        pd.to_datetime(["2026-01-01 10:00:00.5", None, "2026-07-01 10:00:00.0"])
    ).dt.tz_localize("Europe/Paris"),
    "datetime_nat": pd.Series([pd.NaT, pd.NaT], dtype="datetime64[ns]"),
    "datetime_none": pd.Series([], dtype="datetime64[ns, UTC]"),
    "timedelta": pd.Series(pd.to_timedelta([1, None, 3], unit="s")),
    "string": pd.Series(["a", None, "c"], dtype="string"),
    "category": pd.Series(["a", None, "a"], dtype="category"),
    "objects": pd.Series(
        [
            None,
            math.nan,
            math.inf,
            pd.NaT,
            pd.NA,
            pd.Timestamp("2026-01-01"),
            datetime.date(2026, 1, 2),
            [1, math.nan, {"a": (1, 2)}],
            {1: None},
            (),
            True,
            7,
            2.5,
            -0.0,
            "x",
            b"bytes",
            Path("a/b"),
            pd.Series([1]).iloc[0],
        ],
        dtype=object,
    ),
    "numbers": pd.Series([1, 2.5, None, math.nan, -math.inf], dtype=object),
    "bools": pd.Series([True, None, False], dtype=object),
    "empty": pd.Series([], dtype=object),
}


@pytest.mark.parametrize("name", list(COLUMNS))
def test_each_kind_of_column_converts_as_a_cell_at_a_time(name: str) -> None:
    column = COLUMNS[name]
    assert _text(data._column(column.copy())) == _text(_old_column(column.copy()))


def test_a_slow_rebuild_is_done_at_most_a_fifth_of_the_time(
    every_kind: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """However often the page polls, the server waits four times as long as
    its last rebuild took before the next one."""
    spans: list[tuple[float, float]] = []
    slow = 0.03

    def slow_payload(index: Any, **options: Any) -> dict[str, Any]:
        start = time.monotonic()
        time.sleep(slow)
        spans.append((start, time.monotonic()))
        return {"runs": len(spans)}

    monkeypatch.setattr(server, "payload", slow_payload)
    cache = server._Payload(Root(every_kind), 0.001)
    began = time.monotonic()
    calls = 0
    while len(spans) < 4 and time.monotonic() - began < 60:
        body, _ = cache.get()
        calls += 1
        time.sleep(0.001)
    elapsed = time.monotonic() - began
    assert len(spans) >= 4 and calls > len(spans)
    assert json.loads(body) == {"runs": len(spans), "generated": ""}
    for (start, end), (after, _) in zip(spans, spans[1:]):
        assert after - end >= 4 * (end - start)
    # each rebuild after the first is at least five times its own sleep away
    assert len(spans) <= elapsed / (5 * slow) + 1


def _age(root: Path) -> None:
    """Every metrics.jsonl as if written an hour ago."""
    hour_ago = time.time() - 3600
    for path in root.glob("*/*/metrics.jsonl"):
        os.utime(path, (hour_ago, hour_ago))


def test_the_curves_are_read_again_only_when_a_metrics_file_changed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """exman ui keeps the last curves while every run's metrics.jsonl (and
    the set of runs) stays as it was; each change gives the curves a payload
    without the cache gives."""
    root = tmp_path / "exman"
    _runs(root, 5)  # runs 1, 2 and 4 log; 3 fails, the --tmp one is not shown
    reads = []
    real = data._curves

    def counting(runs: Any) -> Any:
        reads.append(len(runs))
        return real(runs)

    monkeypatch.setattr(data, "_curves", counting)
    cache = data.CurveCache()

    def check() -> None:
        cached = data.payload(exman.Index(root), details=False, curve_cache=cache)
        fresh = data.payload(exman.Index(root), details=False)
        assert _text(cached["curves"]) == _text(fresh["curves"])
        assert cached["metrics"] == fresh["metrics"]

    check()  # just written: not trusted yet
    check()
    assert len(reads) == 4
    _age(root)
    check()  # settled: kept
    check()
    assert len(reads) == 7
    folders = sorted((root / "runs").iterdir())
    with open(folders[0] / "metrics.jsonl", "a") as f:
        f.write('{"step": 3, "loss": 0.01}\n')
    check()  # appended to
    assert len(reads) == 9 and cache.value is None  # and not settled
    _age(root)
    check()
    (folders[1] / "metrics.jsonl").unlink()
    check()  # removed
    assert len(reads) == 13
    manage.delete(Root(root), [int(folders[0].name[:6])])
    check()  # a run fewer
    assert len(reads) == 15
    check()
    assert len(reads) == 16


@pytest.mark.parametrize(
    ("root", "folder"),
    [
        ("/r/exman", "/r/exman/runs/000001-a b"),
        ("/r/exman", "/r/exman/runs/../../x/000002"),
        ("/r/exman", "/r/exmanother/runs/000003"),
        ("/r/exman", "/elsewhere/000004"),
        ("/r/exman", "/r/exman/runs/000005-a..b;'ü"),
        ("/", "/runs/000006"),
        ("exman", "exman/fails/000007"),
        ("exman", "/abs/exman/runs/000008"),
        ("../exman", "../exman/runs/000009"),
    ],
)
def test_a_run_folder_relative_to_the_root_is_what_relpath_says(
    root: str, folder: str
) -> None:
    assert data._relative([Path(folder)], Path(root)) == [
        os.path.relpath(Path(folder), Path(root))
    ]
