"""The Ray launcher: each task a Ray task on a cluster, with its own resources.

``exman sweep SPEC --backend ray`` connects to a Ray cluster (``--address``,
or ``address:`` in the spec's ``ray:`` section; ``auto`` finds the cluster of
this machine; without one, ``RAY_ADDRESS``, else a new local Ray instance)
and runs each task as a Ray task asking for the spec's ``cpus``, ``gpus``,
``memory`` and custom ``resources``. The task runs its command on whichever
node Ray picks (see :mod:`.ray_task`), so the root, the spec's folder and the
command must be the same on every node, as with SLURM.

At most ``jobs`` tasks are in flight: by default as many as the cluster's
nodes have room for. Ctrl-C or SIGTERM cancels the running tasks: each gets
SIGINT, then SIGKILL after ``grace`` seconds; a task whose worker does not
answer in time has it killed by Ray, and the task's watchdog kills the
command. A task whose worker or node dies is failed, with Ray's reason.
With ``resume: true`` in the spec, a task the timeout stopped starts again
on its node as the next attempt of the same run, as on the local launcher.

ray is an optional dependency (``pip install 'exman[ray]'``), imported only
when this launcher is built.
"""

from __future__ import annotations

import contextlib
import itertools
import signal
import threading
import time
from collections.abc import Generator, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from ...record.files import open_append
from ...record.store import ExmanError
from .base import Finished, Launcher, LaunchEvent, LaunchTask, Started
from .ray_cluster import Connection
from .ray_options import check_options
from .ray_task import Outcome, run_task

__all__ = ["RayLauncher"]

INSTALL = "pip install 'exman[ray]'"
#: how long the driver waits on Ray at a time: the delay before it sees a signal
WAIT_INTERVAL = 0.2
#: seconds a cancelled task gets beyond ``grace`` to report before Ray kills it
CANCEL_MARGIN = 5.0
#: seconds to wait for the tasks Ray was told to kill
KILL_WAIT = 10.0


# -- the launcher --------------------------------------------------------------------
@dataclass
class _Flight:
    task: LaunchTask
    start: float


