"""Which tasks of a sweep are done, failed, running or still to run.

The run folders are the truth: every run a sweep task made records the
task's key in its ``run.json``. :func:`scan_runs` reads those records from
``runs/`` and ``fails/`` (``tmp/`` runs never count); :func:`plan` gives each
task its state; :func:`select` picks the tasks to launch.

A task's state, from the runs with its key:

* ``completed`` — one of them completed;
* ``running`` — one is alive (or a launcher holds the task: see
  :mod:`exman.sweep.claims`);
* ``queued`` — a scheduler's job holds the task and has not started it
  (told apart from ``running`` by :mod:`exman.sweep.jobs`);
* ``failed`` — one failed (the script raised or exited non-zero, or hit the
  sweep's timeout); re-run only with ``retry_failed`` or ``force``;
* ``interrupted`` — stopped by Ctrl-C, or ``crashed`` (its process died
  without a word: SIGKILL, a reboot); run again by default;
* ``pending`` — no run yet.
"""

from __future__ import annotations

import json
import os
import pathlib
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field

from ..record.run import RUN_FILE, effective_status
from ..record.store import ExmanError, Root, run_id
from .claims import Claims
from .spec import Task

__all__ = [
    "STATES",
    "RunInfo",
    "TaskState",
    "parse_shard",
    "plan",
    "scan_runs",
    "select",
]

STATES = ("pending", "queued", "running", "completed", "failed", "interrupted")
#: where the runs of a sweep can be; ``tmp/`` runs are never done
PLACES = ("runs", "fails")


@dataclass(frozen=True)
class RunInfo:
    """A run that a sweep task made, from its ``run.json``."""

    id: int
    path: pathlib.Path
    key: str
    status: str
    reason: str | None = None
    task: int | None = None


@dataclass
class TaskState:
    """A task with the state its runs give it."""

    task: Task
    state: str
    runs: list[RunInfo] = field(default_factory=list)
    #: the scheduler's job that holds the task or last ran it
    job: str | None = None
    #: why it waits or failed, when no run says so (a job cancelled in the queue)
    reason: str | None = None

    @property
    def run(self) -> RunInfo | None:
        """The run that decides the state (the completed one, else the latest)."""
        for info in reversed(self.runs):
            if self.state == "completed" and info.status == "completed":
                return info
        return self.runs[-1] if self.runs else None


def read_run(path: pathlib.Path) -> RunInfo | None:
    """The sweep run in folder ``path``, or None when it is not one."""
    try:
        with open(path / RUN_FILE, "rb") as f:
            raw = f.read()
            beat = os.fstat(f.fileno()).st_mtime  # the run's heartbeat
    except OSError:
        return None
    if b'"sweep"' not in raw:  # most runs of a big root: no parse needed
        return None
    try:
        record = json.loads(raw)
    except ValueError:
        return None
    sweep = record.get("sweep") if isinstance(record, dict) else None
    if not isinstance(sweep, dict) or not isinstance(sweep.get("key"), str):
        return None
    num = run_id(path.name)
    task = sweep.get("task")
    return RunInfo(
        id=num if num is not None else -1,
        path=path,
        key=sweep["key"],
        status=effective_status(record, beat),
        reason=record.get("reason"),
        task=task if isinstance(task, int) else None,
    )


def scan_runs(
    root: Root, keys: Collection[str] | None = None, *, after: int = 0
) -> dict[str, list[RunInfo]]:
    """The sweep runs of ``root`` by task key, each list sorted by run id.

    :param keys: keep only these keys (all when None).
    :param after: only runs with a larger id (the runs made since then).
    """
    found: dict[str, list[RunInfo]] = {}
    for place in PLACES:
        try:
            entries = os.scandir(root.path / place)
        except FileNotFoundError:
            continue
        with entries:
            for entry in entries:
                num = run_id(entry.name)
                if num is None or num <= after:
                    continue
                info = read_run(pathlib.Path(entry.path))
                if info is not None and (keys is None or info.key in keys):
                    found.setdefault(info.key, []).append(info)
    for runs in found.values():
        runs.sort(key=lambda r: r.id)
    return found


def task_state(runs: Sequence[RunInfo], held: bool = False) -> str:
    """The state of a task whose runs are ``runs``; ``held`` by a live launcher."""
    statuses = {r.status for r in runs}
    if "completed" in statuses:
        return "completed"
    if "running" in statuses or held:
        return "running"
    if "failed" in statuses:
        return "failed"
    if statuses:
        return "interrupted"  # interrupted, crashed, unknown
    return "pending"


def plan(root: Root, tasks: Sequence[Task]) -> list[TaskState]:
    """Every task of ``tasks`` with its state in ``root``."""
    keys = {t.key for t in tasks}
    runs = scan_runs(root, keys) if root.path.is_dir() else {}
    held = Claims(root).held(keys) if root.path.is_dir() else set()
    return [
        TaskState(
            t, task_state(runs.get(t.key, []), t.key in held), runs.get(t.key, [])
        )
        for t in tasks
    ]


def parse_shard(text: str) -> tuple[int, int]:
    """``"K/N"`` as ``(K, N)``; shards are numbered from 0, like ``--index``.

    :raises ExmanError: not of the form K/N with 0 <= K < N.
    """
    try:
        k_text, n_text = text.split("/")
        k, n = int(k_text), int(n_text)
    except ValueError:
        raise ExmanError(
            f"shard {text!r} must be K/N, e.g. 0/4 (shard 0 of 4)"
        ) from None
    if n < 1 or not 0 <= k < n:
        raise ExmanError(
            f"shard {text!r}: K must be 0..{max(n - 1, 0)} and N >= 1 "
            "(shards are numbered from 0, like --index)"
        )
    return k, n


@dataclass
class Selection:
    """The tasks to launch, and the ones left out with the reason."""

    run: list[TaskState]
    skipped: dict[str, list[TaskState]]

    def count(self, reason: str) -> int:
        return len(self.skipped.get(reason, []))


def select(
    states: Sequence[TaskState],
    *,
    index: Iterable[int] | int | None = None,
    shard: tuple[int, int] | None = None,
    force: bool = False,
    retry_failed: bool = False,
) -> Selection:
    """Pick the tasks to launch.

    :param index: only these task numbers.
    :param shard: ``(K, N)``: only the tasks whose number is K modulo N;
        the N shards are disjoint and together hold every task.
    :param force: run completed and failed tasks again.
    :param retry_failed: run failed tasks again.
    :raises ExmanError: an index out of range.
    """
    chosen = list(states)
    if index is not None:
        wanted = [index] if isinstance(index, int) else list(index)
        for i in wanted:
            if not 0 <= i < len(states):
                raise ExmanError(
                    f"task {i} does not exist: the sweep has {len(states)} tasks "
                    f"(0..{len(states) - 1})"
                )
        chosen = [states[i] for i in wanted]
    if shard is not None:
        k, n = shard
        chosen = [s for s in chosen if s.task.index % n == k]
    run: list[TaskState] = []
    skipped: dict[str, list[TaskState]] = {}
    for s in chosen:
        if s.state in ("running", "queued"):  # never twice, not even with force
            reason = s.state
        elif force:
            reason = ""
        elif s.state == "completed":
            reason = "completed"
        elif s.state == "failed" and not retry_failed:
            reason = "failed"
        else:
            reason = ""
        if reason:
            skipped.setdefault(reason, []).append(s)
        else:
            run.append(s)
    return Selection(run, skipped)
