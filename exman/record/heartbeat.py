"""The heartbeat of a running run: how it is known to live, from any host.

A process can say how it ended, except when it is killed outright
(SIGKILL, the OOM killer, a node that fails): then its ``run.json`` still
says ``running``. Its pid tells the truth only on the host that ran it. So
while a run's process lives, a daemon thread refreshes the modification
time of its ``run.json`` every :func:`interval` seconds (``os.utime``: no
write, no rename; the run folder does not change, so the index cache stays
valid). The interval is recorded in ``run.json`` (``"heartbeat"``), and a
reader judges by it: a run whose record says ``running`` and whose
``run.json`` is older than :data:`STALE_BEATS` intervals is ``crashed``, for
every reader on every host (clocks are assumed to agree within that window,
as NTP keeps them). A record without ``"heartbeat"`` (written by an earlier
exman) is judged by its pid alone, on its host.

The thread touches every run of its process, wakes once an interval, and
ends at the first wake after the last of them ended (or with the process,
which never waits for it). It is a thread of :mod:`_thread`: ``threading``
would cost every run's start its import and a wait for the new thread to
run, and its end a join. A forked child does not beat for its parent's runs.
"""

from __future__ import annotations

import _thread
import os
import time

from .errors import ExmanError

__all__ = [
    "DEFAULT_INTERVAL",
    "INTERVAL_ENV",
    "STALE_BEATS",
    "interval",
    "is_stale",
    "running",
    "start",
    "stop",
]

#: seconds between two beats, for the runs a process starts
INTERVAL_ENV = "EXMAN_HEARTBEAT"
DEFAULT_INTERVAL = 30.0
#: missed beats after which a run is crashed (5 minutes by default): a beat
#: can be late while the interpreter is busy in C code that keeps the GIL
STALE_BEATS = 10


def interval() -> float:
    """The seconds between beats: ``EXMAN_HEARTBEAT``, or 30.

    :raises ExmanError: ``EXMAN_HEARTBEAT`` is not a positive number.
    """
    text = os.environ.get(INTERVAL_ENV, "").strip()
    if not text:
        return DEFAULT_INTERVAL
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 < value < float("inf"):
        raise ExmanError(
            f"{INTERVAL_ENV}={text!r} is refused: it must be the seconds between "
            "two heartbeats of a run, a number above 0 (default 30)"
        )
    return value


def is_stale(beat: float, every: object, now: float | None = None) -> bool:
    """Whether a heartbeat last seen at ``beat`` (epoch seconds) has stopped.

    :param every: the run's recorded interval; anything but a positive
        number (no heartbeat recorded) is never stale.
    """
    if isinstance(every, bool) or not isinstance(every, (int, float)) or every <= 0:
        return False
    return (time.time() if now is None else now) - beat > STALE_BEATS * every


class _Beats:
    """The files this process keeps fresh, and the thread that does it."""

    def __init__(self) -> None:
        self.lock = _thread.allocate_lock()
        self.files: dict[str, float] = {}
        self.running = False
        # held while nobody wakes the thread: it waits on it with a timeout
        self.wake = _thread.allocate_lock()
        self.wake.acquire()

    def start(self, file: str, every: float) -> None:
        with self.lock:
            faster = bool(self.files) and every < min(self.files.values())
            self.files[file] = every
            if self.running:
                if faster and self.wake.locked():
                    self.wake.release()  # beat at the new pace from now on
                return
            self.running = True
        _thread.start_new_thread(self._loop, (every,))

    def stop(self, file: str) -> None:
        # the thread is not woken: it ends at its next wake, so that a
        # process that ends now does not also end a thread
        with self.lock:
            self.files.pop(file, None)

    def _loop(self, every: float) -> None:
        while True:
            self.wake.acquire(timeout=every)
            with self.lock:
                if not self.files:
                    self.running = False
                    return
                files = list(self.files)
                every = min(self.files.values())
            for file in files:
                try:
                    os.utime(file)
                except OSError:  # moved or deleted under us: its end is recorded
                    pass


_beats = _Beats()


def _forget_in_child() -> None:
    global _beats
    _beats = _Beats()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_in_child)


def start(file: str, every: float) -> None:
    """Keep ``file`` (a run's ``run.json``) fresh every ``every`` seconds."""
    _beats.start(file, every)


def stop(file: str) -> None:
    """Stop the heartbeat of ``file``; the thread ends after the last one."""
    _beats.stop(file)


def running() -> bool:
    """Whether this process has a heartbeat thread (it may be ending)."""
    return _beats.running
