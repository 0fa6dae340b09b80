"""Running a sweep: plan, claim each task, launch, record how it ended.

The launcher only runs commands. Everything that touches the root happens
here: the plan, the claims that keep a task from running twice, and the
bookkeeping after a task ends — a run stopped by the timeout is recorded as
failed and moved to ``fails/``; a run left ``running`` by a killed process is
recorded as interrupted (or failed); a failed run that the script left in
``runs/`` (no ``safe_experiment``) joins the others in ``fails/``.
"""

from __future__ import annotations

import contextlib
import json
import os
import pathlib
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..record.files import make_dir, open_append
from ..record.run import (
    RUN_FILE,
    TRACEBACK_FILE,
    Run,
    effective_status,
    hostname,
    now_iso,
)
from ..record.store import Root, atomic_write, run_id
from .claims import Claims
from .hooks import Hooks
from .launchers.base import (
    Finished,
    Launcher,
    LaunchTask,
    Queued,
    Started,
    get_launcher,
)
from .plan import PLACES, RunInfo, TaskState, plan, read_run, select, task_state
from .progress import Progress
from .spec import Spec, Task
from .summary import SweepSummary, TaskResult

__all__ = [
    "Options",
    "execute",
    "launch_task",
    "make_launcher",
    "sweep_dir",
]

SWEEPS_DIR = "sweeps"


def sweep_dir(root: Root, name: str) -> pathlib.Path:
    """``root/.exman/sweeps/<name>``: the sweep's record and its task logs."""
    return root.state / SWEEPS_DIR / name


@dataclass
class Options:
    """The keyword arguments of :func:`exman.sweep`, checked."""

    jobs: int | None = None
    dry_run: bool = False
    index: int | Sequence[int] | None = None
    shard: tuple[int, int] | None = None
    force: bool = False
    retry_failed: bool = False
    fail_fast: bool = False
    max_failures: int | None = None
    timeout: float | None = None
    gpus: list[str] | None = None
    per_gpu: int = 1
    status: bool = False
    backend: str = "local"
    grace: float = 5.0
    launcher_options: dict[str, Any] = field(default_factory=dict)
    #: with a launcher that detaches (slurm): wait for the tasks all the same
    wait: bool = False

    @property
    def failure_limit(self) -> int | None:
        if self.fail_fast:
            return 1
        return self.max_failures

    @property
    def workers(self) -> int:
        if self.jobs is not None:
            return self.jobs
        return len(self.gpus) * self.per_gpu if self.gpus else 1


def execute(spec: Spec, options: Options, progress: Progress) -> SweepSummary:
    """Plan the sweep, then show it (status, dry run) or run it."""
    root = Root(spec.root)
    tasks = spec.tasks()
    refreshed = None
    if (sweep_dir(root, spec.name) / "jobs").is_dir():
        from .jobs import refresh

        # what became of the tasks handed to a scheduler, before planning
        refreshed = refresh(root, spec.name, {t.key for t in tasks})
    planned_at = time.time()
    states = plan(root, tasks)
    if refreshed is not None:
        from .jobs import overlay

        overlay(states, refreshed)
    selection = select(
        states,
        index=options.index,
        shard=options.shard,
        force=options.force,
        retry_failed=options.retry_failed,
    )
    chosen = _chosen(states, options)
    summary = SweepSummary(
        name=spec.name,
        root=root.path,
        spec=spec.path,
        mode="status" if options.status else "dry-run" if options.dry_run else "run",
        states=states,
        selected=chosen,
        planned=selection.run,
        skipped={why: len(s) for why, s in selection.skipped.items()},
        notes=list(spec.notes) + (refreshed.notes if refreshed is not None else []),
    )
    if options.status:
        return summary
    if options.dry_run:
        summary.commands = [spec.shell_line(s.task) for s in selection.run]
        return summary
    launcher = make_launcher(spec, options)
    if launcher.detaches and not options.wait:
        from .jobs import submit

        summary.mode = "submit"
        submit(spec, root, options, launcher, summary, planned_at)
        progress.end(summary)
        return summary
    return _Sweep(spec, root, options, progress, summary, planned_at).run(launcher)


