"""One run folder: its parameters, its status record, its files.

The status record is ``run.json`` in the run folder, exman's own file:

.. code-block:: json

    {"id": 42, "status": "completed", "started": "2026-11-22T10:31:07.123+01:00",
     "finished": "…", "duration": 12.5, "host": "node1", "pid": 4242,
     "pid_start": 123456, "exit_code": 0, "reason": null,
     "command": {"executable": "…", "argv": ["main.py", "--lr", "0.1"], "cwd": "…"}}

It is written atomically when the run starts and again when it ends; in
between, its modification time is the run's heartbeat (see
:mod:`exman.record.heartbeat`). A run whose record still says ``running``
but whose process is gone (killed with SIGKILL, a node that failed) reads
as ``crashed``: on every host once its heartbeat is stale, and at once on
the host that ran it, where its pid is gone.

A run that is continued after it was stopped (:meth:`Run.resume`: a
requeued SLURM job, a timed-out local task, ``--resume-run``) keeps its
folder and its id; its record then holds ``attempt`` (the current one,
from 1) and ``attempts``, one entry per attempt with its own start, end,
host, status and reason. ``started`` stays the first attempt's start,
``duration`` is the sum of the attempts' durations, and the other fields
describe the last attempt.
"""

from __future__ import annotations

import datetime
import json
import os
import pathlib
import sys
import time

from . import heartbeat, snapshot, stop
from .params import PARAMS_FILE, load_params
from .store import METRICS_FILE, RESULTS_FILE, ROOT_ENV, StrPath, atomic_write, run_id

# not typing's: importing typing would slow every run's start
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

__all__ = [
    "FINAL_STATUSES",
    "LOG_FILE",
    "METRICS_FILE",
    "RESULTS_FILE",
    "RUN_FILE",
    "TRACEBACK_FILE",
    "Run",
    "hostname",
    "now_iso",
    "pid_alive",
    "process_start",
]

RUN_FILE = "run.json"
LOG_FILE = "log.txt"
TRACEBACK_FILE = "traceback.txt"
DIFF_FILE = "changes.diff"
#: ``pruned``: stopped early by a search's pruner (see :mod:`exman.record.stop`)
FINAL_STATUSES = frozenset({"completed", "failed", "interrupted", "pruned"})
#: seconds a run folder without run.json is taken as still being created
#: (between its folder and its run.json, parse_args writes params.yaml)
CREATION_GRACE = 3600.0


def now_iso() -> str:
    """The local time with its UTC offset, to the millisecond."""
    return datetime.datetime.now().astimezone().isoformat(timespec="milliseconds")


def hostname() -> str:
    return (
        os.uname().nodename
        if hasattr(os, "uname")
        else os.environ.get("COMPUTERNAME", "")
    )


def process_start(pid: int) -> int | None:
    """When process ``pid`` started (clock ticks since boot), None if unknown.

    Together with the pid this names one process: a pid reused by a later
    process has another start time.
    """
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except OSError:
        return None
    # the command name (field 2) may hold spaces and parentheses: skip past it
    fields = stat[stat.rfind(b")") + 2 :].split()
    try:
        return int(fields[19])
    except (IndexError, ValueError):
        return None


