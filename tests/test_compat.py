"""Roots made by exman 0.1.9 keep working, and new runs read like old ones."""

from __future__ import annotations

import os
from pathlib import Path

import configargparse
import pytest
import yaml

import exman

#: (place, id, name suffix) of the runs in the old root; 5 was deleted
OLD_RUNS = [
    ("runs", 1, ""),
    ("runs", 2, "-named"),
    ("fails", 3, ""),
    ("tmp", 4, ""),
    ("fails", 6, ""),
    ("runs", 7, "-best"),
]


def old_params(place: str, folder: str, num: int) -> str:
    """params.yaml as exman 0.1.9 wrote it: yaml.dump of the arguments with
    the root as ``<place>/<folder>``, then the time and the id."""
    args = {
        "config_file": None,
        "git_dirty": False,
        "lr": 0.01 * num,
        "model": "vit",
        "name": folder.split("-", 7)[7] if folder.count("-") > 6 else None,
        "root": f"{place}/{folder}",
        "tmp": place == "tmp",
    }
    return (
        yaml.dump(args, default_flow_style=False)
        + f"time: '2020-01-0{num}T10:00:00'\nid: {num}\n"
    )


@pytest.fixture
def old_root(tmp_path: Path) -> Path:
    """A root as exman 0.1.9 left it: no .exman, runs up to id 7."""
    root = tmp_path / "exman"
    for sub in ("runs", "index", "marked", "fails", "tmp"):
        (root / sub).mkdir(parents=True)
    (root / "lock").touch()
    for place, num, suffix in OLD_RUNS:
        folder = f"{num:06d}-2020-01-0{num}-10-00-00{suffix}"
        (root / place / folder).mkdir()
        (root / place / folder / "params.yaml").write_text(
            old_params(place, folder, num)
        )
        if place == "runs":
            (root / "index" / f"{folder}.yaml").symlink_to(
                f"../runs/{folder}/params.yaml"
            )
        if place == "fails":
            (root / place / folder / "traceback.txt").write_text("Traceback\n")
    (root / "marked" / "best").mkdir()
    best = "000007-2020-01-07-10-00-00-best"
    (root / "marked" / "best" / best).symlink_to(f"../../runs/{best}")
    return root


def make_parser(root: Path) -> exman.ExParser:
    parser = exman.ExParser(root=root)
    parser.add_argument("--lr", type=float, default=0.1)
    parser.add_argument("--model", default="resnet")
    return parser


def snapshot(root: Path) -> dict[str, str]:
    return {
        os.path.relpath(os.path.join(folder, f), root): (
            os.readlink(os.path.join(folder, f))
            if os.path.islink(os.path.join(folder, f))
            else Path(folder, f).read_text()
        )
        for folder, dirs, files in os.walk(root)
        for f in files + [d for d in dirs if os.path.islink(os.path.join(folder, d))]
    }


def test_an_old_root_continues_with_the_next_id(old_root: Path) -> None:
    before = snapshot(old_root)
    ns = make_parser(old_root).parse_args([])
    assert exman.Run(ns.root).id == 8
    assert ns.root.name.startswith("000008-")
    assert (old_root / ".exman" / "counter").read_text().split()[0] == "8"
    after = snapshot(old_root)
    # everything that was there is untouched
    assert {k: v for k, v in after.items() if k in before} == before
    assert len(list((old_root / "index").iterdir())) == 4
    assert exman.Run(make_parser(old_root).parse_args(["--tmp"]).root).id == 9


def test_old_runs_read_as_runs(old_root: Path) -> None:
    store = exman.Root(old_root)
    assert store.exists()
    assert sorted(exman.Run(p).id for p in store.iter_runs()) == [1, 2, 3, 4, 6, 7]
    failed = exman.Run(store.find(3))
    assert failed.path.parent == old_root / "fails"
    # no run.json: exman 0.1.9 did not record how a run ended
    assert failed.status == "unknown"
    assert failed.record() == {}
    assert exman.Run(store.find(7)).params["lr"] == pytest.approx(0.07)


