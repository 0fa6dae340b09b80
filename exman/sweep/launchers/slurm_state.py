"""What SLURM says of a set of jobs, in one question: ``squeue``, else ``sacct``.

:func:`scheduler_states` asks the controller (``squeue``) once about every
array involved — never once per task — and accounting (``sacct``) once about
what the controller has forgotten. SLURM reports the elements of an array
that have not started as ranges (``12_[3-9%2]``) or as the array itself
(``12``); an element in no line of an array SLURM knows was cancelled before
it started. :func:`combine` puts SLURM's word together with the record the
task keeps next to its log (:mod:`.slurm_task`); :func:`cluster_limits`
reads how many tasks one array may hold.
"""

from __future__ import annotations

import contextlib
import getpass
import pathlib
import re
import subprocess
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from ...record.store import ExmanError
from .base import JobState
from .slurm_task import read_marker

__all__ = [
    "SchedulerState",
    "cluster_limits",
    "combine",
    "parse_lines",
    "run_command",
    "scheduler_states",
    "settled",
    "split_job",
    "task_record",
]

#: seconds a SLURM command may take
COMMAND_TIMEOUT = 60.0
#: SLURM's default MaxArraySize, when the cluster's cannot be read
DEFAULT_MAX_ARRAY_SIZE = 1001
QUEUED = {
    "PENDING",
    "REQUEUED",
    "REQUEUE_FED",
    "REQUEUE_HOLD",
    "RESV_DEL_HOLD",
    "SPECIAL_EXIT",
}
RUNNING = {
    "RUNNING",
    "COMPLETING",
    "CONFIGURING",
    "STAGE_OUT",
    "SIGNALING",
    "RESIZING",
    "SUSPENDED",
    "STOPPED",
}
#: the end states that are the scheduler's doing, with what they mean
FAILURES = {
    "TIMEOUT": "time limit reached",
    "OUT_OF_MEMORY": "out of memory",
    "NODE_FAIL": "node failure",
    "CANCELLED": "cancelled",
    "PREEMPTED": "preempted",
    "BOOT_FAIL": "node boot failure",
    "DEADLINE": "deadline reached",
    "REVOKED": "revoked",
    "FAILED": "the job failed",
}
_NOT_STARTED = "SLURM CANCELLED: cancelled before it started"
_ID = re.compile(r"(\d+)(?:_(\d+|\[([0-9,\-]+)(?:%\d+)?\]))?")


@dataclass(frozen=True)
class SchedulerState:
    """What the scheduler says of one job.

    :param state: ``queued``, ``running``, ``completed`` or ``failed``.
    :param slurm: SLURM's own word (``TIMEOUT``, ``CANCELLED by 1000``).
    :param reason: why it waits (``Priority``) or why it failed.
    :param exit_code: the job's exit code, when it has one.
    """

    state: str
    slurm: str
    reason: str | None = None
    exit_code: int | None = None


@dataclass
class _Array:
    """What the lines of one array (or plain job) say."""

    elements: dict[int, SchedulerState] = field(default_factory=dict)
    ranges: list[tuple[set[int], SchedulerState]] = field(default_factory=list)
    whole: SchedulerState | None = None

    def get(self, index: int | None) -> SchedulerState | None:
        if index is None:
            return self.whole
        if index in self.elements:
            return self.elements[index]
        for indices, state in self.ranges:
            if index in indices:
                return state
        return self.whole


def split_job(job: str) -> tuple[str, int | None]:
    """``"12_3"`` -> ``("12", 3)``; ``"12"`` -> ``("12", None)``."""
    head, _, index = job.partition("_")
    return head, int(index) if index else None


def _indices(text: str) -> set[int]:
    out: set[int] = set()
    for part in text.split(","):
        low, _, high = part.partition("-")
        if low:
            out.update(range(int(low), int(high or low) + 1))
    return out


def _state(words: str, code: str, reason: str) -> SchedulerState:
    slurm = words.strip()
    name = slurm.split(" ")[0].rstrip("+")
    exit_code: int | None = None
    head = code.split(":")[0]
    if head.isdigit():
        exit_code = int(head)
    why = reason.strip() or None
    if why == "None":
        why = None
    if name in QUEUED:
        return SchedulerState("queued", slurm, why, exit_code)
    if name in RUNNING:
        return SchedulerState("running", slurm, why, exit_code)
    if name == "COMPLETED":
        return SchedulerState("completed", slurm, None, exit_code)
    meaning = FAILURES.get(name, "ended")
    return SchedulerState("failed", slurm, f"SLURM {slurm}: {meaning}", exit_code)


def parse_lines(lines: Iterable[str]) -> dict[str, _Array]:
    """``JobID|State|ExitCode|Reason`` lines (sacct ``-P``) by array id."""
    arrays: dict[str, _Array] = {}
    for line in lines:
        fields = line.split("|")
        if len(fields) < 2 or not fields[0].strip():
            continue
        match = _ID.fullmatch(fields[0].strip())
        if match is None:
            continue  # a job step (12_3.batch), or something new
        array_id, element, ranges = match.groups()
        fields += [""] * (4 - len(fields))
        state = _state(fields[1], fields[2], fields[3])
        array = arrays.setdefault(array_id, _Array())
        if ranges is not None:
            array.ranges.append((_indices(ranges), state))
        elif element is not None:
            array.elements[int(element)] = state
        else:
            array.whole = state
    return arrays


