"""What a Ray worker does for one sweep task: run its command, and clean up.

This module never imports ray: :func:`run_task` is a plain function that the
Ray launcher wraps with ``ray.remote`` and runs on whichever node Ray picks.
It starts the task's command as the local launcher does (its own process
group, output appended to the task log, the sweep's variables added to the
environment), stops it at the timeout or some time after its stop file
appears (a search's pruner gave up on it), and answers ``ray.cancel`` (which
raises KeyboardInterrupt here) as the local launcher answers Ctrl-C: SIGINT
to the group, SIGKILL after the grace period. With more than one attempt
allowed, a command the timeout stopped starts again here, as a new attempt
of the same run (:mod:`exman.record.resume`), as on the local launcher.

A worker killed outright (``ray.cancel(force=True)``, the OOM killer, a
SIGKILL) cannot clean up after itself, and a worker whose node's raylet
dies kills only its own children on the way out. So each command has a
watchdog: a tiny process, neither in the command's group nor a child of the
worker, that kills the group as soon as the worker that started it is gone.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import IO

from ...record.files import open_append
from ...record.resume import ATTEMPT_ENV, JOB_ENV
from ...record.run import hostname
from .base import LaunchTask
from .process import StopWatch, cannot_start, killpg, spawn, task_env, write_header

__all__ = ["Outcome", "run_task"]

#: how often the worker looks at its command (and lets ray.cancel in)
POLL_INTERVAL = 0.05

#: run by ``python -I -S -c`` with the worker's pid and the command's group.
#: It forks and leaves its parent to exit at once: Ray kills the children of
#: a worker that exits, and the watchdog must outlive the worker. It ends when
#: the group does; when the worker goes first, it kills the group.
WATCHDOG = """\
import os, select, signal, sys, time
worker, group = int(sys.argv[1]), int(sys.argv[2])
if os.fork():
    os._exit(0)
os.setsid()
try:
    fd = os.pidfd_open(worker)
except ProcessLookupError:
    fd = -1
except (AttributeError, OSError):
    fd = None
while fd != -1:
    try:
        os.killpg(group, 0)
    except OSError:
        sys.exit(0)
    if fd is not None:
        if select.select([fd], [], [], 0.1)[0]:
            break
    else:
        try:
            os.kill(worker, 0)
        except ProcessLookupError:
            break
        time.sleep(0.1)
try:
    os.killpg(group, signal.SIGKILL)
except OSError:
    pass