def test_config_restores_an_old_run(old_root: Path) -> None:
    old = old_root / "runs" / "000002-2020-01-02-10-00-00-named" / "params.yaml"
    ns = make_parser(old_root).parse_args(["--config", str(old)])
    assert (ns.lr, ns.model) == (0.02, "vit")
    assert ns.name is None
    assert ns.root.parent == old_root / "runs"


def test_a_new_run_is_written_as_0_1_9_wrote_it(old_root: Path) -> None:
    ns = make_parser(old_root).parse_args(["--lr", "0.08", "--model", "vit"])
    new = (ns.root / "params.yaml").read_text()
    old = (old_root / "runs" / "000001-2020-01-01-10-00-00" / "params.yaml").read_text()
    new_keys = [line.split(":")[0] for line in new.splitlines()]
    old_keys = [line.split(":")[0] for line in old.splitlines()]
    assert new_keys == old_keys
    assert new.startswith("config_file: null\ngit_dirty: false\nlr: 0.08\n")
    assert f"\nroot: runs/{ns.root.name}\ntmp: false\ntime: '" in new
    assert new.endswith("'\nid: 8\n")


def test_0_1_9s_index_can_read_new_runs(old_root: Path) -> None:
    """exman 0.1.9's Index read every index file with configargparse's YAML
    parser: new runs must go through it as the old ones do."""
    make_parser(old_root).parse_args(["--name", "new one"])
    reader = configargparse.YAMLConfigFileParser()
    rows = []
    for link in sorted((old_root / "index").iterdir()):
        with open(link) as f:
            rows.append(reader.parse(f))
    assert [row["id"] for row in rows] == ["1", "2", "7", "8"]
    assert rows[-1]["name"] == "new one"
    assert set(rows[-1]) >= {"lr", "model", "root", "time", "id"}
    assert (rows[0]["lr"], rows[-1]["lr"]) == ("0.01", "0.1")


def test_0_1_9_on_the_same_root_afterwards(old_root: Path) -> None:
    """An old exman still in use on a shared root scans for the highest id;
    a run it makes after ours must not get its id given again."""
    make_parser(old_root).parse_args([])
    folder = "000009-2020-01-09-10-00-00-from-old-exman"
    (old_root / "runs" / folder).mkdir()
    (old_root / "runs" / folder / "params.yaml").write_text(
        old_params("runs", folder, 9)
    )
    assert exman.Run(make_parser(old_root).parse_args([]).root).id == 10


# -- exman 0.1.9's public names ----------------------------------------------------
def test_0_1_9s_module_names(tmp_path: Path) -> None:
    import exman.index
    import exman.parser

    assert exman.parser.yaml_file("000001-2020-01-01-10-00-00") == (
        "000001-2020-01-01-10-00-00.yaml"
    )
    assert exman.parser.str2bool("yes") is True
    assert exman.parser.str2bool("maybe", default=False) is False
    assert exman.parser.optional(int)("null") is None
    assert exman.parser.optional(int)("3") == 3
    assert exman.parser.ArgumentError is exman.ArgumentError
    assert exman.parser.simpleroot(tmp_path / "main.py") == tmp_path / "exman"
    assert exman.parser.PARAMS_FILE == "params.yaml"
    assert exman.parser.TIME_FORMAT == "%Y-%m-%dT%H:%M:%S"
    assert exman.parser.DIR_PATTERN.match("000001-2020-01-01-10-00-00-x")
    assert exman.index.Index is exman.Index


def test_the_modules_are_attributes_of_the_package() -> None:
    """0.1.9 imported exman.index and exman.parser in exman/__init__.py: code
    wrote ``exman.index.Index`` after a bare ``import exman``."""
    import subprocess
    import sys

    code = "import exman; print(exman.index.Index.__name__, exman.parser.__name__)"
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert proc.stdout == "Index exman.parser\n"


