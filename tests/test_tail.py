"""``exman tail [-f] ID``: a run's log and metrics, followed until it ends."""

from __future__ import annotations

import os
import pty
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from _run_helpers import exman_command

Run = Callable[..., subprocess.CompletedProcess[str]]

#: prints and logs, then waits for the file "go" beside the script, then
#: prints and logs again and ends as --fail says
WAITING = """\
import pathlib, time
with args.safe_experiment:
    go = pathlib.Path(__file__).parent / "go"
    for step in range(3):
        print(f"line {step}", flush=True)
        exman.log(step, loss=1.0 / (step + 1))
    print("waiting", flush=True)
    while not go.exists():
        time.sleep(0.05)
    for step in range(3, 5):
        print(f"line {step}", flush=True)
        exman.log(step, loss=1.0 / (step + 1), acc=step / 10)
    if args.fail == "raise":
        raise ValueError("asked to fail")
    if args.fail == "exit":
        sys.exit(3)
"""


def _start(script: Path, *args: str) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, str(script), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        cwd=script.parent,
    )
    assert proc.stdout is not None
    for line in proc.stdout:
        if line == "waiting\n":
            return proc
    raise AssertionError(f"the run ended early: {proc.wait()}")


def _follow(root: Path, *args: str) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if k != "EXMAN_ROOT"}
    return subprocess.Popen(
        [sys.executable, "-m", "exman", "tail", "-f", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=root,
        env=env,
    )


@pytest.mark.parametrize(("fail", "code"), [("", 0), ("raise", 3), ("exit", 3)])
def test_follow_a_running_run_until_it_ends(
    make_script: Callable[..., Path], tmp_path: Path, fail: str, code: int
) -> None:
    run = _start(make_script(WAITING), "--fail", fail)
    follower = _follow(tmp_path / "exman", "1")
    # the follower has printed what was there before the run goes on
    assert follower.stdout is not None
    seen = [follower.stdout.readline() for _ in range(4)]
    assert seen == ["line 0\n", "line 1\n", "line 2\n", "waiting\n"]
    (tmp_path / "go").touch()
    rest, err = follower.communicate(timeout=60)
    assert run.wait(timeout=60) == (0 if code == 0 else 1 if fail == "raise" else 3)
    assert run.stdout is not None
    run.stdout.close()
    assert follower.returncode == code, err
    assert rest.startswith("line 3\nline 4\n")
    if fail == "raise":
        assert "ValueError: asked to fail" in rest  # the traceback, moved to fails/
        assert next((tmp_path / "exman" / "fails").glob("000001-*"))
        assert "run 1 ended failed" in err
    elif not fail:
        assert err == ""


def test_follow_metrics_as_a_table(
    make_script: Callable[..., Path], tmp_path: Path
) -> None:
    run = _start(make_script(WAITING))
    follower = _follow(tmp_path / "exman", "--metrics", "1")
    assert follower.stdout is not None
    head = [follower.stdout.readline().split() for _ in range(4)]
    assert head == [["step", "loss"], ["0", "1"], ["1", "0.5"], ["2", "0.333333"]]
    (tmp_path / "go").touch()
    rest, err = follower.communicate(timeout=60)
    assert run.wait(timeout=60) == 0 and follower.returncode == 0, err
    assert run.stdout is not None
    run.stdout.close()
    assert [line.split() for line in rest.splitlines()] == [
        ["step", "loss", "acc"],  # a new metric: a new header
        ["3", "0.25", "0.3"],
        ["4", "0.2", "0.4"],
    ]


def test_tail_of_an_ended_run(make_script: Callable[..., Path], run: Run) -> None:
    script = make_script(
        "with args.safe_experiment:\n    for i in range(50):\n        print('row', i)\n"
    )
    run(script, check=True)
    root = script.parent / "exman"
    proc = exman_command("tail", "1", cwd=root)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == [f"row {i}" for i in range(30, 50)]
    proc = exman_command("tail", "-n", "2", "-f", "1", cwd=root)
    assert (proc.returncode, proc.stdout) == (0, "row 48\nrow 49\n")
    proc = exman_command("tail", "7", cwd=root)
    assert proc.returncode == 1 and "run 7 not found" in proc.stderr


def test_tail_escapes_terminal_commands_only_for_a_terminal(
    make_script: Callable[..., Path], run: Run
) -> None:
    script = make_script(
        "with args.safe_experiment:\n    print('\\x1b]0;owned\\x07')\n"
    )
    run(script, check=True)
    root = script.parent / "exman"
    proc = exman_command("tail", "1", cwd=root)
    assert proc.stdout == "\x1b]0;owned\x07\n"  # a pipe gets the bytes
    master, slave = pty.openpty()
    try:
        subprocess.run(
            [sys.executable, "-m", "exman", "tail", "1"],
            stdout=slave,
            cwd=root,
            timeout=60,
            check=True,
        )
        os.close(slave)
        out = b""
        while True:
            try:
                data = os.read(master, 4096)
            except OSError:  # EIO: the other end is closed
                break
            if not data:
                break
            out += data
    finally:
        os.close(master)
    assert b"\x1b" not in out and b"\\x1b]0;owned\\x07" in out
