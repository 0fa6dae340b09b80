"""The copy of the parameters in run.json: used by the first load after a
sweep instead of parsing params.yaml, never when params.yaml changed."""

from __future__ import annotations

import json
import math
import os
import pathlib
import shutil
import subprocess
import sys
from typing import Any

import pandas as pd
import pytest
from _index_runs import edit_in_place, make_run

import exman.look.fastyaml
from exman.commands import manage
from exman.index import Index
from exman.record import snapshot
from exman.record.store import Root

AWKWARD: list[Any] = [
    "a: b",
    "# not a comment",
    "yes",
    "007",
    "1e3",
    "null",
    "",
    " padded ",
    "two\nlines",
    "tab\there",
    "ünïcödé ✓",
    "quote ' and \"",
    "\x07bell",
    0.1,
    1e-5,
    -0.0,
    float("inf"),
    2**70,
    -3,
    True,
    None,
    [1, "2", [3.5, None]],
    [],
    {"b": 1, "a": {"d": [1], "c": "x"}},
    {},
]


class YamlParses:
    """Counts the YAML parses of params.yaml."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.count = 0
        real = exman.look.fastyaml.load_document

        def counting(data: Any, memo: Any = None) -> Any:
            self.count += 1
            return real(data, memo)

        # rows imports it when a run has no copy: PyYAML stays off the others
        monkeypatch.setattr(exman.look.fastyaml, "load_document", counting)


def _strip_copies(root: pathlib.Path) -> None:
    for record in (root / "runs").glob("*/run.json"):
        data = json.loads(record.read_text())
        data.pop(snapshot.FIELD, None)
        record.write_text(json.dumps(data))


def _same(a: pd.DataFrame, b: pd.DataFrame) -> None:
    assert list(a.columns) == list(b.columns)
    for column in a.columns:
        left, right = a[column].tolist(), b[column].tolist()
        for x, y in zip(left, right):
            if isinstance(x, float) and math.isnan(x):
                assert isinstance(y, float) and math.isnan(y), column
            else:
                assert x == y and type(x) is type(y), (column, x, y)
                if isinstance(x, float):
                    assert math.copysign(1, x) == math.copysign(1, y)
        assert a[column].dtype == b[column].dtype, column


def test_the_copy_gives_the_values_of_params_yaml(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "exman"
    for i, value in enumerate(AWKWARD):
        make_run(root, {"value": value, "i": i, "z": [value]})
    parses = YamlParses(monkeypatch)
    with_copies = Index(root, cache=False).info()
    assert parses.count == 0  # every run was read from its copy
    plain = tmp_path / "plain"
    shutil.copytree(root, plain, symlinks=True)
    _strip_copies(plain)
    from_yaml = Index(plain, cache=False).info()
    assert parses.count == len(AWKWARD)
    _same(with_copies.drop(columns="root"), from_yaml.drop(columns="root"))


def test_values_json_cannot_hold_are_not_copied(tmp_path: pathlib.Path) -> None:
    import datetime

    root = tmp_path / "exman"
    folder = make_run(root, {"day": datetime.date(2026, 1, 2), "b": b"x"})
    assert snapshot.FIELD not in json.loads((folder / "run.json").read_text())
    row = Index(root).info().iloc[0]
    assert row.day == datetime.date(2026, 1, 2) and row.b == b"x"


def test_a_type_given_a_converter_is_not_copied(tmp_path: pathlib.Path) -> None:
    """A converter registered before or after the first run of a process
    writes its text into params.yaml, and the run then carries no copy
    (the copy would give the value, the file its text)."""
    import subprocess
    import sys

    root = tmp_path / "exman"
    code = (
        "import sys, exman\n"
        "from exman.parser import register_str_converter\n"
        "p = exman.ExParser(root=sys.argv[1])\n"
        "p.add_argument('--n', type=int, default=3)\n"
        "p.add_argument('--x', type=float, default=0.5)\n"
        "register_str_converter(float, tostr=lambda v: f'f{v}')\n"
        "p.parse_args([])\n"
        "register_str_converter(int, tostr=lambda v: f'n{v}')\n"
        "p.parse_args([])\n"
    )
    subprocess.run([sys.executable, "-c", code, str(root)], check=True)
    records = sorted((root / "runs").glob("*/run.json"))
    assert [snapshot.FIELD in json.loads(r.read_text()) for r in records] == [
        False,
        False,
    ]
    frame = Index(root).info()
    assert frame["x"].tolist() == ["f0.5", "f0.5"]
    assert frame["n"].tolist() == [3, "n3"]


def test_a_run_made_by_exparser_carries_a_copy(tmp_path: pathlib.Path) -> None:
    root = tmp_path / "exman"
    script = tmp_path / "main.py"
    script.write_text(
        "import exman\n"
        f"p = exman.ExParser(root={str(root)!r})\n"
        "p.add_argument('--lr', type=float, default=0.1)\n"
        "p.add_argument('--tags', nargs='*', default=['a b'])\n"
        "p.parse_args()\n"
    )
    subprocess.run([sys.executable, str(script), "--lr", "1e-3"], check=True)
    folder = Root(root).find(1)
    copy = json.loads((folder / "run.json").read_text())[snapshot.FIELD]
    assert copy["values"]["lr"] == 1e-3 and copy["values"]["tags"] == ["a b"]
    assert list(copy["values"])[-2:] == ["time", "id"]


@pytest.mark.parametrize("cache", [True, False])
def test_a_params_yaml_replaced_is_seen(tmp_path: pathlib.Path, cache: bool) -> None:
    root = tmp_path / "exman"
    folder = make_run(root, {"model": "mlp"})
    assert Index(root, cache=cache).info().model.tolist() == ["mlp"]
    params = folder / "params.yaml"
    new = params.with_name("params.yaml.new")
    new.write_text(params.read_text().replace("mlp", "cnn"))
    os.replace(new, params)
    assert Index(root, cache=cache).info().model.tolist() == ["cnn"]


def test_a_params_yaml_edited_in_place_is_seen_by_a_first_load(
    tmp_path: pathlib.Path,
) -> None:
    root = tmp_path / "exman"
    folder = make_run(root, {"model": "mlp"})
    edit_in_place(folder / "params.yaml", "mlp", "cnn")
    assert Index(root).info().model.tolist() == ["cnn"]


def test_a_copied_root_reads_its_params_yaml(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A copy of a root (other inodes and ctimes) is read from its YAML,
    with the same values."""
    root = tmp_path / "exman"
    make_run(root, {"model": "mlp", "lr": 0.5})
    copied = tmp_path / "copied"
    shutil.copytree(root, copied, symlinks=True)
    parses = YamlParses(monkeypatch)
    row = Index(copied).info().iloc[0]
    assert parses.count == 1
    assert (row.model, row.lr) == ("mlp", 0.5)


