"""What a sweep did: the result of each task and the summary of the whole."""

from __future__ import annotations

import json
import pathlib
import signal
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from .plan import STATES, Plan, TaskState
from .runs import RunInfo
from .spec import Task

__all__ = ["SweepSummary", "TaskResult"]

#: failures listed in a summary text and in the webhook payload
MAX_LISTED = 10


@dataclass
class TaskResult:
    """How one launched task ended.

    :param status: ``completed``, ``failed`` or ``interrupted``.
    :param reason: why it failed or stopped (the run's last traceback line,
        the timeout, the exit code).
    :param run: the run it made, None when it made none (it failed before
        parsing its arguments, e.g. an unknown parameter).
    :param log: the file holding its stdout and stderr.
    """

    task: Task
    status: str
    exit_code: int | None
    duration: float
    reason: str | None = None
    run: RunInfo | None = None
    log: pathlib.Path | None = None
    gpu: str | None = None
    timed_out: bool = False

    @property
    def run_id(self) -> int | None:
        return self.run.id if self.run is not None else None

    def describe(self) -> str:
        """``task 3 (run 12): ValueError: bad lr``."""
        where = f"task {self.task.index}"
        if self.run is not None:
            where += f" (run {self.run.id})"
        return f"{where}: {self.reason or self.status}"

    def hook_env(self, name: str, root: pathlib.Path) -> dict[str, str]:
        """The environment of an ``on_task_end`` hook."""
        return {
            "EXMAN_SWEEP_NAME": name,
            "EXMAN_SWEEP_ROOT": str(root),
            "EXMAN_TASK": str(self.task.index),
            "EXMAN_TASK_KEY": self.task.key,
            "EXMAN_TASK_PARAMS": self.task.params_json(),
            "EXMAN_TASK_STATUS": self.status,
            "EXMAN_TASK_EXIT_CODE": ""
            if self.exit_code is None
            else str(self.exit_code),
            "EXMAN_TASK_REASON": self.reason or "",
            "EXMAN_TASK_DURATION": f"{self.duration:.3f}",
            "EXMAN_TASK_RUN": "" if self.run is None else str(self.run.id),
            "EXMAN_TASK_RUN_PATH": "" if self.run is None else str(self.run.path),
            "EXMAN_TASK_LOG": "" if self.log is None else str(self.log),
        }

    def as_dict(self) -> dict[str, Any]:
        return {
            "task": self.task.index,
            "key": self.task.key,
            "params": self.task.params,
            "status": self.status,
            "exit_code": self.exit_code,
            "reason": self.reason,
            "duration": self.duration,
            "run": self.run_id,
            "log": None if self.log is None else str(self.log),
        }


