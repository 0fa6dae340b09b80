"""An adaptive search: a source of tasks that asks a study for the next one.

A spec with a ``search:`` section (:mod:`.space`) runs trials instead of a
fixed list of tasks. Trial ``n`` of the study (:mod:`.study`) is task
``n``: its values are what the sampler proposed, its key hashes the
command, the values and the number, and it runs as every task does, as an
ordinary run of the script. Its outcome goes back to the study: the
objective read from the run (a result, else the last value of the metric),
``pruned`` or ``failed``. A trial whose run was interrupted stays open in
the study and runs again, as the same trial, when the search resumes.

The budget (``trials``) counts every trial of the study, whatever its end,
so running the same ``exman sweep spec.yaml`` again after a crash asks
only for the trials that are missing: the count and the ask happen under
one lock, and a trial's run that ended while no launcher watched is told
to the study then.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import math
import pathlib
import signal
import threading
import time
from collections.abc import Iterator, Sequence
from typing import Any

from ..look.outcome import read_outcome
from ..record.errors import ExmanError
from ..record.files import make_dir
from ..record.lock import FileLock
from ..record.run import Run
from ..record.stop import REASON as PRUNED
from ..record.store import Root
from .claims import Claims
from .expand import Task, canonical
from .launchers.base import LaunchTask
from .loop import SweepLoop
from .options import Options, make_launcher, sweep_dir
from .plan import TaskState
from .progress import Progress
from .pruning import Pruning
from .runs import RunInfo, scan_runs, task_state
from .source import TaskSource
from .spec import Spec
from .study import distributions, grid_size, open_study
from .summary import SweepSummary, TaskResult

__all__ = ["SearchSource", "execute_search", "objective_value", "trial_key"]

#: the flags of ``exman sweep`` that choose tasks of a fixed list
NOT_FOR_SEARCH = {
    "index": "--index",
    "shard": "--shard",
    "force": "--force",
    "retry_failed": "--retry-failed",
}


#: in the search's folder: held while counting the trials and asking for one
ASK_LOCK = "ask.lock"


def trial_key(argv: Sequence[str], params: dict[str, Any], number: int) -> str:
    """The key of trial ``number``: two trials with the same values differ."""
    data = {"command": list(argv), "params": params, "trial": number}
    return hashlib.sha256(canonical(data).encode("utf-8")).hexdigest()[:16]


def objective_value(folder: pathlib.Path, name: str) -> float | None:
    """The objective of the run in ``folder``: its result ``name``, else the
    last value it logged of the metric ``name``; None when it has neither
    (or it is not a finite number)."""
    values, _ = read_outcome(str(folder))
    value = values.get(name)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


class SearchSource(TaskSource):
    """Trials asked of the study one at a time, their outcomes told to it.

    :param states: the trials' states by number (grows as trials are asked).
    :param rerun: trials the study holds open whose runs did not end: they
        run again first.
    """

    def __init__(
        self,
        spec: Spec,
        root: Root,
        study: Any,
        states: list[TaskState],
        rerun: Sequence[TaskState],
        summary: SweepSummary,
    ) -> None:
        assert spec.search is not None
        self.spec, self.search, self.root, self.study = spec, spec.search, root, study
        self.states, self.rerun, self.summary = states, list(rerun), summary
        self.budget = budget(spec)
        self.dists = distributions(self.search)
        self.argv = spec.key_argv()
        self.lock = threading.Lock()
        #: the trials this source asked for, by number
        self.trials: dict[int, Any] = {}
        self.pruning = Pruning(
            root,
            self.search.objective,
            self.lock,
            after=root.last_id(),
            note=summary.notes.append,
        )

    def __iter__(self) -> Iterator[TaskState]:
        yield from self.rerun
        folder = sweep_dir(self.root, self.spec.name)
        while True:
            with _locked(folder), self.lock:
                if len(self.study.get_trials(deepcopy=False)) >= self.budget:
                    return
                trial = self.study.ask(self.dists)
            number = trial.number
            self.trials[number] = trial
            params = dict(trial.params)
            task = Task(number, params, trial_key(self.argv, params, number))
            state = TaskState(task, "pending")
            while len(self.states) <= number:  # another launcher asked meanwhile
                self.states.append(_placeholder(len(self.states)))
            self.states[number] = state
            yield state

    def started(self, task: LaunchTask, pid: int | None) -> None:
        if self.search.pruner == "none":
            return
        trial, reported = self._trial(task.index)
        stop = str(self.spec.stop_file(task.key))
        self.pruning.follow(task.index, task.key, trial, stop, reported)

    def stopped(self, task: LaunchTask) -> bool:
        return (
            task.key in self.pruning.stopped or self.spec.stop_file(task.key).exists()
        )

    def tell(self, result: TaskResult) -> None:
        with self.lock:
            self.pruning.forget(result.task.key)
            note = tell(self.study, result.task.index, result, self.search.objective)
        if note:
            self.summary.notes.append(note)

    def close(self) -> None:
        self.pruning.close()
        self.summary.search = report(self.study, self.spec, self.states)

    def _trial(self, number: int) -> tuple[Any, int | None]:
        """Trial ``number`` to report to, and the last step it holds already
        (from an earlier attempt: a step is reported once)."""
        frozen = self.study.get_trials(deepcopy=False)[number]
        last = max(frozen.intermediate_values, default=None)
        trial = self.trials.get(number)
        if trial is None:  # a trial asked for by an earlier launcher
            import optuna

            # Optuna's one way to a trial it did not just hand out
            trial = optuna.trial.Trial(self.study, frozen._trial_id)
        return trial, last


def tell(study: Any, number: int, result: TaskResult | RunInfo, objective: str) -> str:
    """Tell the study how trial ``number`` ended; a note for the user, or ''."""
    from optuna.trial import TrialState

    status = result.status
    run = result.run if isinstance(result, TaskResult) else result
    frozen = study.get_trials(deepcopy=False)[number]
    if frozen.state.is_finished():
        return ""  # told already (by another launcher)
    if status == "completed":
        value = None if run is None else objective_value(run.path, objective)
        if value is not None:
            study.tell(number, value)
            return ""
        study.tell(number, state=TrialState.FAIL)
        where = f"run {run.id}" if run is not None else "its run"
        return (
            f"trial {number}: {where} recorded no number {objective!r} "
            "(exman.result or exman.log): the study counts it as failed"
        )
    if status == "pruned":
        study.tell(number, state=TrialState.PRUNED)
    elif status == "failed":
        study.tell(number, state=TrialState.FAIL)
    return ""  # interrupted: it stays open and runs again on resume


def budget(spec: Spec) -> int:
    """How many trials the study holds when the search is done."""
    assert spec.search is not None
    if spec.search.method == "grid":
        return min(spec.search.trials, grid_size(spec.search))
    return spec.search.trials


def _locked(folder: pathlib.Path) -> contextlib.AbstractContextManager[Any]:
    """The lock under which a search counts its trials and asks for one
    (none for a look at a search that never ran)."""
    if not folder.is_dir():
        return contextlib.nullcontext()
    return FileLock(str(folder / ASK_LOCK))


def _placeholder(number: int) -> TaskState:
    return TaskState(Task(number, {}, ""), "pending")


def resume(
    spec: Spec, root: Root, study: Any, *, settle: bool = True
) -> tuple[list[TaskState], list[TaskState]]:
    """Every trial of the study as a task state, and the open trials to run again.

    A trial the study holds open (its launcher died, or was stopped) is
    settled from its run: told when the run ended, left alone while it
    runs (under another launcher, or orphaned by a dead one), run again
    when it was interrupted or made no run.

    :param settle: tell the study what the runs say (False: only look).
    """
    assert spec.search is not None
    argv, objective = spec.key_argv(), spec.search.objective
    trials = study.get_trials(deepcopy=False) if study is not None else []
    tasks = [
        Task(t.number, dict(t.params), trial_key(argv, t.params, t.number))
        for t in trials
    ]
    runs = scan_runs(root, {t.key for t in tasks})
    held = Claims(root).held({t.key for t in tasks})
    states: list[TaskState] = []
    rerun: list[TaskState] = []
    for trial, task in zip(trials, tasks):
        found = runs.get(task.key, [])
        state = TaskState(task, task_state(found, task.key in held), found)
        states.append(state)
        if not settle or trial.state.is_finished() or state.state == "running":
            continue
        if state.state == "interrupted" and spec.stop_file(task.key).exists():
            # pruned, then killed with its launcher before it said so
            last = found[-1]
            Run(last.path).finish("pruned", reason=PRUNED)
            found[-1] = last._replace(status="pruned", reason=PRUNED)
            state.state = "pruned"
        if state.state in ("completed", "pruned", "failed"):
            run = state.run
            assert run is not None
            tell(
                study,
                trial.number,
                run._replace(status=state.state),
                objective,
            )
        else:
            rerun.append(state)
    for _ in range(len(states), budget(spec)):
        states.append(_placeholder(len(states)))
    return states, rerun


def report(study: Any, spec: Spec, states: Sequence[TaskState]) -> dict[str, Any]:
    """What the study holds: trials per state and the best trial so far."""
    assert spec.search is not None
    trials = study.get_trials(deepcopy=False) if study is not None else []
    counts: dict[str, int] = {}
    for t in trials:
        name = t.state.name.lower()
        counts[name] = counts.get(name, 0) + 1
    out: dict[str, Any] = {
        "budget": budget(spec),
        "objective": spec.search.objective,
        "direction": spec.search.direction,
        "counts": counts,
        "best": None,
    }
    done = [t for t in trials if t.value is not None and t.state.name == "COMPLETE"]
    if done:
        pick = min if spec.search.direction == "minimize" else max
        best = pick(done, key=lambda t: t.value)
        run = states[best.number].run if best.number < len(states) else None
        out["best"] = {
            "trial": best.number,
            "value": best.value,
            "params": dict(best.params),
            "run": None if run is None else run.id,
        }
    return out


def execute_search(
    spec: Spec, root: Root, options: Options, progress: Progress
) -> SweepSummary:
    """Plan a search, then show it (status, dry run) or run it."""
    assert spec.search is not None
    for name, flag in NOT_FOR_SEARCH.items():
        value = getattr(options, name)
        if value is not None and value is not False:
            raise ExmanError(
                f"search: {flag} chooses tasks of a fixed list; a search asks "
                "its study for each trial (raise search.trials to run more)"
            )
    if options.backend not in ("local", "ray", "slurm"):
        raise ExmanError(f"search: not supported on {options.backend}")
    if options.worker is not None and options.backend != "local":
        raise ExmanError("search: a worker runs its trials here: --backend local")
    if options.backend == "slurm" and options.wait:
        raise ExmanError(
            "search: on slurm the trials run in worker jobs: --wait is not "
            "supported (follow them with --status)"
        )
    planned_at = time.time()
    show = options.status or options.dry_run
    folder = sweep_dir(root, spec.name)
    if not show:
        make_dir(folder, exist_ok=True)
    if options.backend == "slurm" and not show:
        from .workers import release_dead

        release_dead(spec, root, options)  # its trials run again
    offset = 0
    if options.worker is not None and not show:
        from .workers import become_worker

        offset = become_worker(options.worker)
    with _locked(folder):
        done = 0
        study = open_study(root, spec.name, spec.search, create=not show)
        if study is not None:
            done = len(study.get_trials(deepcopy=False))
            if (done or offset) and not show:  # a resumed search draws new values
                study = open_study(
                    root, spec.name, spec.search, seed_offset=done + offset
                )
        states, rerun = resume(spec, root, study, settle=not show)
    left = max(0, budget(spec) - done)
    planned = [*rerun, *(states[done + i] for i in range(left))]
    summary = SweepSummary(
        name=spec.name,
        root=root.path,
        spec=spec.path,
        mode="status" if options.status else "dry-run" if options.dry_run else "run",
        states=states,
        selected=range(len(states)),
        planned=planned,
        notes=list(spec.notes),
    )
    summary.search = report(study, spec, states)
    if spec.search.method == "grid" and budget(spec) < spec.search.trials:
        summary.notes.append(
            f"search: the grid holds {budget(spec)} points: that many trials "
            f"instead of {spec.search.trials}"
        )
    elsewhere = sum(1 for state in states if state.state == "running")
    if elsewhere:  # under another launcher, or orphans of a dead one
        summary.skipped["running"] = elsewhere
    if options.status and options.backend != "ray":  # a search on SLURM?
        from .workers import live_workers

        alive: list[str] | None = None
        try:
            alive = live_workers(spec, root, options)
        except ExmanError as e:
            summary.notes.append(f"search: cannot ask SLURM about the workers: {e}")
        if alive is not None:
            summary.search["workers"] = alive
    if show:
        if options.dry_run:
            summary.notes.append(
                "search: each trial's values are chosen when it starts: no "
                "command lines ahead"
            )
        return summary
    if options.backend == "slurm":
        from .workers import submit_workers

        submit_workers(spec, root, options, summary, len(planned))
        progress.end(summary)
        return summary
    if options.worker is not None:
        from .workers import stop_asked

        if stop_asked():  # SLURM ends the job: start no trial
            summary.interrupted = signal.SIGTERM
            summary.not_started = len(planned)
            progress.end(summary)
            return summary
    source = SearchSource(spec, root, study, states, rerun, summary)
    jobs = options.jobs if options.jobs is not None else spec.search.parallel
    options = dataclasses.replace(options, jobs=jobs)
    loop = SweepLoop(spec, root, options, progress, summary, planned_at, source)
    return loop.run(make_launcher(spec, options))
