"""Metrics and results of a run: what came out, next to what was asked.

* ``exman.log(step=None, **metrics)`` appends one JSON line to the run's
  ``metrics.jsonl``. Lines are buffered in memory and written by a
  background thread at least twice a second (and at exit), so a call costs
  about as much as formatting the line, and a crash loses at most the last
  second of records. Each flush is one ``write`` on a file opened with
  ``O_APPEND``, so several processes (DataLoader workers, distributed ranks)
  can log to the same run without mixing their lines.
* ``exman.result(**values)`` merges final values into the run's
  ``results.json`` (written atomically, the run folder locked with
  ``flock`` meanwhile so that processes merging at once lose nothing).

No name makes either fail a run: a metric or result may share its name
with a parameter (``exman.log(lr=scheduler.get_last_lr()[0])``) or with a
column exman keeps; ``Index.info()`` then calls its column
``result_<name>``. The one name a record holds itself, ``time`` (when it
was logged), is written as ``metric_time`` when it is a metric.

The current run is the last one this process created with ``parse_args()``;
a child process finds it through the ``EXMAN_RUN`` environment variable,
which ``parse_args()`` sets to the run folder (children inherit it).

In a distributed launch (:mod:`exman.record.ranks`) rank 0 owns the run:
the other ranks' ``log`` calls are dropped (or tagged with their rank under
``EXMAN_LOG_RANKS=all``) and their ``result`` calls change nothing.
"""

from __future__ import annotations

import atexit
import contextlib
import errno
import json
import os
import pathlib
import sys
import time
from collections.abc import Iterator

from . import current as _current_run
from .files import group_bits, share
from .launch import LOG_RANKS_ENV, detect_launch
from .store import METRICS_FILE, RESULTS_FILE, ExmanError, StrPath, atomic_write

# not typing's: importing typing would slow every run's start
TYPE_CHECKING = False
if TYPE_CHECKING:
    import threading
    from typing import Any

__all__ = [
    "METRICS_FILE",
    "METRIC_TIME",
    "RESULTS_FILE",
    "RUN_ENV",
    "NoCurrentRun",
    "Recorder",
    "current",
    "last_step",
    "log",
    "result",
]

RUN_ENV = _current_run.RUN_ENV
#: a metric of the name a record uses for its own time is written as this
METRIC_TIME = "metric_time"
#: how often buffered records reach the disk: a crash loses less than this
FLUSH_SECONDS = 0.5


class NoCurrentRun(ExmanError):
    """exman.log / exman.result called where no run exists."""


def _default(value: Any) -> Any:
    """JSON for numpy and torch scalars and arrays, paths and the like."""
    for method in ("item", "tolist"):
        if hasattr(value, method):
            try:
                return getattr(value, method)()
            except (TypeError, ValueError):
                pass
    return str(value)


#: one encoder for every call: json.dumps(default=...) would build one each time
_encode = json.JSONEncoder(default=_default).encode


#: records kept for the next flush while the disk is full
MAX_PENDING = 10_000
_FULL = frozenset({errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)})


def _unsent(lines: list[str], written: int) -> list[str]:
    """The lines not written whole when ``written`` bytes of them were."""
    end = 0
    for i, line in enumerate(lines):
        end += len(line.encode("utf-8"))
        if end > written:
            return lines[i:]
    return []


