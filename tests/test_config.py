"""--config: restoring a run's arguments from its params.yaml, exactly."""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path
from typing import Any

import pytest
import yaml

import exman

#: keys that belong to the run, not to the arguments
RUN_KEYS = {"root", "time", "id", "config_file"}


def make_parser(root: Path, **kwargs: Any) -> exman.ExParser:
    """A parser with one argument of every kind that --config must restore."""
    parser = exman.ExParser(root=root, **kwargs)
    parser.add_argument("--s", default="default")
    parser.add_argument("--i", type=int, default=7)
    parser.add_argument("--f", type=float, default=0.5)
    parser.add_argument("--b", type=bool, default=False)
    parser.add_argument("--bt", type=bool, default=True)
    parser.add_argument("--flag", action="store_true")
    parser.add_argument("--no-aug", dest="aug", action="store_false")
    parser.add_argument("--fast", dest="mode", action="store_const", const="fast")
    parser.add_argument("-v", action="count", default=0)
    parser.add_argument("--plus", type=int, nargs="+", default=[1])
    parser.add_argument("--star", nargs="*", default=["x"])
    parser.add_argument("--floats", type=float, nargs="*", default=[0.5])
    parser.add_argument("--opt", type=exman.optional(float), default=None)
    parser.add_argument("--opt-set", type=exman.optional(int), default=3)
    parser.add_argument("--ostr", type=exman.optional(str), default="keep")
    parser.add_argument("--learning-rate", dest="lr", type=float, default=0.1)
    parser.add_argument("--choice", choices=["a", "b c", "ü;"], default="a")
    parser.add_argument("--job", default="none", volatile=True)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--tag", action="append")
    parser.add_argument(
        "--shuffle", action=argparse.BooleanOptionalAction, default=True
    )
    parser.add_argument("--one", nargs=1, default=["a"])
    parser.add_argument("--pair", type=float, nargs=2, default=[0.0, 1.0])
    parser.add_argument("--json", type=json.loads, default={})
    parser.add_argument("--jsons", type=json.loads, nargs="*", default=[])
    return parser


def params_of(ns: argparse.Namespace) -> dict[str, Any]:
    return exman.Run(ns.root).params


def args_of(ns: argparse.Namespace) -> dict[str, Any]:
    skip = RUN_KEYS | {"safe_experiment", "run"}
    return {k: v for k, v in vars(ns).items() if k not in skip}


def same(a: Any, b: Any) -> bool:
    """Equal, with the same types (1 is not 1.0 nor True), nan equal to nan."""
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a):
        return math.isnan(b)
    return type(a) is type(b) and a == b


STRINGS = [
    "1",
    "null",
    "None",
    "~",
    "",
    "yes",
    "true",
    "1e5",
    "0x1F",
    "1_000",
    "2026-11-22",
    "with space",
    "it's",
    'say "hi"',
    "a;b",
    "ünïcödé ☃ 日本",
    "-dash",
    "--double",
    "a: b",
    "#hash",
    "[x]",
    "{y: 1}",
    "!!python/object:os.system",
    "&anchor",
    "*star",
    "multi\nline",
    " padded ",
    "tab\there",
    "%",
    "='=",
]

AWKWARD_LIST = ["a b", "c;d", "ü", "null", "1", "", "x=-y"]

JSON_VALUE = {"a": [1, True, None], "b": "ü"}

