"""Handing a sweep's tasks to a scheduler and returning at once.

A launcher that detaches (``slurm``) takes the planned tasks in one go: each
is claimed, submitted, and its claim and job record name the job, so that no
other sweep starts it meanwhile and a later ``exman sweep`` learns how it
ended (:mod:`.jobs`).
"""

from __future__ import annotations

from ..record.files import make_dir
from ..record.store import ExmanError, Root
from .claims import Claims
from .jobs import JobBook, new_record
from .launchers.base import Launcher, LaunchTask, Queued
from .options import Options, sweep_dir
from .plan import TaskState
from .source import launch_task
from .spec import Spec
from .summary import SweepSummary

__all__ = ["submit"]


def submit(
    spec: Spec,
    root: Root,
    options: Options,
    launcher: Launcher,
    summary: SweepSummary,
    planned_at: float,
) -> SweepSummary:
    """Hand the planned tasks to ``launcher``'s scheduler, record the jobs, return.

    :raises ExmanError: GPU slots are asked for (the scheduler hands out
        GPUs), or nothing could be submitted.
    """
    if options.gpus:
        raise ExmanError(
            f"{launcher.name} assigns the GPUs itself: ask for them in the spec's "
            f"{launcher.name}: section, not with --gpus"
        )
    root.ensure()
    claims = Claims(root)
    book = JobBook(root, spec.name)
    logs = sweep_dir(root, spec.name) / "logs"
    make_dir(logs, exist_ok=True)
    after = root.last_id()
    chosen: dict[str, tuple[TaskState, LaunchTask]] = {}
    for state in summary.planned:
        task = state.task
        refused = claims.acquire(
            task.key, since=planned_at, sweep=spec.name, task=task.index
        )
        if refused is not None:  # another launcher took it since the plan
            summary.skipped[refused] = summary.skipped.get(refused, 0) + 1
            continue
        chosen[task.key] = (state, launch_task(spec, task, logs))
    queued: list[Queued] = []
    try:
        if chosen:
            queued = launcher.submit(
                [t for _, t in chosen.values()],
                jobs=options.jobs,
                timeout=options.timeout,
            )
    finally:
        taken = {q.task.key for q in queued if q.job is not None}
        for key in chosen:
            if key not in taken:
                claims.release(key, "not submitted")
    unsent = [q for q in queued if q.job is None]
    for q in queued:
        if q.job is None:
            continue
        state = chosen[q.task.key][0]
        claims.assign(q.task.key, job=q.job, backend=launcher.name)
        book.write(q.task.key, new_record(q, launcher.name, after))
        state.state, state.job = "queued", q.job
        summary.submitted[state.task.index] = q.job
    if unsent:
        summary.not_started = len(unsent)
        summary.notes.append(
            f"{len(unsent)} tasks were not submitted ({unsent[0].reason}): "
            "run the same command again when the queue has room"
        )
    return summary
