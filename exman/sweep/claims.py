"""Task claims: a launcher holds a task while it runs it.

A run folder appears only once the script has parsed its arguments; until
then, and after its launcher is killed, nothing in ``runs/`` says the task is
taken. A claim closes that gap: ``root/.exman/tasks/<key>.json`` says which
launcher (and which child process) runs the task; when the task ends it
becomes ``<key>.ended``, which says how and when. Claims are taken under a
file lock, so two launchers on the same root never start the same task at
once. A claim whose processes are gone is stale and ignored; deleting the
folder loses nothing but that protection.

A task handed to a scheduler (``exman sweep --backend slurm``) is held by
its job instead (:meth:`Claims.assign`): the claim stands after the launcher
exits, until the sweep learns that the job ended (:meth:`Claims.end`).
"""

from __future__ import annotations

import json
import os
import pathlib
import time
from collections.abc import Collection
from typing import Any

from ..record.files import make_dir
from ..record.lock import FileLock
from ..record.run import hostname, pid_alive, process_start
from ..record.store import STATE_DIR, Root, atomic_write

__all__ = ["Claims"]

TASKS_DIR = "tasks"
#: a claim being held; once released it becomes ``<key>.ended``, so that
#: finding the live claims reads only those, however many tasks have ended
HELD = ".json"
ENDED = ".ended"


class Claims:
    """The task claims of a root.

    :param root: the root whose ``.exman/tasks/`` holds the claims.
    """

    def __init__(self, root: Root) -> None:
        self.root = root
        self.dir = root.path / STATE_DIR / TASKS_DIR

    def _file(self, key: str) -> pathlib.Path:
        return self.dir / f"{key}{HELD}"

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
        out = set()
        for name in names:
            key = name[: -len(HELD)]
            if not name.endswith(HELD) or (keys is not None and key not in keys):
                continue
            record = self._read(self.dir / name)
            if record is not None and alive(record):
                out.add(key)
        return out

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
            if record is not None and alive(record):
                return "running"
            ended = self._read(self._ended_file(key)) or {}
            when = ended.get("ended")
            state = ended.get("state")
            finished = isinstance(when, (int, float)) and when >= since
            if finished and state in ("completed", "failed"):
                return str(state)
            pid = os.getpid()
            record = {
                "state": "running",
                "host": hostname(),
                "pid": pid,
                "pid_start": process_start(pid),
                "child": None,
                "child_start": None,
                "started": time.time(),
                "ended": None,
                **info,
            }
            atomic_write(path, json.dumps(record) + "\n")
        return None

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

    def release(self, key: str, state: str) -> None:
        """Let go of task ``key``, which ended in ``state``."""
        path = self._file(key)
        with self._lock():
            record = self._read(path)
            if record is None or record.get("pid") != os.getpid():
                return  # not ours (any more)
            record.update(state=state, ended=time.time())
            atomic_write(self._ended_file(key), json.dumps(record) + "\n")
            path.unlink()


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