@dataclass
class SweepSummary:
    """The outcome of :func:`exman.sweep`.

    ``states`` holds every task of the spec with its state after the sweep;
    ``results`` the tasks this call launched, in the order they ended.
    """

    name: str
    root: pathlib.Path
    spec: pathlib.Path | None
    #: ``run``, ``status``, ``dry-run`` or ``submit`` (handed to a scheduler)
    mode: str
    states: Sequence[TaskState]
    #: the task numbers that ``index``/``shard`` kept
    selected: Sequence[int]
    #: the tasks this call meant to run
    planned: Sequence[TaskState]
    #: tasks left out, by reason: completed, failed, running
    skipped: dict[str, int] = field(default_factory=dict)
    results: list[TaskResult] = field(default_factory=list)
    #: planned tasks never started (fail-fast, max-failures, interrupted)
    not_started: int = 0
    #: the signal that stopped the sweep, if one did
    interrupted: int | None = None
    duration: float = 0.0
    hook_errors: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    #: the shell lines of the planned tasks (``dry-run``)
    commands: Sequence[str] = field(default_factory=list)
    #: task number -> the scheduler's job that now holds it (``submit``)
    submitted: dict[int, str] = field(default_factory=dict)
    #: a search's study: ``budget``, ``counts`` of trials by state, ``best``
    #: (and on SLURM its ``workers``: the jobs still queued or running)
    search: dict[str, Any] | None = None

    # -- counts ------------------------------------------------------------------
    def counts(self) -> dict[str, int]:
        """How many tasks of the spec are in each state (after the sweep)."""
        if isinstance(self.states, Plan):
            found = self.states.counts()
        else:
            found = Counter(s.state for s in self.states)
        return {state: found.get(state, 0) for state in STATES}

    def result_counts(self) -> dict[str, int]:
        """How the tasks launched by this call ended."""
        found = Counter(r.status for r in self.results)
        ended = ("completed", "pruned", "failed", "interrupted")
        return {s: found.get(s, 0) for s in ended}

    @property
    def failures(self) -> list[TaskResult]:
        return [r for r in self.results if r.status == "failed"]

    @property
    def ok(self) -> bool:
        """No task of the selection is failed, and nothing was interrupted."""
        if self.interrupted is not None:
            return False
        chosen = (
            self.selected if isinstance(self.selected, range) else set(self.selected)
        )
        if chosen == range(len(self.states)):  # every task: no need to look at each
            return not self.counts()["failed"]
        # a failed task always has a run or a record: it is among the held ones
        held = self.states.touched() if isinstance(self.states, Plan) else self.states
        return not any(s.state == "failed" for s in held if s.task.index in chosen)

    @property
    def exit_code(self) -> int:
        """0 when :attr:`ok`; 128 + signal when interrupted; 1 otherwise."""
        if self.interrupted is not None:
            return 128 + self.interrupted
        return 0 if self.ok else 1

    @property
    def status(self) -> str:
        """``completed``, ``failed`` or ``interrupted``."""
        if self.interrupted is not None:
            return "interrupted"
        return "completed" if self.ok else "failed"

    # -- text ----------------------------------------------------------------------
    def text(self) -> str:
        """A few lines for a person: what ran, what failed, what is left."""
        total = len(self.states)
        lines: list[str] = []
        if self.mode == "run":
            ran = self.result_counts()
            if self.results:
                parts = [f"{n} {s}" for s, n in ran.items() if n]
                lines.append(
                    f"sweep {self.name}: ran {len(self.results)} task"
                    f"{'s' if len(self.results) != 1 else ''} in "
                    f"{self.duration:.1f} s: {', '.join(parts)}"
                )
            elif self.submitted:  # waited for jobs, saw none end
                lines.append(
                    f"sweep {self.name}: submitted {len(self.submitted)} tasks as "
                    f"jobs {job_ranges(self.submitted.values())}; none ended yet"
                )
            else:
                left = ", ".join(f"{n} {why}" for why, n in self.skipped.items() if n)
                lines.append(
                    f"sweep {self.name}: nothing to run"
                    + (f" (skipped: {left})" if left else "")
                )
            if self.interrupted is not None and self.submitted:
                lines.append(
                    f"stopped waiting ({_signame(self.interrupted)}): the submitted "
                    "jobs go on; --status shows how they do"
                )
            elif self.interrupted is not None:
                lines.append(
                    f"interrupted by {_signame(self.interrupted)}: run the same "
                    "command again to resume"
                )
            if self.not_started:
                lines.append(f"{self.not_started} planned tasks were not started")
        elif self.mode == "submit":
            left = ", ".join(f"{n} {why}" for why, n in self.skipped.items() if n)
            if self.submitted:
                n = len(self.submitted)
                what = "worker" if self.search is not None else "task"
                lines.append(
                    f"sweep {self.name}: submitted {n} {what}{'s' if n != 1 else ''}"
                    f" as job{'s' if n != 1 else ''} "
                    + job_ranges(self.submitted.values())
                    + (f" (skipped: {left})" if left else "")
                )
                spec = self.spec if self.spec is not None else "SPEC"
                lines.append(f"follow them with: exman sweep {spec} --status")
            else:
                lines.append(
                    f"sweep {self.name}: nothing to submit"
                    + (f" (skipped: {left})" if left else "")
                )
        skipped = [f"{n} {why}" for why, n in self.skipped.items() if n]
        if skipped and self.mode == "run" and self.results:
            lines.append("skipped: " + ", ".join(skipped))
        counts = self.counts()
        scope = (
            f"{len(self.selected)} of {total} tasks selected"
            if len(self.selected) != total
            else f"{total} tasks"
        )
        lines.append(
            f"{scope}; all tasks: "
            + ", ".join(f"{n} {s}" for s, n in counts.items() if n)
        )
        lines += self.search_lines()
        if self.skipped.get("failed"):
            lines.append("failed tasks are not run again without --retry-failed")
        if self.skipped.get("queued"):
            lines.append("queued tasks were left alone: --status shows them")
        if self.skipped.get("running"):
            lines.append(
                "tasks running elsewhere were left alone: run the sweep again "
                "when they end"
            )
        for result in self.failures[:MAX_LISTED]:
            line = "  failed " + result.describe()
            if result.log is not None and result.run is None:
                line += f"  (log: {result.log})"
            lines.append(line)
        if len(self.failures) > MAX_LISTED:
            lines.append(f"  … and {len(self.failures) - MAX_LISTED} more failures")
        lines += [f"note: {n}" for n in self.notes]
        lines += [f"hook failed: {e}" for e in self.hook_errors]
        return "\n".join(lines)

    def search_lines(self) -> list[str]:
        """A search's study: its trials by state, and the best one so far."""
        if self.search is None:
            return []
        found = self.search["counts"]
        total = sum(found.values())
        counts = ", ".join(f"{n} {s}" for s, n in found.items() if n)
        lines = [
            f"search: {total} of {self.search['budget']} trials"
            + (f" ({counts})" if counts else "")
        ]
        best = self.search["best"]
        if best is not None:
            run = f" (run {best['run']})" if best["run"] is not None else ""
            values = " ".join(f"{k}={v}" for k, v in best["params"].items())
            lines.append(
                f"best: trial {best['trial']}{run}: "
                f"{self.search['objective']}={best['value']:.6g}  {values}"
            )
        workers = self.search.get("workers")
        if workers is not None:  # a search on SLURM
            n = len(workers)
            lines.append(
                f"workers: {n} job{'s' if n != 1 else ''} queued or running"
                + (f" ({job_ranges(workers)})" if workers else "")
            )
        return lines

    def __str__(self) -> str:
        return self.text()

    # -- notifications -------------------------------------------------------------
    def payload(self) -> dict[str, Any]:
        """The webhook's JSON: Slack's ``text`` plus the details."""
        return {
            "text": self.text(),
            "sweep": self.name,
            "root": str(self.root),
            "spec": None if self.spec is None else str(self.spec),
            "status": self.status,
            "duration": round(self.duration, 3),
            "counts": self.counts(),
            "ran": self.result_counts(),
            "skipped": dict(self.skipped),
            "failures": [r.as_dict() for r in self.failures[:MAX_LISTED]],
            "search": self.search,
        }

    def hook_env(self) -> dict[str, str]:
        """The environment of an ``on_sweep_end`` hook."""
        counts = self.counts()
        ran = self.result_counts()
        env = {
            "EXMAN_SWEEP_NAME": self.name,
            "EXMAN_SWEEP_ROOT": str(self.root),
            "EXMAN_SWEEP_STATUS": self.status,
            "EXMAN_SWEEP_TOTAL": str(len(self.states)),
            "EXMAN_SWEEP_RAN": str(len(self.results)),
            "EXMAN_SWEEP_DURATION": f"{self.duration:.3f}",
            "EXMAN_SWEEP_TEXT": self.text(),
            "EXMAN_SWEEP_SUMMARY": json.dumps(self.payload(), default=str),
        }
        for state, n in counts.items():
            env[f"EXMAN_SWEEP_{state.upper()}"] = str(n)
        for state, n in ran.items():
            env[f"EXMAN_SWEEP_RAN_{state.upper()}"] = str(n)
        return env


def job_ranges(jobs: Iterable[str]) -> str:
    """``12_0 12_1 12_2 13_0`` -> ``12_[0-2], 13_0``: job array elements in short."""
    arrays: dict[str, list[int]] = {}
    plain: list[str] = []
    for job in jobs:
        head, _, index = job.partition("_")
        if index.isdigit():
            arrays.setdefault(head, []).append(int(index))
        else:
            plain.append(job)
    parts = list(plain)
    for head, indices in arrays.items():
        indices.sort()
        spans: list[str] = []
        start = prev = indices[0]
        for i in [*indices[1:], None]:
            if i is not None and i == prev + 1:
                prev = i
                continue
            spans.append(str(start) if start == prev else f"{start}-{prev}")
            if i is not None:
                start = prev = i
        one = len(spans) == 1 and "-" not in spans[0]
        parts.append(f"{head}_{spans[0]}" if one else f"{head}_[{','.join(spans)}]")
    return ", ".join(parts)


def _signame(signum: int) -> str:
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"
