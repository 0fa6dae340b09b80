"""``exman sweep`` with a ``search:`` section: an Optuna study of real runs.

The script is a noisy quadratic in two parameters with its optimum at
``x=1, y=-2``; its curve is logged with ``exman.log`` step by step. Every
trial is a real process started by the local launcher; the study lives in
a journal file under the root.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from _sweep_helpers import PYTHON, alive, all_runs, wait_for, write_spec

import exman
from exman.record.run import Run
from exman.record.store import Root
from exman.sweep import SpecError, load_spec, sweep
from exman.sweep.claims import Claims

optuna = pytest.importorskip("optuna")

QUADRATIC = """\
import random, sys, time
import exman

parser = exman.ExParser(root=exman.simpleroot(__file__))
parser.add_argument("--x", type=float, default=0.0)
parser.add_argument("--y", type=float, default=0.0)
parser.add_argument("--steps", type=int, default=1)
parser.add_argument("--sleep", type=float, default=0.0)
parser.add_argument("--listen", type=int, default=1)
parser.add_argument("--stubborn", type=int, default=0)
args = parser.parse_args()
if args.stubborn:  # deaf to SIGTERM too: only SIGKILL stops it
    import signal
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
loss = (args.x - 1) ** 2 + (args.y + 2) ** 2 + random.gauss(0, 0.01)
with args.safe_experiment:
    for step in range(args.steps):
        exman.log(step=step, loss=loss + 1 / (1 + step))
        if args.listen and exman.should_stop():
            break
        time.sleep(args.sleep)
    exman.result(loss=loss)
