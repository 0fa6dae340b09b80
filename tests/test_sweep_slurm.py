"""exman sweep on SLURM: real jobs on the SLURM of this machine.

The tests marked ``slurm`` submit to whatever SLURM answers here (CI starts a
single-node one with .ci/setup_slurm.sh). Where none answers they are
skipped, except in CI (``CI=true``, which .ci/run sets), where that is a
failure. The others check the options and the parsing of SLURM's answers,
and run anywhere.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, ClassVar

import pytest
from _launcher_suite import LauncherSuite
from _sweep_helpers import PYTHON, metric_steps, write_spec
from _sweep_helpers import all_runs as runs_in_place_order
from _sweep_helpers import wait_for as _wait_for

from exman.record.run import Run
from exman.record.store import ExmanError
from exman.sweep import SpecError, SweepSummary, sweep
from exman.sweep.cli import main as sweep_main
from exman.sweep.launchers import get_launcher
from exman.sweep.launchers.slurm_state import parse_lines
from exman.sweep.summary import job_ranges

REPO = Path(__file__).resolve().parent.parent

EXTRA = """\
parser.add_argument("--seed", type=int, default=0)
parser.add_argument("--sleep", type=float, default=0.0)
"""

BODY = """\
import time
with args.safe_experiment:
    print("task output", args.lr, args.model, args.seed)
    time.sleep(args.sleep)
    if args.fail == "raise":
        raise ValueError("asked to fail")
