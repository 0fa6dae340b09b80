"""A search on SLURM: worker jobs on the SLURM of this machine share a study.

Like tests/test_sweep_slurm.py, these submit to whatever SLURM answers here;
where none does they are skipped, except in CI (``CI=true``), where that is
a failure. The script is the noisy quadratic of tests/test_sweep_search.py.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from _sweep_helpers import PYTHON, alive, all_runs, wait_for, write_spec
from test_sweep_search import QUADRATIC, search_spec, study_of
from test_sweep_slurm import slurm_cluster  # noqa: F401 - a fixture

from exman.record.run import Run
from exman.record.store import ExmanError
from exman.sweep import sweep

optuna = pytest.importorskip("optuna")

on_slurm = pytest.mark.usefixtures("slurm_cluster")


@pytest.fixture
def name() -> Iterator[str]:
    """A sweep name of the test's own; its jobs are cancelled at the end."""
    value = f"t{uuid.uuid4().hex[:10]}"
    yield value
    subprocess.run(["scancel", f"--name=exman-{value}"], capture_output=True)


def spec_file(
    tmp_path: Path, sweep_name: str, command: str = "", **search: Any
) -> Path:
    (tmp_path / "main.py").write_text(QUADRATIC)
    spec = search_spec(tmp_path, command, **search)
    spec.write_text(spec.read_text() + f"name: {sweep_name}\n")
    return spec


