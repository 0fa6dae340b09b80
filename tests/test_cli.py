"""The exman command, driven in-process with main([...]) against real roots,
plus one real subprocess per entry point (exman, python -m exman, bin/exman)."""

from __future__ import annotations

import io
import json
import os
import shlex
import shutil
import subprocess
import sys
import sysconfig
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

import exman
from exman.cli import build_parser, main, subcommands
from exman.record.run import Run

REPO = Path(__file__).resolve().parent.parent
COMMANDS = sorted(subcommands(build_parser()))


def make_runs(
    root: Path, *argvs: Sequence[str], fail: Sequence[int] = ()
) -> list[Path]:
    parser = exman.ExParser(root=root)
    parser.add_argument("--lr", type=float, default=0.1)
    parser.add_argument("--model", default="a")
    folders = []
    for i, argv in enumerate(argvs):
        ns = parser.parse_args(list(argv))
        if i in fail:
            with pytest.raises(ValueError), ns.safe_experiment:
                raise ValueError("asked to fail")
            folders.append(Path(root, "fails", ns.root.name))
        else:
            with ns.safe_experiment:
                print(f"training with lr={ns.lr}")
            folders.append(ns.root)
    return folders


@pytest.fixture
def runs(root: Path) -> list[Path]:
    """Runs 1-3 in runs/, 4 failed, 5 in tmp/."""
    return make_runs(
        root, [], ["--lr", "0.5"], ["--model", "b"], [], ["--tmp"], fail=[3]
    )


Exman = Callable[..., tuple[int, str, str]]


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]) -> Exman:
    """``cli("mark", "best", "1")`` -> (exit code, stdout, stderr)."""

    def call(*argv: str) -> tuple[int, str, str]:
        capsys.readouterr()
        code = main(list(argv))
        out, err = capsys.readouterr()
        return code, out, err

    return call


# -- help ---------------------------------------------------------------------------
def test_help_has_examples_and_exit_codes(cli: Exman) -> None:
    code, out, _ = cli("--help")
    assert code == 0
    assert "examples:" in out and "exit codes:" in out
    for command in COMMANDS:
        assert command in out


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help_with_an_example(cli: Exman, command: str) -> None:
    code, out, _ = cli(command, "--help")
    assert code == 0
    assert out.startswith(f"usage: exman {command}")
    examples = out.split("examples:", 1)[1]
    assert f"exman {command}" in examples


