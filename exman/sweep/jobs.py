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
from ..record.run import hostname, now_iso, pid_alive
from ..record.store import ExmanError, Root, atomic_write
from .claims import Claims
from .launchers.base import JobState, Queued, get_launcher
from .options import sweep_dir
from .outcome import Ending, settle
from .plan import TaskState, locate
from .runs import scan_runs
from .spec import Task

__all__ = ["JobBook", "Refreshed", "ended", "new_record", "overlay", "refresh"]

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
    #: the number of each recorded task in the spec, by key
    where: dict[str, int] = field(default_factory=dict)


def refresh(root: Root, name: str, tasks: Sequence[Task]) -> Refreshed:
    """Ask about the open jobs of sweep ``name`` and settle those that ended.

    One question per backend, whatever the number of jobs. A job whose
    launcher still waits for it (``--wait`` in another process) is left to
    that launcher to settle.
    """
    book = JobBook(root, name)
    claims = Claims(root)
    records = book.read()
    where = locate(tasks, {k: r.get("task") for k, r in records.items()})
    held = claims.jobs(where)
    out = Refreshed({k: records[k] for k in where}, where=where)
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
            record.update(ended(root, key, record, state))
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


def ended(
    root: Root, key: str, record: Mapping[str, Any], state: JobState
) -> dict[str, Any]:
    """Settle the task of job ``record``, which ended: the fields to update.

    The job's runs are those made since it was submitted; all but the last
    are attempts that a requeue cut short.
    """
    runs = scan_runs(root, {key}, after=int(record.get("after") or 0)).get(key, [])
    ending = Ending(
        state.state,
        state.reason,
        state.exit_code,
        pathlib.Path(record["log"]),
        timed_out=state.timed_out,
    )
    outcome = settle(root, ending, runs[-1] if runs else None, runs[:-1])
    return {
        "ended": now_iso(),
        "exit_code": state.exit_code,
        "state": outcome.status,
        "reason": outcome.reason,
        "run": None if outcome.run is None else outcome.run.id,
    }


def overlay(states: Sequence[TaskState], refreshed: Refreshed) -> None:
    """Give the plan's states what only the jobs know."""
    for key, record in refreshed.records.items():
        s = states[refreshed.where[key]]
        s.job = record.get("job")
        live = refreshed.live.get(key)
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
