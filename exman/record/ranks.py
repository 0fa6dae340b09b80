"""The processes of one distributed launch (torchrun, srun…) are one run.

Each process of a launch calls ``parse_args()`` at about the same instant.
Rank 0 creates the run as a single process does and then *publishes* it:
``.exman/launches/<key digest>.<n>.json`` (written atomically) names the
run folder, and ``n`` counts the runs this process created, so that a
script parsing twice pairs its runs in order. The other ranks wait, polling
with a bound, for that file to name a run of *their* launch, and join it:
same id, same folder, same params.yaml. No lock is needed (only rank 0
writes the file) and no service of exman's own (the launch is identified
from the launcher's environment).

The key is the launcher's id of the launch where it gives one
(``TORCHELASTIC_RUN_ID`` and the restart count, ``SLURM_JOB_ID`` and
``SLURM_STEP_ID``); else ``MASTER_ADDR``, ``MASTER_PORT`` and the world
size, which repeat from one launch to the next: then a record is taken
only if rank 0 started with this process (within
:data:`SAME_LAUNCH_SECONDS`) and, on the same host, is a child of the same
launcher process.
"""

from __future__ import annotations

import json
import os
import pathlib
import time

from .errors import ExmanError
from .files import make_dir
from .launch import Launch
from .run import hostname, process_start
from .store import Root, atomic_write, check_name

# not typing's: importing typing would slow every run's start
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

__all__ = ["RANK_TIMEOUT_ENV", "join_launch", "publish_launch"]

#: seconds a rank other than 0 waits for rank 0's run (default 120)
RANK_TIMEOUT_ENV = "EXMAN_RANK_TIMEOUT"
DEFAULT_TIMEOUT = 120.0
#: processes of one launch start within this of each other (clocks of
#: different hosts included); a record of rank 0 older than that is stale
SAME_LAUNCH_SECONDS = 30.0
LAUNCHES = "launches"


def started_at(pid: int) -> float | None:
    """When process ``pid`` started, in seconds since the epoch (Linux)."""
    ticks = process_start(pid)
    if ticks is None:
        return None
    try:
        with open("/proc/stat", "rb") as f:
            for line in f:
                if line.startswith(b"btime "):
                    return int(line.split()[1]) + ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError):
        pass
    return None


_created: dict[str, int] = {}


def _next(launch: Launch) -> int:
    """The number of this process's next run of ``launch`` (from 1)."""
    _created[launch.key] = n = _created.get(launch.key, 0) + 1
    return n


def _file(root: Root, launch: Launch, n: int) -> pathlib.Path:
    import hashlib

    digest = hashlib.sha1(launch.key.encode("utf-8")).hexdigest()[:20]
    return root.state / LAUNCHES / f"{digest}.{n}.json"


def _me() -> dict[str, Any]:
    pid, parent = os.getpid(), os.getppid()
    return {
        "host": hostname(),
        "pid": pid,
        "started": started_at(pid) or time.time(),
        "parent": [parent, process_start(parent)],
    }


def publish_launch(root: Root, launch: Launch, relpath: pathlib.Path) -> None:
    """Rank 0: tell the other ranks of ``launch`` which run is theirs.

    :param relpath: the run folder relative to the root (``runs/<name>``).
    """
    path = _file(root, launch, _next(launch))
    make_dir(path.parent, exist_ok=True)
    record = {"key": launch.key, "run": relpath.as_posix(), **_me()}
    atomic_write(path, json.dumps(record) + "\n")


def join_launch(
    root: Root, launch: Launch, timeout: float | None = None
) -> pathlib.Path:
    """A rank other than 0: wait for rank 0's run of ``launch``, its folder.

    :param timeout: seconds to wait; by default ``EXMAN_RANK_TIMEOUT`` or
        120.
    :raises ExmanError: no run of this launch appeared in time (rank 0
        died before ``parse_args()``, or it uses another root).
    """
    if timeout is None:
        timeout = _timeout()
    path = _file(root, launch, _next(launch))
    me = _me()
    deadline = time.monotonic() + timeout
    delay = 0.002
    while True:
        record = _read(path)
        if record is not None and _same_launch(record, launch, me):
            return _folder(root, record, path)
        if time.monotonic() >= deadline:
            raise ExmanError(
                f"rank {launch.rank} of {launch.world_size} waited {timeout:g} s "
                f"for rank 0 to create the run of launch {launch.key!r} in "
                f"{root.path}, in vain: did rank 0 fail before parse_args(), or "
                f"use another root? ({RANK_TIMEOUT_ENV} sets the wait)"
            )
        time.sleep(delay)
        delay = min(delay * 2, 0.05)


def _timeout() -> float:
    text = os.environ.get(RANK_TIMEOUT_ENV)
    if not text:
        return DEFAULT_TIMEOUT
    try:
        return float(text)
    except ValueError:
        raise ExmanError(
            f"{RANK_TIMEOUT_ENV}={text!r} is not a number of seconds"
        ) from None


def _read(path: pathlib.Path) -> dict[str, Any] | None:
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _same_launch(record: dict[str, Any], launch: Launch, me: dict[str, Any]) -> bool:
    """Whether rank 0's ``record`` is of this process's launch, not an
    earlier one with the same key."""
    if record.get("key") != launch.key:
        return False
    started = record.get("started")
    if not isinstance(started, (int, float)):
        return False
    if started < me["started"] - SAME_LAUNCH_SECONDS:
        return False
    if not launch.unique and record.get("host") == me["host"]:
        # MASTER_ADDR:MASTER_PORT repeats from launch to launch; the
        # launcher process that started us both does not
        return bool(record.get("parent") == me["parent"])
    return True


def _folder(root: Root, record: dict[str, Any], file: pathlib.Path) -> pathlib.Path:
    """The run folder a launch record names, wherever rank 0 has moved it."""
    place, _, name = str(record.get("run", "")).partition("/")
    try:
        check_name(name, "run folder")
    except ExmanError:
        raise ExmanError(f"{file} names no run folder of {root.path}") from None
    if place not in ("runs", "tmp"):
        raise ExmanError(f"{file} names no run folder of {root.path}")
    folder = root.path / place / name
    if not folder.is_dir() and (root.fails / name).is_dir():
        return root.fails / name  # rank 0 failed already
    return folder