CASES: list[tuple[list[str], str, Any]] = [
    *[([f"--s={s}"], "s", s) for s in STRINGS],
    (["--i", "0"], "i", 0),
    (["--i", "-3"], "i", -3),
    (["--i", str(10**20)], "i", 10**20),
    (["--f", "0.1"], "f", 0.1),
    (["--f", "1e-5"], "f", 1e-5),
    (["--f", "1e20"], "f", 1e20),
    (["--f", "-2.5"], "f", -2.5),
    (["--f", "3"], "f", 3.0),
    (["--f", "inf"], "f", math.inf),
    (["--f", "nan"], "f", math.nan),
    (["--b", "yes"], "b", True),
    (["--bt", "f"], "bt", False),
    (["--flag"], "flag", True),
    (["--no-aug"], "aug", False),
    (["--fast"], "mode", "fast"),
    (["-vv"], "v", 2),
    (["-v"], "v", 1),
    (["--plus", "4", "5", "6"], "plus", [4, 5, 6]),
    (["--plus", "-1"], "plus", [-1]),
    (["--star"], "star", []),
    (["--star", *AWKWARD_LIST], "star", AWKWARD_LIST),
    (["--floats", "0.1", "1e-5", "1e20"], "floats", [0.1, 1e-5, 1e20]),
    (["--floats"], "floats", []),
    (["--opt", "0.25"], "opt", 0.25),
    (["--opt-set", "none"], "opt_set", None),
    (["--opt-set", "5"], "opt_set", 5),
    (["--ostr", "none"], "ostr", None),
    (["--ostr", "nullish"], "ostr", "nullish"),
    (["--learning-rate", "0.001"], "lr", 0.001),
    (["--choice", "b c"], "choice", "b c"),
    (["--choice", "ü;"], "choice", "ü;"),
    (["--batch-size", "64"], "batch_size", 64),
    (["--tag", "a b", "--tag=-c"], "tag", ["a b", "-c"]),
    (["--no-shuffle"], "shuffle", False),
    (["--one", "b c"], "one", ["b c"]),
    (["--pair", "0.5", "2"], "pair", [0.5, 2.0]),
    (["--json", '{"a": [1, true, null], "b": "ü"}'], "json", JSON_VALUE),
    (["--json", '[1, "x"]'], "json", [1, "x"]),
    (["--json", "[5]"], "json", [5]),
    (["--jsons", '{"k": 1}', "[2]", "3"], "jsons", [{"k": 1}, [2], 3]),
]


@pytest.mark.parametrize(
    ("argv", "dest", "value"), CASES, ids=[repr(c[0])[:40] for c in CASES]
)
def test_config_round_trip(root: Path, argv: list[str], dest: str, value: Any) -> None:
    parser = make_parser(root)
    default = parser.get_default(dest)
    first = parser.parse_args(argv)
    assert same(getattr(first, dest), value)
    assert not same(value, default), "the case must differ from the default"

    config = str(first.root / "params.yaml")
    second = make_parser(root).parse_args(["--config", config])
    assert same(getattr(second, dest), value)
    assert all(same(args_of(first)[k], v) for k, v in args_of(second).items())
    assert args_of(first).keys() == args_of(second).keys()
    saved_first, saved_second = params_of(first), params_of(second)
    assert saved_second["config_file"] == config
    for key in set(saved_first) | set(saved_second):
        if key not in RUN_KEYS:
            assert same(saved_first[key], saved_second[key]), key


def test_a_run_of_a_restored_run_is_the_same(root: Path) -> None:
    argv = ["--s=a b", "--plus", "2", "3", "--no-aug", "-vvv", "--opt-set=none"]
    first = make_parser(root).parse_args(argv)
    second = make_parser(root).parse_args(["--config", str(first.root / "params.yaml")])
    third = make_parser(root).parse_args(["--config", str(second.root / "params.yaml")])
    assert args_of(third) == args_of(first)


def test_optional_str_null_is_none(root: Path) -> None:
    """optional(str) reads "null" and "none" as None, on the command line and
    in a config alike: such a string cannot be an optional(str) value."""
    first = make_parser(root).parse_args(["--ostr", "null"])
    assert first.ostr is None
    assert params_of(first)["ostr"] is None
    second = make_parser(root).parse_args(["--config", str(first.root / "params.yaml")])
    assert second.ostr is None