def test_the_command_exits_without_collecting_what_it_made(
    root: Path, runs: list[Path]
) -> None:
    """``exman`` (python -m exman) freezes its objects before it exits,
    after its output, with the exit code and exit handlers as before."""
    probe = (
        "import atexit, gc, runpy, sys\n"
        "atexit.register(lambda: print('frozen', gc.get_freeze_count() > 0))\n"
        f"sys.argv = ['exman', '--root', {str(root)!r}, 'ls']\n"
        "runpy.run_module('exman', run_name='__main__')\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    listed, _, last = done.stdout.rstrip().rpartition("\n")
    assert last == "frozen True"
    assert "lr" in listed and listed.count("\n") >= 3
    # main() itself, which other programs call and go on, freezes nothing
    assert main(["--root", str(root), "ls"]) == 0
    import gc

    assert gc.get_freeze_count() == 0


def test_usage_errors_exit_2(cli: Exman) -> None:
    assert cli()[0] == 2
    assert cli("frobnicate")[0] == 2
    assert cli("mark", "best")[0] == 2


def test_version(cli: Exman) -> None:
    code, out, _ = cli("--version")
    assert code == 0 and exman.__version__ in out


# -- finding the root ----------------------------------------------------------------
def test_outside_a_root_says_how_to_point_at_one(
    cli: Exman, runs: list[Path], root: Path, chdir_tmp: Path
) -> None:
    os.chdir(root.parent.parent)
    code, out, err = cli("mark", "best", "1")
    assert code == 2 and out == ""
    assert "not inside an exman root" in err
    assert "--root" in err and "EXMAN_ROOT" in err
    assert "Traceback" not in err


def test_root_from_cwd_parent_option_and_env(
    cli: Exman,
    runs: list[Path],
    root: Path,
    chdir_tmp: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    os.chdir(runs[0])  # a parent is the root
    assert cli("mark", "a", "1")[0] == 0
    os.chdir(root.parent)
    assert cli("--root", str(root), "mark", "b", "1")[0] == 0
    assert cli("mark", "c", "1", "--root", str(root))[0] == 0  # after the command
    monkeypatch.setenv("EXMAN_ROOT", str(root))
    assert cli("mark", "d", "1")[0] == 0
    assert sorted(p.name for p in (root / "marked").iterdir()) == ["a", "b", "c", "d"]
    code, _, err = cli("--root", str(root.parent), "mark", "e", "1")
    assert code == 2 and "is not an exman root" in err


# -- mark / unmark ------------------------------------------------------------------
def test_mark_reports_missing_ids_by_number(
    cli: Exman, runs: list[Path], root: Path
) -> None:
    code, out, err = cli("--root", str(root), "mark", "best/lr", "1-2", "7", "9-10")
    assert code == 1
    assert out.count("marked run") == 2
    assert "runs 7, 9-10 were not found" in err
    assert (root / "marked" / "best" / "lr" / runs[0].name).is_symlink()
    code, out, err = cli("--root", str(root), "unmark", "best/lr", "1", "2")
    assert code == 0 and out.count("unmarked run") == 2
    assert not (root / "marked" / "best").exists()


@pytest.mark.parametrize("key", ["/etc", "../outside", "a/../../b"])
def test_mark_refuses_escaping_key(
    cli: Exman, runs: list[Path], root: Path, key: str
) -> None:
    code, out, err = cli("--root", str(root), "mark", key, "1")
    assert code == 2 and out == ""
    assert "mark key" in err and repr(key) in err
    assert list((root / "marked").iterdir()) == []


def test_bad_id_is_a_usage_error(cli: Exman, runs: list[Path], root: Path) -> None:
    code, _, err = cli("--root", str(root), "delete", "3;rm")
    assert code == 2 and "'3;rm' is not a run id" in err
    assert runs[2].is_dir()


# -- delete / restore ---------------------------------------------------------------
def test_delete_and_restore(cli: Exman, runs: list[Path], root: Path) -> None:
    link = root / "index" / f"{runs[1].name}.yaml"
    code, out, err = cli("--root", str(root), "delete", "2", "4")
    assert code == 0
    assert "removed run 2 from the index" in out
    assert "run 4 is in fails/" in err
    assert not os.path.lexists(link) and runs[1].is_dir()
    code, out, err = cli("--root", str(root), "restore", "2", "4", "12")
    assert code == 1
    assert "restored run 2" in out
    assert "refused: run 4 is in fails/" in err and "run 12 was not found" in err
    assert link.is_symlink()


class FakeTerminal(io.StringIO):
    """stdin of a terminal where the user types ``answer``."""

    def isatty(self) -> bool:
        return True


def test_delete_all_refuses_without_terminal_or_yes(
    cli: Exman, runs: list[Path], root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO("y\n"))
    code, out, err = cli("--root", str(root), "delete", "--all", "1")
    assert code == 2 and out == ""
    assert "--yes" in err
    assert runs[0].is_dir()


@pytest.mark.parametrize(
    "answer, deleted", [("y\n", True), ("yes\n", True), ("n\n", False), ("\n", False)]
)
def test_delete_all_asks_on_a_terminal(
    cli: Exman,
    runs: list[Path],
    root: Path,
    monkeypatch: pytest.MonkeyPatch,
    answer: str,
    deleted: bool,
) -> None:
    monkeypatch.setattr(sys, "stdin", FakeTerminal(answer))
    code, _, err = cli("--root", str(root), "delete", "--all", "1", "4")
    assert "delete 2 run folder(s) (1, 4)" in err
    assert code == (0 if deleted else 2)
    assert runs[0].exists() is not deleted and runs[3].exists() is not deleted
    if not deleted:
        assert "nothing deleted" in err


def test_delete_all_yes(cli: Exman, runs: list[Path], root: Path) -> None:
    cli("--root", str(root), "mark", "best", "1", "5")
    code, out, err = cli("--root", str(root), "delete", "--all", "--yes", "1", "5", "8")
    assert code == 1 and "run 8 was not found" in err
    assert "deleted run 1" in out and "deleted run 5" in out
    assert not runs[0].exists() and not runs[4].exists()
    assert not (root / "marked" / "best").exists()


# -- gc -----------------------------------------------------------------------------
def test_gc(cli: Exman, runs: list[Path], root: Path) -> None:
    code, out, _ = cli("--root", str(root), "gc", "--dry-run")
    assert code == 0 and f"would remove tmp run 5: tmp/{runs[4].name}" in out
    assert runs[4].is_dir()
    code, _, _ = cli("--root", str(root), "gc", "--older-than", "1d")
    assert code == 0 and runs[4].is_dir()
    code, out, _ = cli("--root", str(root), "gc")
    assert code == 0 and "tmp run 5" in out and not runs[4].exists()
    code, out, err = cli("--root", str(root), "gc")
    assert code == 0 and out == "" and "nothing to remove" in err
    assert cli("--root", str(root), "gc", "--older-than", "soon")[0] == 2


# -- show ---------------------------------------------------------------------------
def test_show(cli: Exman, runs: list[Path], root: Path) -> None:
    code, out, _ = cli("--root", str(root), "show", "2")
    assert code == 0
    for piece in (
        "run 2",
        "completed",
        "lr",
        "0.5",
        "params.yaml",
        "log.txt",
        "training with lr=0.5",
        "host",
        "started",
    ):
        assert piece in out
    code, out, _ = cli("--root", str(root), "show", "4")
    assert "failed" in out and "ValueError: asked to fail" in out
    code, out, _ = cli("--root", str(root), "show", "2", "--format", "json")
    data = json.loads(out)
    assert data["params"]["lr"] == 0.5 and data["status"] == "completed"
    code, out, err = cli("--root", str(root), "show", "77")
    assert code == 1 and "run 77 not found" in err


def test_show_gives_results_and_last_metrics(cli: Exman, root: Path) -> None:
    parser = exman.ExParser(root=root)
    parser.add_argument("--lr", type=float, default=0.1)
    ns = parser.parse_args([])
    with ns.safe_experiment:
        for step in range(3):
            ns.run.log(step=step, loss=1.0 / (step + 1), acc=0.5)
        ns.run.result(acc=0.75)
        exman.record.metrics.flush_all()
    code, out, _ = cli("--root", str(root), "show", "1")
    assert code == 0
    results = out.split("results:\n", 1)[1].split("\n\n", 1)[0]
    assert "acc   0.75" in results  # the result wins over the last logged value
    assert "loss  0.333" in results  # a metric without a result: its last value
    code, out, _ = cli("--root", str(root), "show", "1", "--format", "json")
    assert json.loads(out)["outcome"] == {"loss": 1 / 3, "acc": 0.75}


# -- rerun --------------------------------------------------------------------------
def test_rerun_dry_run_prints_the_command(
    cli: Exman, runs: list[Path], root: Path
) -> None:
    code, out, _ = cli(
        "--root",
        str(root),
        "rerun",
        "2",
        "--dry-run",
        "--",
        "--model",
        "it's; here",
        "--",
        "tail",
    )
    assert code == 0
    words = shlex.split(out.split("&&", 1)[1])
    assert words[0] == f"EXMAN_ROOT={root}"
    assert words[-6:] == [
        "--config",
        str(runs[1] / "params.yaml"),
        "--model",
        "it's; here",
        "--",
        "tail",
    ]
    assert len(list((root / "runs").iterdir())) == 3  # nothing was run


def test_rerun_of_a_run_without_record(
    cli: Exman, runs: list[Path], root: Path
) -> None:
    (runs[0] / "run.json").unlink()
    code, _, err = cli("--root", str(root), "rerun", "1")
    assert code == 2 and "exman 0.1.9" in err and "--config" in err


def test_rerun_for_real(
    cli: Exman,
    make_script: Callable[..., Path],
    run: Callable[..., subprocess.CompletedProcess[str]],
    tmp_path: Path,
) -> None:
    script = make_script()
    run(script, "--lr", "0.3", "--layers", "4", "5", "--name", "first", check=True)
    root = tmp_path / "exman"
    code, _, err = cli("--root", str(root), "rerun", "1", "--", "--epochs", "7")
    assert code == 0, err
    assert "re-ran run 1 as run 2: exit code 0" in err
    old = Run(next((root / "runs").glob("000001-*"))).params
    new = Run(next((root / "runs").glob("000002-*"))).params
    assert new["epochs"] == 7 and old["epochs"] == 3
    for key in ("lr", "layers", "model", "wd", "flag"):
        assert new[key] == old[key]
    assert new["name"] is None  # --name is never restored by --config


def test_rerun_passes_on_the_exit_code(
    cli: Exman,
    make_script: Callable[..., Path],
    run: Callable[..., subprocess.CompletedProcess[str]],
    tmp_path: Path,
) -> None:
    script = make_script()
    run(script, check=True)
    code, _, err = cli(
        "--root", str(tmp_path / "exman"), "rerun", "1", "--", "--fail", "exit"
    )
    assert code == 3 and "exit code 3" in err


# -- the entry points, for real -------------------------------------------------------
def _console_script() -> str:
    """The ``exman`` script that installing the package put beside this Python.

    Only there: a script found elsewhere on PATH may belong to another
    interpreter, and a missing one is a broken install, which fails the test.
    """
    for folder in (sysconfig.get_path("scripts"), os.path.dirname(sys.executable)):
        found = shutil.which("exman", path=folder)
        if found is not None:
            return found
    pytest.fail(
        "the exman console script is not installed beside "
        f"{sys.executable}: pip install -e . makes it",
        pytrace=False,
    )


@pytest.mark.parametrize("entry", ["exman", "python -m exman", "bin/exman"])
def test_entry_points(entry: str, runs: list[Path], root: Path, tmp_path: Path) -> None:
    if entry == "exman":
        argv = [_console_script()]
    elif entry == "python -m exman":
        argv = [sys.executable, "-m", "exman"]
    else:
        argv = [sys.executable, str(REPO / "bin" / "exman")]
    env = dict(os.environ, EXMAN_ROOT=str(root))
    proc = subprocess.run(
        [*argv, "mark", "best", "1", "9"],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=60,
    )
    assert proc.returncode == 1, proc.stderr
    assert "marked run 1" in proc.stdout and "run 9 was not found" in proc.stderr
    help_proc = subprocess.run(
        [*argv, "--help"], capture_output=True, text=True, cwd=tmp_path, timeout=60
    )
    assert help_proc.returncode == 0 and help_proc.stdout.startswith("usage: exman")


def test_commands_other_than_sweep_do_not_import_the_sweep_package(
    runs: list[Path], root: Path
) -> None:
    """The sweep's options cost its package's imports: only ``exman sweep``
    (and the full help) pays them; ``exman --help`` reads the same either way."""
    probe = (
        "import sys; from exman.cli import main; code = main(sys.argv[1:]); "
        "sys.stdout.flush(); "
        "seen = 'SWEEP' if 'exman.sweep' in sys.modules else 'NO SWEEP'; "
        "print(seen, file=sys.stderr); "
        "sys.exit(code)"
    )
    for argv in (["ls"], ["--root", str(root), "show", "1"], ["ls", "--help"]):
        done = subprocess.run(
            [sys.executable, "-c", probe, *argv],
            cwd=root.parent,
            capture_output=True,
            text=True,
        )
        assert done.returncode == 0, done.stderr
        assert done.stderr.strip().endswith("NO SWEEP"), (argv, done.stderr)
    full = io.StringIO()
    build_parser().print_help(full)
    for argv in (["--help"], ["--help", "ls"], ["-h", "ls", "-a"]):
        shown = subprocess.run(
            [sys.executable, "-m", "exman", *argv], capture_output=True, text=True
        )
        assert shown.stdout == full.getvalue(), argv
    assert "Run a grid, random search" in full.getvalue()
    sweep_help = subprocess.run(
        [sys.executable, "-m", "exman", "sweep", "--help"],
        capture_output=True,
        text=True,
    )
    assert sweep_help.returncode == 0 and "--dry-run" in sweep_help.stdout


def test_each_command_alone_is_the_command_it_runs(root: Path) -> None:
    """``exman ls`` makes the parser of ``ls`` only; each adding function
    must be named after the command it adds, or that would fail."""
    from exman.cli import COMMANDS, command_name

    names = [command_name(add) for add in COMMANDS]
    assert names == list(subcommands(build_parser()))
    for name in names:
        assert list(subcommands(build_parser(name))) == [name]
    done = subprocess.run(
        [sys.executable, "-m", "exman", "--root", str(root), "lss"],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 2
    assert "invalid choice: 'lss'" in done.stderr and "'sweep'" in done.stderr