@pytest.mark.parametrize("what", ["deleted", "moved", "re-marked", "edited"])
def test_a_change_is_seen_by_the_next_load(tmp_path: pathlib.Path, what: str) -> None:
    root = tmp_path / "exman"
    for i in range(4):
        make_run(root, {"model": "mlp", "i": i}, mark="best")
    store = Root(root)
    Index(root).info()
    Index(root).info("best")
    if what == "deleted":
        manage.delete(root, [2], all=True)
        assert Index(root).info().i.tolist() == [0, 2, 3]
        assert Index(root).info("best").i.tolist() == [0, 2, 3]
    elif what == "moved":
        folder = store.find(3)
        shutil.move(folder, root / "fails" / folder.name)
        os.unlink(root / "index" / f"{folder.name}.yaml")
        assert Index(root).info().i.tolist() == [0, 1, 3]
        assert Index(root).info(failed=True).i.tolist() == [0, 1, 2, 3]
    elif what == "re-marked":
        manage.unmark(root, "best", [1])
        manage.mark(root, "other", [1])
        assert Index(root).info("best").i.tolist() == [1, 2, 3]
        assert Index(root).info("other").i.tolist() == [0]
    else:
        params = store.find(4) / "params.yaml"
        new = params.with_name("params.yaml.new")
        new.write_text(params.read_text().replace("mlp", "cnn"))
        os.replace(new, params)
        assert Index(root).info().model.tolist() == ["mlp"] * 3 + ["cnn"]