def pid_alive(pid: int, start: int | None = None) -> bool:
    """Whether process ``pid`` (started at ``start``, when known) still runs here."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, owned by somebody else
        pass
    except OSError:
        return False
    if start is not None:
        now = process_start(pid)
        if now is not None and now != start:
            return False
        # a zombie has exited: its parent just has not collected it yet
        try:
            with open(f"/proc/{pid}/stat", "rb") as f:
                stat = f.read()
            if stat[stat.rfind(b")") + 2 :].startswith(b"Z"):
                return False
        except OSError:
            pass
    return True


class Run:
    """A run folder (in ``runs/``, ``tmp/`` or ``fails/``).

    :param path: the folder.
    """

    def __init__(self, path: StrPath) -> None:
        self.path = pathlib.Path(path)
        #: the record this object wrote last, with the (inode, size) of the
        #: run.json it wrote: the end of a run needs no read of it
        self._written: tuple[dict[str, Any], int, int] | None = None

    def __repr__(self) -> str:
        return f"Run({str(self.path)!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Run) and other.path == self.path

    def __hash__(self) -> int:
        return hash(self.path)

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def id(self) -> int:
        num = run_id(self.name)
        if num is None:
            raise ValueError(f"{self.path} is not a run folder")
        return num

    @property
    def params_file(self) -> pathlib.Path:
        return self.path / PARAMS_FILE

    @property
    def params(self) -> dict[str, Any]:
        """The run's params.yaml (read with the safe loader)."""
        return load_params(self.params_file)

    # -- what came out ------------------------------------------------------
    def log(self, step: int | None = None, **metrics: Any) -> None:
        """Append ``metrics`` at ``step`` to the run's metrics.jsonl.

        See :func:`exman.log`.
        """
        from .metrics import recorder_for

        recorder_for(self.path).log(step, **metrics)

    def result(self, **values: Any) -> dict[str, Any]:
        """Set final values in the run's results.json (see :func:`exman.result`)."""
        from .metrics import recorder_for

        return recorder_for(self.path).result(**values)

    # -- attempts and checkpoints -----------------------------------------------
    @property
    def attempt(self) -> int:
        """The attempt this run is at: 1, then 2 once it was resumed…"""
        value = self.record().get("attempt")
        return value if isinstance(value, int) and value >= 1 else 1

    @property
    def resumed(self) -> bool:
        """Whether the run continues an earlier attempt (``attempt > 1``)."""
        return self.attempt > 1

    @property
    def checkpoint_dir(self) -> pathlib.Path:
        """``<run folder>/checkpoints``, created when first asked for."""
        from .checkpoints import checkpoint_dir

        return checkpoint_dir(self.path)

    def last_checkpoint(self, pattern: str = "*") -> pathlib.Path | None:
        """The newest file in :attr:`checkpoint_dir` (None if there is none).

        See :func:`exman.latest_checkpoint`.
        """
        from .checkpoints import CHECKPOINT_DIR, latest_checkpoint

        return latest_checkpoint(self.path / CHECKPOINT_DIR, pattern)

    def last_step(self) -> int | None:
        """The step of the last record in the run's metrics (None if none).

        See :func:`exman.last_step`.
        """
        from .metrics import last_step

        return last_step(self.path)

    # -- the status record ---------------------------------------------------
    @property
    def record_file(self) -> pathlib.Path:
        return self.path / RUN_FILE

    def record(self) -> dict[str, Any]:
        """The content of run.json; ``{}`` for a run made by exman 0.1.9."""
        try:
            with open(self.record_file, encoding="utf-8") as f:
                data = json.load(f)
        except FileNotFoundError:
            return {}
        except (ValueError, UnicodeDecodeError):
            return {"status": "unknown", "reason": f"unreadable {RUN_FILE}"}
        return data if isinstance(data, dict) else {}

    def write_record(self, record: dict[str, Any]) -> None:
        atomic_write(self.record_file, json.dumps(record, indent=1, default=str) + "\n")
        try:
            st = os.stat(self.record_file)
        except OSError:
            self._written = None
        else:
            self._written = dict(record), st.st_ino, st.st_size

    def last_record(self) -> dict[str, Any]:
        """:meth:`record`, without reading run.json when it is still the file
        this object wrote last (the end of a run in its own process)."""
        if self._written is not None:
            record, ino, size = self._written
            try:
                st = os.stat(self.record_file)
            except OSError:
                st = None
            if st is not None and (st.st_ino, st.st_size) == (ino, size):
                return dict(record)
        return self.record()

    def update_record(self, **fields: Any) -> dict[str, Any]:
        """Merge ``fields`` into run.json (atomically) and return the result."""
        record = self.record()
        record.update(fields)
        self.write_record(record)
        return record

    def beat(self) -> float | None:
        """When the run last gave a sign of life (epoch seconds), if known."""
        try:
            return os.stat(self.record_file).st_mtime
        except OSError:
            return None

    @property
    def status(self) -> str:
        """completed, failed, interrupted, running, crashed or unknown.

        ``crashed``: the record says running but its heartbeat stopped, or
        its process is gone from this host. ``unknown``: no record (a run
        made by exman 0.1.9).
        """
        record = self.record()
        return effective_status(record, self.beat())

    def being_created(self, grace: float = CREATION_GRACE) -> bool:
        """Whether this may be a run that ``parse_args`` is still creating.

        True for a folder without run.json that changed less than ``grace``
        seconds ago: its creator may be between making the folder and
        writing run.json. Such a run is as untouchable as a running one.
        """
        if self.record_file.exists():
            return False
        try:
            changed = self.path.stat().st_mtime
        except FileNotFoundError:
            return False
        return time.time() - changed < grace

    def incomplete(self, grace: float = CREATION_GRACE) -> bool:
        """A folder that a process died creating: no params.yaml, not being
        created (see :meth:`being_created`) and no live process running it."""
        if self.params_file.exists() or self.being_created(grace):
            return False
        if not self.path.is_dir():
            return False
        return self.status != "running"

    def start(self, **fields: Any) -> dict[str, Any]:
        """Record the run as running in this process, and keep its heartbeat.

        :param fields: more fields of the record; ``heartbeat``, the seconds
            between beats, defaults to :func:`exman.record.heartbeat.interval`;
            ``id`` to the one in the folder's name.
        """
        every = fields.pop("heartbeat", None) or heartbeat.interval()
        num = fields.pop("id", None)  # known to the run's creation
        pid = os.getpid()
        record: dict[str, Any] = {
            "id": run_id(self.name) if num is None else num,
            "status": "running",
            "started": now_iso(),
            "finished": None,
            "duration": None,
            "host": hostname(),
            "pid": pid,
            "pid_start": process_start(pid),
            "exit_code": None,
            "reason": None,
            "heartbeat": every,
        }
        record.update(fields)
        self.write_record(record)
        heartbeat.start(str(self.record_file), every)
        return record

    def resume(self, **fields: Any) -> dict[str, Any]:
        """Record a new attempt of the run, running in this process.

        The attempt before it is closed in ``attempts``: with how it ended,
        or, when it ended without a word (SIGKILL, a lost node), as
        ``crashed`` at its last heartbeat.

        :param fields: more fields of the record, as for :meth:`start`.
        """
        every = fields.pop("heartbeat", None) or heartbeat.interval()
        record = self.record()
        attempts = record.get("attempts")
        if not isinstance(attempts, list) or not attempts:
            attempts = [_attempt_entry(record, 1)]
        last = attempts[-1]
        if isinstance(last, dict) and last.get("status") in (None, "running"):
            beat = self.beat()
            last["status"] = "crashed"
            last["reason"] = last.get("reason") or "ended without recording its end"
            if beat is not None:
                when = datetime.datetime.fromtimestamp(beat).astimezone()
                last["finished"] = when.isoformat(timespec="milliseconds")
                last["duration"] = _seconds(last.get("started"), last["finished"])
        number = len(attempts) + 1
        pid = os.getpid()
        now = now_iso()
        current = {
            "attempt": number,
            "started": now,
            "finished": None,
            "duration": None,
            "host": hostname(),
            "pid": pid,
            "status": "running",
            "exit_code": None,
            "reason": None,
        }
        attempts.append(current)
        record.update(
            id=run_id(self.name),
            status="running",
            finished=None,
            duration=None,
            host=current["host"],
            pid=pid,
            pid_start=process_start(pid),
            exit_code=None,
            reason=None,
            heartbeat=every,
            attempt=number,
            attempts=attempts,
        )
        record.setdefault("started", now)
        record.update(fields)
        self.write_record(record)
        heartbeat.start(str(self.record_file), every)
        return record

    def finish(
        self,
        status: str,
        *,
        exit_code: int | None = None,
        reason: str | None = None,
        record: dict[str, Any] | None = None,
        env: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Record the end of the run: ``status`` with its exit code and reason.

        In the run's own process, a run that a search asked to stop
        (:func:`exman.record.stop.requested`) is recorded as ``pruned``
        when it completed or was interrupted.

        :param env: more of the run's environment (what it imported), added
            to the ``env`` of its record.
        """
        if status in ("completed", "interrupted") and stop.requested():
            status, reason = "pruned", stop.REASON
        record = dict(self.record() if record is None else record)
        if env:
            before = record.get("env")
            record["env"] = {**(before if isinstance(before, dict) else {}), **env}
        finished = now_iso()
        duration = _seconds(record.get("started"), finished)
        attempts = record.get("attempts")
        if isinstance(attempts, list) and attempts and isinstance(attempts[-1], dict):
            last = attempts[-1]
            last.update(
                status=status,
                finished=finished,
                duration=_seconds(last.get("started"), finished),
                exit_code=exit_code,
                reason=reason,
            )
            spans = [a.get("duration") for a in attempts if isinstance(a, dict)]
            duration = round(sum(d for d in spans if isinstance(d, (int, float))), 3)
        record.update(
            status=status,
            finished=finished,
            duration=duration,
            exit_code=exit_code,
            reason=reason,
        )
        # its results and last metrics as they are now, for readers (see
        # exman.record.snapshot)
        folder = str(self.path)
        for field, made in (
            (snapshot.RESULTS_FIELD, snapshot.copy_results(f"{folder}/{RESULTS_FILE}")),
            (snapshot.METRICS_FIELD, snapshot.copy_metrics(f"{folder}/{METRICS_FILE}")),
        ):
            record.pop(field, None)
            if made is not None:
                record[field] = made
        self.write_record(record)
        heartbeat.stop(str(self.record_file))
        return record


def _seconds(start: object, end: object) -> float | None:
    """The seconds between two ISO times of a record (None if unreadable)."""
    try:
        a = datetime.datetime.fromisoformat(str(start))
        b = datetime.datetime.fromisoformat(str(end))
        return round((b - a).total_seconds(), 3)
    except (TypeError, ValueError):
        return None


def _attempt_entry(record: dict[str, Any], number: int) -> dict[str, Any]:
    """The first attempt of a run, from the record it wrote before a resume."""
    entry: dict[str, Any] = {"attempt": number}
    for key in ("started", "finished", "duration", "host", "pid", "status"):
        entry[key] = record.get(key)
    entry["exit_code"] = record.get("exit_code")
    entry["reason"] = record.get("reason")
    return entry


def effective_status(
    record: dict[str, Any], beat: float | None = None, now: float | None = None
) -> str:
    """The status a record stands for, checking that a running run still lives.

    :param beat: the modification time of the run's ``run.json`` (its
        heartbeat); None leaves only the check of the pid on its own host.
    :param now: the time to judge the heartbeat at (default: now).
    """
    status = record.get("status")
    if not status:
        return "unknown"
    if status != "running":
        return str(status)
    if beat is not None and heartbeat.is_stale(beat, record.get("heartbeat"), now):
        return "crashed"
    if record.get("host") == hostname():
        pid = record.get("pid")
        if isinstance(pid, int) and not pid_alive(pid, record.get("pid_start")):
            return "crashed"
    return "running"


#: set by ``exman sweep`` for the processes it launches; ``job`` and
#: ``attempt`` by a launcher that may start a task again (see
#: :mod:`exman.record.resume`); ``caller_root``: the ``EXMAN_ROOT`` the
#: sweep itself was started with, when it had one
SWEEP_ENV = {
    "name": "EXMAN_SWEEP",
    "task": "EXMAN_SWEEP_TASK",
    "key": "EXMAN_SWEEP_KEY",
    "job": "EXMAN_SWEEP_JOB",
    "attempt": "EXMAN_SWEEP_ATTEMPT",
    "caller_root": "EXMAN_SWEEP_CALLER_ROOT",
}


def sweep_record() -> dict[str, Any] | None:
    """The sweep this process runs a task of (from the environment), or None."""
    key = os.environ.get(SWEEP_ENV["key"])
    if not key:
        return None
    task: Any = os.environ.get(SWEEP_ENV["task"])
    try:
        task = int(task) if task is not None else None
    except ValueError:
        pass
    return {"name": os.environ.get(SWEEP_ENV["name"]), "task": task, "key": key}


def leave_sweep(names: tuple[str, ...] = ()) -> None:
    """Make what this process starts from now on no part of its sweep task.

    The sweep's variables (and ``names``) leave the environment, and so
    does the ``EXMAN_ROOT`` the sweep set, giving back the one the sweep was
    started with: another ExParser script that the task runs records its
    run where it would outside the sweep.
    """
    if os.environ.get(SWEEP_ENV["key"]):
        caller_root = os.environ.get(SWEEP_ENV["caller_root"])
        if caller_root:
            os.environ[ROOT_ENV] = caller_root
        else:
            os.environ.pop(ROOT_ENV, None)
    for var in (*SWEEP_ENV.values(), *names):
        os.environ.pop(var, None)


def script_path() -> str | None:
    """The script this process runs (``sys.argv[0]``, absolute), if it is a file."""
    script = sys.argv[0] if sys.argv else ""
    return os.path.abspath(script) if script and os.path.exists(script) else None


def command_record(args: list[str] | None) -> dict[str, Any]:
    """How this process was started, so that ``exman rerun`` can repeat it."""
    return {
        "executable": sys.executable,
        "argv": list(sys.argv),
        "orig_argv": list(getattr(sys, "orig_argv", sys.argv)),
        "args": list(sys.argv[1:] if args is None else args),
        "script": script_path(),
        "cwd": os.getcwd(),
    }
