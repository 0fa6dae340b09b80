"""Task claims: a launcher holds a task while it runs it.

A run folder appears only once the script has parsed its arguments; until
then, and after its launcher is killed, nothing in ``runs/`` says the task is
taken. A claim closes that gap: ``root/.exman/tasks/<key>.json`` says which
launcher (and which child process) runs the task; when the task ends it
becomes ``<key>.ended``, which says how and when. Claims are taken under a
file lock, so two launchers on the same root never start the same task at
once. A claim whose processes are gone is stale and ignored; deleting the
folder loses nothing but that protection.

Whether a claim is held does not depend on the launcher having recorded its
child's pid, which it can do only after the child exists: the launcher takes
an exclusive ``flock`` on ``<key>.lock`` with the claim and hands the open
file to the child (:meth:`Claims.handle`), which holds it for as long as it
and whatever inherited it live. A launcher killed at any instant leaves a
claim that is held exactly while a process that may run the task lives.

A launcher killed while its task runs cannot say how the task ended, and
the task may finish after another launcher planned the sweep but before it
takes the task. So taking over such a stale claim first looks at the runs
made since it was taken (its ``after`` id): a task that completed or failed
under it is not started again.

A task handed to a scheduler (``exman sweep --backend slurm``) is held by
its job instead (:meth:`Claims.assign`): the claim stands after the launcher
exits, until the sweep learns that the job ended (:meth:`Claims.end`).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import pathlib
import time
from collections.abc import Collection
from typing import Any

from ..record.files import group_bits, make_dir, share
from ..record.lock import FileLock
from ..record.run import hostname, pid_alive, process_start
from ..record.store import STATE_DIR, Root, atomic_write
from .runs import scan_runs, task_state

__all__ = ["Claims"]

TASKS_DIR = "tasks"
#: a claim being held; once released it becomes ``<key>.ended``, so that
#: finding the live claims reads only those, however many tasks have ended
HELD = ".json"
ENDED = ".ended"
#: the lock that the launcher and the task's process hold while it may run
LOCK = ".lock"


class Claims:
    """The task claims of a root.

    :param root: the root whose ``.exman/tasks/`` holds the claims.
    """

    def __init__(self, root: Root) -> None:
        self.root = root
        self.dir = root.path / STATE_DIR / TASKS_DIR
        #: the open lock files of the claims this process holds, by key
        self._locks: dict[str, int] = {}

    def _file(self, key: str) -> pathlib.Path:
        return self.dir / f"{key}{HELD}"

    def _lock_file(self, key: str) -> pathlib.Path:
        return self.dir / f"{key}{LOCK}"

    def handle(self, key: str) -> int | None:
        """The open lock file of our claim on ``key``, for its process to inherit.

        A process started with it (``pass_fds``) holds the claim as long as it
        lives, even when this process dies before it learns the pid.
        """
        return self._locks.get(key)

    def _drop(self, key: str) -> None:
        fd = self._locks.pop(key, None)
        if fd is not None:
            os.close(fd)

    def _ended_file(self, key: str) -> pathlib.Path:
        return self.dir / f"{key}{ENDED}"

    def _read(self, path: pathlib.Path) -> dict[str, Any] | None:
        try:
            with open(path, "rb") as f:
                data = json.load(f)
        except (OSError, ValueError):
            return None
        return data if isinstance(data, dict) else None

    def _lock(self) -> Any:
        return FileLock(str(self.dir / "lock"))

    def held(self, keys: Collection[str] | None = None) -> set[str]:
        """The keys (among ``keys``) that a live launcher is running."""
        try:
            names = os.listdir(self.dir)
        except FileNotFoundError:
            return set()
        out: set[str] = set()
        wanted = [
            name[: -len(HELD)]
            for name in names
            if name.endswith(HELD) and (keys is None or name[: -len(HELD)] in keys)
        ]
        if not wanted:
            return out
        # a look at a claim's lock must not make a launcher taking it fail
        with self._lock():
            for key in wanted:
                record = self._read(self._file(key))
                if record is not None and self._alive(key, record):
                    out.add(key)
        return out

    def _alive(self, key: str, record: dict[str, Any]) -> bool:
        if key in self._locks:
            return True  # ours
        if record.get("lock") and record.get("host") == hostname():
            if record.get("state") != "running" or record.get("job") is not None:
                return alive(record)
            return _locked(self._lock_file(key))
        return alive(record)

    def acquire(self, key: str, *, since: float, **info: Any) -> str | None:
        """Take task ``key`` for this process.

        :param since: when the caller looked at the runs (``time.time()``): a
            task that another launcher finished after that is not taken again.
        :param info: recorded in the claim (sweep name, task number).
        :returns: None when taken, else why not: ``"running"`` (a live
            launcher holds it) or ``"completed"``/``"failed"`` (finished by
            another launcher since ``since``).
        """
        make_dir(self.dir, exist_ok=True)
        path = self._file(key)
        with self._lock():
            record = self._read(path)
            if record is not None and self._alive(key, record):
                return "running"
            ended = self._read(self._ended_file(key)) or {}
            when = ended.get("ended")
            state = ended.get("state")
            finished = isinstance(when, (int, float)) and when >= since
            if finished and state in ("completed", "pruned", "failed"):
                return str(state)
            fd = _take(self._lock_file(key))
            if fd is None:  # a process started under an older claim still runs
                return "running"
            if record is not None and record.get("state") == "running":
                # its launcher died: nothing said how the task ended
                ended_as = self._ended_under(key, record)
                if ended_as is not None:
                    os.close(fd)
                    return ended_as
            pid = os.getpid()
            record = {
                "state": "running",
                "host": hostname(),
                "pid": pid,
                "pid_start": process_start(pid),
                "child": None,
                "child_start": None,
                "lock": True,
                "started": time.time(),
                "ended": None,
                # the task's runs have larger ids than this
                "after": self.root.last_id(),
                **info,
            }
            try:
                atomic_write(path, json.dumps(record) + "\n")
            except BaseException:
                os.close(fd)
                raise
            self._locks[key] = fd
        return None

    def _ended_under(self, key: str, record: dict[str, Any]) -> str | None:
        """How the task of the stale claim ``record`` ended, if it did: then end it.

        Called under the lock, with the task's lock file ours: no process
        started under the claim runs any more, so its runs are final.
        """
        after = record.get("after")
        runs = scan_runs(
            self.root, {key}, after=after if isinstance(after, int) else 0
        ).get(key, [])
        state = task_state(runs)
        if state not in ("completed", "pruned", "failed"):
            return None
        record.update(state=state, ended=time.time())
        atomic_write(self._ended_file(key), json.dumps(record) + "\n")
        self._file(key).unlink()
        return state

    def started(self, key: str, pid: int) -> None:
        """Record the process that runs task ``key`` (it may outlive us)."""
        path = self._file(key)
        record = self._read(path)
        if record is None or record.get("pid") != os.getpid():
            return
        record.update(child=pid, child_start=process_start(pid))
        atomic_write(path, json.dumps(record) + "\n")

    def assign(self, key: str, **info: Any) -> None:
        """Hand task ``key``, claimed by this process, to a scheduler job.

        :param info: ``job`` (its id there) and ``backend``, recorded in the
            claim, which then holds until :meth:`end`.
        """
        path = self._file(key)
        with self._lock():
            record = self._read(path)
            if record is None or record.get("pid") != os.getpid():
                return
            record.update(info)
            atomic_write(path, json.dumps(record) + "\n")
            # the job holds the claim now, for as long as the scheduler has it
            self._drop(key)

    def record(self, key: str) -> dict[str, Any] | None:
        """The claim on ``key`` (sweep, task number, holder), None if none."""
        return self._read(self._file(key))

    def jobs(self, keys: Collection[str] | None = None) -> dict[str, dict[str, Any]]:
        """The claims (among ``keys``) held by scheduler jobs, by key."""
        out = {}
        for key in self.held(keys):
            record = self._read(self._file(key))
            if record is not None and record.get("job") is not None:
                out[key] = record
        return out

    def end(self, key: str, state: str, **info: Any) -> None:
        """End the claim on ``key`` whoever holds it: its job ended in ``state``."""
        path = self._file(key)
        with self._lock():
            record = self._read(path)
            if record is None:
                return
            record.update(state=state, ended=time.time(), **info)
            atomic_write(self._ended_file(key), json.dumps(record) + "\n")
            path.unlink()
            with contextlib.suppress(FileNotFoundError):
                self._lock_file(key).unlink()

    def release(self, key: str, state: str) -> None:
        """Let go of task ``key``, which ended in ``state``."""
        path = self._file(key)
        with self._lock():
            record = self._read(path)
            if record is None or record.get("pid") != os.getpid():
                self._drop(key)
                return  # not ours (any more)
            record.update(state=state, ended=time.time())
            atomic_write(self._ended_file(key), json.dumps(record) + "\n")
            path.unlink()
            if key in self._locks:
                with contextlib.suppress(FileNotFoundError):
                    self._lock_file(key).unlink()
            self._drop(key)


def alive(record: dict[str, Any]) -> bool:
    """Whether the launcher or the child process of a claim still runs."""
    if record.get("state") != "running":
        return False
    if record.get("job") is not None:
        return True  # a scheduler's job: held until the sweep sees it end
    if record.get("host") != hostname():
        return True  # cannot look at another host's processes
    for pid_key, start_key in (("pid", "pid_start"), ("child", "child_start")):
        pid = record.get(pid_key)
        if isinstance(pid, int) and pid_alive(pid, record.get(start_key)):
            return True
    return False


def _take(path: pathlib.Path) -> int | None:
    """The lock file ``path``, open and locked by us; None when someone holds it."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o666)
    try:
        share(fd, group_bits(path.parent))  # another member takes it next
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    except BaseException:
        os.close(fd)
        raise
    return fd


def _locked(path: pathlib.Path) -> bool:
    """Whether a process holds the lock file ``path``."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False
