"""Which tasks of a sweep are done, failed, running or still to run.

The run folders are the truth: every run a sweep task made records the
task's number and key in its ``run.json`` (:mod:`.runs`). :func:`plan`
gives each task its state, holding only the tasks that a run, a claim or a
job speaks of; :func:`select` picks the tasks to launch.

A task's state, from the runs with its key:

* ``completed`` — one of them completed;
* ``running`` — one is alive (or a launcher holds the task: see
  :mod:`exman.sweep.claims`);
* ``queued`` — a scheduler's job holds the task and has not started it
  (told apart from ``running`` by :mod:`exman.sweep.jobs`);
* ``pruned`` — one was stopped early by a search's pruner (done, as
  ``completed`` is);
* ``failed`` — one failed (the script raised or exited non-zero, or hit the
  sweep's timeout); re-run only with ``retry_failed`` or ``force``;
* ``interrupted`` — stopped by Ctrl-C, or ``crashed`` (its process died
  without a word: SIGKILL, a reboot); run again by default;
* ``pending`` — no run yet.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from operator import attrgetter
from typing import overload

from ..look.cache import no_gc
from ..record.fingerprint import CodeCheck
from ..record.store import ExmanError, Root
from .claims import Claims
from .expand import TaskList
from .keys import load_keys, store_keys
from .runs import RunInfo, scan_runs, task_state
from .spec import Task

__all__ = [
    "STATES",
    "Plan",
    "TaskState",
    "locate",
    "parse_shard",
    "plan",
    "select",
]

#: a sweep with runs of at least this many tasks keeps its tasks' keys
#: (see :mod:`.keys`)
KEEP_KEYS = 1000

STATES = (
    "pending",
    "queued",
    "running",
    "completed",
    "pruned",
    "failed",
    "interrupted",
)


_STATE = attrgetter("state")


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


class Plan(Sequence[TaskState]):
    """Every task of a sweep with its state, made when it is asked for.

    Only the tasks that something on disk speaks of (a run, a claim, a job)
    are held; every other task is ``pending``, and is made from its number
    when it is read. A state read by number is kept, so that what the sweep
    learns about it stays.
    """

    def __init__(
        self,
        tasks: Sequence[Task],
        known: Mapping[int, TaskState],
        rekeyed: Collection[str] = (),
    ) -> None:
        self.tasks = tasks
        self.known: dict[int, TaskState] = dict(known)
        #: keys of this sweep's completed runs that no task has now (the
        #: command or the values changed): those tasks run again
        self.rekeyed = set(rekeyed)

    def __len__(self) -> int:
        return len(self.tasks)

    @overload
    def __getitem__(self, index: int) -> TaskState: ...

    @overload
    def __getitem__(self, index: slice) -> list[TaskState]: ...

    def __getitem__(self, index: int | slice) -> TaskState | list[TaskState]:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        if index < 0:
            index += len(self)
        state = self.known.get(index)
        if state is None:
            state = self.known[index] = TaskState(self.tasks[index], "pending")
        return state

    def peek(self, index: int) -> TaskState:
        """Task ``index`` with its state, without keeping it."""
        state = self.known.get(index)
        return state if state is not None else TaskState(self.tasks[index], "pending")

    def __iter__(self) -> Iterator[TaskState]:
        for i in range(len(self)):
            yield self.peek(i)

    def touched(self) -> list[TaskState]:
        """The states held: every task that is not plainly pending, and more."""
        return [self.known[i] for i in sorted(self.known)]

    def counts(self) -> Counter[str]:
        """How many tasks are in each state."""
        found = Counter(map(_STATE, self.known.values()))
        found["pending"] += len(self) - len(self.known)
        return found


def locate(
    tasks: Sequence[Task],
    hints: Mapping[str, int | None],
    search: Collection[str] | None = None,
    aliases: Sequence[Sequence[str]] = (),
    made: dict[int, Task] | None = None,
) -> dict[str, int]:
    """The numbers of the tasks with the keys of ``hints``, where the spec has them.

    Each key comes with the number a run or a record gave its task; where
    that task has another key (the spec changed since), the tasks are read
    in order, holding nothing but the keys still missing.

    :param search: look for only these keys (all when None) when their
        number is out of date.
    :param aliases: earlier forms of the command whose keys still stand
        for the same tasks (they differed only in flags that no longer
        count): a key made with one of them finds its task too.
    :param made: the tasks made to check a number are put in it, so that
        the caller does not make them again (a task's key is a hash).
    """
    found: dict[str, int] = {}
    missing: set[str] = set()
    made = {} if made is None else made
    size = len(tasks)
    make = tasks.task if isinstance(tasks, TaskList) else tasks.__getitem__
    for key, hint in hints.items():
        if isinstance(hint, int) and 0 <= hint < size:
            task = made[hint] = make(hint)
            if task.key == key:
                found[key] = hint
                continue
        if search is None or key in search:
            if isinstance(hint, int) and _alias(tasks, aliases, key, hint):
                found[key] = hint
                continue
            missing.add(key)
    if missing:
        for task in tasks:
            if task.key in missing:
                found[task.key] = task.index
                missing.discard(task.key)
                if not missing:
                    break
    return found


def _alias(
    tasks: Sequence[Task], aliases: Sequence[Sequence[str]], key: str, hint: int
) -> bool:
    """Whether task ``hint`` had ``key`` with an earlier form of the command."""
    if not aliases or not isinstance(tasks, TaskList):
        return False
    if not 0 <= hint < len(tasks):
        return False
    return any(tasks.key_with(argv, hint) == key for argv in aliases)


def plan(
    root: Root,
    tasks: Sequence[Task],
    name: str | None = None,
    aliases: Sequence[Sequence[str]] = (),
) -> Plan:
    """Every task of ``tasks`` with its state in ``root``.

    It reads the sweep runs of the root and the held claims, and the list
    of tasks only where a run's task number is out of date.

    :param name: the sweep's name: a run or claim of another sweep whose
        number names another task is not looked for among all the tasks
        (a sweep of a million tasks would read them all for it).
    :param aliases: earlier forms of the command (see :func:`locate`).
    """
    if not root.path.is_dir():
        return Plan(tasks, {})
    with no_gc():  # a state and runs per task: the GC would scan them again and again
        return _plan(root, tasks, name, aliases)


def _plan(
    root: Root,
    tasks: Sequence[Task],
    name: str | None,
    aliases: Sequence[Sequence[str]],
) -> Plan:
    runs = scan_runs(root)
    claims = Claims(root)
    held = claims.held()
    hints: dict[str, int | None] = {}
    ours: set[str] = set()
    for key, found in runs.items():
        last = found[-1]
        hints[key] = last.task
        if name is None or last.sweep == name or any(r.sweep == name for r in found):
            ours.add(key)
    for key in held:
        record = claims.record(key) or {}
        task = record.get("task")
        hints.setdefault(key, task if isinstance(task, int) else None)
        if name is None or record.get("sweep") == name:
            ours.add(key)
    made: dict[int, Task] = {}
    stored = (
        isinstance(tasks, TaskList)
        and name is not None
        and len(hints) >= KEEP_KEYS
        and load_keys(root, name, tasks)
    )
    where = locate(tasks, hints, ours, aliases, made)
    if (
        isinstance(tasks, TaskList)
        and name is not None
        and not stored
        and len(made) >= KEEP_KEYS
        and len(made) >= len(tasks) // 2
    ):
        # most keys were made anyway: keep them all for the next plan
        store_keys(root, name, tasks, made)
    known = {}
    for key, i in where.items():
        found = runs.get(key, [])
        task = made.get(i) or tasks[i]
        known[i] = TaskState(task, task_state(found, key in held), found)
    rekeyed = {
        key
        for key in ours
        if key not in where
        and any(r.status == "completed" and r.sweep == name for r in runs.get(key, []))
    }
    return Plan(tasks, known, rekeyed if name is not None else ())


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

    run: Sequence[TaskState]
    skipped: dict[str, list[TaskState]]
    #: the task numbers that ``index`` and ``shard`` kept
    chosen: Sequence[int] = ()

    def count(self, reason: str) -> int:
        return len(self.skipped.get(reason, []))


class _Planned(Sequence[TaskState]):
    """The chosen tasks but the skipped ones, read in order when asked for."""

    def __init__(
        self, states: Sequence[TaskState], chosen: Sequence[int], skip: set[int]
    ) -> None:
        self.states, self.chosen, self.skip = states, chosen, skip
        self.size = (
            len(chosen) - sum(1 for i in chosen if i in skip)
            if isinstance(chosen, list)
            else len(chosen) - len(skip)
        )

    def __len__(self) -> int:
        return self.size

    def __iter__(self) -> Iterator[TaskState]:
        peek = self.states.peek if isinstance(self.states, Plan) else None
        for i in self.chosen:
            if i not in self.skip:
                yield peek(i) if peek is not None else self.states[i]

    @overload
    def __getitem__(self, index: int) -> TaskState: ...

    @overload
    def __getitem__(self, index: slice) -> list[TaskState]: ...

    def __getitem__(self, index: int | slice) -> TaskState | list[TaskState]:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        if index < 0:
            index += len(self)
        for n, state in enumerate(self):
            if n == index:
                return state
        raise IndexError(index)


def select(
    states: Sequence[TaskState],
    *,
    index: Iterable[int] | int | None = None,
    shard: tuple[int, int] | None = None,
    force: bool = False,
    retry_failed: bool = False,
    rerun_stale: bool = False,
) -> Selection:
    """Pick the tasks to launch.

    Only the tasks that are not pending are looked at one by one: the
    selection of a large sweep is read lazily.

    :param index: only these task numbers.
    :param shard: ``(K, N)``: only the tasks whose number is K modulo N;
        the N shards are disjoint and together hold every task.
    :param force: run completed and failed tasks again.
    :param retry_failed: run failed tasks again.
    :param rerun_stale: run completed tasks again whose run's code differs
        from the code in its work tree or script now (each looked at once).
    :raises ExmanError: an index out of range.
    """
    chosen: Sequence[int] = range(len(states))
    if index is not None:
        wanted = [index] if isinstance(index, int) else list(index)
        for i in wanted:
            if not 0 <= i < len(states):
                raise ExmanError(
                    f"task {i} does not exist: the sweep has {len(states)} tasks "
                    f"(0..{len(states) - 1})"
                )
        chosen = wanted
    if shard is not None:
        k, n = shard
        if isinstance(chosen, range):
            chosen = chosen[k::n]
        else:
            chosen = [i for i in chosen if i % n == k]
    if isinstance(chosen, list):
        looked = [states[i] for i in dict.fromkeys(chosen)]
    else:
        candidates = states.touched() if isinstance(states, Plan) else states
        looked = [s for s in candidates if s.task.index in chosen]
    skip: set[int] = set()
    skipped: dict[str, list[TaskState]] = {}
    check = CodeCheck() if rerun_stale else None
    for s in looked:
        if s.state in ("running", "queued"):  # never twice, not even with force
            reason = s.state
        elif force:
            reason = ""
        elif s.state in ("completed", "pruned"):
            reason = s.state
            run = s.run
            if (
                s.state == "completed"
                and check is not None
                and run is not None
                and check.stale(run.code, run.code_source)
            ):
                reason = ""
        elif s.state == "failed" and not retry_failed:
            reason = "failed"
        else:
            reason = ""
        if reason:
            skipped.setdefault(reason, []).append(s)
            skip.add(s.task.index)
    return Selection(_Planned(states, chosen, skip), skipped, chosen)
