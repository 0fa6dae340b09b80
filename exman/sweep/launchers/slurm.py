"""The SLURM launcher: the tasks of a sweep as job arrays, through submitit.

:meth:`SlurmLauncher.submit` hands the tasks to SLURM as one job array (or
several, when there are more tasks than the cluster takes in one array:
``MaxArraySize`` from ``scontrol show config``, the user's ``MaxSubmitJobs``
from ``sacctmgr``) and returns the job ids. Each array element runs one
task's command on a node exactly as the local launcher would run it here
(see :mod:`.slurm_task`), so the root and the spec's folder must be on
storage that every node sees.

:meth:`SlurmLauncher.query` tells what became of submitted tasks, from the
records the elements keep next to the task logs plus one batched question to
SLURM (see :mod:`.slurm_state`). :meth:`SlurmLauncher.launch` submits, then
watches in the same way and reports events as the local launcher does. A
Ctrl-C (or SIGTERM) while it watches stops the watching only: the jobs go on.

submitit is an optional dependency (``pip install 'exman[slurm]'``), imported
only when tasks are submitted.
"""

from __future__ import annotations

import contextlib
import os
import pathlib
import signal
import subprocess
import threading
import time
from collections.abc import Generator, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from ...record.store import ExmanError
from .base import Finished, JobState, Launcher, LaunchEvent, LaunchTask, Queued, Started
from .slurm_options import SlurmOptions
from .slurm_state import (
    cluster_limits,
    combine,
    run_command,
    scheduler_states,
    settled,
    task_record,
)
from .slurm_task import RequeueableTaskCall, TaskCall, marker_path

__all__ = ["SlurmLauncher"]

INSTALL = "pip install 'exman[slurm]'"
#: how often :meth:`SlurmLauncher.launch` reads the task records
POLL_INTERVAL = 0.2
#: seconds between questions to SLURM while watching: from the first to the
#: last, doubling while nothing new happens
QUERY_FIRST, QUERY_LAST = 1.0, 30.0
#: seconds before the time limit at which SLURM warns a requeueable task
SIGNAL_DELAY = 90


def _error(key: str, problem: str) -> ExmanError:
    return ExmanError(f"{key}: {problem}")


@dataclass
class _Watch:
    """A submitted task, as :meth:`SlurmLauncher.launch` sees it."""

    task: LaunchTask
    job: str
    started: bool = False
    #: what the record's file looked like when it was last read
    seen: tuple[int, int, int] | None = None
    marker: dict[str, Any] | None = None


