"""The tests every sweep launcher passes.

A launcher's test module subclasses :class:`LauncherSuite` and sets
``backend`` (its name in ``exman.sweep.launchers.LAUNCHERS``) and, if it
needs them, ``options``. The tasks are small shell commands writing into
``tmp_path``, which the launcher's workers must see (as they must see the
root). Only the launcher's contract is tested here: events, exit codes,
environment, logs, the number of tasks at once, timeouts, stopping, and for
a launcher that hands its tasks to a scheduler, submitting and asking later.

The last cases go through the whole sweep on the launcher, with real
ExParser scripts: a small search (every trial a run with its result, the
study resumed for more trials) and a task stopped from outside whose next
attempt continues its run. A launcher that cannot do one of them says why in
``no_search`` or ``no_resume``; the case is then skipped with that reason.
"""

from __future__ import annotations

import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, ClassVar

import pytest
from _sweep_helpers import (
    PYTHON,
    TRAIN,
    TRAIN_EXTRA,
    all_runs,
    metric_steps,
    write_spec,
)

from exman.record.run import Run
from exman.record.store import ExmanError
from exman.sweep import SweepSummary, sweep
from exman.sweep.launchers import (
    Finished,
    JobState,
    Launcher,
    LaunchEvent,
    LaunchTask,
    Queued,
    Started,
    get_launcher,
)


def shell_task(folder: Path, index: int, script: str) -> LaunchTask:
    return LaunchTask(
        index=index,
        key=f"key{index}",
        argv=["sh", "-c", script],
        cwd=folder,
        env={"SUITE_TASK": str(index)},
        log=folder / f"task{index}.log",
        params={"i": index},
    )


def finished(events: list[LaunchEvent]) -> dict[int, Finished]:
    return {e.task.index: e for e in events if isinstance(e, Finished)}


#: a trial of the suite's search: a quadratic in x, its curve step by step
TRIAL = """\
import time
import exman

parser = exman.ExParser(root=exman.simpleroot(__file__))
parser.add_argument("--x", type=float, default=0.0)
args = parser.parse_args()
loss = (args.x - 1) ** 2
with args.safe_experiment:
    for step in range(3):
        exman.log(step=step, loss=loss + 1 / (1 + step))
        if exman.should_stop():
            break
    exman.result(loss=loss)
"""


