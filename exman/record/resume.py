"""Which run a process continues, when it is a new attempt of an earlier one.

A run is continued in two ways:

* by a launcher that starts a task again after it was stopped from outside
  (a SLURM job requeued on preemption, at its time limit or by ``scontrol
  requeue``; a local task after ``--timeout`` with ``resume: true``). The
  launcher sets ``EXMAN_SWEEP_JOB`` (what stays the same across the
  attempts: the SLURM job id, or a token of the local launcher) and
  ``EXMAN_SWEEP_ATTEMPT`` (1, 2…) beside the task's key. The first attempt's
  run leaves ``.exman/resume/<key>.json`` naming itself and that job; a later
  attempt of the same job finds its run there, in one read, whatever the
  number of runs in the root. A later attempt whose first one made no run
  (it was stopped before it parsed its arguments) makes a new run.
* by hand: ``python main.py --resume-run ID`` (see :func:`check_by_hand`).
"""

from __future__ import annotations

import json
import os
import pathlib

from .errors import ExmanError, RunNotFound
from .files import make_dir
from .run import SWEEP_ENV, Run, effective_status
from .store import STATE_DIR, Root, atomic_write, check_name

# not typing's: importing typing would slow every run's start
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

__all__ = [
    "ATTEMPT_ENV",
    "JOB_ENV",
    "RESUME_DIR",
    "check_by_hand",
    "check_task_key",
    "launcher_attempt",
    "remember",
    "task_run",
]

#: set by a launcher that may start a task again: the job the attempts share
JOB_ENV = SWEEP_ENV["job"]
#: set with it: which attempt of the job this process is (1, 2…)
ATTEMPT_ENV = SWEEP_ENV["attempt"]
#: ``.exman/resume/<key>.json``: the run of a task's job
RESUME_DIR = "resume"


def launcher_attempt() -> tuple[str, int] | None:
    """The job and attempt a launcher gave this process, if it gave them."""
    job = os.environ.get(JOB_ENV)
    try:
        attempt = int(os.environ.get(ATTEMPT_ENV, ""))
    except ValueError:
        return None
    if not job or attempt < 1:
        return None
    return job, attempt


def check_task_key(key: str) -> str:
    """``key`` if it can name a file in the root (it comes from the environment).

    :raises ExmanError: it holds a path separator, ``..`` or a control character.
    """
    return check_name(key, f"the task key {key!r}")


def _pointer(store: Root, key: str) -> pathlib.Path:
    return store.path / STATE_DIR / RESUME_DIR / f"{check_task_key(key)}.json"


def remember(store: Root, key: str, job: str, run: Run) -> None:
    """Note that ``run`` is the run of task ``key`` in ``job``."""
    path = _pointer(store, key)
    make_dir(path.parent, exist_ok=True)
    data = {"job": job, "run": run.name}
    atomic_write(path, json.dumps(data) + "\n")


def task_run(store: Root, key: str, job: str) -> Run | None:
    """The run an earlier attempt of ``job`` made for task ``key``, if any.

    :raises ExmanError: the run named there belongs to another task.
    """
    try:
        with open(_pointer(store, key), "rb") as f:
            data: Any = json.load(f)
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("job") != job:
        return None  # the first attempt made no run (or an older job's)
    name = data.get("run")
    if not isinstance(name, str) or "/" in name or name in ("", ".", ".."):
        return None
    for place in ("runs", "fails", "tmp"):
        folder = store.path / place / name
        if folder.is_dir() and not folder.is_symlink():
            run = Run(folder)
            sweep = run.record().get("sweep")
            if not isinstance(sweep, dict) or sweep.get("key") != key:
                raise ExmanError(
                    f"{_pointer(store, key)} names run {name}, which is not a "
                    f"run of task {key}"
                )
            return run
    return None


def check_by_hand(store: Root, num: int, script: str | None) -> Run:
    """The run that ``--resume-run num`` continues, if it may be continued.

    :param script: the script of this process (its absolute path), if known.
    :raises RunNotFound: no run has this id.
    :raises ExmanError: the run is still running, completed, was moved to
        ``fails/`` or was made by another script.
    """
    try:
        folder = store.find(num)
    except RunNotFound:
        raise RunNotFound(f"--resume-run {num}: no run {num} in {store.path}") from None
    run = Run(folder)
    if folder.parent.name == "fails":
        raise ExmanError(
            f"--resume-run {num}: run {num} failed and is in fails/ "
            f"({folder}); only a run that was stopped (interrupted, crashed) "
            "is continued"
        )
    record = run.record()
    status = effective_status(record, run.beat())
    if status == "running":
        raise ExmanError(
            f"--resume-run {num}: run {num} is still running (pid "
            f"{record.get('pid')} on {record.get('host')})"
        )
    if status == "completed":
        raise ExmanError(f"--resume-run {num}: run {num} completed; nothing to resume")
    command = record.get("command")
    made_by = command.get("script") if isinstance(command, dict) else None
    if script and isinstance(made_by, str) and made_by != script:
        raise ExmanError(
            f"--resume-run {num}: run {num} was made by {made_by}, not by {script}"
        )
    return run