class SlurmLauncher(Launcher):
    """Runs tasks as the elements of SLURM job arrays.

    :param grace: seconds a stopped command (the timeout, SIGTERM from
        SLURM) gets before SIGKILL.
    :param folder: where submitit keeps its files (sbatch scripts, pickles,
        the elements' own output); default: ``slurm/`` beside the folder of
        the task logs.
    :param options: the spec's ``slurm:`` keys (see
        :data:`~.slurm_options.SLURM_KEYS`); an unknown one is an error that
        lists the valid ones.
    :raises ExmanError: an option is wrong.
    """

    name: ClassVar[str] = "slurm"
    lazy: ClassVar[bool] = False
    detaches: ClassVar[bool] = True

    def __init__(
        self,
        *,
        grace: float = 5.0,
        folder: str | os.PathLike[str] | None = None,
        **options: Any,
    ) -> None:
        super().__init__()
        if grace < 0:
            raise ExmanError(f"grace must be >= 0 seconds, not {grace!r}")
        self.grace = grace
        self.folder = pathlib.Path(folder) if folder is not None else None
        self.options = SlurmOptions.from_mapping(options, _error)
        if self.options.requeue and self.options.time is None:
            raise ExmanError(
                "slurm.requeue needs slurm.time: submitit requeues a task when "
                "SLURM warns that its time limit is near"
            )

    # -- limits ----------------------------------------------------------------------
    def max_array_size(self) -> int:
        """Tasks per array: the ``max_array_size`` option, else the cluster's."""
        if self.options.max_array_size is not None:
            return self.options.max_array_size
        return cluster_limits()

    def default_jobs(self) -> int:
        """``array_parallelism``, else as many tasks as the partition has CPUs for.

        :raises ExmanError: sinfo cannot be run.
        """
        if self.options.array_parallelism is not None:
            return self.options.array_parallelism
        argv = ["sinfo", "-h", "-o", "%C"]
        if self.options.partition is not None:
            argv += ["-p", self.options.partition]
        cpus = 0
        for line in run_command(argv):
            total = line.strip().split("/")[-1]  # allocated/idle/other/total
            cpus += int(total) if total.isdigit() else 0
        return max(1, cpus // (self.options.cpus or 1))

    # -- submitting ------------------------------------------------------------------
    def submit(
        self,
        tasks: Sequence[LaunchTask],
        *,
        jobs: int | None = None,
        timeout: float | None = None,
    ) -> list[Queued]:
        """Submit ``tasks`` as job arrays of at most :meth:`max_array_size` each.

        When SLURM refuses an array after others were taken (a submit limit),
        its tasks and the later ones come back with ``job=None``.

        :param jobs: at most this many tasks of each array run at once.
        :raises ExmanError: a wrong option, submitit missing, or SLURM refusing
            the first array (the message is sbatch's).
        """
        _check(jobs if jobs is not None else 1, timeout)
        if not tasks:
            return []
        submitit = _submitit()
        for task in tasks:  # the record of an earlier job must not speak for this one
            with contextlib.suppress(FileNotFoundError):
                marker_path(task.log).unlink()
        folder = self.folder or tasks[0].log.parent.parent / "slurm"
        try:
            executor = submitit.SlurmExecutor(
                folder=folder, max_num_timeout=self.options.max_requeue
            )
        except RuntimeError as e:  # no srun here
            raise ExmanError(f"cannot submit to SLURM: {e}") from None
        executor.update_parameters(**self._parameters(tasks[0]))
        size = self.max_array_size()
        throttle = [n for n in (jobs, self.options.array_parallelism) if n is not None]
        call = RequeueableTaskCall if self.options.requeue else TaskCall
        out: list[Queued] = []
        for start in range(0, len(tasks), size):
            chunk = tasks[start : start + size]
            executor.update_parameters(array_parallelism=min([len(chunk), *throttle]))
            calls = [call(task, timeout=timeout, grace=self.grace) for task in chunk]
            try:
                submitted = executor.submit_array(calls)
            except submitit.core.utils.FailedJobError as e:
                message = str(e).strip() or "sbatch failed"
                if not out:
                    raise ExmanError(
                        f"SLURM refused the job array: {message}"
                    ) from None
                reason = f"not submitted: {message}"
                out += [Queued(task, None, reason) for task in tasks[start:]]
                break
            out += [Queued(task, job.job_id) for task, job in zip(chunk, submitted)]
        return out

    def _parameters(self, first: LaunchTask) -> dict[str, Any]:
        opts = self.options
        sweep = first.env.get("EXMAN_SWEEP")
        params: dict[str, Any] = {
            "job_name": f"exman-{sweep}" if sweep else "exman",
            "time": opts.time,
        }
        if opts.time is not None:
            # SLURM warns up to a minute early: keep the warning inside the limit
            params["signal_delay_s"] = min(SIGNAL_DELAY, max(10, opts.time * 15))
        for key, name in (
            ("partition", "partition"),
            ("cpus", "cpus_per_task"),
            ("mem", "mem"),
            ("gpus_per_task", "gpus_per_node"),  # one task per job, one node
        ):
            value = getattr(opts, key)
            if value is not None:
                params[name] = value
        if opts.setup:
            params["setup"] = list(opts.setup)
        if opts.sbatch:
            params["additional_parameters"] = dict(opts.sbatch)
        return params

    # -- asking ----------------------------------------------------------------------
    def query(self, jobs: Mapping[str, pathlib.Path]) -> dict[str, JobState]:
        """What became of submitted tasks (job id -> the task's log).

        The records next to the logs answer for the tasks that ended on their
        own; one ``squeue`` (and at most one ``sacct``) for the others.

        :raises ExmanError: SLURM cannot be asked.
        """
        markers = {job: task_record(job, log) for job, log in jobs.items()}
        ask = [job for job, marker in markers.items() if not settled(marker)]
        said = scheduler_states(ask) if ask else {}
        return {job: combine(job, markers[job], said.get(job)) for job in jobs}

    # -- watching --------------------------------------------------------------------
    def launch(
        self,
        tasks: Iterable[LaunchTask],
        *,
        jobs: int = 1,
        timeout: float | None = None,
        gpus: Sequence[str] | None = None,
        per_gpu: int = 1,
    ) -> Generator[LaunchEvent, None, None]:
        """Submit every task at once, then report them (see :meth:`Launcher.launch`).

        ``jobs`` is the array's throttle (``%``). SLURM assigns GPUs itself
        (``gpus_per_task``): ``gpus`` is refused. Closing the iterator early
        cancels the jobs; :meth:`stop` cancels the ones not started.

        :raises ExmanError: a wrong option, or SLURM refusing the first array.
        """
        _check(jobs, timeout)
        if per_gpu < 1:
            raise ExmanError(f"per_gpu must be >= 1, not {per_gpu}")
        if gpus:
            raise ExmanError(
                "SLURM assigns the GPUs: ask for them with slurm.gpus_per_task "
                "(--gpus-per-task), not --gpus"
            )
        self.stopping = False
        self.interrupted = None
        taken = list(tasks)
        if not taken:
            return
        watch: dict[str, _Watch] = {}
        for queued in self.submit(taken, jobs=jobs, timeout=timeout):
            if queued.job is None:
                yield Finished(queued.task, "interrupted", None, 0.0, queued.reason)
                continue
            watch[queued.job] = _Watch(queued.task, queued.job)
            yield queued
        detached = False
        try:
            with _detach_on_signals() as signals:
                yield from self._watch(watch, signals)
                if signals:
                    self.interrupted = signals[0]
                    detached = True
        finally:
            if watch and not detached:  # closed early, or an error
                _scancel([w.job for w in watch.values()])

    def _watch(
        self, watch: dict[str, _Watch], signals: list[int]
    ) -> Iterator[LaunchEvent]:
        interval = QUERY_FIRST
        next_query = time.monotonic() + interval
        cancelled = False
        while watch and not signals:
            if self.stopping and not cancelled:
                cancelled = True
                _scancel([w.job for w in watch.values() if not w.started], pending=True)
                next_query = time.monotonic()
            # (when, job, event): each pass reports in the order things happened
            events: list[tuple[float, str, LaunchEvent]] = []
            ended: set[str] = set()
            for job, w in watch.items():
                self._read(w)
                if w.marker is not None and not w.started:
                    w.started = True
                    events.append(
                        (w.marker.get("started") or 0.0, job, Started(w.task))
                    )
                if settled(w.marker):
                    assert w.marker is not None
                    state = combine(job, w.marker, None)
                    events.append((w.marker.get("ended") or 0.0, job, _end(w, state)))
                    ended.add(job)
            if time.monotonic() >= next_query:
                open_jobs = [j for j in watch if j not in ended]
                try:
                    said = scheduler_states(open_jobs) if open_jobs else {}
                except ExmanError:
                    said = {}  # asked again later
                now = time.time()
                for job, answer in said.items():
                    w = watch[job]
                    self._read(w, again=True)
                    state = combine(job, w.marker, answer)
                    if state.state in ("completed", "failed"):
                        if cancelled and not w.started and w.marker is None:
                            state = JobState(
                                "interrupted", "not started: the sweep stopped"
                            )
                        events.append((now, job, _end(w, state)))
                interval = QUERY_FIRST if events else min(interval * 2, QUERY_LAST)
                next_query = time.monotonic() + interval
            events.sort(key=lambda item: item[0])
            for _, job, event in events:
                if isinstance(event, Finished):
                    del watch[job]
                yield event
            if watch and not signals:
                time.sleep(POLL_INTERVAL)

    def _read(self, w: _Watch, *, again: bool = False) -> None:
        """Read the task's record if it changed (or ``again``, in any case).

        File times are coarse: two writes in a row may leave the same time,
        so the scheduler's answer is always checked against a fresh read.
        """
        try:
            st = marker_path(w.task.log).stat()
        except OSError:
            return
        seen = (st.st_ino, st.st_mtime_ns, st.st_size)
        if again or seen != w.seen:
            w.seen = seen
            w.marker = task_record(w.job, w.task.log)


# -- helpers ---------------------------------------------------------------------------
def _check(jobs: int, timeout: float | None) -> None:
    if jobs < 1:
        raise ExmanError(f"jobs must be >= 1, not {jobs}")
    if timeout is not None and timeout <= 0:
        raise ExmanError(f"timeout must be > 0 seconds, not {timeout}")


def _submitit() -> Any:
    try:
        import submitit
        import submitit.core.utils
    except ImportError:
        raise ExmanError(
            f"the slurm backend needs submitit: {INSTALL} (or pip install submitit)"
        ) from None
    return submitit


def _end(w: _Watch, state: JobState) -> Finished:
    marker = w.marker or {}
    started, ended = marker.get("started"), marker.get("ended") or time.time()
    duration = round(ended - started, 3) if started else 0.0
    status = state.state if state.state != "queued" else "interrupted"
    return Finished(
        w.task, status, state.exit_code, duration, state.reason, state.timed_out
    )


def _scancel(jobs: Sequence[str], *, pending: bool = False) -> None:
    """Cancel ``jobs`` (only those still pending, with ``pending``)."""
    if not jobs:
        return
    argv = ["scancel", *(["--state=PENDING"] if pending else []), *jobs]
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        subprocess.run(argv, capture_output=True, timeout=60, check=False)


@contextlib.contextmanager
def _detach_on_signals() -> Iterator[list[int]]:
    """Note SIGINT and SIGTERM in the list instead of dying (main thread only)."""
    caught: list[int] = []
    if threading.current_thread() is not threading.main_thread():
        yield caught
        return

    def note(signum: int, frame: object) -> None:
        caught.append(signum)

    old = {s: signal.signal(s, note) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield caught
    finally:
        for s, h in old.items():
            if h is not None:
                signal.signal(s, h)
