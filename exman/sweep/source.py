"""Where a sweep's tasks come from, and how a task becomes a command.

A sweep asks its source for the next task whenever a launcher has room,
and tells it how each task ended. The static source hands out the tasks
that the plan selected from the spec's expansion (grid, configs, random
samples, repetitions), in order, and needs no outcome; a searcher that
proposes the next task from the outcomes so far (:mod:`.search`) fits the
same calls, and also hears when each task's process starts, so that it can
follow and stop it.
"""

from __future__ import annotations

import abc
import pathlib
from collections.abc import Iterator, Sequence

from .launchers.base import LaunchTask
from .plan import TaskState
from .spec import Spec, Task
from .summary import TaskResult

__all__ = ["StaticSource", "TaskSource", "launch_task"]


class TaskSource(abc.ABC):
    """The tasks of one run of a sweep, asked for one at a time."""

    @abc.abstractmethod
    def __iter__(self) -> Iterator[TaskState]:
        """The next task to run, asked for only when a launcher has room."""

    def tell(self, result: TaskResult) -> None:  # noqa: B027 - optional hook
        """Learn how a task ended (a static source has no use for it)."""

    def started(self, task: LaunchTask, pid: int | None) -> None:  # noqa: B027
        """A task's process started (``pid`` leads its process group)."""

    def stopped(self, task: LaunchTask) -> bool:
        """Whether the source asked ``task`` to stop early (a pruner did)."""
        return False

    def close(self) -> None:  # noqa: B027 - optional hook
        """The sweep ends: stop following its tasks, complete the summary."""


class StaticSource(TaskSource):
    """The planned tasks of a spec's expansion, in their order.

    :param planned: the tasks the plan selected to run.
    """

    def __init__(self, planned: Sequence[TaskState]) -> None:
        self.planned = planned

    def __iter__(self) -> Iterator[TaskState]:
        return iter(self.planned)


def launch_task(
    spec: Spec, task: Task, logs: pathlib.Path, claim_fd: int | None = None
) -> LaunchTask:
    """What a launcher needs to run ``task``; its output goes to a log in ``logs``.

    :param claim_fd: the open lock file of the task's claim, for the command
        to inherit.
    """
    search = spec.search
    return LaunchTask(
        index=task.index,
        key=task.key,
        argv=list(spec.argv),
        cwd=spec.cwd,
        env=spec.task_env(task),
        log=logs / f"{task.index:05d}-{task.key}.log",
        params=task.params,
        claim_fd=claim_fd,
        stop_file=None if search is None else str(spec.stop_file(task.key)),
        stop_grace=5.0 if search is None else search.grace,
    )