def make_launcher(spec: Spec, options: Options) -> Launcher:
    """The launcher of ``options.backend``, with the spec's section for it."""
    launcher_options = dict(options.launcher_options)
    if options.backend == "local":
        launcher_options.setdefault("grace", options.grace)
    elif options.backend == "ray":
        launcher_options = {"grace": options.grace, **spec.ray}
        launcher_options.update(options.launcher_options)
    elif options.backend == "slurm":
        launcher_options = {"grace": options.grace, **spec.slurm}
        launcher_options.update(options.launcher_options)
    return get_launcher(options.backend, **launcher_options)


def launch_task(spec: Spec, task: Task, logs: pathlib.Path) -> LaunchTask:
    """What a launcher needs to run ``task``; its output goes to a log in ``logs``."""
    return LaunchTask(
        index=task.index,
        key=task.key,
        argv=list(spec.argv),
        cwd=spec.cwd,
        env=spec.task_env(task),
        log=logs / f"{task.index:05d}-{task.key}.log",
        params=task.params,
    )


def _chosen(states: Sequence[TaskState], options: Options) -> list[int]:
    indices = [s.task.index for s in states]
    if options.index is not None:
        indices = (
            [options.index] if isinstance(options.index, int) else list(options.index)
        )
    if options.shard is not None:
        k, n = options.shard
        indices = [i for i in indices if i % n == k]
    return indices


