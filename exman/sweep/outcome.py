"""How a task ended: the one place that decides it from the task's run.

A launcher sees a process end (an exit code, a signal, its own timeout); a
scheduler reports a job's end (completed, failed, its time limit). Neither
knows what the run recorded. :func:`settle` puts both together, whoever
launched the task, and makes the run's record tell the truth:

* a run that recorded ``completed`` completed, whatever became of its
  process afterwards;
* a run stopped from outside (the timeout, a scheduler's limit) is recorded
  as failed, with the reason, beside its traceback;
* a run left ``running`` by a process that is gone is recorded as
  interrupted (stopped by a signal to the launcher), completed (exit code 0
  without a word: ``os._exit``) or failed;
* a failed run that the script left in ``runs/`` (no ``safe_experiment``)
  joins the others in ``fails/``;
* a run that a search's pruner asked to stop is ``pruned`` (it stays in
  ``runs/``), however it stopped, unless it failed with an error;
* a task that made no run failed before parsing its arguments, or is not an
  ExParser script: the reason comes from the last line of its log.

:class:`RunFinder` finds the run a task just made among the new ones.
"""

from __future__ import annotations

import contextlib
import os
import pathlib
from collections.abc import Sequence
from dataclasses import dataclass

from ..record.files import open_append
from ..record.run import RUN_FILE, TRACEBACK_FILE, Run, effective_status
from ..record.stop import REASON as PRUNED
from ..record.store import Root, run_id
from .runs import PLACES, RunInfo, read_run

__all__ = ["Ending", "Outcome", "RunFinder", "last_line", "settle"]

NO_RUN = (
    "exited with code 0 but recorded no run: is the command an ExParser script "
    "(without --tmp)?"
)


@dataclass(frozen=True)
class Ending:
    """How a task's process or job ended, as its launcher or scheduler saw it.

    :param status: ``completed``, ``failed`` or ``interrupted``.
    :param reason: the launcher's or scheduler's own reason, if any.
    :param timed_out: stopped from outside while it ran (the sweep's timeout,
        a scheduler's time or memory limit, a cancellation).
    :param log: the task's log, whose last line explains a task with no run.
    :param pruned: the sweep asked the task to stop early (a search's pruner).
    """

    status: str
    reason: str | None
    exit_code: int | None
    log: pathlib.Path
    timed_out: bool = False
    pruned: bool = False


@dataclass(frozen=True)
class Outcome:
    """What a task's end means: its status, why, and its run (if it made one)."""

    status: str
    reason: str | None
    run: RunInfo | None


def settle(
    root: Root,
    ending: Ending,
    run: RunInfo | None,
    earlier: Sequence[RunInfo] = (),
) -> Outcome:
    """Decide how a task ended, and make its run's record say so.

    :param run: the run the task made (None when it made none).
    :param earlier: runs of earlier attempts of the same job (a scheduler
        requeued it); those still ``running`` are recorded as interrupted.
    """
    for attempt in earlier:
        if attempt.status in ("running", "crashed"):
            Run(attempt.path).finish("interrupted", reason="stopped; the job ran again")
    status, reason, code = ending.status, ending.reason, ending.exit_code
    if run is None:
        if status == "completed":
            status, reason = "failed", NO_RUN
        elif reason is None:
            reason = last_line(ending.log) or f"exit code {code}"
        return Outcome(status, reason, None)
    folder = Run(run.path)
    record = folder.record()
    recorded = effective_status(record, folder.beat())
    live = recorded in ("running", "crashed")
    if recorded == "completed":
        status, reason = "completed", None
    elif recorded == "pruned":
        status, reason = "pruned", record.get("reason") or PRUNED
    elif ending.pruned and recorded != "failed":
        # stopped from outside before it could record it (or never asked)
        status, reason = "pruned", PRUNED
        folder.finish("pruned", exit_code=code, reason=reason, record=record)
    elif ending.timed_out:
        status = "failed"
        reason = reason or record.get("reason") or f"exit code {code}"
        note_traceback(folder, f"exman sweep: {reason}\n")
        folder.finish("failed", exit_code=code, reason=reason, record=record)
    elif status == "interrupted":
        if live:
            folder.finish("interrupted", exit_code=code, reason=reason, record=record)
        else:
            reason = record.get("reason") or reason
    elif status == "completed":
        if live:  # exited 0 without recording its end (os._exit)
            folder.finish("completed", exit_code=0, record=record)
        else:
            # Ctrl-C that safe_experiment swallowed: exit 0, not done
            status = "interrupted" if recorded == "interrupted" else "failed"
            reason = record.get("reason") or f"recorded as {recorded}"
    else:
        status = "failed"
        reason = reason or record.get("reason") or f"exit code {code}"
        if live:  # died without a word: say why beside its output
            note_traceback(folder, f"exman sweep: {reason}\n")
            folder.finish("failed", exit_code=code, reason=reason, record=record)
    path = run.path
    if status == "failed" and path.parent.name == "runs":
        path = root.move_to_fails(path)
    info = run._replace(folder=str(path), status=status, reason=reason)
    return Outcome(status, reason, info)


class RunFinder:
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
                        # a folder without run.json yet is still being made:
                        # looked for before the read, since the run may
                        # record itself in between (then it is read again)
                        recorded = (folder / RUN_FILE).exists()
                        info = read_run(folder)
                        if info is not None or recorded:
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


def note_traceback(run: Run, text: str) -> None:
    """Add ``text`` to the run's traceback file (best effort)."""
    path = run.path / TRACEBACK_FILE
    with contextlib.suppress(OSError), open_append(path) as f:
        f.write(text.encode("utf-8"))


def last_line(path: pathlib.Path, limit: int = 4096) -> str | None:
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