class Recorder:
    """Writes the metrics and results of one run folder from this process.

    :param path: the run folder.
    """

    def __init__(self, path: StrPath) -> None:
        # threading only here: the readers of METRICS_FILE (exman ls) skip it
        import threading

        self.path = pathlib.Path(path)
        self._buffer: list[str] = []
        self._lock = threading.Lock()
        self._step = -1
        self._fd: int | None = None
        self._torn = False  # the last write ended inside a line (a full disk)
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        # in a distributed launch rank 0 owns the run: the other ranks'
        # records are dropped, or kept tagged with their rank on request
        launch = detect_launch()
        self._rank = None if launch is None else launch.rank
        self._all_ranks = os.environ.get(LOG_RANKS_ENV, "").lower() == "all"

    def __repr__(self) -> str:
        return f"Recorder({str(self.path)!r})"

    # -- metrics ---------------------------------------------------------------
    def log(self, step: int | None = None, **metrics: Any) -> None:
        """Append one record of ``metrics`` at ``step``.

        :param step: the step (an epoch, an iteration); by default one more
            than the previous call's in this process, starting at 0.
        """
        if self._rank and not self._all_ranks:
            return
        if "time" in metrics:  # the record's own field
            metrics[METRIC_TIME] = metrics.pop("time")
        self._step = step = self._step + 1 if step is None else step
        record = {"step": step, "time": round(time.time(), 3)}
        if self._all_ranks and self._rank is not None:
            record["rank"] = self._rank
        record.update(metrics)
        line = _encode(record) + "\n"
        self._buffer.append(line)  # list.append is atomic: no lock on the hot path
        if self._thread is None:
            self._start()

    def _start(self) -> None:
        import threading

        with self._lock:
            if self._thread is not None:
                return
            self._thread = threading.Thread(
                target=self._flush_loop, name="exman-metrics", daemon=True
            )
            self._thread.start()
        _recorders.add(self)
        _install()

    def _flush_loop(self) -> None:
        while not self._wake.wait(FLUSH_SECONDS):
            self.flush()

    def flush(self) -> None:
        """Write the buffered records now (one append-only write)."""
        with self._lock:
            if not self._buffer:
                return
            lines, self._buffer = self._buffer, []
            # an earlier write stopped inside a line (a full disk): end that
            # line first, so that the damage stays on it
            head = b"\n" if self._torn else b""
            data = head + "".join(lines).encode("utf-8")
            sent = 0
            try:
                if self._fd is None:
                    self._fd = os.open(
                        self.path / METRICS_FILE,
                        os.O_WRONLY | os.O_APPEND | os.O_CREAT,
                        0o644,
                    )
                    share(self._fd, group_bits(self.path))
                while sent < len(data):
                    sent += os.write(self._fd, data[sent:])
                    self._torn = data[sent - 1 : sent] != b"\n"
            except OSError as e:
                moved = self.path.parent.parent / "fails" / self.path.name
                if e.errno in _FULL:
                    # the records not written whole go again with the next
                    # flush (a bounded number: the disk may stay full)
                    unsent = _unsent(lines, sent - len(head))
                    self._buffer[:0] = unsent[-MAX_PENDING:]
                elif moved.is_dir() and moved != self.path:
                    # the run folder was moved to fails/: follow it once
                    self._fd = None
                    self.path = moved
                    self._buffer[:0] = lines
                else:  # the run folder is gone: give up rather than crash the run
                    self._fd = None

    def close(self) -> None:
        self.flush()
        self._wake.set()
        with self._lock:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None

    # -- results ---------------------------------------------------------------
    def result(self, **values: Any) -> dict[str, Any]:
        """Set final values of the run; later calls update earlier ones.

        :returns: all results of the run so far.
        """
        if self._rank:  # rank 0 owns the run's results
            return self._results()
        with self._lock, _locked(self.path):
            merged = self._results()
            merged.update(json.loads(json.dumps(values, default=_default)))
            atomic_write(
                self.path / RESULTS_FILE,
                json.dumps(merged, indent=1, allow_nan=True) + "\n",
            )
        return merged

    def _results(self) -> dict[str, Any]:
        try:
            with open(self.path / RESULTS_FILE, encoding="utf-8") as f:
                merged = json.load(f)
        except (OSError, ValueError):
            return {}
        return merged if isinstance(merged, dict) else {}

    def _after_fork(self) -> None:
        """In a forked child: the parent's buffer and thread are not ours."""
        import threading

        self._lock = threading.Lock()
        self._buffer = []
        self._thread = None
        self._fd = None
        self._wake = threading.Event()


