"""What one element of a SLURM job array does: run its task's command.

submitit unpickles a :class:`TaskCall` on the node and calls it. The call
runs the task's command as the local launcher does (its own process group,
output appended to the task's log, the sweep's variables added to the
environment, the same timeout) and keeps a small record next to the log,
``<log stem>.job.json``: the job, when the command started and how it ended.
The launcher reads these records to see tasks start and end without asking
the scheduler; it asks the scheduler only about the tasks that have none.

Signals from SLURM: SIGTERM (time limit, ``scancel``, preemption, ``scontrol
requeue``) is passed on to the command, which records itself as stopped; the
launcher then learns from the scheduler why.

A requeued job runs its task again, and that attempt continues the run of
the first (:mod:`exman.record.resume`): the command gets the job's id in
``EXMAN_SWEEP_JOB`` and the attempt in ``EXMAN_SWEEP_ATTEMPT``, counted by
submitit's requeues and by SLURM's own (``SLURM_RESTART_COUNT``: a
preemption, ``scontrol requeue``). The warning before the time limit (SIGUSR2, sent by
``--signal``) is left to submitit when the task may be requeued
(:class:`RequeueableTaskCall`: submitit requeues the job, up to a bound);
otherwise it is only noted in the log, and the time limit takes its course.

This module imports submitit only inside :meth:`RequeueableTaskCall.checkpoint`,
which runs on the node, where submitit is running it.
"""

from __future__ import annotations

import contextlib
import json
import os
import pathlib
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from typing import Any

from ...record.files import open_append
from ...record.resume import ATTEMPT_ENV, JOB_ENV
from ...record.run import hostname, pid_alive, process_start
from ...record.store import atomic_write
from .base import LaunchTask
from .process import cannot_start, killpg, signame, spawn, task_env, write_header

__all__ = ["RequeueableTaskCall", "TaskCall", "job_id", "marker_path", "read_marker"]

#: how often the call looks at its command (and at the timeout)
POLL_INTERVAL = 0.05


def marker_path(log: pathlib.Path) -> pathlib.Path:
    """The record a task's job keeps next to the task's log."""
    return log.with_name(log.stem + ".job.json")


def read_marker(log: pathlib.Path) -> dict[str, Any] | None:
    """The record of the job that last ran the task with this log, if any."""
    try:
        with open(marker_path(log), "rb") as f:
            data = json.load(f)
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def job_id() -> str | None:
    """This job's id as submitit names it: ``<array>_<index>``, or ``<job>``."""
    array, index = (
        os.environ.get("SLURM_ARRAY_JOB_ID"),
        os.environ.get("SLURM_ARRAY_TASK_ID"),
    )
    if array and index:
        return f"{array}_{index}"
    return os.environ.get("SLURM_JOB_ID")


class TaskCall:
    """Runs one task in a job; what submitit pickles for each array element.

    :param task: the task.
    :param timeout: seconds before the command gets SIGTERM (as locally).
    :param grace: seconds a stopped command gets before SIGKILL.
    """

    requeue = False

    def __init__(
        self, task: LaunchTask, *, timeout: float | None, grace: float
    ) -> None:
        self.task = task
        self.timeout = timeout
        self.grace = grace
        self.attempt = 0
        self._active: _Run | None = None

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_active": None}  # a running attempt stays here

    def __call__(self) -> int | None:
        """Run the command; returns its exit code (None: it could not start)."""
        # a job SLURM requeued itself runs the call as first submitted
        self.attempt = max(self.attempt + 1, _restarts() + 1)
        self._active = _Run(self)
        try:
            return self._active.run()
        finally:
            self._active = None


class RequeueableTaskCall(TaskCall):
    """A :class:`TaskCall` that submitit requeues at the time limit or preemption."""

    requeue = True

    def checkpoint(self) -> Any:
        """Run the task again from the start (the script resumes itself, if it can).

        Called by submitit on the node when SLURM warns of the time limit,
        before it requeues the job: the command gets SIGTERM (and records
        itself as interrupted) while there is still time.
        """
        from submitit.helpers import DelayedSubmission

        if self._active is not None:
            self._active.requeue()
        return DelayedSubmission(self)


