"""Tasks handed to a scheduler: the sweep's record of them, and their fate.

A launcher that detaches (``slurm``) returns as soon as the scheduler has
the tasks. ``root/.exman/sweeps/<name>/jobs/<key>.json`` records which job
holds each task (its id, the task number and log, when it was submitted)
and, once known, how it ended; the task's claim (:mod:`.claims`) names the
job too, so no other sweep starts the task meanwhile.

Every ``exman sweep`` starts with :func:`refresh`: it asks each launcher
about the jobs still open, in one batched question, and settles those that
ended. A run stopped by the scheduler (time limit, memory, node failure,
cancellation) is recorded as failed with the scheduler's reason and moved
to ``fails/``; a job cancelled before its task started leaves no run, and
its record says failed. :func:`overlay` then gives the plan what only the
jobs know: ``queued`` or ``running``, the job ids, those failures.
"""

from __future__ import annotations

import json
import os
import pathlib
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..record.files import make_dir
from ..record.run import Run, effective_status, hostname, now_iso, pid_alive
from ..record.store import ExmanError, Root, atomic_write
from .claims import Claims
from .launchers.base import JobState, Launcher, LaunchTask, Queued, get_launcher
from .plan import TaskState, scan_runs
from .runner import (
    Options,
    _last_line,
    _note_traceback,
    launch_task,
    sweep_dir,
)
from .spec import Spec
from .summary import SweepSummary

__all__ = ["JobBook", "Refreshed", "overlay", "refresh", "submit"]

JOBS_DIR = "jobs"
#: the states of a job that has not ended
OPEN = ("queued", "running")


class JobBook:
    """The job records of one sweep: ``.exman/sweeps/<name>/jobs/<key>.json``."""

    def __init__(self, root: Root, name: str) -> None:
        self.dir = sweep_dir(root, name) / JOBS_DIR

    def read(self, keys: Collection[str] | None = None) -> dict[str, dict[str, Any]]:
        """The records (of ``keys``, else all), by task key."""
        try:
            names = os.listdir(self.dir)
        except FileNotFoundError:
            return {}
        out = {}
        for name in names:
            key, dot, ext = name.rpartition(".")
            if ext != "json" or not dot or (keys is not None and key not in keys):
                continue
            try:
                with open(self.dir / name, "rb") as f:
                    record = json.load(f)
            except (OSError, ValueError):
                continue
            if isinstance(record, dict):
                out[key] = record
        return out

    def write(self, key: str, record: Mapping[str, Any]) -> None:
        make_dir(self.dir, exist_ok=True)
        atomic_write(self.dir / f"{key}.json", json.dumps(record, indent=1) + "\n")

    def update(self, key: str, **fields: Any) -> None:
        """Merge ``fields`` into the record of ``key``, if there is one."""
        record = self.read({key}).get(key)
        if record is not None:
            self.write(key, {**record, **fields})


def new_record(queued: Queued, backend: str, after: int) -> dict[str, Any]:
    """The record of a task just submitted as job ``queued.job``."""
    return {
        "task": queued.task.index,
        "job": queued.job,
        "backend": backend,
        "log": str(queued.task.log),
        "submitted": now_iso(),
        # the runs this job makes have larger ids
        "after": after,
        "state": "queued",
        "reason": None,
        "exit_code": None,
        "ended": None,
        "run": None,
    }


@dataclass
class Refreshed:
    """What :func:`refresh` learned: every record, the open jobs' states, notes."""

    records: dict[str, dict[str, Any]] = field(default_factory=dict)
    live: dict[str, JobState] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def refresh(root: Root, name: str, keys: Collection[str]) -> Refreshed:
    """Ask about the open jobs of sweep ``name`` and settle those that ended.

    One question per backend, whatever the number of jobs. A job whose
    launcher still waits for it (``--wait`` in another process) is left to
    that launcher to settle.
    """
    book = JobBook(root, name)
    claims = Claims(root)
    held = claims.jobs(keys)
    out = Refreshed(records=book.read(keys))
    groups: dict[str, dict[str, dict[str, Any]]] = {}
    for key, record in out.records.items():
        if key in held and record.get("job") == held[key].get("job"):
            groups.setdefault(str(record.get("backend")), {})[key] = record
    for backend, records in groups.items():
        try:
            states = get_launcher(backend).query(
                {str(r["job"]): pathlib.Path(r["log"]) for r in records.values()}
            )
        except ExmanError as e:
            out.notes.append(f"cannot ask {backend} about {len(records)} jobs: {e}")
            for key, record in records.items():
                out.live[key] = JobState(str(record.get("state", "running")))
            continue
        for key, record in records.items():
            state = states[str(record["job"])]
            if state.state in OPEN or _waited_for(held[key]):
                out.live[key] = state
                if state.state in OPEN and state.state != record.get("state"):
                    record.update(state=state.state, reason=state.reason)
                    book.write(key, record)
                continue
            record.update(settle(root, key, record, state))
            book.write(key, record)
            claims.end(key, record["state"], job=record["job"])
    return out