@pytest.mark.parametrize("config_first", [True, False])
def test_the_command_line_overrides_the_config(root: Path, config_first: bool) -> None:
    first = make_parser(root).parse_args(
        ["--f", "0.25", "--s", "old", "--plus", "4", "5", "--flag", "--opt", "1"]
    )
    config = ["--config", str(first.root / "params.yaml")]
    override = ["--f", "0.1", "--plus", "9", "--opt", "none"]
    argv = config + override if config_first else override + config
    second = make_parser(root).parse_args(argv)
    assert second.f == 0.1
    assert second.plus == [9]
    assert second.opt is None
    assert second.s == "old"
    assert second.flag is True
    saved = params_of(second)
    assert (saved["f"], saved["plus"], saved["opt"], saved["s"]) == (
        0.1,
        [9],
        None,
        "old",
    )


def test_volatile_values_are_saved_but_not_restored(root: Path) -> None:
    first = make_parser(root).parse_args(["--job", "1234", "--s", "kept"])
    assert first.job == "1234"
    assert params_of(first)["job"] == "1234"
    second = make_parser(root).parse_args(["--config", str(first.root / "params.yaml")])
    assert second.job == "none"
    assert second.s == "kept"
    third = make_parser(root).parse_args(
        ["--config", str(first.root / "params.yaml"), "--job", "99"]
    )
    assert third.job == "99"


def test_default_config_files_apply_volatile_values_too(
    root: Path, tmp_path: Path
) -> None:
    defaults = tmp_path / "defaults.yaml"
    defaults.write_text("job: from-defaults\ns: from defaults\ni: 11\nunknown: 1\n")
    parser = make_parser(root, default_config_files=[defaults])
    ns = parser.parse_args([])
    assert (ns.job, ns.s, ns.i) == ("from-defaults", "from defaults", 11)
    assert (
        make_parser(root, default_config_files=[defaults]).parse_args(["--i", "12"]).i
        == 12
    )


def test_a_config_beats_the_default_files(root: Path, tmp_path: Path) -> None:
    first = make_parser(root).parse_args(["--i", "42", "--job", "old-job"])
    defaults = tmp_path / "defaults.yaml"
    defaults.write_text("i: 11\njob: from-defaults\n")
    parser = make_parser(root, default_config_files=[str(defaults)])
    ns = parser.parse_args(["--config", str(first.root / "params.yaml")])
    assert ns.i == 42
    assert ns.job == "from-defaults"


def test_exmans_own_flags_are_never_restored(root: Path) -> None:
    first = make_parser(root).parse_args(["--tmp", "--name", "first", "--git-dirty"])
    assert first.root.parent == root / "tmp"
    saved = params_of(first)
    assert (saved["tmp"], saved["name"], saved["git_dirty"]) == (True, "first", True)
    config = str(first.root / "params.yaml")
    second = make_parser(root).parse_args(["--config", config])
    assert second.root.parent == root / "runs"
    assert (second.tmp, second.name, second.git_dirty) == (False, None, False)
    assert not second.root.name.endswith("-first")
    assert second.config_file == config
    assert (root / "index" / f"{second.root.name}.yaml").is_symlink()


def test_a_params_file_with_run_keys_only_changes_nothing(
    root: Path, tmp_path: Path
) -> None:
    config = tmp_path / "old.yaml"
    config.write_text(
        "root: runs/x\ntime: '2020-01-01T00:00:00'\nid: 99\ncommit: abc\n"
        "dirty: true\nconfig: other.yaml\nconfig_file: other.yaml\n"
    )
    ns = make_parser(root).parse_args(["--config", str(config)])
    assert ns.root.name.startswith("000001-")
    assert params_of(ns)["id"] == 1
    assert "commit" not in params_of(ns)


@pytest.mark.parametrize(
    ("text", "line"),
    [("s: [1\ni: 2\n", 2), ("s: ok\ni: 2\n  bad: indent\n", 3), ("\t- x", 1)],
)
def test_a_malformed_config_names_file_and_line(
    root: Path,
    tmp_path: Path,
    text: str,
    line: int,
    capsys: pytest.CaptureFixture[str],
) -> None:
    bad = tmp_path / "bad config.yaml"
    bad.write_text(text)
    with pytest.raises(SystemExit) as exc:
        make_parser(root).parse_args(["--config", str(bad)])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert f"{bad}, line {line}" in err
    assert not root.exists()


