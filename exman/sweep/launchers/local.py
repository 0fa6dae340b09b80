"""The local launcher: a pool of worker processes on this machine.

Each task is its own process group (``start_new_session``), so a timeout or
a Ctrl-C stops the task with every process it started. The launcher waits on
the children through pidfds (Linux) and a signal wake-up pipe, so it reacts
at once to an exit or a signal without polling; elsewhere it polls. A task
with a stop file (:attr:`~.base.LaunchTask.stop_file`) is looked at every
``STOP_POLL`` seconds while it runs.

Signals: while :meth:`LocalLauncher.launch` runs in the main thread, SIGINT
and SIGTERM to the launcher are caught. Every task then gets SIGINT (Python
raises KeyboardInterrupt: the run records itself as interrupted); tasks
still alive after ``grace`` seconds, or at a second signal, are killed with
SIGKILL, their whole group with them. When a task's process ends, whatever
it left running in its process group is killed too, as a batch system does
at the end of a job: a sweep leaves no orphans behind.

Resuming: with ``resume=True`` a task stopped by the timeout is started
again, up to ``max_attempts`` attempts in all, and each attempt continues
the run of the first (:mod:`exman.record.resume`): every attempt gets the
same ``EXMAN_SWEEP_JOB`` and its number in ``EXMAN_SWEEP_ATTEMPT``. Only the
last attempt's end is reported, so the sweep counts the task once.
"""

from __future__ import annotations

import contextlib
import os
import selectors
import signal
import subprocess
import threading
import time
from collections.abc import Generator, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from ...record.files import open_append
from ...record.resume import ATTEMPT_ENV, JOB_ENV
from ...record.run import hostname
from ...record.store import ExmanError
from .base import Finished, Launcher, LaunchEvent, LaunchTask, Started
from .process import (
    STOP_POLL,
    StopWatch,
    cannot_start,
    killpg,
    signame,
    spawn,
    task_env,
    write_header,
)

__all__ = ["LocalLauncher"]

#: how often to look at the children where pidfds are missing
POLL_INTERVAL = 0.02
#: how long a task killed by SIGINT or SIGTERM waits for the same signal to
#: reach the sweep, before it counts as failed rather than interrupted
SIGNAL_WAIT = 0.2


@dataclass
class _Proc:
    task: LaunchTask
    popen: subprocess.Popen[bytes]
    start: float
    deadline: float | None
    gpu: str | None
    kill_at: float | None = None
    timed_out: bool = False
    #: which attempt at the task this is, and when the first one started
    attempt: int = 1
    began: float | None = None
    #: what the attempts at the task share (with ``resume``)
    job: str | None = None
    stop: StopWatch | None = None