def _waited_for(claim: Mapping[str, Any]) -> bool:
    """A launcher on this host still waits for the job (and will settle it)."""
    pid = claim.get("pid")
    return (
        claim.get("host") == hostname()
        and isinstance(pid, int)
        and pid != os.getpid()
        and pid_alive(pid, claim.get("pid_start"))
    )


def settle(
    root: Root, key: str, record: Mapping[str, Any], state: JobState
) -> dict[str, Any]:
    """Record how job ``record`` ended in its task's run: the fields to update."""
    runs = scan_runs(root, {key}, after=int(record.get("after") or 0)).get(key, [])
    status, reason, code = state.state, state.reason, state.exit_code
    done = {"ended": now_iso(), "exit_code": code}
    if not runs:
        if status == "completed":
            status, reason = (
                "failed",
                (
                    "exited with code 0 but recorded no run: is the command an "
                    "ExParser script (without --tmp)?"
                ),
            )
        reason = (
            reason or _last_line(pathlib.Path(record["log"])) or f"exit code {code}"
        )
        return {**done, "state": status, "reason": reason, "run": None}
    for earlier in runs[:-1]:  # attempts before a requeue, killed outright
        if earlier.status in ("running", "crashed"):
            Run(earlier.path).finish("interrupted", reason="stopped; the job ran again")
    info = runs[-1]
    run = Run(info.path)
    recorded = run.record()
    was = effective_status(recorded, run.beat())
    live = was in ("running", "crashed")
    if was == "completed":
        status, reason = "completed", None
    elif status == "completed" and live:  # exited 0 without recording its end
        run.finish("completed", exit_code=0, record=recorded)
    elif status == "completed":
        status, reason = "failed", recorded.get("reason") or f"recorded as {was}"
    else:
        status = "failed"
        reason = reason or recorded.get("reason") or f"exit code {code}"
        if state.timed_out or live:
            # stopped from outside: the run says interrupted, or nothing yet
            _note_traceback(run, f"exman sweep: {reason}\n")
            run.finish("failed", exit_code=code, reason=reason, record=recorded)
    path = info.path
    if status == "failed" and path.parent.name == "runs":
        path = root.move_to_fails(path)
    return {**done, "state": status, "reason": reason, "run": info.id}


def overlay(states: Sequence[TaskState], refreshed: Refreshed) -> None:
    """Give the plan's states what only the jobs know."""
    for s in states:
        record = refreshed.records.get(s.task.key)
        if record is None:
            continue
        s.job = record.get("job")
        live = refreshed.live.get(s.task.key)
        if s.state == "running" and live is not None:
            s.state = "queued" if live.state == "queued" else "running"
            s.reason = live.reason
        elif (
            s.state == "pending"
            and record.get("state") == "failed"
            and record.get("run") is None
        ):
            s.state = "failed"  # e.g. cancelled in the queue: no run says so
            s.reason = record.get("reason")


def submit(
    spec: Spec,
    root: Root,
    options: Options,
    launcher: Launcher,
    summary: SweepSummary,
    planned_at: float,
) -> SweepSummary:
    """Hand the planned tasks to ``launcher``'s scheduler, record the jobs, return.

    :raises ExmanError: GPU slots are asked for (the scheduler hands out
        GPUs), or nothing could be submitted.
    """
    if options.gpus:
        raise ExmanError(
            f"{launcher.name} assigns the GPUs itself: ask for them in the spec's "
            f"{launcher.name}: section, not with --gpus"
        )
    root.ensure()
    claims = Claims(root)
    book = JobBook(root, spec.name)
    logs = sweep_dir(root, spec.name) / "logs"
    make_dir(logs, exist_ok=True)
    after = root.last_id()
    chosen: dict[str, tuple[TaskState, LaunchTask]] = {}
    for state in summary.planned:
        task = state.task
        refused = claims.acquire(
            task.key, since=planned_at, sweep=spec.name, task=task.index
        )
        if refused is not None:  # another launcher took it since the plan
            summary.skipped[refused] = summary.skipped.get(refused, 0) + 1
            continue
        chosen[task.key] = (state, launch_task(spec, task, logs))
    queued: list[Queued] = []
    try:
        if chosen:
            queued = launcher.submit(
                [t for _, t in chosen.values()],
                jobs=options.jobs,
                timeout=options.timeout,
            )
    finally:
        taken = {q.task.key for q in queued if q.job is not None}
        for key in chosen:
            if key not in taken:
                claims.release(key, "not submitted")
    unsent = [q for q in queued if q.job is None]
    for q in queued:
        if q.job is None:
            continue
        state = chosen[q.task.key][0]
        claims.assign(q.task.key, job=q.job, backend=launcher.name)
        book.write(q.task.key, new_record(q, launcher.name, after))
        state.state, state.job = "queued", q.job
        summary.submitted[state.task.index] = q.job
    if unsent:
        summary.not_started = len(unsent)
        summary.notes.append(
            f"{len(unsent)} tasks were not submitted ({unsent[0].reason}): "
            "run the same command again when the queue has room"
        )
    return summary