class LauncherSuite:
    """Subclass with ``backend = "name"``; pytest collects the subclass."""

    backend: ClassVar[str]
    options: ClassVar[dict[str, Any]] = {}
    #: seconds within which a task of ``true`` is expected to end
    slack: ClassVar[float] = 30.0
    #: whether the launcher hands out ``gpus`` slots (else it must refuse them)
    gpu_slots: ClassVar[bool] = True

    #: why the sweep cannot run a search on this launcher ("": it can)
    no_search: ClassVar[str] = ""
    #: why a task stopped from outside cannot continue its run here ("": it can)
    no_resume: ClassVar[str] = ""

    def launcher(self) -> Launcher:
        return get_launcher(self.backend, **self.options)

    # -- the sweep on this launcher: hooks a launcher's module may change ----------
    def sweep_options(self) -> dict[str, Any]:
        """The keyword arguments of :func:`exman.sweep` that pick this launcher."""
        return {"backend": self.backend}

    def forget(self, name: str) -> None:
        """Clean up after the sweep ``name`` (a scheduler's jobs left behind)."""

    def run_search(self, spec: Path) -> None:
        """Run the search of ``spec`` until the study holds its budget."""
        summary = sweep(spec, **self.sweep_options())
        assert summary.exit_code == 0, summary.text()

    def stop_and_resume(self, spec: Path, root: Path) -> None:
        """Run the one task of ``spec`` (``resume: true``), stop its first
        attempt from outside once it has checkpointed, and return when its
        last attempt ended. Here: the launcher's timeout stops it."""
        summary = sweep(spec, timeout=1.5, **self.sweep_options())
        assert summary.result_counts()["completed"] == 1, summary.text()
        assert len(summary.results) == 1  # the task counts once

    def done(self, spec: Path) -> SweepSummary:
        """The sweep's state once it ended: nothing queued or running."""
        status = sweep(spec, status=True)
        counts = status.counts()
        assert counts["queued"] == counts["running"] == 0, status.text()
        return status

    @pytest.fixture
    def sweep_name(self) -> Iterator[str]:
        name = f"suite{uuid.uuid4().hex[:10]}"
        yield name
        self.forget(name)

    def test_every_task_ends_once_with_its_exit_code(self, tmp_path: Path) -> None:
        tasks = [
            shell_task(tmp_path, 0, "exit 0"),
            shell_task(tmp_path, 1, "exit 3"),
            shell_task(tmp_path, 2, "kill -9 $$"),
            shell_task(tmp_path, 3, "true"),
        ]
        events = list(self.launcher().launch(tasks, jobs=2))
        ends = [e for e in events if isinstance(e, Finished)]
        assert sorted(e.task.index for e in ends) == [0, 1, 2, 3]
        by = finished(events)
        assert (by[0].status, by[0].exit_code) == ("completed", 0)
        assert (by[1].status, by[1].exit_code) == ("failed", 3)
        assert by[2].status == "failed"
        assert by[2].reason is not None and "SIGKILL" in by[2].reason
        for e in events:
            if isinstance(e, Started):
                assert e.task.index in by

    def test_env_cwd_and_log_reach_the_task(self, tmp_path: Path) -> None:
        task = shell_task(
            tmp_path, 7, 'echo "out $SUITE_TASK"; echo err >&2; pwd > where'
        )
        events = list(self.launcher().launch([task]))
        assert finished(events)[7].status == "completed"
        log = task.log.read_text()
        assert "out 7" in log and "err" in log
        assert Path((tmp_path / "where").read_text().strip()) == tmp_path.resolve()

    def test_no_more_than_jobs_tasks_at_once(self, tmp_path: Path) -> None:
        tasks = [shell_task(tmp_path, i, "sleep 0.2") for i in range(6)]
        running, most = 0, 0
        launcher = self.launcher()
        for event in launcher.launch(tasks, jobs=2):
            if not isinstance(event, Queued):
                running += 1 if isinstance(event, Started) else -1
            most = max(most, running)
        assert 1 <= most <= 2
        if launcher.lazy:  # here both slots fill at once; a busy scheduler may not
            assert most == 2

    def test_tasks_are_taken_only_when_there_is_room(self, tmp_path: Path) -> None:
        taken: list[int] = []

        def source() -> Any:
            for i in range(4):
                taken.append(i)
                yield shell_task(tmp_path, i, "true")

        launcher = self.launcher()
        events = launcher.launch(source(), jobs=1)
        first = next(events)
        if launcher.lazy:
            assert isinstance(first, Started) and taken == [0]
        else:  # a scheduler gets them all at once, and runs one at a time
            assert isinstance(first, Queued) and taken == [0, 1, 2, 3]
        rest = list(events)
        assert taken == [0, 1, 2, 3] and len(finished([first, *rest])) == 4

    def test_a_task_past_its_timeout_fails(self, tmp_path: Path) -> None:
        tasks = [shell_task(tmp_path, 0, "sleep 60"), shell_task(tmp_path, 1, "true")]
        start = time.monotonic()
        events = list(self.launcher().launch(tasks, jobs=2, timeout=0.5))
        assert time.monotonic() - start < self.slack
        by = finished(events)
        assert by[0].status == "failed" and by[0].timed_out
        assert by[0].reason == "timeout: stopped after 0.5 s"
        assert by[1].status == "completed" and not by[1].timed_out

    def test_stop_starts_no_new_task(self, tmp_path: Path) -> None:
        tasks = [shell_task(tmp_path, i, "sleep 0.5; exit 1") for i in range(5)]
        launcher = self.launcher()
        events = []
        for event in launcher.launch(tasks, jobs=1):
            events.append(event)
            if isinstance(event, Finished):
                launcher.stop()
        ends = finished(events)
        if launcher.lazy:
            assert list(ends) == [0]
            return
        # the scheduler holds them all: the ones it has not started are
        # cancelled (one may have started as the first ended)
        started = [e.task.index for e in events if isinstance(e, Started)]
        assert started[0] == 0 and len(started) <= 2
        assert sorted(ends) == [0, 1, 2, 3, 4]
        for i, end in ends.items():
            assert end.status == ("failed" if i in started else "interrupted")
        for i in set(ends) - set(started):
            assert not tasks[i].log.exists()

    def test_closing_the_events_stops_the_tasks(self, tmp_path: Path) -> None:
        task = shell_task(tmp_path, 0, "sleep 1; touch too-late")
        events = self.launcher().launch([task])
        while not isinstance(next(events), Started):
            pass  # Queued: a scheduler has it
        events.close()
        time.sleep(2)
        assert not (tmp_path / "too-late").exists()

    def test_gpu_slots(self, tmp_path: Path) -> None:
        # tasks on GPU 0 outlast those on GPU 1: a slot freed on GPU 1 but
        # handed to GPU 0 would put a third task there
        script = 'echo "$CUDA_VISIBLE_DEVICES" > gpu$SUITE_TASK; '
        script += '[ "$CUDA_VISIBLE_DEVICES" = 1 ] || sleep 1'
        tasks = [shell_task(tmp_path, i, script) for i in range(6)]
        if not self.gpu_slots:  # the backend assigns GPUs itself
            with pytest.raises(ExmanError, match="GPU"):
                list(self.launcher().launch(tasks, jobs=4, gpus=["0", "1"]))
            assert not list(tmp_path.glob("gpu*"))
            return
        events = list(self.launcher().launch(tasks, jobs=4, gpus=["0", "1"], per_gpu=2))
        assert len(finished(events)) == 6
        gpus = [(tmp_path / f"gpu{i}").read_text().strip() for i in range(6)]
        assert set(gpus) == {"0", "1"}
        gpu_of: dict[int, str | None] = {}
        now: Counter[str | None] = Counter()
        most: Counter[str | None] = Counter()
        for event in events:
            if isinstance(event, Started):
                gpu_of[event.task.index] = event.gpu
                now[event.gpu] += 1
                most[event.gpu] = max(most[event.gpu], now[event.gpu])
            elif isinstance(event, Finished):
                now[gpu_of[event.task.index]] -= 1
        assert most == {"0": 2, "1": 2}, most  # per_gpu=2 on each, and no more

    def test_submit_returns_and_query_tells_later(self, tmp_path: Path) -> None:
        tasks = [
            shell_task(tmp_path, 0, 'echo "out $SUITE_TASK"'),
            shell_task(tmp_path, 1, "exit 4"),
        ]
        launcher = self.launcher()
        if not launcher.detaches:
            with pytest.raises(ExmanError, match=launcher.name):
                launcher.submit(tasks)
            return
        queued = launcher.submit(tasks, jobs=2)
        assert [q.task.index for q in queued] == [0, 1]
        assert all(q.job is not None for q in queued), [q.reason for q in queued]
        jobs = {str(q.job): q.task.log for q in queued}
        assert len(jobs) == 2
        # another launcher (a later process) asks about them
        states: dict[str, JobState] = {}
        deadline = time.monotonic() + self.slack
        while time.monotonic() < deadline:
            states = self.launcher().query(jobs)
            if all(s.state in ("completed", "failed") for s in states.values()):
                break
            time.sleep(0.2)
        first, second = (states[str(q.job)] for q in queued)
        assert first.state == "completed" and first.exit_code == 0
        assert second.state == "failed" and second.exit_code == 4
        assert "out 0" in tasks[0].log.read_text()

    @pytest.mark.parametrize("options", [{"jobs": 0}, {"per_gpu": 0}, {"timeout": 0}])
    def test_bad_options_are_refused(
        self, tmp_path: Path, options: dict[str, Any]
    ) -> None:
        with pytest.raises(ExmanError):
            list(self.launcher().launch([shell_task(tmp_path, 0, "true")], **options))

    # -- through the sweep ---------------------------------------------------------
    def test_a_search_runs_each_trial_as_a_run_and_resumes(
        self, tmp_path: Path, root: Path, sweep_name: str
    ) -> None:
        if self.no_search:
            pytest.skip(f"{self.backend}: no search: {self.no_search}")
        optuna = pytest.importorskip("optuna")
        (tmp_path / "trial.py").write_text(TRIAL)
        search: dict[str, Any] = {
            "method": "random",
            "trials": 3,
            "objective": "loss",
            "seed": 1,
            "space": {"x": {"low": -3, "high": 3}},
        }

        def spec_with(trials: int) -> Path:
            return write_spec(
                tmp_path,
                name=sweep_name,
                command=f"{PYTHON} trial.py",
                search={**search, "trials": trials},
            )

        self.run_search(spec_with(3))
        first = {r["id"]: r for r in all_runs(root)}
        self.run_search(spec_with(4))  # the same study, one trial more
        runs = all_runs(root)
        journal = root / ".exman" / "sweeps" / sweep_name / "study.journal"
        storage = optuna.storages.JournalStorage(
            optuna.storages.journal.JournalFileBackend(str(journal))
        )
        study = optuna.load_study(study_name=sweep_name, storage=storage)
        assert [t.state.name for t in study.trials] == ["COMPLETE"] * 4
        # every trial one completed run, asked for once: the first three kept
        assert sorted(int(r["sweep"]["task"]) for r in runs) == [0, 1, 2, 3]
        assert {r["id"]: r["started"] for r in runs if r["id"] in first} == {
            i: r["started"] for i, r in first.items()
        }
        for record in runs:
            assert record["status"] == "completed" and record["place"] == "runs"
            trial = study.trials[int(record["sweep"]["task"])]
            run = Run(record["path"])
            assert run.params["x"] == trial.params["x"]
            assert trial.value == pytest.approx((trial.params["x"] - 1) ** 2)
            assert metric_steps(record["path"]) == [0, 1, 2]
        status = self.done(spec_with(4))
        assert status.search is not None
        assert status.search["counts"] == {"complete": 4}, status.search
        assert status.search["best"]["value"] == study.best_value

    def test_a_stopped_task_continues_its_run(
        self,
        make_script: Callable[..., Path],
        root: Path,
        sweep_name: str,
    ) -> None:
        if self.no_resume:
            pytest.skip(f"{self.backend}: no resume: {self.no_resume}")
        script = make_script(TRAIN, extra=TRAIN_EXTRA)
        spec = write_spec(
            script.parent,
            name=sweep_name,
            command=f"{PYTHON} main.py --epochs 8 --sleep 0.4",
            grid={"lr": [0.1]},
            resume=True,
            max_attempts=10,
        )
        self.stop_and_resume(spec, root)
        (record,) = all_runs(root)  # one run, in its own folder all along
        assert record["status"] == "completed" and record["place"] == "runs"
        assert record["attempt"] >= 2, record
        attempts = record["attempts"]
        assert attempts[0]["status"] == "interrupted", attempts
        assert attempts[-1]["status"] == "completed"
        # the curve goes on where the last checkpoint left it: no step twice
        assert metric_steps(record["path"]) == list(range(8))
        log = (record["path"] / "log.txt").read_text()
        assert "attempt 1 resumed False from 0" in log
        assert "attempt 2 resumed True from " in log
        assert "attempt 2 resumed True from 0" not in log
        assert self.done(spec).counts()["completed"] == 1