class LocalLauncher(Launcher):
    """Runs each task as a child process of this one.

    :param grace: seconds a stopped task (timeout, Ctrl-C) gets to record
        itself before SIGKILL.
    :param resume: start a task stopped by the timeout again, continuing
        its run.
    :param max_attempts: with ``resume``, the attempts at a task in all.
    :param copies_within: seconds within which the same signal again is a
        copy of the first, not the second one that cuts the grace short:
        a process of a SLURM job gets ``scancel``'s signal from SLURM and
        again from the job's runner, which passes it on.
    """

    name: ClassVar[str] = "local"

    def __init__(
        self,
        *,
        grace: float = 5.0,
        resume: bool = False,
        max_attempts: int = 3,
        copies_within: float = 0.0,
    ) -> None:
        super().__init__()
        if grace < 0:
            raise ExmanError(f"grace must be >= 0 seconds, not {grace!r}")
        if copies_within < 0:
            raise ExmanError(f"copies_within must be >= 0 seconds, not {copies_within}")
        if isinstance(max_attempts, bool) or not isinstance(max_attempts, int):
            raise ExmanError(
                f"max_attempts must be a whole number, not {max_attempts!r}"
            )
        if max_attempts < 1:
            raise ExmanError(f"max_attempts must be >= 1, not {max_attempts}")
        self.grace = grace
        self.resume = resume
        self.max_attempts = max_attempts
        self.copies_within = copies_within
        self._signals: list[int] = []
        self._signalled = 0.0
        #: the last stop was cut short by a second signal
        self._cut_short = False
        self._waiter: _Waiter | None = None

    def launch(
        self,
        tasks: Iterable[LaunchTask],
        *,
        jobs: int = 1,
        timeout: float | None = None,
        gpus: Sequence[str] | None = None,
        per_gpu: int = 1,
    ) -> Generator[LaunchEvent, None, None]:
        """Run ``tasks`` in up to ``jobs`` processes (see :meth:`Launcher.launch`).

        :raises ExmanError: ``jobs`` or ``per_gpu`` below 1, a timeout <= 0.
        """
        if jobs < 1:
            raise ExmanError(f"jobs must be >= 1, not {jobs}")
        if per_gpu < 1:
            raise ExmanError(f"per_gpu must be >= 1, not {per_gpu}")
        if timeout is not None and timeout <= 0:
            raise ExmanError(f"timeout must be > 0 seconds, not {timeout}")
        slots: list[str | None] = (
            [str(g) for g in gpus for _ in range(per_gpu)] if gpus else [None] * jobs
        )
        capacity = min(jobs, len(slots))
        self.stopping = False
        self.interrupted = None
        self._signals = []
        waiter = self._waiter = _Waiter()
        running: list[_Proc] = []
        source = iter(tasks)
        exhausted = False
        try:
            with _catch_signals(self._on_signal, waiter.wakeup_fd):
                while True:
                    if self._signals:
                        yield from self._interrupt(running, waiter)
                        running.clear()
                        return
                    while not (exhausted or self.stopping or self._signals) and (
                        len(running) < capacity
                    ):
                        task = next(source, None)
                        if task is None:
                            exhausted = True
                            break
                        gpu = slots.pop(0)
                        try:
                            proc = self._start(task, gpu, timeout)
                        except OSError as e:
                            slots.append(gpu)
                            yield _not_started(task, e)
                            continue
                        running.append(proc)
                        waiter.add(proc.popen.pid)
                        yield Started(task, proc.popen.pid, gpu)
                    if not running:
                        if self._signals:
                            continue
                        return
                    waiter.wait(self._next_wake(running))
                    now = time.monotonic()
                    for proc in list(running):
                        if proc.stop is not None:  # asked to stop early
                            proc.stop.check(proc.popen.pid, now)
                        code = proc.popen.poll()
                        if code is not None:
                            running.remove(proc)
                            waiter.remove(proc.popen.pid)
                            # what the task left running in its group would
                            # outlive it as orphans
                            _killpg(proc, signal.SIGKILL)
                            again = self._again(proc, code, timeout)
                            if isinstance(again, _Proc):
                                running.append(again)
                                waiter.add(again.popen.pid)
                                yield Started(again.task, again.popen.pid, again.gpu)
                                continue
                            slots.append(proc.gpu)
                            yield again or self._finished(proc, code, timeout)
                        elif proc.kill_at is not None and now >= proc.kill_at:
                            _killpg(proc, signal.SIGKILL)
                            proc.kill_at = None
                        elif (
                            proc.deadline is not None
                            and now >= proc.deadline
                            and not proc.timed_out
                        ):
                            proc.timed_out = True
                            _killpg(proc, signal.SIGTERM)
                            proc.kill_at = now + self.grace
        finally:
            if running:  # closed early, or an error: leave nothing behind
                self._stop_all(running, waiter, signal.SIGINT)
            waiter.close()
            self._waiter = None

    # -- starting and ending ---------------------------------------------------------
    def _start(
        self,
        task: LaunchTask,
        gpu: str | None,
        timeout: float | None,
        earlier: _Proc | None = None,
    ) -> _Proc:
        extra = {} if gpu is None else {"CUDA_VISIBLE_DEVICES": gpu}
        note = "" if gpu is None else f"  [CUDA_VISIBLE_DEVICES={gpu}]"
        attempt = 1 if earlier is None else earlier.attempt + 1
        job = None
        where = ""
        if self.resume:
            job = earlier.job if earlier is not None and earlier.job else None
            job = job or _job_token(task)
            extra.update({JOB_ENV: job, ATTEMPT_ENV: str(attempt)})
            if attempt > 1:
                where = f" (attempt {attempt} of {self.max_attempts})"
        with open_append(task.log) as log:
            write_header(log, task, where=where, note=note)
            popen = spawn(task, log, task_env(task, **extra), here=True)
        start = time.monotonic()
        deadline = start + timeout if timeout is not None else None
        began = start if earlier is None else earlier.began
        stop = None
        if task.stop_file is not None:
            stop = StopWatch(task.stop_file, task.stop_grace)
        return _Proc(
            task,
            popen,
            start,
            deadline,
            gpu,
            attempt=attempt,
            began=began,
            job=job,
            stop=stop,
        )

    def _again(
        self, proc: _Proc, code: int, timeout: float | None
    ) -> _Proc | Finished | None:
        """The next attempt at a task the timeout stopped, when it may have one
        (or the end of a task that could not be started again)."""
        if not (self.resume and proc.timed_out and proc.attempt < self.max_attempts):
            return None
        if code == 0:  # it ended as the time ran out: done
            return None
        if self.stopping or self._signals:
            return None
        try:
            with open_append(proc.task.log) as log:
                log.write(
                    f"exman sweep: timeout after {timeout:g} s; attempt "
                    f"{proc.attempt + 1} continues the run\n".encode()
                )
            return self._start(proc.task, proc.gpu, timeout, earlier=proc)
        except OSError as e:
            return _not_started(proc.task, e)

    def _finished(self, proc: _Proc, code: int, timeout: float | None) -> Finished:
        duration = round(time.monotonic() - (proc.began or proc.start), 3)
        if proc.timed_out:
            return Finished(
                proc.task,
                "failed",
                code,
                duration,
                reason=f"timeout: stopped after {timeout:g} s",
                timed_out=True,
            )
        if code == 0:
            return Finished(proc.task, "completed", 0, duration)
        ours = proc.stop is not None and bool(proc.stop.sent)  # a pruned task
        if -code in (signal.SIGINT, signal.SIGTERM) and not (self._signals or ours):
            # a signal to the whole group or job (Ctrl-C, scancel) may reach
            # the task a moment before us: give ours the time to arrive
            time.sleep(SIGNAL_WAIT)
        if code < 0 and self._signals:
            why = f"interrupted ({signame(self._signals[0])} to the sweep)"
            return Finished(proc.task, "interrupted", code, duration, reason=why)
        reason = f"killed by {signame(-code)}" if code < 0 else None
        return Finished(proc.task, "failed", code, duration, reason=reason)

    def _next_wake(self, running: list[_Proc]) -> float | None:
        times = [p.kill_at for p in running if p.kill_at is not None]
        times += [
            p.deadline for p in running if p.deadline is not None and not p.timed_out
        ]
        if any(p.stop is not None for p in running):
            times.append(time.monotonic() + STOP_POLL)
        if not times:
            return None
        return max(0.0, min(times) - time.monotonic())

    # -- stopping ---------------------------------------------------------------------
    def _on_signal(self, signum: int, frame: object) -> None:
        now = time.monotonic()
        if (
            self._signals
            and signum == self._signals[-1]
            and now - self._signalled < self.copies_within
        ):
            return  # the same signal from another sender
        self._signalled = now
        self._signals.append(signum)

    def _interrupt(self, running: list[_Proc], waiter: _Waiter) -> Iterator[Finished]:
        self.interrupted = self._signals[0]
        name = signame(self.interrupted)
        codes = self._stop_all(running, waiter, signal.SIGINT)
        for proc in running:
            code, killed = codes[id(proc)]
            duration = round(time.monotonic() - proc.start, 3)
            if code == 0:
                yield Finished(proc.task, "completed", 0, duration)
                continue
            reason = f"interrupted ({name} to the sweep)"
            if killed and self._cut_short:
                reason += ", killed at once (a second signal)"
            elif killed:
                reason += f", killed after {self.grace:g} s"
            yield Finished(proc.task, "interrupted", code, duration, reason=reason)

    def _stop_all(
        self, running: list[_Proc], waiter: _Waiter, signum: int
    ) -> dict[int, tuple[int, bool]]:
        """Signal every task, wait ``grace``, then SIGKILL what is left.

        :returns: ``id(proc) -> (exit code, killed)``.
        """
        for proc in running:
            _killpg(proc, signum)
        seen = len(self._signals)
        deadline = time.monotonic() + self.grace
        codes: dict[int, tuple[int, bool]] = {}
        while True:
            for proc in running:
                if id(proc) not in codes:
                    code = proc.popen.poll()
                    if code is not None:
                        codes[id(proc)] = (code, False)
            left = deadline - time.monotonic()
            # a second Ctrl-C means: now
            self._cut_short = len(self._signals) > seen
            if len(codes) == len(running) or left <= 0 or self._cut_short:
                break
            waiter.wait(left)
        for proc in running:
            if id(proc) not in codes:
                _killpg(proc, signal.SIGKILL)
                codes[id(proc)] = (proc.popen.wait(), True)
            _killpg(proc, signal.SIGKILL)  # whatever the task left in its group
            waiter.remove(proc.popen.pid)
        return codes


