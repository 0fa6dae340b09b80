"""safe_experiment in real processes: the log, failures, exits and Ctrl-C."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import textwrap
import time
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
    log = (folder / "log.txt").read_text()
    assert log.startswith("inside\nTraceback (most recent call last):\n")
    assert log.endswith("KeyError: 'missing'\n")


def test_a_failure_prints_its_traceback_to_stdout_and_the_log(
    make_script: Callable[..., Path], run: Callable[..., Any], tmp_path: Path
) -> None:
    proc = run(make_script(), "--fail", "raise")
    assert proc.returncode == 1
    # on stdout, as exman 0.1.9 did, and on stderr as Python reports it
    assert "Traceback (most recent call last)" in proc.stdout
    assert proc.stdout.rstrip().endswith("ValueError: asked to fail")
    assert "ValueError: asked to fail" in proc.stderr
    log = (the_run(tmp_path / "exman") / "log.txt").read_text()
    assert log.count("Traceback (most recent call last)") == 1
    assert log.rstrip().endswith("ValueError: asked to fail")


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


#: Ctrl-C in the middle of training, then the code after the block
AFTER_CTRL_C = f"""\
    import time
    {CTRL_C_AS_ON_A_TERMINAL}
    with args.safe_experiment{{options}}:
        print("ready", flush=True)
        time.sleep(60)
    print("after the block", flush=True)
    (args.root / "evaluated.txt").write_text("yes")
    {{then}}
"""


@pytest.mark.parametrize(
    "then", ["", "sys.exit(0)", "raise RuntimeError('after the block')"]
)
def test_ctrl_c_is_recorded_then_swallowed_as_in_0_1_9(
    make_script: Callable[..., Path], tmp_path: Path, then: str
) -> None:
    script = make_script(AFTER_CTRL_C.format(options="", then=then))
    proc = start_and_wait_ready(script)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == (1 if then.startswith("raise") else 0), err
    # the traceback is printed (to stdout, so the log has it) and the
    # script goes on after the block
    assert "KeyboardInterrupt" in out
    assert "after the block" in out

    root = tmp_path / "exman"
    folder = the_run(root)
    assert folder.parent == root / "runs"
    assert (folder / "evaluated.txt").read_text() == "yes"
    assert len(links(root)) == 1
    assert "KeyboardInterrupt" in (folder / "traceback.txt").read_text()
    log = (folder / "log.txt").read_text()
    assert "ready" in log and "KeyboardInterrupt" in log
    assert "after the block" not in log
    # whatever the process did after the block, the run was interrupted
    rec = record(folder)
    assert (rec["status"], rec["exit_code"]) == ("interrupted", 130)
    assert rec["reason"] == "KeyboardInterrupt"
    assert exman.Run(folder).status == "interrupted"
    info = exman.Index(root).info()
    assert list(info["id"]) == [1]
    assert list(info["status"]) == ["interrupted"]


def test_reraise_lets_ctrl_c_go_on(
    make_script: Callable[..., Path], tmp_path: Path
) -> None:
    script = make_script(AFTER_CTRL_C.format(options="(reraise=True)", then=""))
    proc = start_and_wait_ready(script)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode in (130, -signal.SIGINT), err
    assert "KeyboardInterrupt" in err
    assert "after the block" not in out

    root = tmp_path / "exman"
    folder = the_run(root)
    assert folder.parent == root / "runs"
    assert len(links(root)) == 1
    assert "KeyboardInterrupt" in (folder / "traceback.txt").read_text()
    assert not (folder / "evaluated.txt").exists()
    rec = record(folder)
    assert (rec["status"], rec["exit_code"]) == ("interrupted", 130)
    assert exman.Run(folder).status == "interrupted"
    assert "ready" in (folder / "log.txt").read_text()


def test_a_sweep_runs_a_swallowed_interrupt_again(
    make_script: Callable[..., Path], tmp_path: Path
) -> None:
    from exman.sweep import sweep

    body = """\
        with args.safe_experiment:
            if args.fail == "interrupt":
                raise KeyboardInterrupt
        print("evaluated")
    """
    script = make_script(body)
    spec = tmp_path / "sweep.yaml"
    spec.write_text(
        f"command: {sys.executable} main.py\n"
        "grid:\n  fail: ['', interrupt]\n"
        f"root: {tmp_path / 'exman'}\n"
    )
    assert script.parent == spec.parent
    first = sweep(spec, jobs=1)
    by_task = {r.task.params["fail"]: r for r in first.results}
    assert by_task[""].status == "completed"
    # the process exited 0, but the run was interrupted: not done
    assert by_task["interrupt"].status == "interrupted"
    assert by_task["interrupt"].reason == "KeyboardInterrupt"
    again = sweep(spec, jobs=1)
    assert [r.task.params["fail"] for r in again.results] == ["interrupt"]
    assert again.skipped == {"completed": 1}


def test_the_ctrl_c_example_of_the_docs(tmp_path: Path) -> None:
    page = (Path(__file__).resolve().parent.parent / "docs" / "parser.rst").read_text()
    section = page[page.index("Stopping early with Ctrl-C") :]
    block = re.search(r"\.\. code-block:: python\n\n((?:(?: {8}.*)?\n)+)", section)
    assert block is not None
    script = tmp_path / "train.py"
    script.write_text(
        textwrap.dedent(block.group(1)).replace(
            "import time\n", f"import time\n{CTRL_C_AS_ON_A_TERMINAL}\n", 1
        )
    )
    env = {k: v for k, v in os.environ.items() if k != "EXMAN_ROOT"}
    proc = subprocess.Popen(
        [sys.executable, str(script)],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    root = tmp_path / "exman"
    deadline = time.monotonic() + 30
    while not list(root.glob("runs/*/log.txt")):
        assert time.monotonic() < deadline, proc.communicate()
        time.sleep(0.05)
    time.sleep(0.3)  # a few epochs
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert "evaluated after" in out
    folder = the_run(root)
    assert record(folder)["status"] == "interrupted"
    done = json.loads((folder / "results.json").read_text())["epochs_done"]
    assert 0 < done < 20