@contextlib.contextmanager
def _locked(folder: pathlib.Path) -> Iterator[None]:
    """The run folder locked against other processes that merge results
    (a read, a merge and a rename: two at once would lose one's values)."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows: no lock
        yield
        return
    try:
        fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:  # the folder is gone: the write will say so
        yield
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


# -- the current run of this process ---------------------------------------------
_recorders: set[Recorder] = set()  # the ones with a flush thread
_by_path: dict[pathlib.Path, Recorder] = {}
_current: dict[str, Recorder] = {}
_installed: list[bool] = []


def set_current(path: StrPath, *, resumed: bool = False) -> Recorder:
    """Make ``path`` the current run of this process and of its children.

    :param resumed: the run continues an earlier attempt: a ``log`` call
        without a step goes on after the step of the last record.
    """
    recorder = _by_path[pathlib.Path(path)] = Recorder(path)
    if resumed:
        last = last_step(path)
        if last is not None:
            recorder._step = last
    _current["run"] = recorder
    os.environ[RUN_ENV] = str(recorder.path)
    return recorder


def recorder_for(path: StrPath) -> Recorder:
    """The recorder of a run folder, one per folder and process."""
    key = pathlib.Path(path)
    rec = _by_path.get(key)
    if rec is None:
        rec = _by_path[key] = Recorder(key)
    return rec


def moved(old: StrPath, new: StrPath) -> None:
    """A run folder was moved (to ``fails/``): its recorder follows it."""
    rec = _by_path.pop(pathlib.Path(old), None)
    if rec is not None:
        rec.flush()
        rec.path = pathlib.Path(new)
        _by_path[rec.path] = rec
        if os.environ.get(RUN_ENV) == str(old):
            os.environ[RUN_ENV] = str(new)


def current() -> Recorder:
    """The current run's recorder.

    :raises NoCurrentRun: this process created no run and ``EXMAN_RUN`` is
        not set.
    """
    made = _current_run.take()  # by parse_args() before this module was imported
    if made is not None:
        return set_current(made[0], resumed=made[1])
    rec = _current.get("run")
    if rec is None:
        path = os.environ.get(RUN_ENV)
        if not path:
            raise NoCurrentRun(
                "no current run: call parser.parse_args() of an exman.ExParser "
                f"first, or set {RUN_ENV} to a run folder"
            )
        rec = _current["run"] = recorder_for(path)
    return rec


#: how much of the end of metrics.jsonl :func:`last_step` reads at most
_TAIL = 1 << 20


def last_step(run_folder: StrPath) -> int | None:
    """The step of the last whole record in a run's metrics.jsonl.

    A resumed run starts again from its checkpoint; this tells which steps
    its metrics already hold (the file is appended to, never rewritten).
    Only the end of the file is read.

    :param run_folder: the run folder (``args.root``).
    :returns: the step, or None when nothing was logged.
    """
    mine = _by_path.get(pathlib.Path(run_folder))
    if mine is not None:  # what this process logged counts too
        mine.flush()
    try:
        with open(pathlib.Path(run_folder) / METRICS_FILE, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - _TAIL))
            tail = f.read()
    except OSError:
        return None
    # a line cut by a full disk or a kill is no record; nor is a line cut by
    # where the read began
    lines = tail.split(b"\n")[:-1]
    if size > _TAIL:
        lines = lines[1:]
    for line in reversed(lines):
        try:
            record = json.loads(line)
        except ValueError:
            continue
        step = record.get("step") if isinstance(record, dict) else None
        if isinstance(step, int) and not isinstance(step, bool):
            return step
    return None


def log(step: int | None = None, **metrics: Any) -> None:
    """Append one record of ``metrics`` to the current run's metrics.jsonl.

    The record is written by a background thread within half a second, and
    when the process ends. In a distributed launch (torchrun, srun) only rank
    0's records are kept, unless the environment variable ``EXMAN_LOG_RANKS``
    is ``all``: then every rank's are, each with a ``rank`` field.

    :param step: the step (an epoch, an iteration); by default one more
        than the previous call's in this process, starting at 0.
    :param metrics: the values (numbers, strings, lists…; numpy and torch
        scalars and arrays become numbers and lists).
    :raises NoCurrentRun: no run was created in this process and
        ``EXMAN_RUN`` is not set.
    """
    current().log(step, **metrics)


def result(**values: Any) -> dict[str, Any]:
    """Set final values of the current run in its results.json.

    A later call updates the values of an earlier one. In a distributed
    launch the results are rank 0's: another rank's call changes nothing.

    :returns: all results of the run so far.
    :raises NoCurrentRun: no run was created in this process and
        ``EXMAN_RUN`` is not set.
    """
    return current().result(**values)


def flush_current() -> None:
    """Write the current run's buffered records now, if this process has one."""
    rec = _current.get("run")
    if rec is not None:
        rec.flush()


def flush_all() -> None:
    """Write every buffered record of this process now (before it dies)."""
    for rec in list(_recorders):
        try:
            rec.close()
        except OSError:
            pass


def _after_fork_in_child() -> None:
    for rec in list(_by_path.values()):
        rec._after_fork()
    _recorders.clear()


class _ForkMarker:
    """A weak-referenceable object for multiprocessing's after-fork registry."""


_marker = _ForkMarker()


def _flush_at_mp_exit(_: object = None) -> None:
    # multiprocessing children (DataLoader workers, Pool) leave through
    # os._exit, past atexit: multiprocessing's own exit hook is what runs
    mp_util = sys.modules.get("multiprocessing.util")
    if mp_util is not None:
        mp_util.Finalize(None, flush_all, exitpriority=100)


def _install() -> None:
    """Flush at exit, and forget the parent's buffers in a forked child."""
    if _installed:
        return
    _installed.append(True)
    atexit.register(flush_all)
    if hasattr(os, "register_at_fork"):
        os.register_at_fork(after_in_child=_after_fork_in_child)
    import multiprocessing.util

    _flush_at_mp_exit()
    multiprocessing.util.register_after_fork(_marker, _flush_at_mp_exit)