def _job_token(task: LaunchTask) -> str:
    """What names the attempts at one task of this launcher, and no others."""
    return f"local-{hostname()}-{os.getpid()}-{task.index}-{os.urandom(4).hex()}"


def _not_started(task: LaunchTask, error: OSError) -> Finished:
    reason = cannot_start(task, error)
    try:
        with open_append(task.log) as log:
            log.write(f"exman sweep: {reason}\n".encode("utf-8", "replace"))
    except OSError:
        pass
    return Finished(task, "failed", None, 0.0, reason=reason)


def _killpg(proc: _Proc, signum: int) -> None:
    killpg(proc.popen.pid, signum)


class _Waiter:
    """Sleeps until a child exits, a signal arrives, or a timeout passes."""

    def __init__(self) -> None:
        self.selector = selectors.DefaultSelector()
        self._read, self.wakeup_fd = os.pipe()
        for fd in (self._read, self.wakeup_fd):
            os.set_blocking(fd, False)
        self.selector.register(self._read, selectors.EVENT_READ)
        self._pidfds: dict[int, int] = {}
        self._polling = not hasattr(os, "pidfd_open")

    def add(self, pid: int) -> None:
        if self._polling:
            return
        try:
            fd = os.pidfd_open(pid)
        except OSError:  # an old kernel: poll instead
            self._polling = True
            return
        self._pidfds[pid] = fd
        self.selector.register(fd, selectors.EVENT_READ)

    def remove(self, pid: int) -> None:
        fd = self._pidfds.pop(pid, None)
        if fd is not None:
            self.selector.unregister(fd)
            os.close(fd)

    def wait(self, timeout: float | None) -> None:
        if self._polling:
            timeout = POLL_INTERVAL if timeout is None else min(timeout, POLL_INTERVAL)
        self.selector.select(timeout)
        with contextlib.suppress(BlockingIOError):
            while os.read(self._read, 512):
                pass

    def close(self) -> None:
        for pid in list(self._pidfds):
            self.remove(pid)
        self.selector.close()
        os.close(self._read)
        os.close(self.wakeup_fd)


@contextlib.contextmanager
def _catch_signals(handler: Any, wakeup_fd: int) -> Iterator[bool]:
    """Route SIGINT and SIGTERM to ``handler`` (main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        yield False
        return
    old = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    old_fd = signal.set_wakeup_fd(wakeup_fd, warn_on_full_buffer=False)
    try:
        yield True
    finally:
        signal.set_wakeup_fd(old_fd)
        for s, h in old.items():
            signal.signal(s, h)