def scheduler_states(jobs: Iterable[str]) -> dict[str, SchedulerState]:
    """The state of each job (``"12_3"`` or ``"12"``): one squeue call, and at
    most one sacct call for the jobs the controller has forgotten.

    The controller (squeue) knows the jobs in the queue and those that ended
    a few minutes ago (``MinJobAge``); accounting (sacct) knows the older
    ones, but lags a few seconds behind. A job that neither knows is reported
    failed: SLURM has no record of it.

    :raises ExmanError: squeue or sacct cannot be run, or fails.
    """
    wanted = {job: split_job(job) for job in jobs}
    if not wanted:
        return {}
    ids = sorted({array for array, _ in wanted.values()}, key=int)
    live = parse_lines(_lines(["squeue", "-h", "-t", "all", "-o", "%i|%T||%r"], ids))
    out = _resolve(wanted, live)
    unsure = sorted({wanted[job][0] for job in wanted if job not in out}, key=int)
    if unsure:
        fields = "JobID,State,ExitCode,Reason"
        known = parse_lines(_lines(["sacct", "-n", "-P", "-X", "-o", fields], unsure))
        out.update(_resolve({j: wanted[j] for j in wanted if j not in out}, known))
        known.update(live)
    else:
        known = live
    for job, (array_id, _) in wanted.items():
        if job in out:
            continue
        if array_id in known:
            # SLURM knows the array but not this element: it left the array
            # while pending
            out[job] = SchedulerState("failed", "CANCELLED", _NOT_STARTED)
        else:
            out[job] = SchedulerState(
                "failed", "UNKNOWN", f"SLURM has no record of job {job}"
            )
    return out


def _resolve(
    wanted: dict[str, tuple[str, int | None]], arrays: dict[str, _Array]
) -> dict[str, SchedulerState]:
    out = {}
    for job, (array_id, index) in wanted.items():
        array = arrays.get(array_id)
        state = array.get(index) if array is not None else None
        if state is not None:
            out[job] = state
    return out


def _lines(argv: Sequence[str], ids: Sequence[str]) -> list[str]:
    """The output of ``argv -j ids``; none when SLURM knows none of the ids."""
    try:
        return run_command([*argv, "-j", ",".join(ids)])
    except ExmanError as e:
        if "Invalid job id" in str(e):
            return []
        raise


# -- the task's record and SLURM's word ------------------------------------------------
def task_record(job: str, log: pathlib.Path) -> dict[str, Any] | None:
    """The task's record, if it is this job's."""
    marker = read_marker(log)
    return marker if marker is not None and marker.get("job") == job else None


def settled(marker: dict[str, Any] | None) -> bool:
    """The task ended on its own: its record says all, SLURM need not be asked."""
    return (
        marker is not None
        and marker.get("status") in ("completed", "failed")
        and not marker.get("signal")
    )


def combine(
    job: str, marker: dict[str, Any] | None, said: SchedulerState | None
) -> JobState:
    """A task's state from its record and what SLURM says of its job."""
    if marker is not None and settled(marker):
        return JobState(
            marker["status"],
            marker.get("reason"),
            marker.get("exit_code"),
            bool(marker.get("timed_out")),
        )
    if said is None:
        return JobState("running" if marker is not None else "queued")
    if said.state in ("queued", "running"):
        return JobState(said.state, said.reason)
    if marker is None:  # the task never started
        if said.state == "completed":
            return JobState(
                "failed",
                f"SLURM job {job} ended without running the task: see its "
                "output in the sweep's slurm/ folder",
                said.exit_code,
            )
        reason = said.reason or f"SLURM {said.slurm}"
        if "before it started" not in reason:
            reason += " (before the task started)"
        return JobState("failed", reason, said.exit_code)
    if said.state == "completed":  # stopped by a signal, the job ended normally
        return JobState(
            "failed",
            marker.get("reason") or f"SLURM job {job} ended while the task ran",
            marker.get("exit_code"),
            True,
        )
    return JobState("failed", said.reason, marker.get("exit_code"), True)


# -- SLURM's commands ------------------------------------------------------------------
def run_command(argv: Sequence[str]) -> list[str]:
    """The lines a SLURM command prints.

    :raises ExmanError: it cannot be run, or fails (with its message).
    """
    try:
        done = subprocess.run(
            argv, capture_output=True, text=True, timeout=COMMAND_TIMEOUT, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as e:
        raise ExmanError(f"cannot ask SLURM ({argv[0]}): {e}") from None
    if done.returncode != 0:
        message = done.stderr.strip() or f"exit code {done.returncode}"
        raise ExmanError(f"{argv[0]} failed: {message}")
    return done.stdout.splitlines()


def cluster_limits() -> int:
    """The most tasks one array may hold on this cluster.

    ``MaxArraySize`` (``scontrol show config``; the indices are 0..N-1) and
    the user's ``MaxSubmitJobs`` (``sacctmgr``; every element counts), when
    they can be read; else SLURM's default, 1001.
    """
    size = DEFAULT_MAX_ARRAY_SIZE
    with contextlib.suppress(ExmanError):
        for line in run_command(["scontrol", "show", "config"]):
            key, _, value = line.partition("=")
            if key.strip() == "MaxArraySize" and value.strip().isdigit():
                size = int(value.strip())
    with contextlib.suppress(ExmanError, KeyError, OSError):
        user = getpass.getuser()
        argv = ["sacctmgr", "-n", "-P", "show", "assoc", f"user={user}"]
        for line in run_command([*argv, "format=MaxSubmit"]):
            if line.strip().isdigit():
                size = min(size, int(line.strip()))
    return max(1, size)