"""


@dataclass(frozen=True)
class Outcome:
    """How a task's command ended, as the worker saw it.

    :param exit_code: the command's exit code (negative: killed by that
        signal); None when it did not start.
    :param duration: seconds from start to exit.
    :param timed_out: stopped by the timeout.
    :param interrupted: stopped because the task was cancelled.
    :param killed: did not end after SIGINT or SIGTERM and got SIGKILL.
    :param error: why the command could not start.
    :param node: the host it ran on.
    """

    exit_code: int | None
    duration: float
    timed_out: bool = False
    interrupted: bool = False
    killed: bool = False
    error: str | None = None
    node: str = ""


def run_task(
    task: LaunchTask, timeout: float | None, grace: float, attempts: int = 1
) -> Outcome:
    """Run ``task``'s command here and wait for it (the body of a Ray task).

    :param timeout: seconds before the command gets SIGTERM, then SIGKILL
        ``grace`` seconds later.
    :param grace: seconds a stopped command gets before SIGKILL.
    :param attempts: above 1, a command the timeout stopped starts again,
        up to this many times in all, each attempt continuing its run.
    """
    node = hostname()
    try:
        # closed by the ``with`` below; failing to open it has its own answer
        log = open_append(task.log)
    except OSError as e:
        return Outcome(
            None,
            0.0,
            node=node,
            error=(
                f"cannot write the task log {str(task.log)!r} on node {node}: "
                f"{e.strerror or e}; the root must be on storage that every "
                "node sees"
            ),
        )
    job = None
    if attempts > 1:  # what names the attempts at this task, and no others
        job = f"ray-{node}-{os.getpid()}-{task.index}-{os.urandom(4).hex()}"
    with log, _interruptible():
        spent = 0.0
        for attempt in range(1, attempts + 1):
            outcome = _attempt(task, log, timeout, grace, node, attempt, job)
            outcome = replace(outcome, duration=round(spent + outcome.duration, 3))
            if not outcome.timed_out or outcome.exit_code in (0, None):
                return outcome  # ended by itself, or as the time ran out
            if attempt == attempts:
                return outcome
            spent = outcome.duration
            log.write(
                f"exman sweep: timeout after {timeout:g} s; attempt "
                f"{attempt + 1} continues the run\n".encode()
            )
    raise AssertionError("attempts must be >= 1")  # pragma: no cover


def _attempt(
    task: LaunchTask,
    log: IO[bytes],
    timeout: float | None,
    grace: float,
    node: str,
    attempt: int,
    job: str | None,
) -> Outcome:
    """One attempt at the command: started, waited for, its group cleaned up."""
    where = f" on {node}"
    extra: dict[str, str] = {}
    if job is not None:
        extra = {JOB_ENV: job, ATTEMPT_ENV: str(attempt)}
        if attempt > 1:
            where += f" (attempt {attempt})"
    write_header(log, task, where=where)
    start_time = time.monotonic()
    try:
        proc = spawn(task, log, task_env(task, **extra))
    except OSError as e:
        reason = cannot_start(task, e)
        log.write(f"exman sweep: {reason} (on {node})\n".encode("utf-8", "replace"))
        return Outcome(None, 0.0, error=reason, node=node)
    watchdog = _watchdog(proc.pid)
    try:
        stop = None
        if task.stop_file is not None:
            stop = StopWatch(task.stop_file, task.stop_grace)
        return _wait(proc, start_time, timeout, grace, node, stop)
    finally:
        # whatever the command left in its group would outlive it; the
        # watchdog ends with the group
        killpg(proc.pid, signal.SIGKILL)
        if watchdog is not None:
            watchdog.wait()


def _wait(
    proc: subprocess.Popen[bytes],
    start: float,
    timeout: float | None,
    grace: float,
    node: str,
    stop: StopWatch | None = None,
) -> Outcome:
    deadline = start + timeout if timeout is not None else None
    kill_at: float | None = None
    timed_out = killed = False
    try:
        while True:
            try:
                code = proc.wait(POLL_INTERVAL)
                break
            except subprocess.TimeoutExpired:
                pass
            now = time.monotonic()
            if stop is not None:  # asked to stop early
                stop.check(proc.pid, now)
            if kill_at is not None and now >= kill_at:
                killpg(proc.pid, signal.SIGKILL)
                kill_at, killed = None, True
            elif deadline is not None and now >= deadline and not timed_out:
                timed_out = True
                killpg(proc.pid, signal.SIGTERM)
                kill_at = now + grace
    except KeyboardInterrupt:  # ray.cancel: stop the command as Ctrl-C would
        code, killed = _stop(proc, grace)
        return Outcome(
            code,
            round(time.monotonic() - start, 3),
            interrupted=True,
            killed=killed,
            node=node,
        )
    duration = round(time.monotonic() - start, 3)
    return Outcome(code, duration, timed_out=timed_out, killed=killed, node=node)


def _stop(proc: subprocess.Popen[bytes], grace: float) -> tuple[int, bool]:
    """SIGINT to the group, SIGKILL after ``grace``: ``(exit code, killed)``."""
    killpg(proc.pid, signal.SIGINT)
    try:
        return proc.wait(grace), False
    except (subprocess.TimeoutExpired, KeyboardInterrupt):
        killpg(proc.pid, signal.SIGKILL)
        return proc.wait(), True


def _watchdog(group: int) -> subprocess.Popen[bytes] | None:
    """Start a process that kills ``group`` if this worker dies before it ends.

    :returns: the watchdog's parent, which exits at once.
    """
    try:
        return subprocess.Popen(
            [sys.executable, "-I", "-S", "-c", WATCHDOG, str(os.getpid()), str(group)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
    except OSError:
        return None  # the task still runs; only a killed worker would orphan it


@contextlib.contextmanager
def _interruptible() -> Iterator[None]:
    """Let ``ray.cancel`` raise KeyboardInterrupt here.

    Ray cancels a running task by simulating SIGINT in the worker's main
    thread, which does nothing where SIGINT is ignored (a worker started
    from a background shell job). The command inherits a handled signal as
    the default, an ignored one as ignored: it must not start with SIGINT
    ignored either.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    old = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        if old is not None:  # None: a handler set outside Python, kept
            signal.signal(signal.SIGINT, old)
