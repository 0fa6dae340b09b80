"""safe_experiment in real processes: the log, failures, exits and Ctrl-C."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from _run_helpers import record, the_run

import exman

#: a terminal's Ctrl-C even when the test runner was started with SIGINT
#: ignored (a background job), which the child would inherit
CTRL_C_AS_ON_A_TERMINAL = (
    "import signal; signal.signal(signal.SIGINT, signal.default_int_handler)"
)


def links(root: Path) -> list[Path]:
    return [
        Path(folder, entry)
        for sub in ("index", "marked")
        for folder, dirs, files in os.walk(root / sub)
        for entry in dirs + files
        if Path(folder, entry).is_symlink()
    ]


def start_and_wait_ready(script: Path, *args: str) -> subprocess.Popen[str]:
    """Start ``script`` and return once it printed ``ready``."""
    env = dict(os.environ)
    env.pop("EXMAN_ROOT", None)
    proc = subprocess.Popen(
        [sys.executable, str(script), *args],
        cwd=script.parent,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert line == "ready\n", line + proc.communicate(timeout=30)[1]
    return proc


def test_stdout_and_stderr_go_to_the_log_and_the_console(
    make_script: Callable[..., Path], run: Callable[..., Any], tmp_path: Path
) -> None:
    body = """\
        print("before the block")
        with args.safe_experiment:
            print("to stdout ü")
            print("to stderr ☃", file=sys.stderr)
            sys.stdout.write("no newline")
        print("after the block")
    """
    proc = run(make_script(body), check=True)
    assert "to stdout ü" in proc.stdout
    assert "no newline" in proc.stdout
    assert "to stderr ☃" in proc.stderr
    assert "after the block" in proc.stdout

    folder = the_run(tmp_path / "exman")
    assert folder.parent.name == "runs"
    log = (folder / "log.txt").read_text()
    assert "to stdout ü\n" in log
    assert "to stderr ☃\n" in log
    assert "no newline" in log
    assert "before the block" not in log
    assert "after the block" not in log
    assert record(folder)["status"] == "completed"
    assert record(folder)["exit_code"] == 0


@pytest.mark.parametrize("where", ["runs", "tmp"])
def test_an_exception_moves_the_run_to_fails(
    make_script: Callable[..., Path],
    run: Callable[..., Any],
    tmp_path: Path,
    where: str,
) -> None:
    script = make_script(parser_kwargs=", automark=['model']")
    args = ["--fail", "raise"] + (["--tmp"] if where == "tmp" else [])
    proc = run(script, *args)
    assert proc.returncode == 1
    assert "ValueError: asked to fail" in proc.stderr

    root = tmp_path / "exman"
    folder = the_run(root)
    assert folder.parent == root / "fails"
    assert list((root / where).iterdir()) == []
    # the index link is gone; the automark (of a run in runs/) follows the run
    if where == "runs":
        assert [os.path.realpath(p) for p in links(root)] == [str(folder)]
    else:
        assert links(root) == []
    traceback = (folder / "traceback.txt").read_text()
    assert traceback.startswith("Traceback")
    assert "ValueError: asked to fail" in traceback
    assert "run folder:" in (folder / "log.txt").read_text()
    rec = record(folder)
    assert rec["status"] == "failed"
    assert rec["exit_code"] == 1
    assert rec["reason"] == "ValueError: asked to fail"
    assert exman.Run(folder).status == "failed"
    assert not any(
        name.endswith(".tmp") for _, _, files in os.walk(root) for name in files
    )


def test_the_callable_form(
    make_script: Callable[..., Path], run: Callable[..., Any], tmp_path: Path
) -> None:
    body = """\
        with args.safe_experiment(prompt=False):
            print("inside")
            raise KeyError("missing")
    """
    proc = run(make_script(body))
    assert proc.returncode == 1
    folder = the_run(tmp_path / "exman")
    assert folder.parent.name == "fails"
    assert record(folder)["reason"] == "KeyError: 'missing'"
    assert (folder / "log.txt").read_text() == "inside\n"


def test_sys_exit_3_is_a_failure_with_its_code(
    make_script: Callable[..., Path], run: Callable[..., Any], tmp_path: Path
) -> None:
    proc = run(make_script(), "--fail", "exit")
    assert proc.returncode == 3
    root = tmp_path / "exman"
    folder = the_run(root)
    assert folder.parent == root / "fails"
    assert links(root) == []
    rec = record(folder)
    assert (rec["status"], rec["exit_code"], rec["reason"]) == (
        "failed",
        3,
        "exit code 3",
    )
    assert (folder / "traceback.txt").is_file()


@pytest.mark.parametrize("code", ["0", "None", ""])
def test_sys_exit_0_is_a_success(
    make_script: Callable[..., Path],
    run: Callable[..., Any],
    tmp_path: Path,
    code: str,
) -> None:
    body = f"""\
        with args.safe_experiment:
            print("done")
            sys.exit({code})
        print("never here")
    """
    proc = run(make_script(body))
    assert proc.returncode == 0
    assert "never here" not in proc.stdout
    root = tmp_path / "exman"
    folder = the_run(root)
    assert folder.parent == root / "runs"
    assert len(links(root)) == 1
    rec = record(folder)
    assert (rec["status"], rec["exit_code"]) == ("completed", 0)
    assert not (folder / "traceback.txt").exists()


def test_ctrl_c_leaves_the_run_in_place(
    make_script: Callable[..., Path], tmp_path: Path
) -> None:
    body = f"""\
        import time
        {CTRL_C_AS_ON_A_TERMINAL}
        with args.safe_experiment(prompt=False):
            print("ready", flush=True)
            time.sleep(60)
    """
    proc = start_and_wait_ready(make_script(body))
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode in (130, -signal.SIGINT), err
    assert "KeyboardInterrupt" in err

    root = tmp_path / "exman"
    folder = the_run(root)
    assert folder.parent == root / "runs"
    assert len(links(root)) == 1
    assert "KeyboardInterrupt" in (folder / "traceback.txt").read_text()
    rec = record(folder)
    assert rec["status"] == "interrupted"
    assert rec["exit_code"] == 130
    assert exman.Run(folder).status == "interrupted"
    assert "ready" in (folder / "log.txt").read_text()