class _Sweep:
    """One run of a sweep: the loop over the launcher's events."""

    def __init__(
        self,
        spec: Spec,
        root: Root,
        options: Options,
        progress: Progress,
        summary: SweepSummary,
        planned_at: float,
    ) -> None:
        self.spec = spec
        self.root = root.ensure()
        self.options = options
        self.progress = progress
        self.summary = summary
        self.planned_at = planned_at
        self.claims = Claims(self.root)
        self.folder = sweep_dir(self.root, spec.name)
        self.logs = self.folder / "logs"
        make_dir(self.logs, exist_ok=True)
        self.finder = _RunFinder(self.root, after=self.root.last_id())
        self.hooks = Hooks(
            on_task_end=spec.on_task_end,
            on_sweep_end=spec.on_sweep_end,
            webhook=spec.webhook,
            cwd=spec.cwd,
        )
        self.launched = 0
        self.refused = 0
        self.failures = 0
        #: the keys of the tasks handed to a scheduler's jobs
        self.queued: set[str] = set()

    def run(self, launcher: Launcher) -> SweepSummary:
        summary, options = self.summary, self.options
        start = time.monotonic()
        self._record(started=now_iso(), finished=None)
        jobs = options.workers
        if options.jobs is None and not options.gpus and summary.planned:
            jobs = launcher.default_jobs() or jobs
        self.progress.begin(
            name=self.spec.name,
            total=len(summary.states),
            planned=summary.planned,
            skipped=summary.skipped,
            jobs=jobs,
        )
        events = launcher.launch(
            self._tasks(),
            jobs=jobs,
            timeout=options.timeout,
            gpus=options.gpus,
            per_gpu=options.per_gpu,
        )
        try:
            with contextlib.closing(events):
                for event in events:
                    if isinstance(event, Started):
                        if event.pid is not None:
                            self.claims.started(event.task.key, event.pid)
                        self.progress.started(
                            summary.states[event.task.index].task, event.gpu
                        )
                    elif isinstance(event, Finished):
                        self._finished(event, launcher)
                    elif isinstance(event, Queued):
                        self._queued(event, launcher)
                    for error in self.hooks.new_errors():
                        self.progress.note(f"hook failed: {error}")
        finally:
            summary.interrupted = launcher.interrupted
            summary.not_started = max(
                0, len(summary.planned) - self.launched - self.refused
            )
            summary.duration = time.monotonic() - start
            self.hooks.wait()
            summary.hook_errors = list(self.hooks.errors)
            self._record(
                finished=now_iso(), counts=summary.counts(), status=summary.status
            )
        self.hooks.sweep_end(summary.hook_env(), summary.payload())
        summary.hook_errors = list(self.hooks.errors)
        self.progress.end(summary)
        return summary

    # -- feeding the launcher --------------------------------------------------------
    def _tasks(self) -> Iterator[LaunchTask]:
        """The planned tasks, each claimed just before it is handed out."""
        for state in self.summary.planned:
            task = state.task
            refused = self.claims.acquire(
                task.key, since=self.planned_at, sweep=self.spec.name, task=task.index
            )
            if refused is not None:  # another launcher took it since the plan
                self.refused += 1
                skipped = self.summary.skipped
                skipped[refused] = skipped.get(refused, 0) + 1
                self.progress.refused(task, refused)
                continue
            self.launched += 1
            yield launch_task(self.spec, task, self.logs)

    def _queued(self, event: Queued, launcher: Launcher) -> None:
        """A scheduler holds the task: its claim and the sweep record name the job."""
        from .jobs import JobBook, new_record

        if event.job is None:
            return
        self.claims.assign(event.task.key, job=event.job, backend=launcher.name)
        book = JobBook(self.root, self.spec.name)
        book.write(event.task.key, new_record(event, launcher.name, self.finder.after))
        state = self.summary.states[event.task.index]
        state.state, state.job = "queued", event.job
        self.summary.submitted[event.task.index] = event.job
        self.queued.add(event.task.key)

    # -- after a task ----------------------------------------------------------------
    def _finished(self, event: Finished, launcher: Any) -> None:
        state = self.summary.states[event.task.index]
        result = self._settle(event, state)
        self.claims.release(event.task.key, result.status)
        if event.task.key in self.queued:
            from .jobs import JobBook

            JobBook(self.root, self.spec.name).update(
                event.task.key,
                state=result.status,
                reason=result.reason,
                exit_code=result.exit_code,
                ended=now_iso(),
                run=result.run_id,
            )
        if result.run is not None:
            state.runs.append(result.run)
        state.state = task_state(state.runs)
        if result.run is None and state.state != "completed":
            # nothing on disk says so, but this call saw it fail or stop
            state.state = "failed" if result.status == "failed" else "interrupted"
        self.summary.results.append(result)
        self.progress.finished(result)
        self.hooks.task_end(result.hook_env(self.spec.name, self.root.path))
        if result.status == "failed":
            self.failures += 1
            limit = self.options.failure_limit
            if limit is not None and self.failures >= limit and not launcher.stopping:
                launcher.stop()
                self.progress.note(
                    f"{self.failures} task{'s' if self.failures != 1 else ''} failed: "
                    "starting no new task (the running ones finish)"
                )

    def _settle(self, event: Finished, state: TaskState) -> TaskResult:
        """Match the task's run, and make its record tell how it really ended."""
        task = state.task
        info = self.finder.take(task.key)
        status, reason = event.status, event.reason
        if info is None:
            if status == "completed":
                status = "failed"
                reason = (
                    "exited with code 0 but recorded no run: is the command an "
                    "ExParser script (without --tmp)?"
                )
            elif reason is None:
                reason = _last_line(event.task.log) or f"exit code {event.exit_code}"
            return self._result(event, state, status, reason, None)
        run = Run(info.path)
        record = run.record()
        recorded = effective_status(record, run.beat())
        live = recorded in ("running", "crashed")
        if event.timed_out:
            _note_traceback(run, f"exman sweep: {event.reason}\n")
            run.finish(
                "failed", exit_code=event.exit_code, reason=event.reason, record=record
            )
            status = "failed"
        elif status == "interrupted":
            if recorded == "completed":
                status = "completed"
            elif live:
                run.finish(
                    "interrupted",
                    exit_code=event.exit_code,
                    reason=reason,
                    record=record,
                )
            else:
                reason = record.get("reason") or reason
        elif status == "completed":
            if live:  # exited 0 without recording its end (os._exit)
                run.finish("completed", exit_code=0, record=record)
            elif recorded != "completed":
                status, reason = (
                    "failed",
                    record.get("reason") or f"recorded as {recorded}",
                )
        else:
            if live:
                run.finish(
                    "failed", exit_code=event.exit_code, reason=reason, record=record
                )
            reason = reason or record.get("reason") or f"exit code {event.exit_code}"
        path = info.path
        if status == "failed" and path.parent.name == "runs":
            path = self.root.move_to_fails(path)
        info = RunInfo(info.id, path, info.key, status, reason, info.task)
        return self._result(event, state, status, reason, info)

    def _result(
        self,
        event: Finished,
        state: TaskState,
        status: str,
        reason: str | None,
        run: RunInfo | None,
    ) -> TaskResult:
        return TaskResult(
            task=state.task,
            status=status,
            exit_code=event.exit_code,
            duration=event.duration,
            reason=reason,
            run=run,
            log=event.task.log,
            timed_out=event.timed_out,
        )

    def _record(self, **fields: Any) -> None:
        """``.exman/sweeps/<name>/sweep.json``: when and from where it last ran."""
        path = self.folder / "sweep.json"
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            record = {}
        record.update(
            name=self.spec.name,
            spec=None if self.spec.path is None else str(self.spec.path),
            command=self.spec.command,
            tasks=len(self.summary.states),
            host=hostname(),
            pid=os.getpid(),
            **fields,
        )
        atomic_write(path, json.dumps(record, indent=1) + "\n")