class RayLauncher(Launcher):
    """Runs each task as a Ray task.

    :param address: the cluster: ``auto`` (this machine's), ``host:port``,
        ``ray://…`` or ``local`` (a new instance, for this sweep only);
        None: ``RAY_ADDRESS``, else ``local``.
    :param cpus: CPUs each task holds (fractions below 1 allowed).
    :param gpus: GPUs each task holds; Ray sets ``CUDA_VISIBLE_DEVICES``.
    :param memory: bytes of memory each task reserves (None: none).
    :param resources: custom resources each task holds (``{"special": 1}``).
    :param max_retries: times Ray runs a task again when its worker dies.
    :param grace: seconds a stopped task (timeout, Ctrl-C) gets before
        SIGKILL.
    :param resume: start a task stopped by the timeout again on its node,
        continuing its run.
    :param max_attempts: with ``resume``, the attempts at a task in all.
    :raises ExmanError: ray is not installed, or an option is wrong.
    """

    name: ClassVar[str] = "ray"

    def __init__(
        self,
        *,
        address: str | None = None,
        cpus: float = 1,
        gpus: float = 0,
        memory: int | str | None = None,
        resources: Mapping[str, float] | None = None,
        max_retries: int = 0,
        grace: float = 5.0,
        resume: bool = False,
        max_attempts: int = 3,
    ) -> None:
        super().__init__()
        self.ray = _import_ray()
        if grace < 0:
            raise ExmanError(f"grace must be >= 0 seconds, not {grace!r}")
        if isinstance(max_attempts, bool) or not isinstance(max_attempts, int):
            raise ExmanError(
                f"max_attempts must be a whole number, not {max_attempts!r}"
            )
        if max_attempts < 1:
            raise ExmanError(f"max_attempts must be >= 1, not {max_attempts}")
        #: the attempts at a task, the first included
        self.attempts = max_attempts if resume else 1
        given = {
            "address": address,
            "cpus": cpus,
            "gpus": gpus,
            "memory": memory,
            "resources": resources,
            "max_retries": max_retries,
        }
        checked = check_options(
            given, lambda key, problem: ExmanError(f"launcher 'ray': {key}: {problem}")
        )
        self.cluster = Connection(self.ray, checked.get("address"))
        self.cpus: float = checked["cpus"]
        self.gpus: float = checked["gpus"]
        self.memory: int | None = checked.get("memory")
        self.resources: dict[str, float] = checked.get("resources", {})
        self.max_retries: int = checked["max_retries"]
        self.grace = grace
        self._signals: list[int] = []

    # -- the cluster ---------------------------------------------------------------
    def needs(self) -> dict[str, float]:
        """What one task holds, in Ray's resource names (amounts > 0)."""
        need: dict[str, float] = {"CPU": self.cpus, "GPU": self.gpus}
        if self.memory is not None:
            need["memory"] = self.memory
        need.update(self.resources)
        return {k: v for k, v in need.items() if v > 0}

    def default_jobs(self) -> int:
        """As many tasks as the cluster's live nodes have room for at once.

        :raises ExmanError: the cluster cannot be reached, or no node can run
            a task.
        """
        self.cluster.open()
        try:
            return self.cluster.room(self.needs())
        except ExmanError:
            self.cluster.close()
            raise

    def _task_options(self) -> dict[str, Any]:
        options: dict[str, Any] = {
            "num_cpus": self.cpus,
            "num_gpus": self.gpus,
            "max_retries": self.max_retries,
            "retry_exceptions": False,
        }
        if self.memory is not None:
            options["memory"] = self.memory
        if self.resources:
            options["resources"] = dict(self.resources)
        return options

    # -- running -------------------------------------------------------------------
    def launch(
        self,
        tasks: Iterable[LaunchTask],
        *,
        jobs: int = 1,
        timeout: float | None = None,
        gpus: Sequence[str] | None = None,
        per_gpu: int = 1,
    ) -> Generator[LaunchEvent, None, None]:
        """Run ``tasks`` on the cluster, ``jobs`` at most in flight.

        :raises ExmanError: ``jobs`` or ``per_gpu`` below 1, a timeout <= 0,
            GPU ids (Ray assigns GPUs: ask with ``gpus:`` in ``ray:``), or
            the cluster cannot be reached.
        """
        if jobs < 1:
            raise ExmanError(f"jobs must be >= 1, not {jobs}")
        if per_gpu < 1:
            raise ExmanError(f"per_gpu must be >= 1, not {per_gpu}")
        if timeout is not None and timeout <= 0:
            raise ExmanError(f"timeout must be > 0 seconds, not {timeout}")
        if gpus:
            raise ExmanError(
                "the ray launcher takes no GPU ids (--gpus): Ray gives each task "
                "its GPUs; ask for them with gpus: N in the spec's ray: section"
            )
        self.stopping = False
        self.interrupted = None
        self._signals = []
        ray = self.ray
        source = iter(tasks)
        flying: dict[Any, _Flight] = {}
        exhausted = False
        try:
            first = next(source, None)
            if first is None:
                return  # nothing to run: no cluster to reach
            source = itertools.chain([first], source)
            self.cluster.open(cpus=jobs * self.cpus)
            remote = ray.remote(**self._task_options())(run_task)
            with _catch_signals(self._on_signal):
                while True:
                    if self._signals:
                        yield from self._interrupt(flying)
                        flying.clear()
                        return
                    while not (exhausted or self.stopping or self._signals) and (
                        len(flying) < jobs
                    ):
                        task = next(source, None)
                        if task is None:
                            exhausted = True
                            break
                        ref = remote.options(name=f"exman task {task.index}").remote(
                            task, timeout, self.grace, self.attempts
                        )
                        flying[ref] = _Flight(task, time.monotonic())
                        yield Started(task)
                    if not flying:
                        if self._signals:
                            continue
                        return
                    ready, _ = ray.wait(
                        list(flying), num_returns=1, timeout=WAIT_INTERVAL
                    )
                    for ref in ready:
                        yield self._finished(flying.pop(ref), ref, timeout)
        finally:
            try:
                if flying:  # closed early, or an error: leave nothing behind
                    self._stop_all(flying)
            finally:
                self.cluster.close()

    def _finished(self, flight: _Flight, ref: Any, timeout: float | None) -> Finished:
        task = flight.task
        try:
            outcome: Outcome = self.ray.get(ref)
        except self.ray.exceptions.RayError as e:
            reason = f"ray: {_failure(self.ray, e)}"
            _note(task, reason)
            duration = round(time.monotonic() - flight.start, 3)
            return Finished(task, "failed", None, duration, reason=reason)
        code = outcome.exit_code
        if outcome.error is not None or code is None:
            return Finished(task, "failed", None, 0.0, reason=outcome.error)
        if outcome.timed_out:
            return Finished(
                task,
                "failed",
                code,
                outcome.duration,
                reason=f"timeout: stopped after {timeout:g} s",
                timed_out=True,
            )
        if code == 0:
            return Finished(task, "completed", 0, outcome.duration)
        killed = f"killed by {_signame(-code)}" if code < 0 else None
        return Finished(task, "failed", code, outcome.duration, reason=killed)

    # -- stopping ------------------------------------------------------------------
    def _on_signal(self, signum: int, frame: object) -> None:
        self._signals.append(signum)

    def _interrupt(self, flying: dict[Any, _Flight]) -> Iterator[Finished]:
        self.interrupted = self._signals[0]
        name = _signame(self.interrupted)
        ends = self._stop_all(flying)
        for ref, flight in flying.items():
            outcome, forced = ends[ref]
            duration = round(time.monotonic() - flight.start, 3)
            code = outcome.exit_code if outcome is not None else None
            if outcome is not None and code == 0 and not outcome.interrupted:
                yield Finished(flight.task, "completed", 0, outcome.duration)
                continue
            reason = f"interrupted ({name} to the sweep)"
            if forced or (outcome is not None and outcome.killed):
                reason += f", killed after {self.grace:g} s"
            yield Finished(flight.task, "interrupted", code, duration, reason=reason)

    def _stop_all(
        self, flying: dict[Any, _Flight]
    ) -> dict[Any, tuple[Outcome | None, bool]]:
        """Cancel every task; Ray kills those still there after ``grace``.

        :returns: ``ref -> (outcome, killed by Ray)``; the outcome is None
            when the task reported none (it had not started, or was killed).
        """
        ray = self.ray
        for ref in flying:
            with contextlib.suppress(Exception):  # finished meanwhile
                ray.cancel(ref)
        seen = len(self._signals)
        deadline = time.monotonic() + self.grace + CANCEL_MARGIN
        ends: dict[Any, tuple[Outcome | None, bool]] = {}
        pending = list(flying)
        while pending:
            left = deadline - time.monotonic()
            if left <= 0 or len(self._signals) > seen:  # a second Ctrl-C: now
                break
            ready, pending = ray.wait(
                pending, num_returns=len(pending), timeout=min(WAIT_INTERVAL, left)
            )
            for ref in ready:
                ends[ref] = (self._outcome(ref), False)
        for ref in pending:
            with contextlib.suppress(Exception):
                ray.cancel(ref, force=True)
        if pending:
            with contextlib.suppress(Exception):
                ray.wait(pending, num_returns=len(pending), timeout=KILL_WAIT)
        for ref in pending:
            ends[ref] = (None, True)
        return ends

    def _outcome(self, ref: Any) -> Outcome | None:
        try:
            outcome: Outcome = self.ray.get(ref, timeout=0)
        except Exception:  # cancelled before it started, or its worker died
            return None
        return outcome


def _import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise ExmanError(f"ray is not installed: {INSTALL}") from None
    return ray


def _failure(ray: Any, error: BaseException) -> str:
    ex = ray.exceptions
    if isinstance(error, ex.TaskCancelledError):
        what = "task cancelled"
    elif isinstance(error, ex.OutOfMemoryError):
        what = "worker killed by Ray's memory monitor (out of memory)"
    elif isinstance(error, (ex.NodeDiedError, ex.LocalRayletDiedError)):
        what = "node died"
    elif isinstance(error, ex.WorkerCrashedError):
        what = "worker died"
    else:
        what = type(error).__name__
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    detail = lines[0] if lines else ""
    if len(detail) > 200:
        detail = detail[:199] + "…"
    return f"{what} ({detail})" if detail else what


def _note(task: LaunchTask, text: str) -> None:
    try:
        with open_append(task.log) as log:
            log.write(f"exman sweep: {text}\n".encode("utf-8", "replace"))
    except OSError:
        pass  # the reason is in the summary anyway


def _signame(signum: int) -> str:
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"


@contextlib.contextmanager
def _catch_signals(handler: Any) -> Iterator[None]:
    """Route SIGINT and SIGTERM to ``handler`` (main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    old = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)