@pytest.mark.parametrize(
    "tag",
    [
        "!!python/object/apply:os.system ['touch {marker}']",
        "!!python/object/apply:subprocess.call [['touch', '{marker}']]",
        "!!python/object/new:subprocess.Popen [['touch', '{marker}']]",
        "!!python/name:os.system",
        "!!python/object:argparse.Namespace {{}}",
    ],
)
def test_python_tags_are_refused(
    root: Path, tmp_path: Path, tag: str, capsys: pytest.CaptureFixture[str]
) -> None:
    marker = tmp_path / "marker"
    evil = tmp_path / "evil.yaml"
    evil.write_text(f"s: {tag.format(marker=marker)}\n")
    with pytest.raises(SystemExit) as exc:
        make_parser(root).parse_args(["--config", str(evil)])
    assert exc.value.code == 2
    assert str(evil) in capsys.readouterr().err
    assert not marker.exists()
    assert not root.exists()


@pytest.mark.parametrize("text", ["- a\n- b\n", "just a string\n", "42\n"])
def test_a_config_that_is_not_a_mapping(
    root: Path, tmp_path: Path, text: str, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "list.yaml"
    bad.write_text(text)
    with pytest.raises(SystemExit) as exc:
        make_parser(root).parse_args(["--config", str(bad)])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert str(bad) in err
    assert "key: value" in err


def test_an_empty_config_changes_nothing(root: Path, tmp_path: Path) -> None:
    empty = tmp_path / "empty.yaml"
    empty.write_text("")
    ns = make_parser(root).parse_args(["--config", str(empty), "--i", "3"])
    assert (ns.i, ns.s) == (3, "default")


def test_a_missing_config_exits_2(
    root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exc:
        make_parser(root).parse_args(["--config", str(tmp_path / "nope.yaml")])
    assert exc.value.code == 2
    assert "nope.yaml" in capsys.readouterr().err


def test_the_saved_params_are_plain_safe_yaml(root: Path) -> None:
    ns = make_parser(root).parse_args(["--s", "a: b", "--star", "x y", "--f", "inf"])
    text = (ns.root / "params.yaml").read_text()
    assert "!!" not in text
    loaded = yaml.safe_load(text)
    assert loaded["s"] == "a: b"
    assert loaded["star"] == ["x y"]
    assert loaded["f"] == math.inf


@pytest.mark.parametrize(
    "spelling",
    [["--config", "{p}"], ["--config={p}"], ["--conf", "{p}"], ["--conf={p}"]],
    ids=["separate", "equals", "abbreviated", "abbreviated-equals"],
)
def test_every_spelling_of_config_restores(root: Path, spelling: list[str]) -> None:
    first = make_parser(root).parse_args(["--i", "42", "--s", "saved"])
    words = [w.format(p=first.root / "params.yaml") for w in spelling]
    again = make_parser(root).parse_args([*words, "--f", "2.5"])
    assert (again.i, again.s, again.f) == (42, "saved", 2.5)


def test_no_parser_of_its_own_looks_for_config_unless_it_may_be_given(
    root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # configargparse finds --config with a throwaway ArgumentParser, a cost
    # of every run's start: only a word that may be --config calls for one
    made: list[object] = []
    real = argparse.ArgumentParser.__init__

    def counting(self: argparse.ArgumentParser, *args: Any, **kwargs: Any) -> None:
        made.append(self)
        real(self, *args, **kwargs)

    parser = make_parser(root)
    monkeypatch.setattr(argparse.ArgumentParser, "__init__", counting)
    ns = parser.parse_args(["--i", "3"])
    assert made == []
    assert ns.i == 3
    parser.parse_args(["--co", str(ns.root / "params.yaml")])
    assert len(made) == 1