class _RunFinder:
    """Finds the run a task just made among the runs made since the start.

    Run ids only grow: the runs of this sweep have ids above the counter's
    value at its start, so only their records are ever read, each once.
    """

    def __init__(self, root: Root, *, after: int) -> None:
        self.root = root
        self.after = after
        self.known: dict[str, RunInfo | None] = {}
        self.taken: set[int] = set()

    def take(self, key: str) -> RunInfo | None:
        """The newest run with ``key`` not yet taken (None if there is none)."""
        for place in PLACES:
            try:
                entries = os.scandir(self.root.path / place)
            except FileNotFoundError:
                continue
            with entries:
                for entry in entries:
                    num = run_id(entry.name)
                    if num is None or num <= self.after or num in self.taken:
                        continue
                    if entry.path not in self.known:
                        folder = pathlib.Path(entry.path)
                        info = read_run(folder)
                        # a folder without run.json yet is still being made
                        if info is not None or (folder / RUN_FILE).exists():
                            self.known[entry.path] = info
        best: RunInfo | None = None
        for path, info in list(self.known.items()):
            if info is None or info.key != key or info.id in self.taken:
                continue
            if not os.path.isdir(path):  # moved to fails/ since
                del self.known[path]
                continue
            if best is None or info.id > best.id:
                best = info
        if best is not None:
            self.taken.add(best.id)
        return best


def _note_traceback(run: Run, text: str) -> None:
    path = run.path / TRACEBACK_FILE
    with contextlib.suppress(OSError), open_append(path) as f:
        f.write(text.encode("utf-8"))


def _last_line(path: pathlib.Path, limit: int = 4096) -> str | None:
    """The last non-empty line of a log (its error message, usually)."""
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - limit))
            tail = f.read().decode("utf-8", "replace")
    except OSError:
        return None
    lines = [line.strip() for line in tail.splitlines() if line.strip()]
    lines = [line for line in lines if not line.startswith("== ")]
    return lines[-1] if lines else None
