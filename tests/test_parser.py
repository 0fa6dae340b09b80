"""ExParser: the run folder, its params.yaml and links, names, marks, checks."""

from __future__ import annotations

import argparse
import datetime
import json
import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

import exman
from exman.record.safe import SafeExperiment

#: ``<id>-<YYYY-mm-dd-HH-MM-SS>[-<name>]``
FOLDER = re.compile(r"^(\d+)-(\d{4}-\d{2}-\d{2}-\d{2}-\d{2}-\d{2})(?:-(.*))?$")

AWKWARD_NAMES = [
    "my run",
    "it's",
    'say "hi"',
    "a;b",
    "ünïcödé-☃",
    "$(touch x)",
    "x.y",
    "-lead",
]
REFUSED_NAMES = ["../../x", "a/b", "..", "x..y", ".", "a\\b", "/abs", "..."]


def make_parser(root: Path, **kwargs: Any) -> exman.ExParser:
    parser = exman.ExParser(root=root, **kwargs)
    parser.add_argument("--lr", type=float, default=0.1)
    parser.add_argument("--model", default="resnet")
    return parser


def tree(path: Path) -> set[str]:
    """Every path below ``path`` (links not followed), relative to it."""
    found = set()
    for folder, dirs, files in os.walk(path):
        for entry in dirs + files:
            found.add(os.path.relpath(os.path.join(folder, entry), path))
    return found


def only_child(folder: Path) -> Path:
    children = list(folder.iterdir())
    assert len(children) == 1, children
    return children[0]


# -- helpers exported by exman ------------------------------------------------
def test_simpleroot_is_the_folder_exman_next_to_the_file(tmp_path: Path) -> None:
    assert exman.simpleroot(tmp_path / "main.py") == tmp_path / "exman"
    assert exman.simpleroot(str(tmp_path / "sub" / "x.py")) == tmp_path / "sub/exman"


def test_simpleroot_of_a_relative_file_is_absolute(chdir_tmp: Path) -> None:
    root = exman.simpleroot("main.py")
    assert root.is_absolute()
    assert root == chdir_tmp / "exman"


@pytest.mark.parametrize("text", ["None", "none", "null", "NULL", "Null"])
def test_optional_gives_none(text: str) -> None:
    assert exman.optional(int)(text) is None
    assert exman.optional(float)(None) is None


@pytest.mark.parametrize(
    ("kind", "text", "value"),
    [(int, "3", 3), (float, "1e-5", 1e-5), (str, "nonesuch", "nonesuch")],
)
def test_optional_converts_everything_else(
    kind: Callable[[str], Any], text: str, value: object
) -> None:
    converted = exman.optional(kind)(text)
    assert converted == value
    assert type(converted) is kind


def test_optional_in_a_parser(root: Path) -> None:
    parser = exman.ExParser(root=root)
    parser.add_argument("--wd", type=exman.optional(float), default=1.0)
    assert parser.parse_args(["--wd", "null"]).wd is None
    assert parser.parse_args(["--wd", "0.5"]).wd == 0.5


def test_optional_refuses_what_its_type_refuses(
    root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    parser = exman.ExParser(root=root)
    parser.add_argument("--wd", type=exman.optional(float))
    with pytest.raises(SystemExit) as exc:
        parser.parse_args(["--wd", "abc"])
    assert exc.value.code == 2
    assert "'abc'" in capsys.readouterr().err


def test_argument_error_is_argparses() -> None:
    assert exman.ArgumentError is argparse.ArgumentError


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("true", True),
        ("True", True),
        ("yes", True),
        ("1", True),
        ("t", True),
        ("false", False),
        ("FALSE", False),
        ("no", False),
        ("0", False),
        ("f", False),
    ],
)
def test_type_bool(root: Path, text: str, value: bool) -> None:
    parser = exman.ExParser(root=root)
    parser.add_argument("--b", type=bool, default=not value)
    assert parser.parse_args(["--b", text]).b is value


