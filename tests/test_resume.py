"""Continuing a run: --resume-run, local sweeps with resume: true, checkpoints.

The scripts are real ExParser scripts run as subprocesses, stopped with real
signals; the runs they continue are checked on disk (run.json, metrics,
log.txt) and through Index.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from _sweep_helpers import (
    PYTHON,
    TRAIN,
    TRAIN_EXTRA,
    all_runs,
    metric_steps,
    wait_for,
    write_spec,
)

import exman
from exman.record.checkpoints import latest_checkpoint
from exman.record.metrics import last_step
from exman.record.run import Run
from exman.sweep import SpecError, sweep


@pytest.fixture
def train(make_script: Callable[..., Path]) -> Path:
    return make_script(TRAIN, extra=TRAIN_EXTRA)


def start(script: Path, *args: str) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if k != "EXMAN_ROOT"}
    return subprocess.Popen(
        [sys.executable, str(script), *args],
        cwd=script.parent,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def stopped_run(script: Path, root: Path, *args: str, after: int = 2) -> Path:
    """Start the script, SIGTERM it once ``after`` checkpoints exist: its run."""
    proc = start(script, *args)
    try:
        wait_for(lambda: len(list(root.glob("runs/*/checkpoints/*.txt"))) >= after)
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == -signal.SIGTERM
    (folder,) = root.glob("runs/0*")
    return folder


# -- by hand -----------------------------------------------------------------------
def test_resume_run_continues_the_same_run(
    train: Path, root: Path, run: Callable[..., subprocess.CompletedProcess[str]]
) -> None:
    folder = stopped_run(train, root, "--epochs", "8", "--sleep", "0.2")
    first = Run(folder).record()
    assert first["status"] == "interrupted" and "attempts" not in first
    done = run(train, "--resume-run", "1", check=True)
    assert "attempt 2 resumed True from" in done.stdout
    assert list(root.glob("runs/0*")) == [folder]  # no new run
    record = Run(folder).record()
    assert record["status"] == "completed" and record["attempt"] == 2
    assert [a["status"] for a in record["attempts"]] == ["interrupted", "completed"]
    assert record["attempts"][0]["reason"] == "SIGTERM"
    assert record["started"] == first["started"]
    assert record["duration"] == pytest.approx(
        sum(a["duration"] for a in record["attempts"]), abs=0.002
    )
    assert metric_steps(folder) == list(range(8))  # each step once, in order
    log = (folder / "log.txt").read_text()
    assert "attempt 1 resumed False from 0" in log  # appended, not truncated
    assert "attempt 2 resumed True" in log and "finished at 8" in log
    df = exman.Index(root).info()
    assert df["attempts"].tolist() == [2] and df["status"].tolist() == ["completed"]
    assert df["loss"].tolist() == [1 / 8]
    shown = subprocess.run(
        [sys.executable, "-m", "exman", "show", "1", "--root", str(root)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "  attempts  2\n    1: interrupted (SIGTERM), " in shown
    assert "    2: completed, " in shown


def test_a_run_that_was_never_resumed_has_no_attempts_column(
    train: Path, root: Path, run: Callable[..., subprocess.CompletedProcess[str]]
) -> None:
    run(train, "--epochs", "1", check=True)
    assert "attempts" not in exman.Index(root).info().columns


def test_resume_run_restores_the_runs_arguments(
    train: Path, root: Path, run: Callable[..., subprocess.CompletedProcess[str]]
) -> None:
    folder = stopped_run(train, root, "--epochs", "6", "--sleep", "0.2", "--lr", "0.5")
    run(train, "--resume-run=1", "--lr", "0.5", check=True)  # the same value: fine
    assert metric_steps(folder) == list(range(6))
    params = Run(folder).params
    assert params["lr"] == 0.5 and "resume_run" not in params


def test_resume_run_errors(
    train: Path,
    make_script: Callable[..., Path],
    root: Path,
    run: Callable[..., subprocess.CompletedProcess[str]],
) -> None:
    stopped_run(train, root, "--epochs", "50", "--sleep", "0.1")
    cases = [
        (["--resume-run", "7"], f"--resume-run 7: no run 7 in {root}"),
        (["--resume-run", "x"], "argument --resume-run: invalid int value: 'x'"),
        (["--resume-run", "1", "--lr", "0.2"], "these differ: lr=0.2 (run 1 has 0.1)"),
        (
            ["--resume-run", "1", "--config", "x.yaml"],
            "--resume-run restores the arguments of run 1: --config cannot be given",
        ),
    ]
    for args, message in cases:
        proc = run(train, *args)
        assert proc.returncode == 2, proc.stdout
        assert message in proc.stderr, proc.stderr
    other = make_script(TRAIN, extra=TRAIN_EXTRA, name="other.py")
    proc = run(other, "--resume-run", "1")
    assert proc.returncode == 2
    assert f"run 1 was made by {train}, not by {other}" in proc.stderr
    # a running run
    live = start(train, "--epochs", "1", "--sleep", "30")
    try:
        wait_for(lambda: len(list(root.glob("runs/0*/run.json"))) == 2)
        proc = run(train, "--resume-run", "2")
        assert "--resume-run 2: run 2 is still running (pid" in proc.stderr
    finally:
        live.kill()
        live.communicate()
    # a completed run, and one that failed
    run(train, "--epochs", "1", check=True)
    proc = run(train, "--resume-run", "3")
    assert "run 3 completed; nothing to resume" in proc.stderr
    make_script('with args.safe_experiment:\n    raise ValueError("no")\n')
    run(train)
    proc = run(train, "--resume-run", "4")
    assert "run 4 failed and is in fails/" in proc.stderr, proc.stderr
    assert len(list(root.glob("runs/0*"))) == 3  # nothing was made or moved


def test_a_resumed_run_logs_steps_after_the_last_one(
    make_script: Callable[..., Path],
    root: Path,
    run: Callable[..., subprocess.CompletedProcess[str]],
) -> None:
    body = """\
    print("last step", args.run.last_step())
    for _ in range(3):
        exman.log(loss=1.0)
    if not args.run.resumed:
        import os, signal
        os.kill(os.getpid(), signal.SIGTERM)
    """
    script = make_script(body)
    assert run(script).returncode == -signal.SIGTERM
    out = run(script, "--resume-run", "1", check=True).stdout
    assert "last step 2" in out
    (folder,) = root.glob("runs/0*")
    assert metric_steps(folder) == list(range(6))
    assert last_step(folder) == 5


# -- checkpoints -----------------------------------------------------------------
def test_the_newest_checkpoint(tmp_path: Path) -> None:
    assert latest_checkpoint(tmp_path / "none") is None
    folder = tmp_path / "ckpt"
    folder.mkdir()
    assert latest_checkpoint(folder) is None
    now = time.time()
    for name in ["step9.pt", "step10.pt", "step2.pt"]:
        (folder / name).write_text(name)
        os.utime(folder / name, (now, now))  # the same time: the number decides
    (folder / "step99.pt.tmp").write_text("half")  # still being written
    (folder / ".step98.pt").write_text("hidden")
    (folder / "notes.txt").write_text("x")
    os.utime(folder / "notes.txt", (now + 5, now + 5))
    assert latest_checkpoint(folder, "*.pt") == folder / "step10.pt"
    assert latest_checkpoint(folder) == folder / "notes.txt"  # the newest of all
    os.utime(folder / "step2.pt", (now + 10, now + 10))
    assert latest_checkpoint(folder, "*.pt") == folder / "step2.pt"
    assert exman.latest_checkpoint is latest_checkpoint


def test_checkpoint_dir_is_made_when_asked_for(tmp_path: Path) -> None:
    run = Run(tmp_path / "000001-x")
    run.path.mkdir()
    assert not (run.path / "checkpoints").exists()
    assert run.last_checkpoint() is None
    assert run.checkpoint_dir == run.path / "checkpoints"
    assert run.checkpoint_dir.is_dir()
    assert (run.attempt, run.resumed) == (1, False)


# -- local sweeps ------------------------------------------------------------------
def test_a_timed_out_task_continues_its_run(train: Path, root: Path) -> None:
    spec = write_spec(
        train.parent,
        command=f"{PYTHON} main.py --epochs 6 --sleep 0.4",
        grid={"lr": [0.1]},
        resume=True,
        max_attempts=10,
    )
    summary = sweep(spec, timeout=1.5)
    assert summary.result_counts()["completed"] == 1, summary.text()
    assert len(summary.results) == 1  # the task counts once
    (record,) = all_runs(root)
    assert record["status"] == "completed" and record["place"] == "runs"
    assert record["attempt"] >= 2
    assert [a["status"] for a in record["attempts"]][-1] == "completed"
    # stopped by the timeout (or, rarely, as it was ending anyway)
    earlier = {a["status"] for a in record["attempts"][:-1]}
    assert earlier <= {"interrupted", "completed"}
    assert metric_steps(record["path"]) == list(range(6))
    (log,) = (root / ".exman" / "sweeps" / "sweep" / "logs").glob("*.log")
    assert "attempt 2 continues the run" in log.read_text()
    assert sweep(spec, timeout=1.5).results == []  # done: not again


def test_attempts_are_bounded(train: Path, root: Path) -> None:
    spec = write_spec(
        train.parent,
        command=f"{PYTHON} main.py --epochs 100 --sleep 0.2",
        grid={"lr": [0.1]},
        resume=True,
        max_attempts=2,
    )
    # long enough for a slow start to make its run in every attempt
    summary = sweep(spec, timeout=3)
    assert summary.result_counts()["failed"] == 1, summary.text()
    (result,) = summary.results
    assert result.reason is not None and result.reason.startswith("timeout")
    (record,) = all_runs(root)
    assert record["place"] == "fails" and record["attempt"] == 2
    steps_done = metric_steps(record["path"])
    assert steps_done == list(range(len(steps_done)))


def test_without_resume_a_timed_out_task_fails(train: Path, root: Path) -> None:
    spec = write_spec(
        train.parent,
        command=f"{PYTHON} main.py --epochs 100 --sleep 0.2",
        grid={"lr": [0.1]},
    )
    summary = sweep(spec, timeout=1)
    assert summary.result_counts()["failed"] == 1
    (record,) = all_runs(root)
    assert "attempts" not in record


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"resume": "yes"}, "resume: must be true or false, not 'yes'"),
        ({"max_attempts": 0}, "max_attempts: must be a whole number >= 1, not 0"),
        ({"max_attempts": True}, "max_attempts: must be a whole number >= 1"),
    ],
)
def test_resume_keys_are_checked(
    tmp_path: Path, data: dict[str, object], message: str
) -> None:
    spec = write_spec(tmp_path, grid={"lr": [1]}, **data)
    with pytest.raises(SpecError, match=message):
        sweep(spec, dry_run=True)


def test_a_launchers_later_attempt_continues_its_jobs_run(
    make_script: Callable[..., Path],
    root: Path,
    run: Callable[..., subprocess.CompletedProcess[str]],
) -> None:
    body = """\
    print("run", args.run.id, "attempt", args.run.attempt)
    """
    script = make_script(body)

    def attempt(job: str, n: int, key: str = "0123456789abcdef") -> str:
        env = {
            "EXMAN_SWEEP": "s",
            "EXMAN_SWEEP_TASK": "0",
            "EXMAN_SWEEP_KEY": key,
            "EXMAN_SWEEP_JOB": job,
            "EXMAN_SWEEP_ATTEMPT": str(n),
        }
        proc = run(script, env=env)
        return (proc.stdout + proc.stderr).strip().splitlines()[-1]

    assert attempt("slurm-7_0", 1) == "run 1 attempt 1"
    assert (root / ".exman" / "resume" / "0123456789abcdef.json").is_file()
    assert attempt("slurm-7_0", 2) == "run 1 attempt 2"
    assert attempt("slurm-7_0", 3) == "run 1 attempt 3"
    # another job of the same task (a later sweep) does not take that run
    assert attempt("slurm-8_0", 2) == "run 2 attempt 1"
    # a first attempt that made no run: the next attempt makes one
    assert attempt("slurm-9_0", 2, key="fedcba9876543210") == "run 3 attempt 1"
    for n in (1, 2):
        assert "the task key '../x'" in attempt("slurm-9_0", n, key="../x")
    assert len(list(root.glob("runs/0*"))) == 3  # nothing made for it


def test_a_script_with_its_own_resume_run_keeps_it(
    make_script: Callable[..., Path],
    root: Path,
    run: Callable[..., subprocess.CompletedProcess[str]],
) -> None:
    extra = 'parser.add_argument("--resume-run", default="no")\n'
    body = """\
    print("own", args.resume_run, "run", args.run.id, "attempt", args.run.attempt)
    if args.run.attempt == 1:
        import os, signal
        os.kill(os.getpid(), signal.SIGTERM)
    """
    script = make_script(body, extra=extra)
    assert run(script, "--resume-run", "yes").returncode == -signal.SIGTERM
    out = run(script, "--exman-resume-run", "1", check=True).stdout
    assert out.strip() == "own yes run 1 attempt 2"


def test_gc_removes_the_resume_records_of_runs_that_are_gone(
    make_script: Callable[..., Path],
    root: Path,
    run: Callable[..., subprocess.CompletedProcess[str]],
) -> None:
    from exman.commands import manage

    script = make_script('print("run", args.run.id)\n')

    def first_attempt(key: str, *args: str) -> Path:
        env = {
            "EXMAN_SWEEP": "s",
            "EXMAN_SWEEP_TASK": "0",
            "EXMAN_SWEEP_KEY": key,
            "EXMAN_SWEEP_JOB": f"local-{key}",
            "EXMAN_SWEEP_ATTEMPT": "1",
        }
        run(script, *args, env=env, check=True)
        record = root / ".exman" / "resume" / f"{key}.json"
        assert record.is_file()
        return record

    kept = first_attempt("aaaa000000000001")  # its run stays
    deleted = first_attempt("aaaa000000000002")
    in_tmp = first_attempt("aaaa000000000003", "--tmp")
    wrong = first_attempt("aaaa000000000004")
    unreadable = root / ".exman" / "resume" / "aaaa000000000005.json"
    unreadable.write_text('{"run": ')
    young = unreadable.with_name("aaaa000000000006.json")  # being written
    young.write_text("")
    os.utime(unreadable, (time.time() - 7200, time.time() - 7200))
    manage.delete(root, [2], all=True)  # for good: its folder goes
    # a record naming a run of another task: no attempt can continue it
    data = json.loads(wrong.read_text())
    data["run"] = json.loads(kept.read_text())["run"]
    wrong.write_text(json.dumps(data))

    dry = manage.gc(root, dry_run=True)
    going = {c.path: c.message for c in dry.done if c.path.parent == kept.parent}
    assert set(going) == {deleted, in_tmp, wrong, unreadable}, going
    assert "which is gone" in going[deleted]
    assert "removed run" in going[in_tmp]
    assert "not a run of its task" in going[wrong]
    assert all(p.exists() for p in going)
    manage.gc(root)
    assert kept.exists() and young.exists()
    assert not any(p.exists() for p in going)
    assert not list(root.glob("tmp/0*"))
    # the run whose record stayed is still continued by its next attempt
    env = {
        "EXMAN_SWEEP": "s",
        "EXMAN_SWEEP_TASK": "0",
        "EXMAN_SWEEP_KEY": "aaaa000000000001",
        "EXMAN_SWEEP_JOB": "local-aaaa000000000001",
        "EXMAN_SWEEP_ATTEMPT": "2",
    }
    assert run(script, env=env, check=True).stdout.strip() == "run 1"