def squeue(sweep_name: str) -> list[str]:
    out = subprocess.run(
        ["squeue", "-h", "-o", "%i %T", f"--name=exman-{sweep_name}"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return [line.split()[0] for line in out.splitlines() if line.strip()]


def trials_done(root: Path, sweep_name: str) -> int:
    try:
        study = study_of(root, sweep_name)
    except Exception:  # not made yet
        return 0
    return sum(1 for t in study.trials if t.state.is_finished())


def status(spec: Path) -> str:
    return subprocess.run(
        [sys.executable, "-m", "exman.sweep", str(spec), "--status"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout


def check_every_trial_a_run(root: Path, sweep_name: str, budget: int) -> None:
    study = study_of(root, sweep_name)
    assert len(study.trials) == budget
    assert Counter(t.state.name for t in study.trials) == {"COMPLETE": budget}
    runs = [r for r in all_runs(root) if r.get("status") == "completed"]
    # each trial completed in exactly one run, whose values it holds
    by_trial = Counter(int(r["sweep"]["task"]) for r in runs)
    assert by_trial == {n: 1 for n in range(budget)}, by_trial
    for r in runs:
        trial = study.trials[int(r["sweep"]["task"])]
        assert Run(r["path"]).params["x"] == trial.params["x"]


@on_slurm
def test_a_search_on_slurm_runs_its_budget_in_worker_jobs(
    tmp_path: Path, name: str
) -> None:
    spec = spec_file(tmp_path, name, trials=8, parallel=2, method="tpe", seed=1)
    summary = sweep(spec, backend="slurm")
    assert summary.mode == "submit" and len(summary.submitted) == 2, summary.text()
    assert "submitted 2 workers" in summary.text()
    root = tmp_path / "exman"
    wait_for(lambda: not squeue(name), timeout=240)
    check_every_trial_a_run(root, name, 8)
    study = study_of(root, name)
    shown = status(spec)
    assert "search: 8 of 8 trials (8 complete)" in shown
    assert f"best: trial {study.best_trial.number} (run " in shown
    assert f"loss={study.best_value:.6g}" in shown
    assert "workers: 0 jobs queued or running" in shown
    # the budget is spent: nothing more to submit
    again = sweep(spec, backend="slurm")
    assert again.submitted == {} and len(study_of(root, name).trials) == 8


def as_if_on_another_node(root: Path, sweep_name: str) -> str:
    """Make the trial that worker 0 was stopped in look as a worker on another
    node leaves it when killed without a word: claimed, its run running (a
    host cannot see another's processes). Returns the trial's key."""
    tasks = root / ".exman" / "tasks"
    for ended in tasks.glob("*.ended"):
        record = json.loads(ended.read_text())
        if record.get("worker") == 0 and record["state"] == "interrupted":
            break
    else:
        raise AssertionError("worker 0 stopped no trial")
    key = ended.name[: -len(".ended")]
    record.update(state="running", ended=None, host="node-elsewhere")
    (tasks / f"{key}.json").write_text(json.dumps(record))
    for run in all_runs(root):
        if run["sweep"]["key"] == key:
            data = json.loads((run["path"] / "run.json").read_text())
            data.update(status="running", host="node-elsewhere")
            (run["path"] / "run.json").write_text(json.dumps(data))
    return key


@on_slurm
@pytest.mark.parametrize("elsewhere", [False, True], ids=["here", "elsewhere"])
def test_a_cancelled_worker_is_replaced_and_no_trial_completes_twice(
    tmp_path: Path, name: str, elsewhere: bool
) -> None:
    spec = spec_file(
        tmp_path, name, "--steps 30 --sleep 0.1", trials=8, parallel=2, seed=2
    )
    root = tmp_path / "exman"
    summary = sweep(spec, backend="slurm")
    jobs = sorted(summary.submitted.values())
    assert len(jobs) == 2
    wait_for(lambda: trials_done(root, name) >= 2, timeout=240)
    subprocess.run(["scancel", jobs[0]], check=True)
    wait_for(lambda: jobs[0] not in squeue(name), timeout=120)
    assert trials_done(root, name) < 8
    if elsewhere:
        key = as_if_on_another_node(root, name)
    again = sweep(spec, backend="slurm")
    assert len(again.submitted) == 1, again.text()  # one worker still runs
    assert "workers: 2 jobs queued or running" in status(spec)
    wait_for(lambda: not squeue(name), timeout=240)
    check_every_trial_a_run(root, name, 8)
    # the cancelled worker's trial was stopped, then run again as the same
    # trial (its log has a line per start); a run it had made is interrupted
    logs = root / ".exman" / "sweeps" / name / "logs"
    starts = [log.read_text().count("\n== ") + 1 for log in sorted(logs.glob("0*.log"))]
    assert sorted(starts) == [1] * 7 + [2], starts
    stopped = [r for r in all_runs(root) if r["status"] != "completed"]
    assert [r["status"] for r in stopped] in ([], ["interrupted"]), stopped
    if elsewhere and stopped:  # its worker's end said that nothing runs it
        assert stopped[0]["sweep"]["key"] == key
        assert stopped[0]["reason"] == "its SLURM worker ended"
    # the worker stopped its trial and said so, whatever copy of the
    # signal came last
    assert "interrupted by SIGTERM" in (logs / "worker-000.log").read_text()


@on_slurm
def test_a_workers_trial_gets_its_grace_and_a_second_sigterm_ends_it(
    tmp_path: Path, name: str
) -> None:
    from test_sweep_search import DEAF

    (tmp_path / "deaf.py").write_text(DEAF)
    section = {"trials": 2, "objective": "loss", "space": {"x": {"low": 0, "high": 1}}}
    spec = write_spec(tmp_path, name=name, command=f"{PYTHON} deaf.py", search=section)
    (job,) = sweep(spec, backend="slurm", grace=30).submitted.values()
    pid_file = tmp_path / "pid"
    wait_for(lambda: pid_file.exists() and pid_file.read_text() != "", 120)
    trial = int(pid_file.read_text())
    # SLURM signals every process of the job, and the job's runner passes
    # the signal on to the worker: one scancel, two SIGTERMs, one grace
    subprocess.run(["scancel", "--signal=TERM", job], check=True)
    time.sleep(3)
    assert alive(trial), "the trial did not get its grace"
    subprocess.run(["scancel", "--signal=TERM", job], check=True)
    wait_for(lambda: not alive(trial), timeout=15)
    wait_for(lambda: not squeue(name), timeout=60)
    (record,) = all_runs(tmp_path / "exman")
    assert record["status"] == "interrupted", record
    assert record["reason"].endswith("killed at once (a second signal)"), record


def test_a_worker_needs_a_search_and_a_spec_file(tmp_path: Path) -> None:
    (tmp_path / "main.py").write_text(QUADRATIC)
    plain = tmp_path / "plain.yaml"
    plain.write_text(f"command: {sys.executable} main.py\ngrid: {{x: [1, 2]}}\n")
    with pytest.raises(ExmanError, match=r"plain\.yaml has no search: section"):
        sweep(plain, worker=0)
    spec = search_spec(tmp_path, trials=2)
    with pytest.raises(ExmanError, match="--wait is not supported"):
        sweep(spec, backend="slurm", wait=True)
    with pytest.raises(ExmanError, match="a worker runs its trials here"):
        sweep(spec, backend="slurm", worker=1)