class _Run:
    """One attempt at a task inside a job."""

    def __init__(self, call: TaskCall) -> None:
        self.call = call
        self.task = call.task
        self.record: dict[str, Any] = {
            "job": job_id(),
            "host": hostname(),
            "pid": os.getpid(),
            "attempt": call.attempt,
            "status": "running",
            "started": time.time(),
            "ended": None,
            "exit_code": None,
            "reason": None,
            "signal": None,
            "timed_out": False,
        }
        self.proc: subprocess.Popen[bytes] | None = None

    def save(self) -> None:
        atomic_write(marker_path(self.task.log), json.dumps(self.record) + "\n")

    def end(self, status: str, code: int | None, reason: str | None) -> None:
        self.record.update(status=status, exit_code=code, reason=reason)
        self.record["ended"] = time.time()
        self.save()

    def run(self) -> int | None:
        task = self.task
        self.save()
        with open_append(task.log) as log, self._signals():
            where = f" in SLURM job {self.record['job']} on {self.record['host']}"
            if self.call.attempt > 1:
                where += f" (attempt {self.call.attempt})"
            write_header(log, task, where=where)
            attempt = {ATTEMPT_ENV: str(self.call.attempt)}
            if self.record["job"]:
                attempt[JOB_ENV] = f"slurm-{self.record['job']}"
            try:
                with _warning_ignored():
                    self.proc = spawn(task, log, task_env(task, **attempt))
            except OSError as e:
                reason = cannot_start(task, e)
                log.write(f"exman sweep: {reason}\n".encode("utf-8", "replace"))
                self.end("failed", None, reason)
                return None
            try:
                code = self._wait()
            except BaseException as e:
                # submitit's answer to SIGUSR2: SystemExit once it has requeued
                # the job, an error once the task may not be requeued again
                self._stop(signal.SIGTERM)
                if not isinstance(e, SystemExit):  # SystemExit: requeued
                    self.record["timed_out"] = True
                    self.end("failed", None, f"not requeued again: {e}")
                raise
            finally:
                killpg(self.proc.pid, signal.SIGKILL)  # what the command left
        self.end(*self._outcome(code))
        return code

    def _outcome(self, code: int) -> tuple[str, int, str | None]:
        if self.record["timed_out"]:
            return "failed", code, f"timeout: stopped after {self.call.timeout:g} s"
        if self.record["signal"] is not None:
            return "failed", code, f"stopped by {self.record['signal']} from SLURM"
        if code == 0:
            return "completed", 0, None
        if code < 0:
            return "failed", code, f"killed by {signame(-code)}"
        return "failed", code, None

    def _wait(self) -> int:
        proc = self.proc
        assert proc is not None
        timeout = self.call.timeout
        deadline = time.monotonic() + timeout if timeout is not None else None
        while True:
            try:
                return proc.wait(POLL_INTERVAL)
            except subprocess.TimeoutExpired:
                pass
            if deadline is not None and time.monotonic() >= deadline:
                self.record["timed_out"] = True
                self.save()
                return self._stop(signal.SIGTERM)

    def requeue(self) -> None:
        """Stop the command before the job is requeued.

        This runs in a signal handler, maybe inside ``Popen.wait``: it waits
        by looking at the process, not through ``Popen``.
        """
        proc = self.proc
        if proc is not None and proc.returncode is None:
            start = process_start(proc.pid)
            killpg(proc.pid, signal.SIGTERM)
            deadline = time.monotonic() + self.call.grace
            while pid_alive(proc.pid, start) and time.monotonic() < deadline:
                time.sleep(POLL_INTERVAL)
            killpg(proc.pid, signal.SIGKILL)
        self.end("requeued", None, "requeued by submitit")

    def _stop(self, signum: int) -> int:
        """``signum`` to the command's group, SIGKILL after the grace period."""
        proc = self.proc
        assert proc is not None
        killpg(proc.pid, signum)
        try:
            return proc.wait(self.call.grace)
        except subprocess.TimeoutExpired:
            killpg(proc.pid, signal.SIGKILL)
            return proc.wait()

    # -- signals from SLURM ------------------------------------------------------
    def _on_term(self, signum: int, frame: object) -> None:
        self.record["signal"] = signame(signum)
        self.save()
        if self.proc is not None:
            killpg(self.proc.pid, signum)

    def _on_warning(self, signum: int, frame: object) -> None:
        with contextlib.suppress(OSError), open_append(self.task.log) as log:
            log.write(
                f"exman sweep: {signame(signum)} from SLURM: the time limit is "
                "near (the task is not requeued: slurm.requeue is false)\n".encode()
            )

    @contextlib.contextmanager
    def _signals(self) -> Iterator[None]:
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        handlers = {signal.SIGTERM: self._on_term}
        if not self.call.requeue:
            handlers[signal.SIGUSR2] = self._on_warning
        old = {s: signal.signal(s, h) for s, h in handlers.items()}
        try:
            yield
        finally:
            for s, h in old.items():
                if h is not None:
                    signal.signal(s, h)


def _restarts() -> int:
    """How many times SLURM has requeued this job."""
    try:
        return max(0, int(os.environ.get("SLURM_RESTART_COUNT", "0")))
    except ValueError:
        return 0


@contextlib.contextmanager
def _warning_ignored() -> Iterator[None]:
    """Start the command with SIGUSR2 ignored (it inherits that).

    SLURM sends its time-limit warning to every process of the job step;
    its default action would kill the command. A script that wants the
    warning sets a handler of its own.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    old = signal.signal(signal.SIGUSR2, signal.SIG_IGN)
    try:
        yield
    finally:
        if old is not None:
            signal.signal(signal.SIGUSR2, old)
