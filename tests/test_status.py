"""Every run knows how it ended, with or without safe_experiment (run.json)."""

from __future__ import annotations

import datetime
import json
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


def start_and_wait_ready(script: Path) -> subprocess.Popen[str]:
    env = dict(os.environ)
    env.pop("EXMAN_ROOT", None)
    proc = subprocess.Popen(
        [sys.executable, str(script)],
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


SLEEPER = """\
    import time
    print("ready", flush=True)
    time.sleep(60)
"""


def test_a_normal_exit_is_completed_with_the_whole_record(
    make_script: Callable[..., Path], run: Callable[..., Any], tmp_path: Path
) -> None:
    script = make_script("import os; print(os.getpid())")
    proc = run(script, "--lr", "0.5", "--name", "a b", check=True)
    folder = the_run(tmp_path / "exman")
    rec = record(folder)
    assert rec["status"] == "completed"
    assert exman.Run(folder).status == "completed"
    assert rec["exit_code"] == 0
    assert rec["reason"] is None
    assert rec["id"] == 1
    started = datetime.datetime.fromisoformat(rec["started"])
    finished = datetime.datetime.fromisoformat(rec["finished"])
    assert started.tzinfo is not None
    assert started <= finished
    assert isinstance(rec["duration"], (int, float))
    assert 0 <= rec["duration"] < 60
    assert rec["host"] == os.uname().nodename
    assert rec["pid"] == int(proc.stdout)
    assert isinstance(rec["pid_start"], int)
    command = rec["command"]
    assert command["executable"] == sys.executable
    assert command["argv"] == [str(script), "--lr", "0.5", "--name", "a b"]
    assert command["args"] == ["--lr", "0.5", "--name", "a b"]
    assert command["script"] == str(script)
    assert os.path.realpath(command["cwd"]) == os.path.realpath(tmp_path)


def test_the_end_of_a_run_does_not_read_its_record_back(
    make_script: Callable[..., Path], run: Callable[..., Any], tmp_path: Path
) -> None:
    # the record the run wrote at its start is still in memory, and run.json
    # is still that file: the end does not read and parse it again
    script = make_script(
        """\
        import exman

        def unread(self):
            raise AssertionError("run.json read back")

        exman.Run.record = unread
        """
    )
    run(script, "--lr", "0.5", check=True)
    rec = record(the_run(tmp_path / "exman"))
    assert rec["status"] == "completed"
    assert rec["exit_code"] == 0
    assert rec["command"]["args"] == ["--lr", "0.5"]
    assert {"env", "code", "params", "started", "finished"} <= set(rec)


def test_the_end_of_a_run_keeps_what_another_writer_put_in_its_record(
    make_script: Callable[..., Path], run: Callable[..., Any], tmp_path: Path
) -> None:
    script = make_script(
        """\
        import json
        import os

        path = args.root / "run.json"
        data = json.loads(path.read_text())
        data["note"] = "from elsewhere"
        (args.root / "other.tmp").write_text(json.dumps(data))
        os.replace(args.root / "other.tmp", path)
        """
    )
    run(script, check=True)
    rec = record(the_run(tmp_path / "exman"))
    assert rec["status"] == "completed"
    assert rec["note"] == "from elsewhere"


def test_an_uncaught_exception_is_failed(
    make_script: Callable[..., Path], run: Callable[..., Any], tmp_path: Path
) -> None:
    proc = run(make_script("raise RuntimeError('boom ü')"))
    assert proc.returncode == 1
    assert "RuntimeError: boom ü" in proc.stderr
    folder = the_run(tmp_path / "exman")
    # without safe_experiment the run is not moved, only recorded
    assert folder.parent.name == "runs"
    rec = record(folder)
    assert (rec["status"], rec["exit_code"]) == ("failed", 1)
    assert rec["reason"] == "RuntimeError: boom ü"
    assert "RuntimeError: boom ü" in (folder / "traceback.txt").read_text()
    assert exman.Run(folder).status == "failed"


@pytest.mark.parametrize(
    ("body", "code", "reason"),
    [
        ("sys.exit(2)", 2, "exit code 2"),
        ("sys.exit('bad input')", 1, "exit code 1"),
        ("parser.error('wrong')", 2, "exit code 2"),
    ],
)
def test_a_non_zero_exit_is_failed(
    make_script: Callable[..., Path],
    run: Callable[..., Any],
    tmp_path: Path,
    body: str,
    code: int,
    reason: str,
) -> None:
    proc = run(make_script(body))
    assert proc.returncode == code
    rec = record(the_run(tmp_path / "exman"))
    assert (rec["status"], rec["exit_code"], rec["reason"]) == ("failed", code, reason)


def test_sys_exit_0_is_completed(
    make_script: Callable[..., Path], run: Callable[..., Any], tmp_path: Path
) -> None:
    run(make_script("sys.exit(0)"), check=True)
    assert record(the_run(tmp_path / "exman"))["status"] == "completed"


def test_sigterm_is_interrupted(
    make_script: Callable[..., Path], tmp_path: Path
) -> None:
    proc = start_and_wait_ready(make_script(SLEEPER))
    proc.terminate()
    proc.communicate(timeout=30)
    assert proc.returncode == -signal.SIGTERM
    folder = the_run(tmp_path / "exman")
    rec = record(folder)
    assert (rec["status"], rec["reason"]) == ("interrupted", "SIGTERM")
    assert rec["exit_code"] == 128 + signal.SIGTERM
    assert rec["finished"] is not None
    assert exman.Run(folder).status == "interrupted"


def test_sigterm_inside_safe_experiment(
    make_script: Callable[..., Path], tmp_path: Path
) -> None:
    body = """\
        import time
        with args.safe_experiment:
            print("ready", flush=True)
            time.sleep(60)
    """
    proc = start_and_wait_ready(make_script(body))
    proc.terminate()
    proc.communicate(timeout=30)
    assert proc.returncode == -signal.SIGTERM
    folder = the_run(tmp_path / "exman")
    assert folder.parent.name == "runs"
    assert record(folder)["status"] == "interrupted"
    assert "ready" in (folder / "log.txt").read_text()


def test_ctrl_c_is_interrupted(
    make_script: Callable[..., Path], tmp_path: Path
) -> None:
    # a terminal's Ctrl-C even if the test runner inherited SIGINT ignored
    body = "import signal; signal.signal(signal.SIGINT, signal.default_int_handler)"
    proc = start_and_wait_ready(make_script(f"    {body}\n{SLEEPER}"))
    proc.send_signal(signal.SIGINT)
    proc.communicate(timeout=30)
    assert proc.returncode in (130, -signal.SIGINT)
    folder = the_run(tmp_path / "exman")
    rec = record(folder)
    assert (rec["status"], rec["exit_code"]) == ("interrupted", 130)
    assert "KeyboardInterrupt" in (folder / "traceback.txt").read_text()


def test_sigkill_reads_as_crashed(
    make_script: Callable[..., Path], tmp_path: Path
) -> None:
    proc = start_and_wait_ready(make_script(SLEEPER))
    folder = the_run(tmp_path / "exman")
    assert exman.Run(folder).status == "running"
    proc.kill()
    proc.communicate(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    assert record(folder)["status"] == "running"
    assert exman.Run(folder).status == "crashed"


def test_a_running_record_of_another_host_stays_running(tmp_path: Path) -> None:
    folder = tmp_path / "000001-2020-01-01-00-00-00"
    folder.mkdir()
    run = exman.Run(folder)
    run.start()
    run.update_record(host="some-other-node", pid=1)
    assert run.status == "running"
    run.update_record(host=os.uname().nodename, pid=2**22 + 12345)
    assert run.status == "crashed"


def test_a_run_without_a_record_is_unknown(tmp_path: Path) -> None:
    folder = tmp_path / "000001-2020-01-01-00-00-00"
    folder.mkdir()
    assert exman.Run(folder).status == "unknown"
    (folder / "run.json").write_text("{not json")
    assert exman.Run(folder).status == "unknown"


DOUBLE_SIGTERM = """\
import json, os, pathlib, signal, sys, threading, time
import exman

sys.setswitchinterval(1e-6)
folders = []
for i in range(40):
    parser = exman.ExParser(root=exman.simpleroot(__file__))
    folders.append(parser.parse_args([]).run.path)
first = folders[0] / "run.json"


def second_sigterm():
    # the second SIGTERM of a SLURM job comes while the first is recorded
    while '"interrupted"' not in first.read_text():
        pass
    os.kill(os.getpid(), signal.SIGTERM)


threading.Thread(target=second_sigterm, daemon=True).start()
print(json.dumps([str(f) for f in folders]), flush=True)
os.kill(os.getpid(), signal.SIGTERM)
time.sleep(30)
"""


def test_a_second_sigterm_while_the_first_is_recorded_loses_nothing(
    tmp_path: Path,
) -> None:
    """SLURM sends SIGTERM to every process of a job, and the job's runner
    passes it on: the second one reaches the handler while it records the
    first. Every run of the process is still recorded as interrupted."""
    script = tmp_path / "main.py"
    script.write_text(DOUBLE_SIGTERM)
    env = dict(os.environ)
    env.pop("EXMAN_ROOT", None)
    done = subprocess.run(
        [sys.executable, str(script)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == -signal.SIGTERM, done.stderr
    folders = [Path(f) for f in json.loads(done.stdout.splitlines()[0])]
    statuses = [record(f)["status"] for f in folders]
    assert statuses == ["interrupted"] * len(folders)
