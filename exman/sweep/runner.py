"""Running a sweep: plan it, then show it, submit it, or run it.

A sweep has three parts. The **source** of tasks (:mod:`.source`: the
spec's expansion, selected by the plan) says what to run next; a
**launcher** (:mod:`.launchers`) runs commands and reports events; the
**book** of outcomes (:mod:`.claims`, :mod:`.jobs`, :mod:`.outcome`) keeps
a task from running twice and decides how each ended. :func:`execute`
plans and hands over to :class:`.loop.SweepLoop`, or to :func:`.submit.submit`
for a launcher that detaches.
"""

from __future__ import annotations

import json
import shlex
import time
from collections.abc import Iterator, Sequence
from typing import overload

from ..record.store import ExmanError, Root
from .expand import command_changes
from .loop import SweepLoop
from .options import Options, make_launcher, sweep_dir
from .plan import TaskState, plan, select
from .progress import Progress
from .source import StaticSource, launch_task
from .spec import Spec
from .summary import SweepSummary

__all__ = [
    "Options",
    "execute",
    "launch_task",
    "make_launcher",
    "sweep_dir",
]


def execute(spec: Spec, options: Options, progress: Progress) -> SweepSummary:
    """Plan the sweep, then show it (status, dry run) or run it."""
    root = Root(spec.root).check_layout()  # planning reads it too
    if spec.search is not None:
        from .search import execute_search

        return execute_search(spec, root, options, progress)
    if options.worker is not None:
        raise ExmanError(
            f"--worker runs the trials of a search: {spec.path or 'the spec'} "
            "has no search: section"
        )
    aliases = _learn(spec, root)
    tasks = spec.tasks()
    refreshed = None
    if (sweep_dir(root, spec.name) / "jobs").is_dir():
        from .jobs import refresh

        # what became of the tasks handed to a scheduler, before planning
        refreshed = refresh(root, spec.name, tasks)
    planned_at = time.time()
    states = plan(root, tasks, spec.name, aliases)
    if refreshed is not None:
        from .jobs import overlay

        overlay(states, refreshed)
    selection = select(
        states,
        index=options.index,
        shard=options.shard,
        force=options.force,
        retry_failed=options.retry_failed,
        rerun_stale=options.rerun_stale,
    )
    summary = SweepSummary(
        name=spec.name,
        root=root.path,
        spec=spec.path,
        mode="status" if options.status else "dry-run" if options.dry_run else "run",
        states=states,
        selected=selection.chosen,
        planned=selection.run,
        skipped={why: len(s) for why, s in selection.skipped.items()},
        notes=list(spec.notes) + (refreshed.notes if refreshed is not None else []),
    )
    why = _rekeyed(spec, root, len(states.rekeyed)) if states.rekeyed else None
    if why is not None:
        summary.notes.append(why)
    if options.status:
        return summary
    if options.dry_run:
        summary.commands = _Lines(spec, selection.run)
        return summary
    launcher = make_launcher(spec, options)
    if launcher.detaches and not options.wait:
        from .submit import submit

        summary.mode = "submit"
        submit(spec, root, options, launcher, summary, planned_at)
        progress.end(summary)
        return summary
    loop = SweepLoop(
        spec, root, options, progress, summary, planned_at, StaticSource(selection.run)
    )
    return loop.run(launcher)


def _learn(spec: Spec, root: Root) -> list[list[str]]:
    """What the sweep's earlier runs taught: the script's volatile arguments
    (into ``spec``), and the earlier forms of the command that differ from
    today's only in flags that do not count (returned)."""
    try:
        record = json.loads((sweep_dir(root, spec.name) / "sweep.json").read_text())
        spec.volatile = [v for v in record.get("volatile", []) if isinstance(v, str)]
        earlier = [shlex.split(c) for c in record.get("key_commands", [])]
    except (OSError, ValueError, TypeError, AttributeError):
        return []
    now = spec.key_argv()
    return [argv for argv in earlier if argv != now and spec.strip(argv) == now]


def _rekeyed(spec: Spec, root: Root, count: int) -> str | None:
    """Why ``count`` tasks that this sweep completed will run again, when its
    command changed since it last ran (None when it did not)."""
    try:
        record = json.loads((sweep_dir(root, spec.name) / "sweep.json").read_text())
        before = record.get("key_command") or record.get("command")
        changes = command_changes(shlex.split(before), spec.key_argv())
    except (OSError, ValueError, TypeError, AttributeError):
        return None
    if not changes:
        return None
    return (
        f"{count} task{'s' if count != 1 else ''} completed before will run again "
        f"because {', '.join(changes)} in command (list harmless flags under "
        "ignore: to keep them out of the task keys)"
    )


class _Lines(Sequence[str]):
    """The shell line of each planned task, made when it is read."""

    def __init__(self, spec: Spec, planned: Sequence[TaskState]) -> None:
        self.spec, self.planned = spec, planned

    def __len__(self) -> int:
        return len(self.planned)

    def __iter__(self) -> Iterator[str]:
        for state in self.planned:
            yield self.spec.shell_line(state.task)

    @overload
    def __getitem__(self, index: int) -> str: ...

    @overload
    def __getitem__(self, index: slice) -> list[str]: ...

    def __getitem__(self, index: int | slice) -> str | list[str]:
        if isinstance(index, slice):
            return [self.spec.shell_line(s.task) for s in self.planned[index]]
        return self.spec.shell_line(self.planned[index].task)
