"""ExParser is a drop-in ArgumentParser: argparse scripts run unchanged.

One string of arguments, positionals restored, flags that turn off, a
script's own --name or --config, parse_known_args().
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

import exman
from tests._run_helpers import exman_command, record


def params(folder: Path) -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((folder / "params.yaml").read_text())
    return data


def runs_of(root: Path) -> list[Path]:
    return sorted((root / "runs").iterdir())


# -- one string of arguments ----------------------------------------------------
def test_one_string_is_split_like_a_shell(root: Path) -> None:
    parser = exman.ExParser(root=root)
    parser.add_argument("--lr", type=float)
    parser.add_argument("--model")
    ns = parser.parse_args("--lr 0.1 --model 'res net' --name \"my run\"")
    assert (ns.lr, ns.model, ns.name) == (0.1, "res net", "my run")
    assert ns.root.name.endswith("-my run")
    assert record(ns.root)["command"]["args"] == [
        "--lr",
        "0.1",
        "--model",
        "res net",
        "--name",
        "my run",
    ]
    ns, unknown = parser.parse_known_args("--lr 0.2 --extra 'a b'")
    assert (ns.lr, unknown) == (0.2, ["--extra", "a b"])


# -- positional arguments ------------------------------------------------------
POSITIONALS = """\
parser.add_argument("data")
parser.add_argument("sizes", type=int, nargs="+")
"""
SHOW = """\
import json
shown = {k: v for k, v in vars(args).items() if k in ("data", "sizes", "lr")}
print(json.dumps(shown))
"""


def test_positionals_are_restored_by_config_and_rerun(
    make_script: Callable[..., Path], run: Callable[..., Any], tmp_path: Path
) -> None:
    script = make_script(SHOW, extra=POSITIONALS)
    first = run(script, "train.csv", "3", "4", "--lr", "0.5", check=True)
    assert json.loads(first.stdout) == {"data": "train.csv", "sizes": [3, 4], "lr": 0.5}
    saved = runs_of(tmp_path / "exman")[0] / "params.yaml"
    again = run(script, "--config", str(saved), check=True)
    assert json.loads(again.stdout) == json.loads(first.stdout)
    # the command line still wins, for one positional or all of them
    other = run(script, "test.csv", "--config", str(saved), check=True)
    assert json.loads(other.stdout)["data"] == "test.csv"
    assert json.loads(other.stdout)["sizes"] == [3, 4]
    both = run(script, "x.csv", "7", "--config", str(saved), "--lr", "1", check=True)
    assert json.loads(both.stdout) == {"data": "x.csv", "sizes": [7], "lr": 1.0}
    proc = exman_command("rerun", "1", "--", "--lr", "0.25", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    newest = params(runs_of(tmp_path / "exman")[-1])
    assert (newest["data"], newest["sizes"], newest["lr"]) == (
        "train.csv",
        [3, 4],
        0.25,
    )


def test_a_restored_positional_is_converted_and_checked(
    root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    parser = exman.ExParser(root=root)
    parser.add_argument("epochs", type=int, choices=[1, 2, 3])
    parser.add_argument("pair", nargs=2, type=float)
    saved = parser.parse_args(["2", "0.5", "1.5"]).root / "params.yaml"
    ns = parser.parse_args(["--config", str(saved)])
    assert (ns.epochs, ns.pair) == (2, [0.5, 1.5])
    # the parser is as it was: positionals are required again
    with pytest.raises(SystemExit):
        parser.parse_args([])
    bad = root / "bad.yaml"
    bad.write_text("epochs: 9\npair: [1, 2]\n")
    with pytest.raises(SystemExit):
        parser.parse_args(["--config", str(bad)])
    err = capsys.readouterr().err
    assert "argument epochs: invalid choice: 9" in err
    assert f"restored from {bad}" in err
    with pytest.raises(SystemExit):  # nargs=2 still wants two on the command line
        parser.parse_args(["1", "0.5", "--config", str(saved)])


def test_positionals_all_on_the_command_line_split_as_in_argparse(root: Path) -> None:
    parser = exman.ExParser(root=root)
    parser.add_argument("data")
    parser.add_argument("sizes", type=int, nargs="+")
    parser.add_argument("pair", type=float, nargs=2)
    saved = str(parser.parse_args(["a.csv", "3", "4", "0.5", "1.5"]).root)
    config = ["--config", f"{saved}/params.yaml"]
    ns = parser.parse_args(["b.csv", "5", "6", "1", "2", *config])
    assert (ns.data, ns.sizes, ns.pair) == ("b.csv", [5, 6], [1.0, 2.0])
    ns = parser.parse_args(["b.csv", "5", *config])  # the rest restored
    assert (ns.data, ns.sizes, ns.pair) == ("b.csv", [5], [0.5, 1.5])
    mine = argparse.Namespace(extra=1)
    ns = parser.parse_args(config, namespace=mine)
    assert ns is mine and (mine.data, mine.extra) == ("a.csv", 1)


def test_a_missing_positional_is_still_an_error(
    make_script: Callable[..., Path], run: Callable[..., Any], tmp_path: Path
) -> None:
    script = make_script(SHOW, extra=POSITIONALS)
    proc = run(script, "--lr", "0.5")
    assert proc.returncode == 2
    assert "the following arguments are required: data, sizes" in proc.stderr
    assert not (tmp_path / "exman" / "runs").exists()


# -- flags that turn off -------------------------------------------------------------
FLAGS = """\
parser.add_argument("--augment", action="store_true", help="random crops")
parser.add_argument("--no-cuda", action="store_true")
parser.add_argument("--no-amp", dest="amp", action="store_false")
"""
SHOW_FLAGS = """\
import json
print(json.dumps([args.augment, args.no_cuda, args.amp]))
"""


def test_a_restored_flag_can_be_turned_off(
    make_script: Callable[..., Path], run: Callable[..., Any], tmp_path: Path
) -> None:
    script = make_script(SHOW_FLAGS, extra=FLAGS)
    on = run(script, "--augment", "--no-cuda", "--no-amp", check=True)
    assert json.loads(on.stdout) == [True, True, False]
    saved = runs_of(tmp_path / "exman")[0] / "params.yaml"
    assert json.loads(run(script, "--config", str(saved), check=True).stdout) == [
        True,
        True,
        False,
    ]
    off = run(
        script, "--config", str(saved), "--no-augment", "--cuda", "--amp", check=True
    )
    assert json.loads(off.stdout) == [False, False, True]
    proc = exman_command("rerun", "1", "--", "--no-augment", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert params(runs_of(tmp_path / "exman")[-1])["augment"] is False
    # each flag's help says how to undo it; the counterparts take no line
    shown = run(script, "--help", check=True).stdout
    assert "random crops (undo with --no-augment)" in shown
    assert "(undo with --cuda)" in shown and "(undo with --amp)" in shown
    assert "\n  --no-augment" not in shown


def test_a_scripts_own_no_flag_takes_the_name(root: Path) -> None:
    parser = exman.ExParser(root=root)
    parser.add_argument("--fast", action="store_true")
    parser.add_argument("--no-fast", dest="slow", action="store_true")
    ns = parser.parse_args(["--fast", "--no-fast"])
    assert (ns.fast, ns.slow) == (True, True)
    assert "undo with" not in parser.format_help().split("--fast")[1].split("\n")[0]


def test_a_flag_whose_counterpart_is_taken_gets_none(root: Path) -> None:
    parser = exman.ExParser(root=root)
    parser.add_argument("--no-x", type=int, default=0)
    parser.add_argument("--x", action="store_true")
    ns = parser.parse_args(["--x", "--no-x", "3"])
    assert (ns.x, ns.no_x) == (True, 3)


# -- a script's own --name, --config ---------------------------------------------
OWN = """\
parser.add_argument("--name", default="resnet", help="the network")
parser.add_argument("--config", default="model.json")
parser.add_argument("--tmp", type=float, default=0.5)
"""
SHOW_OWN = """\
import json
print(json.dumps([args.name, args.config, args.tmp, args.exman_name, args.root.name]))
"""


def test_exmans_flags_yield_to_the_scripts(
    make_script: Callable[..., Path], run: Callable[..., Any], tmp_path: Path
) -> None:
    script = make_script(SHOW_OWN, extra=OWN)
    first = run(
        script, "--name", "vit", "--config", "c.json", "--tmp", "0.1",
        "--exman-name", "try", check=True,
    )  # fmt: skip
    name, config, tmp, exman_name, folder = json.loads(first.stdout)
    assert (name, config, tmp, exman_name) == ("vit", "c.json", 0.1, "try")
    assert folder.endswith("-try")
    assert (tmp_path / "exman" / "runs" / folder).is_dir()  # not in tmp/
    saved = params(tmp_path / "exman" / "runs" / folder)
    assert (saved["name"], saved["config"], saved["exman_name"]) == (
        "vit",
        "c.json",
        "try",
    )
    # --exman-config restores the script's --name and --config, not exman's name
    path = str(tmp_path / "exman" / "runs" / folder / "params.yaml")
    again = json.loads(run(script, "--exman-config", path, check=True).stdout)
    assert again[:4] == ["vit", "c.json", 0.1, None]
    proc = exman_command("rerun", "1", "--", "--tmp", "0.2", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    newest = params(runs_of(tmp_path / "exman")[-1])
    assert (newest["name"], newest["tmp"]) == ("vit", 0.2)
    shown = run(script, "--help", check=True).stdout
    assert "--exman-name EXMAN_NAME" in shown and "--exman-config" in shown
    assert "the script has its own --name" in shown
    assert "--exman-tmp" in shown


def test_a_dest_of_exmans_makes_its_flag_yield(root: Path) -> None:
    parser = exman.ExParser(root=root)
    parser.add_argument("name")
    ns = parser.parse_args(["bert", "--exman-name", "first"])
    assert (ns.name, ns.exman_name) == ("bert", "first")
    assert ns.root.name.endswith("-first")


def test_a_flag_has_one_name_to_yield_to(root: Path) -> None:
    parser = exman.ExParser(root=root)
    parser.add_argument("--name")
    with pytest.raises(ValueError, match="--exman-name has yielded once already"):
        parser.add_argument("--exman-name")


# -- parse_known_args ------------------------------------------------------------
def test_parse_known_args_creates_the_run(
    make_script: Callable[..., Path], run: Callable[..., Any], tmp_path: Path
) -> None:
    body = """\
        args, rest = parser.parse_known_args()
        with args.safe_experiment:
            print(args.lr, rest, args.root.is_dir())
        """
    script = tmp_path / "known.py"
    script.write_text(
        "import exman\n"
        "parser = exman.ExParser(root=exman.simpleroot(__file__))\n"
        "parser.add_argument('--lr', type=float, default=0.1)\n"
        + __import__("textwrap").dedent(body)
    )
    proc = run(script, "--lr", "0.3", "--local_rank=0", "extra", check=True)
    assert proc.stdout == "0.3 ['--local_rank=0', 'extra'] True\n"
    (folder,) = runs_of(tmp_path / "exman")
    assert record(folder)["unknown_args"] == ["--local_rank=0", "extra"]
    assert record(folder)["status"] == "completed"
    assert params(folder)["lr"] == 0.3


def test_parse_args_refuses_unknown_arguments_before_any_run(root: Path) -> None:
    parser = exman.ExParser(root=root)
    with pytest.raises(SystemExit):
        parser.parse_args(["--what", "1"])
    assert not root.exists()
    ns, rest = parser.parse_known_args([])
    assert rest == [] and "unknown_args" not in record(ns.root)


def test_a_sweep_task_sets_a_positional(
    root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    parser = exman.ExParser(root=root)
    parser.add_argument("data")
    parser.add_argument("--lr", type=float, default=0.1)
    monkeypatch.setenv("EXMAN_SWEEP_PARAMS", json.dumps({"data": "a.csv", "lr": 0.3}))
    ns = parser.parse_args([])
    assert (ns.data, ns.lr) == ("a.csv", 0.3)
    ns = parser.parse_args(["b.csv", "--lr", "1"])
    assert (ns.data, ns.lr) == ("b.csv", 1.0)


def test_argument_groups_follow_the_same_rules(root: Path) -> None:
    parser = exman.ExParser(root=root)
    model = parser.add_argument_group("model")
    model.add_argument("--name", default="resnet")
    model.add_argument("--seed", type=int, default=0, volatile=True)
    data = parser.add_argument_group("data")
    data.add_argument("--augment", action="store_true")
    either = data.add_mutually_exclusive_group()
    either.add_argument("--crop", action="store_true")
    either.add_argument("--pad", action="store_true")
    only = parser.add_mutually_exclusive_group()
    only.add_argument("--cpu", action="store_true")
    with pytest.raises(ValueError, match="dest 'id' is exman's"):
        model.add_argument("--id")
    first = parser.parse_args(
        ["--name", "vit", "--seed", "3", "--augment", "--crop", "--cpu"]
    )
    saved = str(first.root / "params.yaml")
    ns = parser.parse_args(["--config", saved, "--no-augment", "--no-crop", "--no-cpu"])
    assert (ns.name, ns.seed, ns.augment, ns.crop, ns.cpu) == (
        "vit",
        0,
        False,
        False,
        False,
    )
    assert ns.exman_name is None
    assert "(undo with --no-augment)" in parser.format_help()


def test_aggregate_does_not_group_by_exmans_renamed_values(root: Path) -> None:
    """Repetitions named with --exman-name (their --name is the script's)
    are one group: exman_name is exman's, like name is elsewhere."""
    parser = exman.ExParser(root=root)
    parser.add_argument("--name", default="vit")
    parser.add_argument("--seed", type=int, default=0)
    for seed in (1, 2, 3):
        ns = parser.parse_args(["--seed", str(seed), "--exman-name", f"s{seed}"])
        with ns.safe_experiment:
            exman.result(acc=seed / 10)
    parser.parse_args(["--name", "bert"]).safe_experiment.__enter__().__exit__(
        None, None, None
    )
    table = exman.Index(root).aggregate(over="seed", results="acc")
    assert table["name"].tolist() == ["vit", "bert"]
    assert table["count"].tolist() == [3, 1]
