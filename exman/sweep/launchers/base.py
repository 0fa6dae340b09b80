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
from collections.abc import Generator, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Union

from ...store import ExmanError

__all__ = [
    "LAUNCHERS",
    "Finished",
    "LaunchEvent",
    "LaunchTask",
    "Launcher",
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
    """

    index: int
    key: str
    argv: list[str]
    cwd: pathlib.Path
    env: dict[str, str]
    log: pathlib.Path
    params: dict[str, Any] = field(default_factory=dict)


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


LaunchEvent = Union[Started, Finished]


class Launcher(abc.ABC):
    """Runs tasks and yields :class:`Started` and :class:`Finished` events.

    Subclasses implement :meth:`launch`; they may accept only some of its
    options and must refuse the others with :class:`ExmanError`.
    """

    #: the name in :data:`LAUNCHERS`
    name: ClassVar[str]

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
