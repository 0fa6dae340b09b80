"""The interface every launcher implements, and the registry of launchers.

A launcher runs commands somewhere (processes on this machine, a SLURM job
array, a Ray cluster) and reports what happens to them as events. It knows
nothing of specs, roots or claims: the sweep hands it ready-made
:class:`LaunchTask` objects, lazily, and records the outcome.
"""

from __future__ import annotations

import abc
import importlib
import pathlib
from collections.abc import Generator, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Union

from ...record.store import ExmanError

__all__ = [
    "LAUNCHERS",
    "Finished",
    "JobState",
    "LaunchEvent",
    "LaunchTask",
    "Launcher",
    "Queued",
    "Started",
    "get_launcher",
]


@dataclass(frozen=True)
class LaunchTask:
    """One command to run.

    :param index: the task number in its sweep.
    :param key: the task key (for messages and logs).
    :param argv: the command, split into words.
    :param cwd: the folder it runs in.
    :param env: variables added to the launcher's environment.
    :param log: the file that receives the command's stdout and stderr.
    :param params: the task's values (for messages).
    :param claim_fd: an open file of this process that holds the task's
        claim; a launcher that starts the command on this host lets it
        inherit the file, so that the claim holds while the command lives.
    :param stop_file: when this file appears, the command is asked to stop
        (it may look at the file itself); ``stop_grace`` seconds later its
        process group gets SIGTERM, and SIGKILL after as long again.
    """

    index: int
    key: str
    argv: list[str]
    cwd: pathlib.Path
    env: dict[str, str]
    log: pathlib.Path
    params: dict[str, Any] = field(default_factory=dict)
    claim_fd: int | None = None
    stop_file: str | None = None
    stop_grace: float = 5.0


@dataclass(frozen=True)
class Started:
    """A task began: ``pid`` is its process (None where there is none here)."""

    task: LaunchTask
    pid: int | None = None
    gpu: str | None = None


@dataclass(frozen=True)
class Finished:
    """A task ended.

    :param status: ``completed`` (exit code 0), ``failed`` (non-zero, or the
        timeout) or ``interrupted`` (stopped by a signal to the launcher).
    :param reason: the launcher's own reason (``"timeout after 2 s"``,
        ``"cannot start: …"``), None when the command ran its course.
    """

    task: LaunchTask
    status: str
    exit_code: int | None
    duration: float
    reason: str | None = None
    timed_out: bool = False


@dataclass(frozen=True)
class Queued:
    """A scheduler took a task: ``job`` is its id there (``"1234_5"``).

    From :meth:`Launcher.submit`, ``job`` is None for a task that could
    not be submitted, and ``reason`` says why.
    """

    task: LaunchTask
    job: str | None
    reason: str | None = None


@dataclass(frozen=True)
class JobState:
    """What became of a task submitted earlier (see :meth:`Launcher.query`).

    :param state: ``queued``, ``running``, ``completed`` or ``failed``.
    :param reason: why it waits, or why it failed (``"SLURM TIMEOUT: …"``).
    :param timed_out: stopped from outside — the timeout, the scheduler's
        time limit, memory limit or cancellation — while it ran.
    """

    state: str
    reason: str | None = None
    exit_code: int | None = None
    timed_out: bool = False


LaunchEvent = Union[Started, Finished, Queued]


class Launcher(abc.ABC):
    """Runs tasks and yields :class:`Started` and :class:`Finished` events.

    Subclasses implement :meth:`launch`; they may accept only some of its
    options and must refuse the others with :class:`ExmanError`.
    """

    #: the name in :data:`LAUNCHERS`
    name: ClassVar[str]
    #: :meth:`launch` takes a task only when there is room for it; else it
    #: takes them all at once and hands them to a scheduler (``Queued``)
    lazy: ClassVar[bool] = True
    #: :meth:`submit` can hand tasks to a scheduler and return at once
    detaches: ClassVar[bool] = False

    def __init__(self) -> None:
        self.stopping = False
        #: the signal that interrupted the last launch, if any
        self.interrupted: int | None = None

    @abc.abstractmethod
    def launch(
        self,
        tasks: Iterable[LaunchTask],
        *,
        jobs: int = 1,
        timeout: float | None = None,
        gpus: Sequence[str] | None = None,
        per_gpu: int = 1,
    ) -> Generator[LaunchEvent, None, None]:
        """Run ``tasks``, at most ``jobs`` at once, and report on them.

        ``tasks`` is read lazily, one task when there is room for it, so
        the caller can decide at the last moment whether a task still runs.
        Every task taken from it gets one :class:`Finished` event. Closing
        the iterator early stops every task it started.

        :param timeout: seconds a task may run before it is stopped and
            recorded as failed.
        :param gpus: GPU ids; each task gets one in ``CUDA_VISIBLE_DEVICES``.
        :param per_gpu: how many tasks share one GPU.
        """

    def stop(self) -> None:
        """Start no new task; the ones running finish normally."""
        self.stopping = True

    def submit(
        self,
        tasks: Sequence[LaunchTask],
        *,
        jobs: int | None = None,
        timeout: float | None = None,
    ) -> list[Queued]:
        """Hand ``tasks`` to a scheduler and return: one :class:`Queued` each.

        The tasks run after this process has gone; :meth:`query` (from any
        process) tells what became of them.

        :param jobs: at most this many at once (None: as the scheduler sees fit).
        :raises ExmanError: this launcher cannot detach, or nothing could be
            submitted.
        """
        raise ExmanError(
            f"the {self.name} launcher runs tasks only while it waits for them"
        )

    def query(self, jobs: Mapping[str, pathlib.Path]) -> dict[str, JobState]:
        """The state of submitted tasks: job id -> the task's log. One batched
        question to the scheduler, never one per task.

        :raises ExmanError: this launcher cannot detach, or the scheduler
            cannot be asked.
        """
        raise ExmanError(f"the {self.name} launcher submits no jobs to ask about")

    def default_jobs(self) -> int | None:
        """Tasks at once when the caller gives no ``jobs``; None: one (or
        one per GPU slot). A cluster launcher asks its cluster.

        :raises ExmanError: the backend cannot be reached.
        """
        return None


#: name -> "module:class", imported only when used (heavy backends stay unloaded)
LAUNCHERS: dict[str, str] = {
    "local": "exman.sweep.launchers.local:LocalLauncher",
    "ray": "exman.sweep.launchers.ray:RayLauncher",
    "slurm": "exman.sweep.launchers.slurm:SlurmLauncher",
}


def get_launcher(name: str, **options: Any) -> Launcher:
    """The launcher called ``name``, built with ``options``.

    :raises ExmanError: no launcher has this name, or it refuses an option.
    """
    try:
        target = LAUNCHERS[name]
    except KeyError:
        raise ExmanError(
            f"unknown launcher {name!r}; known: {', '.join(sorted(LAUNCHERS))}"
        ) from None
    module, cls_name = target.split(":")
    cls = getattr(importlib.import_module(module), cls_name)
    try:
        launcher: Launcher = cls(**options)
    except TypeError as e:
        raise ExmanError(f"launcher {name!r}: {e}") from None
    return launcher