def test_dir_lists_the_names_loaded_on_first_use() -> None:
    """``ExParser``, ``Index`` and the rest are loaded when first asked for;
    ``dir(exman)`` (what a notebook completes ``exman.`` from) lists them
    before that, without loading them."""
    import subprocess
    import sys

    code = (
        "import sys, exman; names = dir(exman); "
        "print(sorted(set(exman.__all__) - set(names)), "
        "'configargparse' in sys.modules, 'pandas' in sys.modules)"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert proc.stdout == "[] False False\n"


def test_0_1_9s_parser_methods(old_root: Path) -> None:
    parser = make_parser(old_root)
    assert (parser.num_ex(), parser.max_ex(), parser.next_ex()) == (3, 7, 8)
    assert parser.next_ex_str() == "000008"
    assert (parser.root, parser.tmp, parser.fails) == (
        old_root,
        old_root / "tmp",
        old_root / "fails",
    )
    assert (parser.runs, parser.index, parser.marked) == (
        old_root / "runs",
        old_root / "index",
        old_root / "marked",
    )
    with parser.lock:  # 0.1.9 code took the root's lock around its own work
        pass
    assert exman.Index(old_root).root / "runs" == old_root / "runs"
    ns = parser.parse_args(["--lr", "0.5"])
    assert exman.Run(ns.root).id == parser.next_ex() - 1 == 8
    assert parser.num_ex() == 4
    # a run 0.1.9 makes by scanning is seen too
    (old_root / "tmp" / "000020-2020-01-09-10-00-00").mkdir()
    assert parser.next_ex() == 21


def test_0_1_9s_index_is_its_roots_folders_too(old_root: Path) -> None:
    """0.1.9's Index was the root's folders, as its parser was: a notebook
    wrote ``Index(root).marked`` or ``Index(root).num_ex()``."""
    index = exman.Index(old_root)
    assert (index.runs, index.index, index.marked) == (
        old_root / "runs",
        old_root / "index",
        old_root / "marked",
    )
    assert (index.fails, index.tmp) == (old_root / "fails", old_root / "tmp")
    assert (index.num_ex(), index.max_ex(), index.next_ex()) == (3, 7, 8)
    with index.lock:
        pass
    make_parser(old_root).parse_args([])
    assert (index.num_ex(), index.next_ex()) == (4, 9)


def test_0_1_9s_setters_and_validators_by_hand(old_root: Path) -> None:
    import argparse

    parser = make_parser(old_root)
    parser.register_setter(lambda p: setattr(p, "lr", p.lr * 2))
    parser.register_validator(lambda p: p.lr < 1, "lr={lr} is too large")
    params = argparse.Namespace(lr=0.2)
    parser.set_additional_params(params)
    assert params.lr == 0.4
    parser.validate_params(params)
    params.lr = 2.0
    with pytest.raises(exman.ArgumentError, match=r"lr=2\.0 is too large"):
        parser.validate_params(params)


class Checkpoint:
    def __init__(self, step: int) -> None:
        self.step = step


def test_register_str_converter_touches_exmans_dumper_only(old_root: Path) -> None:
    import exman.parser

    dumpers = (yaml.Dumper, yaml.SafeDumper)
    before = [dict(d.yaml_representers) for d in dumpers]
    exman.parser.register_str_converter(Checkpoint, tostr=lambda c: f"step-{c.step}")
    parser = make_parser(old_root)
    parser.add_argument("--ckpt", type=lambda s: Checkpoint(int(s)), default=None)
    ns = parser.parse_args(["--ckpt", "40"])
    assert (ns.root / "params.yaml").read_text().startswith("ckpt: step-40\n")
    # PyYAML's global state is as it was: other code's dumps do not change
    assert [dict(d.yaml_representers) for d in dumpers] == before
    with pytest.raises(yaml.representer.RepresenterError):
        yaml.safe_dump({"c": Checkpoint(1)})