"""


def slurm_problem() -> str | None:
    """Why no SLURM can be used here, or None."""
    for tool in ("sbatch", "srun", "sacct", "squeue", "scontrol", "scancel"):
        if shutil.which(tool) is None:
            return f"{tool} is not on PATH"
    try:
        # a controller that is up answers at once; a missing one would keep
        # scontrol retrying for its whole message timeout
        ping = subprocess.run(
            ["scontrol", "ping"], capture_output=True, text=True, timeout=5
        )
        acct = subprocess.run(
            ["sacct", "-n", "-X", "-j", "1"], capture_output=True, text=True, timeout=5
        )
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"SLURM does not answer: {e}"
    if ping.returncode != 0 or " UP" not in ping.stdout:
        return f"scontrol ping: {(ping.stdout + ping.stderr).strip()}"
    if acct.returncode != 0:
        return f"sacct (accounting is needed): {acct.stderr.strip()}"
    try:
        import submitit  # noqa: F401
    except ImportError:
        return "submitit is not installed: pip install 'exman[slurm]'"
    return None


@pytest.fixture(scope="module")
def slurm_cluster() -> None:
    """Skip without SLURM, except in CI: there a missing SLURM is a failure."""
    problem = slurm_problem()
    if problem is None:
        return
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"CI=true but no SLURM is reachable: {problem}", pytrace=False)
    pytest.skip(f"no SLURM reachable here ({problem}); .ci/setup_slurm.sh starts one")


def test_ci_run_fails_the_slurm_tests_without_slurm(tmp_path: Path) -> None:
    """.ci/run's pytest line makes a missing SLURM a failure, whoever calls it."""
    line = next(
        ln.strip()
        for ln in (REPO / ".ci" / "run").read_text().splitlines()
        if "python -m pytest" in ln and not ln.lstrip().startswith("#")
    )
    (tmp_path / "bin").mkdir()
    # a script, not a link: a link would hide the virtual environment (if
    # any) that sys.executable belongs to
    python = tmp_path / "bin" / "python"
    python.write_text(f'#!/bin/sh\nexec {shlex.quote(sys.executable)} "$@"\n')
    python.chmod(0o755)
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    env["PATH"] = str(tmp_path / "bin")  # python, and no SLURM command
    one = "'TestSlurmLauncher and every_task_ends_once'"
    argv = f"{line} -p no:cacheprovider -q tests/test_sweep_slurm.py -k {one}"
    proc = subprocess.run(
        ["/bin/sh", "-c", argv],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode != 0, proc.stdout
    assert "no SLURM is reachable: sbatch is not on PATH" in proc.stdout


@pytest.fixture
def name() -> Iterator[str]:
    """A sweep name of the test's own; its jobs are cancelled at the end."""
    value = f"t{uuid.uuid4().hex[:10]}"
    yield value
    subprocess.run(["scancel", f"--name=exman-{value}"], capture_output=True)


@pytest.fixture
def script(make_script: Callable[..., Path]) -> Path:
    return make_script(BODY, extra=EXTRA)


def all_runs(root: Path) -> list[dict[str, Any]]:
    """The run.json of every run in runs/ and fails/, by id."""
    return sorted(runs_in_place_order(root), key=lambda r: r["id"])


def wait_for(condition: Callable[[], bool], timeout: float = 60) -> None:
    _wait_for(condition, timeout, interval=0.1)


def wait_status(
    spec: Path, done: Callable[[SweepSummary], bool], timeout: float = 60
) -> SweepSummary:
    """``exman sweep --status`` until ``done`` says so."""
    end = time.monotonic() + timeout
    while True:
        status = sweep(spec, status=True)
        if done(status):
            return status
        if time.monotonic() > end:
            raise AssertionError(f"timed out waiting; last status:\n{status.text()}")
        time.sleep(0.3)


def ended(status: SweepSummary) -> bool:
    counts = status.counts()
    return counts["queued"] == counts["running"] == 0


def workers_ended(status: SweepSummary) -> bool:
    """A search's worker jobs have all ended (none queued or running)."""
    return status.search is not None and status.search.get("workers") == []


def slurm(*argv: str) -> str:
    return subprocess.run(argv, capture_output=True, text=True, check=True).stdout


def arrays(status: SweepSummary) -> dict[str, list[int]]:
    """The job arrays of the tasks: array id -> task numbers."""
    out: dict[str, list[int]] = {}
    for state in status.states:
        assert state.job is not None
        out.setdefault(state.job.split("_")[0], []).append(state.task.index)
    return out


# -- the launcher's contract -----------------------------------------------------------
@pytest.mark.slurm
@pytest.mark.usefixtures("slurm_cluster")
class TestSlurmLauncher(LauncherSuite):
    backend = "slurm"
    options: ClassVar[dict[str, Any]] = {"grace": 1.0}
    gpu_slots = False

    def forget(self, name: str) -> None:
        subprocess.run(["scancel", f"--name=exman-{name}"], capture_output=True)

    def run_search(self, spec: Path) -> None:
        # worker jobs run the search: wait until SLURM holds none of them
        summary = sweep(spec, backend="slurm")
        assert summary.mode == "submit" and summary.submitted, summary.text()
        wait_status(spec, workers_ended, timeout=240)

    def stop_and_resume(self, spec: Path, root: Path) -> None:
        # scontrol requeue stops the job; its next start is attempt 2
        # stopped after its first checkpoint, well before its end
        (job,) = sweep(spec, backend="slurm").submitted.values()
        wait_for(lambda: len(list(root.glob("runs/*/checkpoints/*"))) >= 1)
        slurm("scontrol", "requeue", job)
        wait_status(spec, lambda s: s.states[0].state == "queued")
        requeued_now(job)
        wait_status(spec, ended, timeout=120)


# -- sweeps ----------------------------------------------------------------------------
@pytest.mark.slurm
@pytest.mark.usefixtures("slurm_cluster")
def test_a_grid_runs_as_one_job_array(
    script: Path, root: Path, name: str, capsys: Any
) -> None:
    spec = write_spec(
        script.parent, name=name, grid={"lr": [0.1, 0.2], "model": ["a", "b c"]}
    )
    start = time.monotonic()
    assert sweep_main([str(spec), "--backend", "slurm", "--time", "5"]) == 0
    took = time.monotonic() - start
    out = capsys.readouterr().out
    assert f"sweep {name}: submitted 4 tasks as jobs " in out, out
    assert "--status" in out
    status = wait_status(spec, ended)
    assert status.counts()["completed"] == 4, status.text()
    assert len(arrays(status)) == 1  # one array, one element per task
    assert took < 30  # it returned without waiting for the tasks
    runs = all_runs(root)
    assert [r["status"] for r in runs] == ["completed"] * 4
    by_task = {r["sweep"]["task"]: r for r in runs}
    for state in status.states:
        run = by_task[state.task.index]
        assert run["sweep"] == {
            "name": name,
            "task": state.task.index,
            "key": state.task.key,
        }
        params = Run(run["path"]).params
        assert {k: params[k] for k in state.task.params} == state.task.params
        # the task's output, in its log and (safe_experiment) in log.txt
        words = f"task output {params['lr']} {params['model']}"
        assert words in (run["path"] / "log.txt").read_text()
        log = next(
            (root / ".exman" / "sweeps" / name / "logs").glob(
                f"{state.task.index:05d}-*.log"
            )
        )
        assert words in log.read_text() and f"SLURM job {state.job}" in log.read_text()
    assert sweep_main([str(spec), "--backend", "slurm"]) == 0
    assert "nothing to submit (skipped: 4 completed)" in capsys.readouterr().out
    assert sweep_main([str(spec), "--status"]) == 0
    table = capsys.readouterr().out
    assert "job" in table.splitlines()[1] and "4 tasks: 4 completed" in table


@pytest.mark.slurm
@pytest.mark.usefixtures("slurm_cluster")
def test_done_tasks_are_skipped_across_local_and_slurm(
    script: Path, root: Path, name: str
) -> None:
    spec = write_spec(script.parent, name=name, grid={"lr": [1, 2, 3]}, repeat=2)
    local = sweep(spec, index=[0, 4], jobs=2)
    assert local.exit_code == 0
    on_slurm = sweep(spec, backend="slurm", wait=True)
    assert on_slurm.exit_code == 0, on_slurm.text()
    assert sorted(r.task.index for r in on_slurm.results) == [1, 2, 3, 5]
    assert on_slurm.skipped == {"completed": 2}
    again = sweep(spec, jobs=2)
    assert again.results == [] and again.skipped == {"completed": 6}
    keys = [r["sweep"]["key"] for r in all_runs(root)]
    assert len(keys) == len(set(keys)) == 6


@pytest.mark.slurm
@pytest.mark.usefixtures("slurm_cluster")
def test_more_tasks_than_an_array_holds_go_in_several(
    script: Path, root: Path, name: str
) -> None:
    spec = write_spec(script.parent, name=name, grid={"lr": [1, 2, 3, 4, 5]})
    summary = sweep(spec, backend="slurm", slurm={"max_array_size": 2})
    assert summary.mode == "submit" and len(summary.submitted) == 5
    status = wait_status(spec, ended)
    assert status.counts()["completed"] == 5, status.text()
    groups = sorted(arrays(status).values())
    assert groups == [[0, 1], [2, 3], [4]]
    assert len(all_runs(root)) == 5


@pytest.mark.slurm
@pytest.mark.usefixtures("slurm_cluster")
def test_a_failing_task_is_retried_only_when_asked(
    script: Path, root: Path, name: str, capsys: Any
) -> None:
    spec = write_spec(script.parent, name=name, grid={"fail": ["", "raise"]}, repeat=2)
    assert sweep_main([str(spec), "--backend", "slurm", "--wait"]) == 1
    out = capsys.readouterr().out
    assert "ran 4 tasks" in out and "2 failed" in out and "[4/4]" in out, out
    failed = [r for r in all_runs(root) if r["status"] == "failed"]
    assert len(failed) == 2
    for run in failed:
        assert run["place"] == "fails" and run["reason"] == "ValueError: asked to fail"
    seeds = sorted(Run(r["path"]).params["seed"] for r in failed)
    assert sweep(spec, backend="slurm", wait=True).results == []
    retried = sweep(spec, backend="slurm", wait=True, retry_failed=True)
    assert sorted(r.task.index for r in retried.results) == [1, 3]
    assert [r.status for r in retried.results] == ["failed", "failed"]
    again = [r for r in all_runs(root) if r["status"] == "failed"][2:]
    assert sorted(Run(r["path"]).params["seed"] for r in again) == seeds == [0, 1]


@pytest.mark.slurm
@pytest.mark.usefixtures("slurm_cluster")
def test_status_of_queued_and_cancelled_tasks_and_retry(
    script: Path, root: Path, name: str, capsys: Any
) -> None:
    spec = write_spec(script.parent, name=name, grid={"lr": [1, 2, 3]})
    held = sweep(spec, backend="slurm", slurm={"sbatch": {"hold": True}})
    assert len(held.submitted) == 3
    (array,) = {job.split("_")[0] for job in held.submitted.values()}
    status = wait_status(
        spec, lambda s: all(t.reason == "JobHeldUser" for t in s.states)
    )
    assert status.counts()["queued"] == 3
    assert sweep_main([str(spec), "--status"]) == 0
    table = capsys.readouterr().out
    assert table.count("queued (JobHeldUser)") == 3 and f"{array}_2" in table
    # a second sweep leaves them alone: nothing is submitted twice
    second = sweep(spec, backend="slurm")
    assert second.submitted == {} and second.skipped == {"queued": 3}
    slurm("scancel", held.submitted[0])
    try:
        status = wait_status(spec, lambda s: s.states[0].state == "failed", 20)
    except AssertionError:
        # a cancel of an element of an array submitted a few milliseconds
        # before can be logged by slurmctld and still leave it pending
        slurm("scancel", held.submitted[0])
        status = wait_status(spec, lambda s: s.states[0].state == "failed")
    assert "CANCELLED" in (status.states[0].reason or "")
    assert "before it started" in (status.states[0].reason or "")
    slurm("scontrol", "release", array)
    status = wait_status(spec, ended)
    assert [s.state for s in status.states] == ["failed", "completed", "completed"]
    assert sweep_main([str(spec), "--status"]) == 0
    assert "task 0: SLURM CANCELLED" in capsys.readouterr().out
    assert sweep(spec, backend="slurm", wait=True).results == []
    retried = sweep(spec, backend="slurm", wait=True, retry_failed=True)
    assert [(r.task.index, r.status) for r in retried.results] == [(0, "completed")]
    assert sweep(spec, status=True).counts()["completed"] == 3


@pytest.mark.slurm
@pytest.mark.usefixtures("slurm_cluster")
def test_what_sbatch_refuses_is_an_error_and_nothing_is_held(
    script: Path, root: Path, name: str, capsys: Any
) -> None:
    spec = write_spec(script.parent, name=name, grid={"lr": [1, 2]})
    argv = [str(spec), "--backend", "slurm", "--partition", "no-such-partition"]
    assert sweep_main(argv) == 2
    err = capsys.readouterr().err
    assert "SLURM refused the job array" in err and "no-such-partition" in err
    status = sweep(spec, status=True)
    assert status.counts()["pending"] == 2 and not any(s.job for s in status.states)
    summary = sweep(spec, backend="slurm", wait=True)  # the tasks are free
    assert summary.result_counts()["completed"] == 2, summary.text()


@pytest.mark.slurm
@pytest.mark.usefixtures("slurm_cluster")
def test_a_task_is_requeued_up_to_the_bound(
    script: Path, root: Path, name: str
) -> None:
    spec = write_spec(
        script.parent,
        name=name,
        command=f"{PYTHON} main.py --sleep 300",
        grid={"lr": [1]},
        slurm={"time": 5, "requeue": True, "max_requeue": 1},
    )
    (job,) = sweep(spec, backend="slurm").submitted.values()
    logs = root / ".exman" / "sweeps" / name / "logs"
    for attempt in (1, 2):
        # the script runs (it printed: it has its signal handlers) ...
        wait_for(lambda n=attempt: logs.is_dir() and task_output(logs) == n)
        # ... when SLURM warns that the time limit is near
        slurm("scancel", "--signal=USR2", job)
        if attempt == 1:  # requeued: SLURM holds it back two minutes, unless told
            wait_status(spec, lambda s: s.states[0].state == "queued")
            # not within the second of the requeue: slurmd would still see the
            # old job's revoked credential and fail the new start
            time.sleep(2)
            slurm("scontrol", "update", f"JobId={job}", "StartTime=now")
    status = wait_status(spec, ended)
    state = status.states[0]
    assert state.state == "failed", status.text()
    (run,) = all_runs(root)  # the second attempt continued the first's run
    assert run["status"] == "failed" and run["place"] == "fails"
    assert "not requeued again" in run["reason"], run
    first, second = run["attempts"]
    assert first["status"] == "interrupted" and first["reason"] == "SIGTERM"
    assert second["status"] == "failed"
    assert "(attempt 2)" in next(logs.glob("*.log")).read_text()


#: checkpoints every step and starts again from its newest checkpoint; a
#: step, its checkpoint and its record are one (SIGTERM waits for them)
TRAIN = """\
import signal
import time

run = args.run
ckpt = run.last_checkpoint()
start = 0 if ckpt is None else int(ckpt.read_text()) + 1
with args.safe_experiment:
    print("attempt", run.attempt, "from", start, flush=True)
    for step in range(start, args.epochs):
        time.sleep(args.sleep)
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
        (run.checkpoint_dir / f"step{step}.txt").write_text(str(step))
        exman.log(step=step, loss=1.0 / (step + 1))
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM})
"""


def requeued_now(job: str) -> None:
    """Start a requeued job at once: SLURM holds it back two minutes."""
    # not within the second of the requeue: slurmd would still see the old
    # job's revoked credential and fail the new start
    time.sleep(2)
    done = subprocess.run(
        ["scontrol", "update", f"JobId={job}", "StartTime=now"],
        capture_output=True,
        text=True,
    )
    # SLURM may have started it meanwhile: then there is nothing to hurry
    if done.returncode != 0 and "no longer pending" not in done.stderr:
        raise AssertionError(f"scontrol update failed: {done.stderr}")


@pytest.mark.slurm
@pytest.mark.usefixtures("slurm_cluster")
def test_scontrol_requeue_continues_the_same_run(
    make_script: Callable[..., Path], root: Path, name: str
) -> None:
    script = make_script(TRAIN, extra=EXTRA)
    spec = write_spec(
        script.parent,
        name=name,
        command=f"{PYTHON} main.py --epochs 8 --sleep 0.5",
        grid={"lr": [1]},
    )
    (job,) = sweep(spec, backend="slurm").submitted.values()
    wait_for(lambda: len(list(root.glob("runs/*/checkpoints/*"))) >= 2)
    slurm("scontrol", "requeue", job)
    wait_status(spec, lambda s: s.states[0].state == "queued")
    requeued_now(job)
    status = wait_status(spec, ended, timeout=120)
    assert status.states[0].state == "completed", status.text()
    (run,) = all_runs(root)  # one run, in its own folder all along
    assert run["status"] == "completed" and run["place"] == "runs"
    assert run["attempt"] == 2, run
    first, second = run["attempts"]
    assert first["status"] == "interrupted" and first["reason"] == "SIGTERM"
    assert second["status"] == "completed"
    assert metric_steps(run["path"]) == list(range(8))
    log = (run["path"] / "log.txt").read_text()
    assert "attempt 1 from 0" in log and "attempt 2 from " in log
    (task_log,) = (root / ".exman" / "sweeps" / name / "logs").glob("*.log")
    assert "(attempt 2)" in task_log.read_text()


@pytest.mark.slow
@pytest.mark.slurm
@pytest.mark.usefixtures("slurm_cluster")
@pytest.mark.timeout(420)
def test_a_task_requeued_at_its_time_limit_continues_its_run(
    make_script: Callable[..., Path], root: Path, name: str
) -> None:
    # SLURM's smallest limit is a minute; the warning comes before it
    script = make_script(TRAIN, extra=EXTRA)
    spec = write_spec(
        script.parent,
        name=name,
        command=f"{PYTHON} main.py --epochs 300 --sleep 0.25",
        grid={"lr": [1]},
        slurm={"time": 1, "requeue": True, "max_requeue": 4},
    )
    (job,) = sweep(spec, backend="slurm").submitted.values()
    end = time.monotonic() + 360
    while True:
        status = sweep(spec, status=True)
        if ended(status) or time.monotonic() > end:
            break
        if status.states[0].state == "queued" and list(root.glob("runs/0*")):
            requeued_now(job)  # requeued: do not wait for SLURM's delay
        time.sleep(1)
    assert status.states[0].state == "completed", status.text()
    (run,) = all_runs(root)
    assert run["status"] == "completed" and run["attempt"] >= 2, run
    assert {a["status"] for a in run["attempts"][:-1]} == {"interrupted"}
    assert metric_steps(run["path"]) == list(range(300))


def task_output(logs: Path) -> int:
    return sum(log.read_text().count("task output") for log in logs.glob("*.log"))


@pytest.mark.slurm
@pytest.mark.usefixtures("slurm_cluster")
def test_ctrl_c_stops_the_waiting_not_the_jobs(
    script: Path, root: Path, name: str
) -> None:
    spec = write_spec(
        script.parent,
        name=name,
        command=f"{PYTHON} main.py --sleep 2",
        grid={"lr": [1, 2]},
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "exman.sweep", str(spec), "--backend=slurm", "--wait"],
        cwd=spec.parent,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        logs = root / ".exman" / "sweeps" / name / "logs"
        wait_for(lambda: logs.is_dir() and task_output(logs) == 2)
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, out
    assert "stopped waiting (SIGINT): the submitted jobs go on" in out
    status = wait_status(spec, ended)  # they ran to their end all the same
    assert status.counts()["completed"] == 2, status.text()


@pytest.mark.slow
@pytest.mark.slurm
@pytest.mark.usefixtures("slurm_cluster")
@pytest.mark.timeout(300)
def test_the_time_limit_fails_the_run_with_slurms_reason(
    script: Path, root: Path, name: str
) -> None:
    # SLURM's smallest limit is a minute, enforced every 30 s or so: ~1.5 min
    spec = write_spec(
        script.parent,
        name=name,
        command=f"{PYTHON} main.py --sleep 600",
        grid={"lr": [1]},
    )
    sweep(spec, backend="slurm", slurm={"time": 1})
    status = wait_status(spec, ended, timeout=240)
    state = status.states[0]
    assert state.state == "failed"
    (run,) = all_runs(root)
    assert run["status"] == "failed" and run["place"] == "fails"
    assert run["reason"].startswith("SLURM TIMEOUT"), run["reason"]
    # it ran to the limit: the warning before it (SIGUSR2) did not kill it
    assert run["exit_code"] == -15
    assert "SLURM TIMEOUT" in (run["path"] / "traceback.txt").read_text()
    assert sweep(spec, backend="slurm").submitted == {}  # failed: not again


# -- without SLURM: options, SLURM's answers -------------------------------------------
@pytest.mark.parametrize(
    ("section", "message"),
    [
        (
            {"partiton": "debug"},
            "slurm.partiton: unknown option; valid: partition, time",
        ),
        ({"time": "1h"}, "slurm.time: '1h' is not a time"),
        ({"time": 0}, "slurm.time: must be at least 1 minute"),
        ({"mem": "lots"}, "slurm.mem: 'lots' is not a memory size"),
        ({"cpus": 0}, "slurm.cpus: must be a whole number >= 1"),
        ({"requeue": "yes"}, "slurm.requeue: must be true or false"),
        ({"sbatch": {"array": "0-3"}}, "slurm.sbatch.array: exman sets it"),
        ({"sbatch": {"time": 5}}, "set it with slurm.time"),
        ({"sbatch": {"qos": ["a"]}}, "slurm.sbatch.qos: must be a string"),
        ({"setup": "module load x"}, "slurm.setup: must be a list of shell lines"),
        ("gpu", "slurm: must be a mapping"),
    ],
)
def test_a_wrong_slurm_section_is_a_spec_error(
    tmp_path: Path, section: Any, message: str
) -> None:
    spec = write_spec(tmp_path, grid={"lr": [1]}, slurm=section)
    with pytest.raises(SpecError, match=re.escape(message)) as info:
        sweep(spec, status=True)
    assert str(spec) in str(info.value)


def test_slurm_options_are_checked_everywhere(tmp_path: Path, capsys: Any) -> None:
    with pytest.raises(ExmanError, match=r"slurm\.partiton: unknown option; valid: "):
        get_launcher("slurm", partiton="debug")
    with pytest.raises(ExmanError, match=r"requeue needs slurm\.time"):
        get_launcher("slurm", requeue=True)
    spec = write_spec(tmp_path, grid={"lr": [1]})
    with pytest.raises(ExmanError, match="add --backend slurm"):
        sweep(spec, slurm={"time": 5})
    assert sweep_main([str(spec), "--backend", "slurm", "--time", "1:xx"]) == 2
    assert "slurm.time: '1:xx' is not a time" in capsys.readouterr().err
    assert sweep_main([str(spec), "--partition", "debug"]) == 2
    assert "add --backend slurm" in capsys.readouterr().err
    with pytest.raises(ExmanError, match="slurm assigns the GPUs itself"):
        sweep(spec, backend="slurm", gpus="0,1")


@pytest.mark.parametrize(
    ("time_limit", "minutes"),
    [
        (90, 90),
        ("90", 90),
        ("1:30:00", 90),
        ("1:30", 2),
        ("2-12", 3600),
        ("0-0:0:1", 1),
    ],
)
def test_time_limits_in_sbatch_forms(time_limit: Any, minutes: int) -> None:
    launcher = get_launcher("slurm", time=time_limit)
    assert launcher.options.time == minutes  # type: ignore[attr-defined]


def test_slurms_answers_are_read_by_array_and_range() -> None:
    # as sacct -P -X -o JobID,State,ExitCode,Reason prints them
    lines = [
        "7_0|COMPLETED|0:0|None",
        "7_3|RUNNING|0:0|JobArrayTaskLimit",
        "7_[3-5,9%2]|PENDING|0:0|JobHeldUser",
        "8|CANCELLED by 0|0:0|None",
        "9_1|TIMEOUT|0:15|None",
        "9_1.batch|CANCELLED|0:15|",
        "10|OUT_OF_MEMORY|0:125|None",
    ]
    arrays = parse_lines(lines)
    assert arrays["7"].get(0).state == "completed"  # type: ignore[union-attr]
    running = arrays["7"].get(3)
    assert running is not None and running.state == "running"  # element over range
    pending = arrays["7"].get(9)
    assert pending is not None and (pending.state, pending.reason) == (
        "queued",
        "JobHeldUser",
    )
    assert arrays["7"].get(6) is None  # in no line: left the array while pending
    cancelled = arrays["8"].get(4)
    assert cancelled is not None and cancelled.state == "failed"
    assert cancelled.reason == "SLURM CANCELLED by 0: cancelled"
    timeout = arrays["9"].get(1)
    assert timeout is not None and timeout.reason == "SLURM TIMEOUT: time limit reached"
    oom = arrays["10"].get(None)
    assert oom is not None and oom.reason == "SLURM OUT_OF_MEMORY: out of memory"


def test_job_ids_are_shown_as_ranges() -> None:
    jobs = ["12_0", "12_1", "12_2", "12_5", "13_0", "14"]
    assert job_ranges(jobs) == "14, 12_[0-2,5], 13_0"


def test_submitit_is_needed_only_to_submit(tmp_path: Path) -> None:
    spec = write_spec(tmp_path, grid={"lr": [1]})
    code = (
        "import sys\n"
        "sys.modules['submitit'] = None  # as if it were not installed\n"
        "import exman\n"
        "from exman.sweep import sweep\n"
        "from exman.sweep.launchers import get_launcher\n"
        f"print(sweep({str(spec)!r}, status=True).counts()['pending'])\n"
        "launcher = get_launcher('slurm', time=5)\n"
        "try:\n"
        "    launcher.submit([])\n"
        f"    sweep({str(spec)!r}, backend='slurm')\n"
        "except exman.record.store.ExmanError as e:\n"
        "    print(e)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "1"
    assert "needs submitit: pip install 'exman[slurm]'" in lines[1]


def test_a_local_sweep_does_not_import_submitit(tmp_path: Path) -> None:
    spec = write_spec(tmp_path, command="true", grid={"lr": [1]})
    code = (
        "import sys, exman\n"
        f"exman.sweep({str(spec)!r})\n"
        "print('submitit' in sys.modules)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["False"]


def test_the_job_records_are_json(tmp_path: Path) -> None:
    # the record format other tools may read: one JSON object per task
    from exman.record.store import Root
    from exman.sweep.jobs import JobBook

    book = JobBook(Root(tmp_path / "exman"), "s")
    book.write("abc", {"job": "1_0", "state": "queued"})
    book.update("abc", state="completed")
    path = tmp_path / "exman" / ".exman" / "sweeps" / "s" / "jobs" / "abc.json"
    assert json.loads(path.read_text()) == {"job": "1_0", "state": "completed"}
    assert book.read() == {"abc": {"job": "1_0", "state": "completed"}}
