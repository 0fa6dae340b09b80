"""params.yaml: plain YAML out of any value, safe loading with file and line."""

from __future__ import annotations

import argparse
import datetime
import enum
import pathlib
from collections import OrderedDict
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

import exman
from exman.record.params import dump_params, load_params, plain


class Colour(enum.Enum):
    RED = "red"


class Size(int, enum.Enum):
    BIG = 3


class Mode(str, enum.Enum):
    FAST = "fast"


class Level(enum.IntEnum):
    HIGH = 2


class Weird:
    def __str__(self) -> str:
        return "weird!"


NOW = datetime.datetime(2026, 1, 2, 3, 4, 5)

VALUES: list[tuple[Any, Any]] = [
    (pathlib.Path("/data/set"), "/data/set"),
    (pathlib.PurePosixPath("rel/p"), "rel/p"),
    (Colour.RED, "red"),
    (Size.BIG, 3),
    (Mode.FAST, "fast"),
    (Level.HIGH, 2),
    ((1, "a", 2.5), [1, "a", 2.5]),
    ({3, 1, 2}, [1, 2, 3]),
    (frozenset({"b"}), ["b"]),
    (np.int64(3), 3),
    (np.int8(-1), -1),
    (np.float64(0.25), 0.25),
    (np.float32(0.5), 0.5),
    (np.bool_(True), True),
    (np.str_("s"), "s"),
    (np.array([1, 2]), [1, 2]),
    (np.array([[0.5], [1.5]]), [[0.5], [1.5]]),
    ([np.float64(1.5), (np.int64(2), Colour.RED)], [1.5, [2, "red"]]),
    (OrderedDict(b=1, a=pathlib.Path("x")), {"a": "x", "b": 1}),
    (Weird(), "weird!"),
    (None, None),
    (True, True),
    ("plain", "plain"),
    (10**20, 10**20),
]


@pytest.mark.parametrize(
    ("value", "expected"), VALUES, ids=[type(v[0]).__name__ for v in VALUES]
)
def test_params_are_plain_yaml(value: Any, expected: Any) -> None:
    text = dump_params({"v": value}, time=NOW, id=7)
    assert "!!" not in text
    loaded = yaml.safe_load(text)
    assert loaded["v"] == expected
    assert type(loaded["v"]) is type(expected)
    assert plain(value) == expected


def test_dump_params_keeps_the_original_layout() -> None:
    text = dump_params({"z": 1, "a": "b", "root": "runs/x"}, time=NOW, id=7)
    assert text == "a: b\nroot: runs/x\nz: 1\ntime: '2026-01-02T03:04:05'\nid: 7\n"
    assert dump_params({}, time=NOW, id=1) == "time: '2026-01-02T03:04:05'\nid: 1\n"


def test_dump_params_leaves_pyyaml_alone() -> None:
    dump_params({"p": pathlib.Path("x"), "t": (1,)}, time=NOW, id=1)
    with pytest.raises(yaml.representer.RepresenterError):
        yaml.safe_dump({"p": pathlib.Path("x")})


def test_the_kinds_written_as_is_are_yamls_own() -> None:
    """written_as_is() names, without importing PyYAML, the types that its
    safe dumper writes itself: all of them but those exman's dumper takes
    over (tuples and sets become lists)."""
    from exman.record.params import written_as_is

    own = {k for k in yaml.SafeDumper.yaml_representers if k is not None}
    kinds = own | {frozenset, complex, object}
    assert {k for k in kinds if written_as_is(k)} == own - {tuple, set}


def test_a_run_saves_whatever_a_setter_puts(root: Path) -> None:
    parser = exman.ExParser(root=root)
    parser.add_argument("--data", type=pathlib.Path, default=pathlib.Path("/d"))
    parser.add_argument("--shape", type=int, nargs=2, default=(2, 3))

    def setter(ns: argparse.Namespace) -> None:
        ns.mean = np.mean([1.0, 2.0])
        ns.count = np.int64(5)
        ns.colour = Colour.RED
        ns.mode = Mode.FAST

    parser.register_setter(setter)
    ns = parser.parse_args([])
    with open(ns.root / "params.yaml") as f:
        saved = yaml.safe_load(f)
    assert saved["data"] == "/d"
    assert saved["shape"] == [2, 3]
    assert saved["mean"] == 1.5
    assert saved["count"] == 5
    assert (saved["colour"], saved["mode"]) == ("red", "fast")
    # and it comes back through --config as the argument types say
    again = exman.ExParser(root=root)
    again.add_argument("--data", type=pathlib.Path)
    again.add_argument("--shape", type=int, nargs=2)
    restored = again.parse_args(["--config", str(ns.root / "params.yaml")])
    assert restored.data == pathlib.Path("/d")
    assert restored.shape == [2, 3]


def test_load_params(tmp_path: Path) -> None:
    path = tmp_path / "params.yaml"
    path.write_text("a: 1\nb: [x, y]\nc: null\n")
    assert load_params(path) == {"a": 1, "b": ["x", "y"], "c": None}
    path.write_text("")
    assert load_params(path) == {}


@pytest.mark.parametrize(
    ("text", "line"),
    [("a: 1\nb: [\n", 3), ("a: 1\n b: 2\n", 2), ("a: 'open\n", 2)],
)
def test_load_params_names_file_and_line(tmp_path: Path, text: str, line: int) -> None:
    path = tmp_path / "bad params.yaml"
    path.write_text(text)
    with pytest.raises(exman.ParamsError) as exc:
        load_params(path)
    assert exc.value.path == str(path)
    assert exc.value.line == line
    assert str(exc.value).startswith(f"{path}, line {line}: invalid YAML")


def test_load_params_refuses_a_list(tmp_path: Path) -> None:
    path = tmp_path / "params.yaml"
    path.write_text("- 1\n")
    with pytest.raises(exman.ParamsError, match="key: value"):
        load_params(path)


def test_load_params_never_runs_code(tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    path = tmp_path / "params.yaml"
    path.write_text(f"a: !!python/object/apply:os.system ['touch {marker}']\n")
    with pytest.raises(exman.ParamsError, match="python/object/apply"):
        load_params(path)
    assert not marker.exists()


def test_load_params_refuses_bytes_that_are_not_text(tmp_path: Path) -> None:
    path = tmp_path / "params.yaml"
    path.write_bytes(b"a: \xff\xfe\x00\n")
    with pytest.raises(exman.ParamsError, match=str(path)):
        load_params(path)