"""

SPACE = {"x": {"low": -3, "high": 3}, "y": {"low": -3, "high": 3}}


@pytest.fixture
def script(tmp_path: Path) -> Path:
    path = tmp_path / "main.py"
    path.write_text(QUADRATIC)
    return path


def search_spec(tmp_path: Path, command: str = "", **search: Any) -> Path:
    section = {"objective": "loss", "space": SPACE, **search}
    return write_spec(
        tmp_path, command=f"{PYTHON} main.py {command}".strip(), search=section
    )


def study_of(root: Path, name: str = "sweep") -> Any:
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    path = root / ".exman" / "sweeps" / name / "study.journal"
    storage = JournalStorage(JournalFileBackend(str(path)))
    return optuna.load_study(study_name=name, storage=storage)


def steps_logged(run: Path) -> int:
    return len((run / "metrics.jsonl").read_text().splitlines())


# -- the spec ------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("search", "message"),
    [
        ({"objective": "loss", "space": SPACE}, "search.trials: is required"),
        ({"trials": 5, "space": SPACE}, "search.objective: is required"),
        ({"trials": 5, "objective": "loss"}, "search.space: is required"),
        (
            {"trials": 5, "objective": "loss", "space": SPACE, "method": "bayes"},
            "search.method: 'bayes' is not one of tpe, cmaes, random, grid",
        ),
        (
            {"trials": 5, "objective": "loss", "space": SPACE, "pruner": "early"},
            "search.pruner: 'early' is not one of none, median",
        ),
        (
            {
                "trials": 5,
                "objective": "loss",
                "space": {"lr": {"low": 0, "high": 1, "log": True}},
            },
            "search.space.lr: a log range needs low > 0",
        ),
        (
            {"trials": 5, "objective": "loss", "space": {"n": {"low": 1, "hi": 2}}},
            "search.space.n: unknown key 'hi'",
        ),
        (
            {"trials": 5, "objective": "loss", "space": SPACE, "method": "grid"},
            "search.space.x: method grid needs choices",
        ),
        (
            {"trials": 5, "objective": "loss", "space": SPACE, "budget": 3},
            "search.budget: is not a key of search",
        ),
    ],
)
def test_a_wrong_search_section_names_the_file_and_the_key(
    tmp_path: Path, search: dict[str, Any], message: str
) -> None:
    path = write_spec(tmp_path, search=search)
    with pytest.raises(SpecError) as info:
        load_spec(path)
    assert str(path) in str(info.value)
    assert message in str(info.value)


@pytest.mark.parametrize(
    ("search", "message"),
    [
        (
            {"sampler": {"name": "tpe", "n_startup": 5}},
            "search.sampler.n_startup: is not a setting of sampler tpe; valid: "
            "seed, n_startup_trials,",
        ),
        (
            {"sampler": {"name": "random", "n_startup_trials": 5}},
            "search.sampler.n_startup_trials: is not a setting of sampler random; "
            "valid: seed",
        ),
        (
            {"sampler": {"name": "bayes"}},
            "search.sampler.name: 'bayes' is not one of tpe, cmaes, random, grid",
        ),
        (
            {"sampler": {"name": "tpe", "multivariate": "yes"}},
            "search.sampler.multivariate: must be true or false, not 'yes'",
        ),
        (
            {"sampler": "tpe", "method": "tpe"},
            "search.sampler: names the method too",
        ),
        (
            {"sampler": {"name": "tpe", "seed": 1}, "seed": 2},
            "search.sampler.seed: the seed is given twice",
        ),
        (
            {"pruner": {"name": "median", "n_warmup_steps": -1}},
            "search.pruner.n_warmup_steps: must be a whole number >= 0, not -1",
        ),
        (
            {"pruner": {"name": "hyperband", "n_warmup_steps": 3}},
            "search.pruner.n_warmup_steps: is not a setting of pruner hyperband; "
            "valid: min_resource, max_resource, reduction_factor, bootstrap_count",
        ),
        ({"pruner": {"n_warmup_steps": 3}}, "search.pruner.name: is required"),
        (
            {"pruner": {"name": "asha", "min_resource": "soon"}},
            "search.pruner.min_resource: must be auto or a whole number >= 1",
        ),
    ],
)
def test_a_wrong_sampler_or_pruner_setting_is_named(
    tmp_path: Path, search: dict[str, Any], message: str
) -> None:
    path = write_spec(
        tmp_path, search={"trials": 5, "objective": "loss", "space": SPACE, **search}
    )
    with pytest.raises(SpecError) as info:
        load_spec(path)
    assert str(path) in str(info.value)
    assert message in str(info.value)


def test_sampler_and_pruner_settings_reach_the_study(
    tmp_path: Path, script: Path
) -> None:
    from exman.sweep.study import open_study

    sampler = {"name": "tpe", "n_startup_trials": 3, "seed": 1}
    # warm-up beyond the script's steps: nothing can be pruned
    pruner = {"name": "median", "n_startup_trials": 0, "n_warmup_steps": 50}
    spec = search_spec(tmp_path, "--steps 6", trials=5, sampler=sampler, pruner=pruner)
    search = load_spec(spec).search
    assert search is not None
    assert (search.method, search.seed, search.pruner) == ("tpe", 1, "median")
    study = open_study(Root(tmp_path / "exman"), "sweep", search)
    assert study is not None
    assert study.sampler._n_startup_trials == 3
    assert study.pruner._n_warmup_steps == 50
    assert study.pruner._n_startup_trials == 0
    summary = sweep(spec)
    assert summary.exit_code == 0, summary.text()
    assert summary.search is not None
    assert summary.search["counts"] == {"complete": 5}
    # the same seed draws the same first values as the plain keys do
    (tmp_path / "again").mkdir()
    (tmp_path / "again" / "main.py").write_text(script.read_text())
    again = search_spec(tmp_path / "again", trials=1, method="tpe", seed=1)
    sweep(again)
    first = study_of(tmp_path / "exman").trials[0].params
    assert study_of(tmp_path / "again" / "exman").trials[0].params == first


def test_a_search_excludes_a_grid_and_a_flag_it_sweeps(tmp_path: Path) -> None:
    path = write_spec(
        tmp_path,
        grid={"lr": [1, 2]},
        search={"trials": 2, "objective": "loss", "space": SPACE},
    )
    with pytest.raises(SpecError, match="grid: a search makes its own tasks"):
        load_spec(path)
    path = search_spec(tmp_path, "--x 3", trials=2)
    with pytest.raises(SpecError, match=r"search\.space: 'x' is also set by command"):
        load_spec(path)


def test_a_search_refuses_the_flags_of_a_fixed_list(
    tmp_path: Path, script: Path
) -> None:
    spec = search_spec(tmp_path, trials=2)
    with pytest.raises(exman.ExmanError, match="search: --index chooses tasks"):
        sweep(spec, index=0)


# -- a study -------------------------------------------------------------------------
def test_tpe_finds_the_optimum_of_a_noisy_quadratic(
    tmp_path: Path, script: Path
) -> None:
    spec = search_spec(tmp_path, trials=20, parallel=2, method="tpe", seed=3)
    summary = sweep(spec)
    assert summary.exit_code == 0, summary.text()
    root = tmp_path / "exman"
    study = study_of(root)
    assert len(study.trials) == 20
    assert study.best_value < 1.0  # the optimum is 0; a random point's mean is 12
    assert abs(study.best_params["x"] - 1) < 1 and abs(study.best_params["y"] + 2) < 1
    # each trial is an ordinary run: its values in params.yaml, its result
    df = exman.Index(root).info()
    assert len(df) == 20 and set(df["status"]) == {"completed"}
    best = df.loc[df["loss"].idxmin()]
    assert best["x"] == study.best_params["x"]
    assert summary.search is not None
    assert summary.search["best"]["run"] == best["id"]
    assert summary.search["counts"] == {"complete": 20}
    # --status: the best trial so far and the trials per state
    status = subprocess.run(
        [sys.executable, "-m", "exman.sweep", str(spec), "--status"],
        capture_output=True,
        text=True,
        check=True,
        cwd=tmp_path,
    ).stdout
    assert "search: 20 of 20 trials (20 complete)" in status
    assert f"best: trial {study.best_trial.number} (run {best['id']}): loss=" in status
    # the budget is spent: running it again asks for no trial
    again = sweep(spec)
    assert again.results == [] and len(study_of(root).trials) == 20


@pytest.mark.parametrize(
    ("listens", "stubborn"),
    [(True, False), (False, False), (False, True)],
    ids=["should_stop", "deaf", "stubborn"],
)
def test_pruning_stops_the_trials_the_pruner_marks(
    tmp_path: Path, script: Path, listens: bool, stubborn: bool
) -> None:
    steps = 25
    spec = search_spec(
        tmp_path,
        f"--steps {steps} --sleep 0.08 --listen {int(listens)} "
        f"--stubborn {int(stubborn)}",
        trials=10,
        parallel=2,
        method="random",
        pruner="median",
        grace=0.3,
    )
    summary = sweep(spec)
    assert summary.exit_code == 0, summary.text()
    root = tmp_path / "exman"
    study = study_of(root)
    pruned = {t.number for t in study.trials if t.state.name == "PRUNED"}
    assert pruned, "the median pruner stopped no trial"
    runs = {r["sweep"]["task"]: r for r in all_runs(root)}
    assert len(runs) == 10
    stop = root / ".exman" / "sweeps" / "sweep" / "stop"
    for number, record in runs.items():
        marked = (stop / record["sweep"]["key"]).exists()
        # a trial the pruner marked is recorded as pruned, and only those
        assert marked == (number in pruned), number
        assert (record["status"] == "pruned") == marked, record
        if marked:
            assert record["place"] == "runs"  # not a failure
    # stopped before their last step: by themselves, or by SIGTERM
    early = [n for n in pruned if steps_logged(runs[n]["path"]) < steps]
    assert early, "no pruned trial stopped early"
    if stubborn:
        assert any(runs[n]["exit_code"] == -signal.SIGKILL for n in pruned)
    elif not listens:
        assert any(runs[n]["exit_code"] == 128 + signal.SIGTERM for n in pruned)
    # the sweep, the index and exman ls see the status
    assert summary.result_counts()["pruned"] == len(pruned)
    assert summary.counts()["pruned"] == len(pruned)
    df = exman.Index(root).info()
    assert set(df.loc[df["status"] == "pruned", "id"]) == {
        runs[n]["id"] for n in pruned
    }
    ls = ["ls", "--status", "pruned", "--format", "csv"]
    listed = subprocess.run(
        [sys.executable, "-m", "exman", "--root", str(root), *ls],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    assert len(listed) == 1 + len(pruned) and all("pruned" in r for r in listed[1:])


# -- a launcher killed mid-study -----------------------------------------------------
def running_runs(root: Path) -> list[dict[str, Any]]:
    return [r for r in all_runs(root) if Run(r["path"]).status == "running"]


def settled(root: Path) -> bool:
    """No trial runs, nor is about to (a process that holds a task's claim)."""
    return not running_runs(root) and not Claims(Root(root)).held()


@pytest.mark.parametrize("orphans", ["finish", "killed"])
def test_a_sigkilled_search_resumes_without_losing_or_doubling_a_trial(
    tmp_path: Path, script: Path, orphans: str
) -> None:
    trials = 6
    spec = search_spec(
        tmp_path, "--steps 2 --sleep 0.3", trials=trials, parallel=2, method="tpe"
    )
    root = tmp_path / "exman"
    proc = subprocess.Popen(
        [sys.executable, "-m", "exman.sweep", str(spec), "-q"],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        wait_for(
            lambda: (
                sum(r.get("status") == "completed" for r in all_runs(root)) >= 2
                and len(running_runs(root)) >= 1
            ),
            timeout=60,
            interval=0.02,
        )
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    assert len(study_of(root).trials) < trials
    if orphans == "killed":  # as a lost node would: they crash
        # a run still being created counts as running before its run.json
        # (and its pid) is written: wait for the record of each
        wait_for(lambda: all("pid" in r for r in running_runs(root)), timeout=30)
        for record in running_runs(root):
            os.killpg(record["pid"], signal.SIGKILL)
    wait_for(lambda: settled(root), timeout=60)
    again = subprocess.run(
        [sys.executable, "-m", "exman.sweep", str(spec), "-q"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert again.returncode == 0, again.stdout + again.stderr
    study = study_of(root)
    assert [t.number for t in study.trials] == list(range(trials))
    assert {t.state.name for t in study.trials} == {"COMPLETE"}
    completed = [r for r in all_runs(root) if r["status"] == "completed"]
    numbers = sorted(r["sweep"]["task"] for r in completed)
    assert numbers == list(range(trials))  # each trial completed once
    for record in completed:  # and told with its own run's value
        trial = study.trials[record["sweep"]["task"]]
        result = json.loads((record["path"] / "results.json").read_text())
        assert trial.value == pytest.approx(result["loss"])
        params = (record["path"] / "params.yaml").read_text()
        assert f"x: {trial.params['x']}" in params


def test_should_stop_outside_a_search_is_false(tmp_path: Path) -> None:
    code = "import exman, time; print(exman.should_stop())"
    env = {k: v for k, v in os.environ.items() if k != "EXMAN_STOP_FILE"}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env
    )
    assert out.stdout.strip() == "False"
    stop = tmp_path / "stop"
    stop.write_text("")
    code = "import exman, time; time.sleep(0.15); print(exman.should_stop())"
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env={**env, "EXMAN_STOP_FILE": str(stop)},
    )
    assert out.stdout.strip() == "True"


def test_a_study_keeps_its_direction(tmp_path: Path, script: Path) -> None:
    spec = search_spec(tmp_path, trials=1, method="random")
    assert sweep(spec).exit_code == 0
    spec = search_spec(tmp_path, trials=2, method="random", direction="maximize")
    with pytest.raises(exman.ExmanError) as info:
        sweep(spec)
    assert "search.direction: the study of sweep 'sweep' is to minimize" in str(
        info.value
    )
    assert len(study_of(tmp_path / "exman").trials) == 1


#: a trial deaf to SIGINT and SIGTERM: only SIGKILL stops it
DEAF = """\
import os, pathlib, signal, time
import exman

parser = exman.ExParser(root=exman.simpleroot(__file__))
parser.add_argument("--x", type=float, default=0.0)
args = parser.parse_args()
with args.safe_experiment:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    pathlib.Path(__file__).with_name("pid").write_text(str(os.getpid()))
    time.sleep(60)
    exman.result(loss=args.x)
"""


def test_a_workers_second_sigterm_cuts_the_grace_short_but_a_copy_does_not(
    tmp_path: Path,
) -> None:
    (tmp_path / "deaf.py").write_text(DEAF)
    spec = write_spec(
        tmp_path,
        command=f"{PYTHON} deaf.py",
        search={
            "trials": 2,
            "objective": "loss",
            "space": {"x": {"low": 0, "high": 1}},
        },
    )
    argv = [sys.executable, "-m", "exman.sweep", str(spec), "--backend", "local"]
    worker = subprocess.Popen(
        [*argv, "-j", "1", "--worker", "0", "--grace", "30"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    pid_file = tmp_path / "pid"
    try:
        wait_for(lambda: pid_file.exists() and pid_file.read_text() != "", 30)
        trial = int(pid_file.read_text())
        # SLURM's SIGTERM, then the job runner's copy of it a moment later
        os.kill(worker.pid, signal.SIGTERM)
        time.sleep(0.2)
        os.kill(worker.pid, signal.SIGTERM)
        time.sleep(2)
        assert alive(trial), "a copy of the first SIGTERM cut the grace short"
        assert worker.poll() is None
        os.kill(worker.pid, signal.SIGTERM)  # a second one: now
        out, _ = worker.communicate(timeout=15)
    finally:
        if worker.poll() is None:
            os.killpg(worker.pid, signal.SIGKILL)
            worker.wait()
    assert not alive(trial)
    assert "killed at once (a second signal)" in out, out
    (record,) = all_runs(tmp_path / "exman")
    assert record["status"] == "interrupted", record
