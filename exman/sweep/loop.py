"""Running a sweep here: the loop over a launcher's events.

The launcher only runs commands. Everything that touches the root happens
here: the claims that keep a task from running twice (:mod:`.claims`), the
record of tasks handed to a scheduler's jobs (:mod:`.jobs`), and how each
task ended (:mod:`.outcome`).
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import time
from collections.abc import Iterator
from typing import Any

from ..record.files import make_dir
from ..record.run import hostname, now_iso
from ..record.store import Root, atomic_write
from .claims import Claims
from .hooks import Hooks
from .jobs import JobBook, new_record
from .launchers.base import Finished, Launcher, LaunchTask, Queued, Started
from .options import Options, sweep_dir
from .outcome import Ending, RunFinder, settle
from .plan import TaskState
from .progress import Progress
from .runs import RunInfo, task_state
from .source import TaskSource, launch_task
from .spec import Spec
from .summary import SweepSummary, TaskResult

__all__ = ["SweepLoop"]


class SweepLoop:
    """One run of a sweep: tasks from a source, events from a launcher.

    Each task is claimed just before the launcher takes it; each end is
    settled by :func:`.outcome.settle`, released in the claims and told to
    the source.
    """

    def __init__(
        self,
        spec: Spec,
        root: Root,
        options: Options,
        progress: Progress,
        summary: SweepSummary,
        planned_at: float,
        source: TaskSource,
    ) -> None:
        self.spec = spec
        self.source = source
        self.root = root.ensure()
        self.options = options
        self.progress = progress
        self.summary = summary
        self.planned_at = planned_at
        self.claims = Claims(self.root)
        self.folder = sweep_dir(self.root, spec.name)
        self.logs = self.folder / "logs"
        make_dir(self.logs, exist_ok=True)
        self.finder = RunFinder(self.root, after=self.root.last_id())
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
        #: the script's volatile arguments, as its runs record them
        self.volatile: set[str] = set()

    def run(self, launcher: Launcher) -> SweepSummary:
        """Run the source's tasks with ``launcher``; the summary says how."""
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
                        self.source.started(event.task, event.pid)
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
            self.source.close()
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
        """The source's tasks, each claimed just before it is handed out."""
        for state in self.source:
            task = state.task
            # a worker of a search on SLURM names itself, for when its job dies
            number = self.options.worker
            worker = {} if number is None else {"worker": number}
            refused = self.claims.acquire(
                task.key,
                since=self.planned_at,
                sweep=self.spec.name,
                task=task.index,
                **worker,
            )
            if refused is not None:  # another launcher took it since the plan
                self.refused += 1
                skipped = self.summary.skipped
                skipped[refused] = skipped.get(refused, 0) + 1
                self.progress.refused(task, refused)
                continue
            self.launched += 1
            yield launch_task(self.spec, task, self.logs, self.claims.handle(task.key))

    def _queued(self, event: Queued, launcher: Launcher) -> None:
        """A scheduler holds the task: its claim and the sweep record name the job."""
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
            self.volatile.update(result.run.volatile)
        state.state = task_state(state.runs)
        if result.run is None and state.state != "completed":
            # nothing on disk says so, but this call saw it fail or stop
            state.state = "failed" if result.status == "failed" else "interrupted"
        self.summary.results.append(result)
        self.source.tell(result)
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
        ending = Ending(
            event.status,
            event.reason,
            event.exit_code,
            event.task.log,
            timed_out=event.timed_out,
            pruned=self.source.stopped(event.task),
        )
        outcome = settle(self.root, ending, self.finder.take(state.task.key))
        return self._result(event, state, outcome.status, outcome.reason, outcome.run)

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
        key_command = shlex.join(self.spec.key_argv())
        earlier = [c for c in record.get("key_commands", []) if isinstance(c, str)]
        record.update(
            name=self.spec.name,
            spec=None if self.spec.path is None else str(self.spec.path),
            command=self.spec.command,
            # the words that counted in the keys: what a later --dry-run compares
            key_command=key_command,
            # every form the keys were made with, and the script's volatile
            # arguments: a later sweep finds these tasks under their old keys
            key_commands=list(dict.fromkeys([*earlier, key_command])),
            volatile=sorted({*record.get("volatile", []), *self.volatile}),
            tasks=len(self.summary.states),
            host=hostname(),
            pid=os.getpid(),
            **fields,
        )
        atomic_write(path, json.dumps(record, indent=1) + "\n")
