"""A task's command as a process: shared by the launchers that start one.

Wherever it runs (here, on a Ray node, in a SLURM job), a task's command
gets the launcher's environment plus the task's variables, unbuffered
Python output, its own process group (so that stopping the task stops
everything it started) and its output appended to the task's log after a
header line that says what runs where.
"""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
from typing import IO

from ...record.run import now_iso
from .base import LaunchTask

__all__ = [
    "STOP_POLL",
    "StopWatch",
    "cannot_start",
    "killpg",
    "signame",
    "spawn",
    "task_env",
    "write_header",
]

#: how often a launcher looks for the stop file of a running task
STOP_POLL = 0.1


def task_env(task: LaunchTask, **extra: str) -> dict[str, str]:
    """The command's environment: ours, the task's variables, then ``extra``."""
    env = dict(os.environ)
    env.update(task.env)
    # output reaches the log as it is written, and survives a SIGKILL
    env.setdefault("PYTHONUNBUFFERED", "1")
    env.update(extra)
    return env


def write_header(
    log: IO[bytes], task: LaunchTask, where: str = "", note: str = ""
) -> None:
    """``== <time> task <i> (<key>)<where>: <command><note>`` into the log."""
    head = f"== {now_iso()} task {task.index} ({task.key}){where}: "
    head += shlex.join(task.argv) + note
    log.write(head.encode("utf-8", "replace") + b"\n")
    log.flush()


def spawn(
    task: LaunchTask, log: IO[bytes], env: dict[str, str], *, here: bool = False
) -> subprocess.Popen[bytes]:
    """Start the command in its own process group, its output into ``log``.

    :param here: started by the process that claimed the task: the command
        inherits the claim (:attr:`LaunchTask.claim_fd`).
    :raises OSError: the command cannot be started (see :func:`cannot_start`).
    """
    keep = (task.claim_fd,) if here and task.claim_fd is not None else ()
    return subprocess.Popen(
        task.argv,
        cwd=task.cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        pass_fds=keep,
    )


def cannot_start(task: LaunchTask, error: OSError) -> str:
    """The reason a task failed when its command could not start."""
    return f"cannot start {task.argv[0]!r}: {error.strerror or error}"


def killpg(pid: int, signum: int) -> None:
    """Send ``signum`` to the process group ``pid`` leads, if it still exists."""
    try:
        os.killpg(pid, signum)
    except (ProcessLookupError, PermissionError):
        pass  # the group is gone already


class StopWatch:
    """Stops a task's process group some time after its stop file appears.

    The command may see the file and end by itself; if it is still running
    ``grace`` seconds after the file appeared it gets SIGTERM, and SIGKILL
    after as long again. Call :meth:`check` every :data:`STOP_POLL` seconds.
    """

    def __init__(self, path: str, grace: float) -> None:
        self.path, self.grace = path, grace
        self.seen: float | None = None
        self.sent: list[int] = []

    def check(self, group: int, now: float) -> None:
        """Look for the file; signal ``group`` when its time has come."""
        if self.seen is None:
            if not os.path.exists(self.path):
                return
            self.seen = now
        for n, signum in enumerate((signal.SIGTERM, signal.SIGKILL), start=1):
            if now - self.seen >= n * self.grace and signum not in self.sent:
                self.sent.append(signum)
                killpg(group, signum)


def signame(signum: int) -> str:
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"