@pytest.mark.parametrize("text", ["maybe", "", "2", "truthy"])
def test_type_bool_refuses_other_words(
    root: Path, text: str, capsys: pytest.CaptureFixture[str]
) -> None:
    parser = exman.ExParser(root=root)
    parser.add_argument("--b", type=bool, default=False)
    with pytest.raises(SystemExit) as exc:
        parser.parse_args(["--b", text])
    assert exc.value.code == 2
    assert f"invalid bool value {text!r}" in capsys.readouterr().err
    assert not (root / "runs").exists()


# -- the run folder -----------------------------------------------------------
def test_parse_args_creates_the_run_folder(root: Path) -> None:
    ns = make_parser(root).parse_args(["--lr", "0.5"])

    folder = only_child(root / "runs")
    match = FOLDER.match(folder.name)
    assert match is not None
    assert match.group(1) == "000001"
    assert match.group(3) is None
    assert isinstance(ns.root, Path)
    assert ns.root.is_absolute()
    assert ns.root == folder
    assert isinstance(ns.safe_experiment, SafeExperiment)

    text = (folder / "params.yaml").read_text()
    params = yaml.safe_load(text)
    assert params["lr"] == 0.5
    assert params["model"] == "resnet"
    assert params["root"] == f"runs/{folder.name}"
    assert params["id"] == 1
    for flag in ("tmp", "name", "git_dirty"):
        assert flag in params
    # the layout of exman 0.1.9: the sorted arguments, then time and id
    keys = list(params)
    assert keys[-2:] == ["time", "id"]
    assert keys[:-2] == sorted(keys[:-2])
    assert text.endswith("id: 1\n")
    time = datetime.datetime.strptime(params["time"], "%Y-%m-%dT%H:%M:%S")
    assert time.strftime("%Y-%m-%d-%H-%M-%S") == match.group(2)


def test_the_documented_signature(root: Path, tmp_path: Path) -> None:
    defaults = tmp_path / "defaults.yaml"
    defaults.write_text("model: vit\n")
    parser = exman.ExParser(
        description="description of the script",
        root=root,
        zfill=4,
        automark=("model",),
        default_config_files=[defaults],
        git=None,
        git_assert_clean=False,
    )
    parser.add_argument("--model", default="resnet")
    ns = parser.parse_args([])
    assert ns.model == "vit"
    assert ns.root.name.startswith("0001-")
    assert (root / "marked" / "model" / "vit" / ns.root.name).is_symlink()
    assert "commit" not in exman.Run(ns.root).params
    assert parser.description == "description of the script"


def test_the_index_links_the_params_relatively(root: Path) -> None:
    ns = make_parser(root).parse_args([])
    link = root / "index" / f"{ns.root.name}.yaml"
    assert link.is_symlink()
    assert os.readlink(link) == f"../runs/{ns.root.name}/params.yaml"
    assert link.resolve() == (ns.root / "params.yaml").resolve()


def test_the_root_can_move(root: Path, tmp_path: Path) -> None:
    ns = make_parser(root).parse_args([])
    moved = tmp_path / "elsewhere"
    root.rename(moved)
    link = moved / "index" / f"{ns.root.name}.yaml"
    assert yaml.safe_load(link.read_text())["id"] == 1


def test_ids_count_up_and_zfill_is_respected(root: Path) -> None:
    parser = make_parser(root, zfill=3)
    first = parser.parse_args([]).root.name
    second = parser.parse_args(["--name", "b"]).root.name
    assert first.startswith("001-")
    assert second.startswith("002-")
    assert second.endswith("-b")
    assert exman.Run(root / "runs" / second).id == 2


def test_a_long_id_is_not_cut(root: Path) -> None:
    ns = make_parser(root, zfill=1).parse_args([])
    assert ns.root.name.startswith("1-")


def test_no_root_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="EXMAN_ROOT"):
        exman.ExParser()


def test_exman_root_overrides_the_root_in_code(
    root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    other = tmp_path / "from-env"
    monkeypatch.setenv("EXMAN_ROOT", str(other))
    ns = make_parser(root).parse_args([])
    assert ns.root.parent == other / "runs"
    assert not root.exists()
    monkeypatch.delenv("EXMAN_ROOT")
    assert make_parser(root).parse_args([]).root.parent == root / "runs"


def test_exman_root_alone_is_enough(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EXMAN_ROOT", str(tmp_path / "env root"))
    ns = exman.ExParser().parse_args([])
    assert ns.root.parent == tmp_path / "env root" / "runs"


def test_exman_root_in_a_subprocess(
    make_script: Callable[..., Path],
    run: Callable[..., Any],
    tmp_path: Path,
) -> None:
    script = make_script()
    other = tmp_path / "from env"
    run(script, env={"EXMAN_ROOT": str(other)}, check=True)
    assert only_child(other / "runs").name.startswith("000001-")
    assert not (tmp_path / "exman").exists()


@pytest.mark.parametrize(
    ("flags", "dest"),
    [
        (["--root"], "root"),
        (["--time"], "time"),
        (["-i", "--id"], "id"),
        (["--run-dir"], "root"),
        (["--safe-experiment"], "safe_experiment"),
    ],
)
def test_exmans_own_keys_cannot_be_arguments(
    root: Path, flags: list[str], dest: str
) -> None:
    parser = exman.ExParser(root=root)
    kwargs = {"dest": dest} if flags == ["--run-dir"] else {}
    with pytest.raises(ValueError, match=f"dest {dest!r} is exman's"):
        parser.add_argument(*flags, **kwargs)


# -- validators and setters ---------------------------------------------------
@pytest.mark.parametrize(
    "answer", [False, 0, "", [], "raise", 1, "yes", "lr is too large", [1]]
)
def test_a_validator_refuses_before_any_folder(root: Path, answer: object) -> None:
    parser = make_parser(root)

    def check(ns: argparse.Namespace) -> object:
        if answer == "raise":
            raise ValueError("no")
        return answer

    parser.register_validator(check, "lr={lr} does not go with {model}")
    with pytest.raises(exman.ArgumentError) as exc:
        parser.parse_args(["--lr", "0.5", "--model", "vit"])
    assert str(exc.value) == "lr=0.5 does not go with vit"
    if answer == "raise":
        assert isinstance(exc.value.__cause__, ValueError)
    assert not (root / "runs").exists() or not any((root / "runs").iterdir())
    # and no id was taken
    assert make_parser(root).parse_args([]).root.name.startswith("000001-")


def _numpy_bool(value: bool) -> object:
    numpy = pytest.importorskip("numpy")
    return numpy.bool_(value)


@pytest.mark.parametrize("answer", [None, True, "numpy"])
def test_a_validator_that_passes(root: Path, answer: object) -> None:
    if answer == "numpy":
        answer = _numpy_bool(True)
    parser = make_parser(root)
    seen: list[float] = []

    def check(ns: argparse.Namespace) -> object:
        seen.append(ns.lr)
        return answer

    parser.register_validator(check)
    ns = parser.parse_args(["--lr", "0.5"])
    assert seen == [0.5]
    assert ns.root.is_dir()


def test_numpys_false_refuses(root: Path) -> None:
    parser = make_parser(root)
    parser.register_validator(lambda ns: _numpy_bool(ns.lr < 1), "lr={lr}")
    with pytest.raises(exman.ArgumentError, match=r"lr=2\.0"):
        parser.parse_args(["--lr", "2"])
    assert parser.parse_args(["--lr", "0.5"]).root.is_dir()


def test_a_validators_own_argument_error_goes_through(root: Path) -> None:
    parser = make_parser(root)
    mine = argparse.ArgumentError(None, "my own words")

    def check(ns: argparse.Namespace) -> bool:
        raise mine

    parser.register_validator(check, "not this")
    with pytest.raises(exman.ArgumentError) as exc:
        parser.parse_args([])
    assert exc.value is mine


def test_a_validator_must_be_callable(root: Path) -> None:
    with pytest.raises(TypeError):
        make_parser(root).register_validator("lr > 0")  # type: ignore[arg-type]


def test_setters_run_before_validators_and_are_saved(root: Path) -> None:
    parser = make_parser(root)
    order: list[str] = []

    def setter(ns: argparse.Namespace) -> None:
        order.append("setter")
        ns.lr = ns.lr * 2
        ns.derived = f"{ns.model}-{ns.lr}"

    def validator(ns: argparse.Namespace) -> bool:
        order.append("validator")
        return ns.lr == 1.0

    parser.register_setter(setter)
    parser.register_validator(validator, "the setter did not run first")
    ns = parser.parse_args(["--lr", "0.5"])
    assert order == ["setter", "validator"]
    params = yaml.safe_load((ns.root / "params.yaml").read_text())
    assert params["lr"] == 1.0
    assert params["derived"] == "resnet-1.0"


# -- automark -----------------------------------------------------------------
def test_automark_links_the_run(root: Path) -> None:
    ns = make_parser(root, automark=["model", "lr"]).parse_args(
        ["--model", "vit", "--lr", "0.5"]
    )
    link = root / "marked" / "model" / "vit" / "lr" / "0.5" / ns.root.name
    assert link.is_symlink()
    target = os.readlink(link)
    assert not os.path.isabs(target)
    assert target == f"../../../../../runs/{ns.root.name}"
    assert link.resolve() == ns.root.resolve()
    assert (link / "params.yaml").is_file()


def test_an_automark_name_that_is_no_argument_is_a_constant_folder(
    root: Path,
) -> None:
    # exman 0.1.9's team example: automark=["user", "constant"]
    ns = make_parser(root, automark=["model", "constant"]).parse_args(
        ["--model", "vit"]
    )
    link = root / "marked" / "model" / "vit" / "constant" / ns.root.name
    assert link.is_symlink() and link.resolve() == ns.root.resolve()


@pytest.mark.parametrize(
    "value",
    [
        "a/b",
        "..",
        "../..",
        "../../../outside",
        ".",
        "x..y",
        "a\\b",
        "/abs",
        "",
        *AWKWARD_NAMES,
    ],
)
def test_automark_values_stay_inside_marked(
    root: Path, tmp_path: Path, value: str
) -> None:
    ns = make_parser(root, automark=["model"]).parse_args([f"--model={value}"])
    links = [root / "marked" / p for p in tree(root / "marked")]
    links = [p for p in links if p.is_symlink()]
    assert len(links) == 1
    parts = links[0].relative_to(root / "marked").parts
    assert parts[0] == "model"
    assert parts[2] == ns.root.name
    assert len(parts) == 3
    assert parts[1] not in ("", ".", "..")
    assert links[0].resolve() == ns.root.resolve()
    assert set(os.listdir(tmp_path)) == {"exman"}


def test_automark_values_do_not_collide(root: Path) -> None:
    parser = make_parser(root, automark=["model"])
    first = parser.parse_args(["--model", "a/b"])
    second = parser.parse_args(["--model", "a%2Fb"])
    folders = {p for p in (root / "marked" / "model").iterdir()}
    assert len(folders) == 2
    found = {os.listdir(f)[0] for f in folders}
    assert found == {first.root.name, second.root.name}


def test_tmp_runs_are_neither_indexed_nor_marked(root: Path) -> None:
    ns = make_parser(root, automark=["model"]).parse_args(["--tmp"])
    assert ns.root.parent == root / "tmp"
    assert list((root / "index").iterdir()) == []
    assert list((root / "marked").iterdir()) == []
    assert list((root / "runs").iterdir()) == []
    params = yaml.safe_load((ns.root / "params.yaml").read_text())
    assert params["root"] == f"tmp/{ns.root.name}"
    assert params["tmp"] is True


def test_tmp_runs_share_the_ids(root: Path) -> None:
    parser = make_parser(root)
    assert parser.parse_args(["--tmp"]).root.name.startswith("000001-")
    assert parser.parse_args([]).root.name.startswith("000002-")


# -- --name -------------------------------------------------------------------
@pytest.mark.parametrize("name", AWKWARD_NAMES)
def test_names_with_awkward_characters(root: Path, name: str) -> None:
    ns = make_parser(root).parse_args([f"--name={name}"])
    assert ns.root.parent == root / "runs"
    match = FOLDER.match(ns.root.name)
    assert match is not None
    assert match.group(3) == name
    assert yaml.safe_load((ns.root / "params.yaml").read_text())["name"] == name
    assert (root / "index" / f"{ns.root.name}.yaml").resolve().is_file()


@pytest.mark.parametrize("name", REFUSED_NAMES)
def test_names_that_leave_the_folder_are_refused(
    root: Path, tmp_path: Path, name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    make_parser(root).parse_args([])  # the root exists already
    before = tree(tmp_path)
    with pytest.raises(SystemExit) as exc:
        make_parser(root).parse_args([f"--name={name}"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert repr(name) in err
    assert "refused" in err
    assert tree(tmp_path) == before


@pytest.mark.parametrize("name", ["x" * 201, "ü" * 101])
def test_a_name_too_long_for_a_folder_is_refused(
    root: Path, name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exc:
        make_parser(root).parse_args(["--name", name])
    assert exc.value.code == 2
    assert "--name is too long" in capsys.readouterr().err
    assert not root.exists()


@pytest.mark.parametrize("name", ["x" * 200, "ü" * 100])
def test_the_longest_name_fits(root: Path, name: str) -> None:
    ns = make_parser(root, zfill=10).parse_args(["--name", name])
    assert ns.root.name.endswith(name)
    assert (root / "index" / f"{ns.root.name}.yaml").is_symlink()


def test_a_refused_name_exits_2_in_a_real_process(
    make_script: Callable[..., Path], run: Callable[..., Any], tmp_path: Path
) -> None:
    script = make_script()
    before = tree(tmp_path.parent)
    proc = run(script, "--name", "../../x")
    assert proc.returncode == 2
    assert "--name '../../x' is refused" in proc.stderr
    assert proc.stdout == ""
    assert tree(tmp_path.parent) == before


# -- output, help, imports ----------------------------------------------------
def test_help_lists_exmans_flags(
    root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exc:
        make_parser(root).parse_args(["--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    for flag in ("--config", "--tmp", "--name", "--git-dirty", "--lr"):
        assert flag in out
    assert not root.exists()


def test_parse_args_is_quiet_and_light(
    make_script: Callable[..., Path], run: Callable[..., Any], tmp_path: Path
) -> None:
    body = """\
        import json
        heavy = (
            "pandas", "git", "rich", "submitit", "ray", "numpy", "filelock",
            "subprocess", "dataclasses", "inspect",
        )
        loaded = sorted({m.split(".")[0] for m in sys.modules} & set(heavy))
        (args.root / "modules.json").write_text(json.dumps(loaded))
    """
    proc = run(make_script(body), "--lr", "0.2", check=True)
    assert proc.stdout == ""
    assert proc.stderr == ""
    folder = only_child(tmp_path / "exman" / "runs")
    assert json.loads((folder / "modules.json").read_text()) == []


#: what a run's start does without: each costs it a fraction of a millisecond
#: or more, and is imported by the runs that use it
SLOW_MODULES = {
    "typing",
    "dataclasses",
    "inspect",
    # a heartbeat of _thread; traceback (with linecache, tokenize) imported
    # by a failure
    "threading",
    "traceback",
    "linecache",
    "tokenize",
    # its enums: the SIGTERM handler is set through the C module
    "signal",
    # pathlib's import for Path.as_uri, left to its first call (4 % of the
    # floor's instructions; exman.record.lazyurl)
    "urllib.parse",
    "ipaddress",
    "exman.record.capture",
    # by exman.log / exman.result, a distributed launch, a validator, a reader
    # of params.yaml, the names of exman 0.1.9
    "exman.record.metrics",
    "exman.record.ranks",
    "exman.record.checks",
    "exman.record.yamlsize",
    "exman.record.legacy",
    # git, for a script in a work tree or ExParser(git=...)
    "exman.record.vcs",
    # the restoring of positionals, for a parser that has some
    "exman.record.positionals",
    # the package itself, by a lazy attribute of exman that used it (1.2 M
    # instructions, 0.5 % of a run's start)
    "importlib",
}


def _bare(code: str, root: Path) -> str:
    """What ``code`` prints, run with ``root`` as its argument by an
    interpreter without site-packages' start-up hooks (``-S``)."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
    proc = subprocess.run(
        [sys.executable, "-S", "-c", code, str(root)],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return proc.stdout


def test_pyyaml_is_imported_before_the_run_folder_is_made(tmp_path: Path) -> None:
    """PyYAML is imported when a params.yaml is first written (tens of ms);
    that must happen before the run's folder exists, not between it and its
    run.json: a SIGTERM there (no handler yet) would leave a folder without
    a record."""
    code = (
        "import sys, exman\n"
        "from exman.record import params, store\n"
        "real = store.Root.allocate\n"
        "def allocate(self, **options):\n"
        "    print('yaml' in sys.modules, params._dumper is not None)\n"
        "    return real(self, **options)\n"
        "store.Root.allocate = allocate\n"
        "p = exman.ExParser(root=sys.argv[1])\n"
        "p.parse_args([])\n"
    )
    assert _bare(code, tmp_path / "exman") == "True True\n"


def test_parse_args_leaves_slow_modules_out(tmp_path: Path) -> None:
    # typing alone costs a few ms of every run's start; without site (-S) no
    # .pth file of the interpreter has imported it before exman
    code = (
        "import sys, exman\n"
        "p = exman.ExParser(root=sys.argv[1])\n"
        "p.add_argument('--lr')\n"
        "p.parse_args([])\n"
        f"slow = {sorted(SLOW_MODULES)!r}\n"
        "print(sorted(set(slow) & set(sys.modules)))\n"
    )
    assert _bare(code, tmp_path / "exman") == "[]\n"


def test_parse_args_compiles_no_pattern_of_exmans(tmp_path: Path) -> None:
    # the first compile of a regular expression costs up to 0.3 ms: the
    # start of a run knows its id and reads its counter without one
    code = (
        "import re, sys\n"
        "seen = []\n"
        "real = re.compile\n"
        "def spy(pattern, flags=0):\n"
        "    caller = sys._getframe(1).f_globals.get('__name__', '')\n"
        "    if caller.startswith('exman'):\n"
        "        seen.append(pattern)\n"
        "    return real(pattern, flags)\n"
        "re.compile = spy\n"
        "import exman\n"
        "p = exman.ExParser(root=sys.argv[1])\n"
        "p.add_argument('--lr')\n"
        "for _ in range(2):\n"
        "    ns = p.parse_args([])\n"
        "print(seen, ns.root.name[:6])\n"
    )
    assert _bare(code, tmp_path / "exman") == "[] 000002\n"


@pytest.mark.parametrize(
    "name",
    [
        "000042-2026-11-22-10-31-07",
        "42-2026-11-22-10-31-07-my run",
        "000042-2026-11-22-10-31-07\n",
        "000042-2026-11-22-10-31-07x",
        "000042-2026-11-22-10-31-0",
        "-2026-11-22-10-31-07",
        "٤٢-2026-11-22-10-31-07",
        "42-2026-11-22-10-31-07.yaml",
        "1000000000000000000-2026-11-22-10-31-07",
        "x42-2026-11-22-10-31-07",
    ],
)
def test_run_ids_read_from_names_as_the_pattern_says(name: str) -> None:
    from exman.record import names

    m = re.match(names.RUN_TEXT, name)
    expected = int(m.group(1)) if m and int(m.group(1)) < names.MAX_ID else None
    assert names.run_id(name) == expected
    assert names.RUN_PATTERN.pattern == names.RUN_TEXT


def test_verbose_prints_params_and_links(
    root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ns = make_parser(root, verbose=True).parse_args(["--lr", "0.5"])
    out = capsys.readouterr().out
    assert "lr: 0.5" in out
    assert "id: 1" in out
    assert str(root / "index" / f"{ns.root.name}.yaml") in out
