"""The ``exman sweep`` subcommand: options, and printing what :func:`sweep` returns.

``add_parser(subparsers)`` adds it to the ``exman`` command; ``run(args)``
executes it. ``python -m exman.sweep SPEC ...`` runs it alone.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from operator import itemgetter
from typing import IO, Any

from ..look.cache import no_gc
from ..record.store import ExmanError
from .launchers.base import LAUNCHERS
from .plan import Plan, TaskState
from .spec import Task
from .summary import SweepSummary

__all__ = ["add_parser", "main", "print_dry_run", "print_status", "run"]

#: the options of ``--backend slurm``, named as in the spec's ``slurm:``
SLURM_FLAGS = (
    "partition",
    "time",
    "cpus",
    "mem",
    "gpus_per_task",
    "array_parallelism",
    "max_array_size",
    "requeue",
)

DESCRIPTION = """\
Run the tasks of a sweep spec (a YAML or JSON file: command, grid, configs,
random, repeat, or a search) that the root does not hold a completed run of
yet; a search asks its study for trials until its budget is spent. Failed
tasks run again only with --retry-failed; interrupted and crashed ones run
again by default. Exit code: 0 when no task of the selection is failed,
1 otherwise, 2 for a wrong spec or option, 128+N when stopped by signal N.
"""


def configure(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add the options of ``exman sweep`` to ``parser``."""
    parser.add_argument("spec", help="the sweep spec file (YAML or JSON)")
    parser.add_argument(
        "-j",
        "--jobs",
        type=int,
        metavar="N",
        help="tasks run at once (default: 1, or one per GPU slot)",
    )
    show = parser.add_mutually_exclusive_group()
    show.add_argument(
        "--dry-run",
        action="store_true",
        help="print the command line of each task that would run, run nothing",
    )
    show.add_argument(
        "--status",
        action="store_true",
        help="print the state of every task (from the root alone), run nothing",
    )
    parser.add_argument(
        "--index", type=int, metavar="I", help="only task I (e.g. $SLURM_ARRAY_TASK_ID)"
    )
    parser.add_argument(
        "--shard",
        metavar="K/N",
        help="only the tasks whose number is K modulo N (K from 0 to N-1)",
    )
    parser.add_argument(
        "--force",
        action="store_true",
        help="run completed and failed tasks again (not the running ones)",
    )
    parser.add_argument(
        "--retry-failed", action="store_true", help="run failed tasks again"
    )
    parser.add_argument(
        "--rerun-stale",
        action="store_true",
        help="run completed tasks again whose code changed since (see exman ls "
        "--stale)",
    )
    parser.add_argument(
        "--fail-fast",
        action="store_true",
        help="start no new task after the first failure",
    )
    parser.add_argument(
        "--max-failures",
        type=int,
        metavar="N",
        help="start no new task after N failures",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        metavar="SECONDS",
        help="stop a task after SECONDS and record it as failed",
    )
    parser.add_argument(
        "--gpus",
        metavar="IDS",
        help="GPU ids, e.g. 0,1: each task gets one in CUDA_VISIBLE_DEVICES",
    )
    parser.add_argument(
        "--per-gpu",
        type=int,
        default=1,
        metavar="N",
        help="tasks that share one GPU (default: 1)",
    )
    parser.add_argument(
        "--grace",
        type=float,
        default=5.0,
        metavar="SECONDS",
        help="time a stopped task gets to record itself before SIGKILL (default: 5)",
    )
    parser.add_argument(
        "--backend",
        choices=sorted(LAUNCHERS),
        default="local",
        help="where the tasks run (default: local)",
    )
    parser.add_argument(
        "--address",
        metavar="ADDR",
        help="with --backend ray: the cluster, auto or host:port (default: the "
        "spec's ray: address, else RAY_ADDRESS, else a new local Ray instance)",
    )
    slurm = parser.add_argument_group(
        "with --backend slurm", "these options override the spec's slurm: section"
    )
    slurm.add_argument(
        "--wait",
        action="store_true",
        help="wait for the tasks, with the progress display (default: submit "
        "them, print the job ids and return)",
    )
    slurm.add_argument("--partition", metavar="NAME", help="the SLURM partition")
    slurm.add_argument(
        "--time", metavar="TIME", help="time limit of a task: minutes or [D-]HH:MM:SS"
    )
    slurm.add_argument("--cpus", type=int, metavar="N", help="CPUs for each task")
    slurm.add_argument("--mem", metavar="SIZE", help="memory for each task, e.g. 4G")
    slurm.add_argument(
        "--gpus-per-task", type=int, metavar="N", help="GPUs for each task"
    )
    slurm.add_argument(
        "--array-parallelism",
        type=int,
        metavar="N",
        help="at most N tasks of each job array at once (its %%N throttle)",
    )
    slurm.add_argument(
        "--max-array-size",
        type=int,
        metavar="N",
        help="at most N tasks per job array (default: the cluster's MaxArraySize)",
    )
    slurm.add_argument(
        "--requeue",
        action="store_true",
        default=None,
        help="requeue a task that reaches its time limit or is preempted, up to "
        "max_requeue times (needs --time)",
    )
    parser.add_argument(
        "--worker",
        type=int,
        metavar="N",
        help="run as worker N of a search submitted to SLURM: trials here, "
        "with -j of them at once, until the study holds its budget (what each "
        "worker job runs)",
    )
    parser.add_argument(
        "-q",
        "--quiet",
        action="store_true",
        help="no progress display, only the summary at the end",
    )
    return parser


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``sweep`` to the subcommands of the ``exman`` command."""
    parser = subparsers.add_parser(
        "sweep",
        help="Run a grid, random search or repetitions of a script.",
        description=DESCRIPTION,
    )
    configure(parser)
    parser.set_defaults(func=run, handler=run)
    return parser


def run(args: argparse.Namespace) -> int:
    """Execute ``exman sweep`` with parsed ``args``; returns the exit code."""
    from . import sweep

    try:
        summary = sweep(
            args.spec,
            jobs=args.jobs,
            dry_run=args.dry_run,
            index=args.index,
            shard=args.shard,
            force=args.force,
            retry_failed=args.retry_failed,
            rerun_stale=args.rerun_stale,
            fail_fast=args.fail_fast,
            max_failures=args.max_failures,
            timeout=args.timeout,
            gpus=args.gpus,
            per_gpu=args.per_gpu,
            status=args.status,
            backend=args.backend,
            grace=args.grace,
            progress=not args.quiet,
            address=args.address,
            slurm={k: v for k in SLURM_FLAGS if (v := getattr(args, k)) is not None},
            wait=args.wait,
            worker=args.worker,
        )
    except ExmanError as e:
        print(f"exman sweep: {e}", file=sys.stderr)
        return 2
    if args.status:
        print_status(summary)
        return 0
    if args.dry_run:
        print_dry_run(summary)
        return 0
    if args.quiet:
        print(summary.text())
    return summary.exit_code


def print_status(summary: SweepSummary, out: IO[str] | None = None) -> None:
    """The table of ``--status``: every selected task, its state and run.

    The tasks are read one at a time: the widths come from the tasks that
    are not plainly pending, so a sweep of a million tasks is not held whole.
    """
    with no_gc():  # a row per held task, kept for the widths: nothing to collect
        _print_status(summary, out)


def _print_status(summary: SweepSummary, out: IO[str] | None) -> None:
    out = out if out is not None else sys.stdout
    print(f"sweep {summary.name}  root {summary.root}", file=out)
    selected = summary.selected
    chosen = selected if isinstance(selected, range) else set(selected)
    states = summary.states
    held = states.touched() if isinstance(states, Plan) else list(states)
    held = [s for s in held if s.task.index in chosen]
    jobs = any(s.job for s in held)  # a column only when there are jobs
    head = ("task", "state", "run", *(["job"] if jobs else []), "key", "params")
    failed: list[str] = []
    rows = list(held)  # and a pending task, for the widths
    if len(chosen) > len(held):  # and pending tasks, all alike but the number
        rows.append(TaskState(Task(max(chosen), {}, "0" * 16), "pending"))
    last = len(head) - 1  # params: as long as it is
    widths = [len(c) for c in head[:last]]
    # the rows of the held tasks, made once for the widths and the lines
    made = {state.task.index: _status_row(state, jobs) for state in held}
    measured = [*made.values(), *(_status_row(s, jobs) for s in rows[len(held) :])]
    for i in range(last):
        widths[i] = max([widths[i], *map(len, map(itemgetter(i), measured))])
    # one format for every line: the first cell to the right, the others left
    layout = "  ".join(
        [f"{{:>{widths[0]}}}", *(f"{{:<{w}}}" for w in widths[1:]), "{}"]
    ).format
    lines: list[str] = []

    def show(row: tuple[str, ...]) -> None:
        lines.append(layout(*row).rstrip())
        if len(lines) >= 1000:  # one write per thousand lines, not per line
            out.write("\n".join(lines) + "\n")
            lines.clear()

    show(head)
    for index in selected if isinstance(selected, range) else sorted(chosen):
        state = states[index] if not isinstance(states, Plan) else states.peek(index)
        if state.state == "failed" and state.run is None and state.reason:
            failed.append(f"task {state.task.index}: {state.reason}")
        row = made.pop(index) if index in made else _status_row(state, jobs)
        show(row)
    if lines:
        out.write("\n".join(lines) + "\n")
    for line in failed:  # no run tells why: the job's record does
        print(line, file=out)
    counts = summary.counts()
    print(
        f"{len(summary.selected)} tasks: "
        + ", ".join(f"{n} {s}" for s, n in counts.items() if n),
        file=out,
    )
    for line in summary.search_lines():
        print(line, file=out)


def _status_row(state: TaskState, jobs: bool) -> tuple[str, ...]:
    run = state.run
    shown = state.state
    if state.state == "queued" and state.reason:
        shown += f" ({state.reason})"
    return (
        str(state.task.index),
        shown,
        "" if run is None else str(run.id),
        *([state.job or ""] if jobs else []),
        state.task.key,
        " ".join([f"{k}={v}" for k, v in state.task.params.items()]),
    )


def print_dry_run(summary: SweepSummary, out: IO[str] | None = None) -> None:
    """The lines of ``--dry-run``: one shell command per task that would run."""
    out = out if out is not None else sys.stdout
    skipped = ", ".join(f"{n} {why}" for why, n in summary.skipped.items() if n)
    cwd = summary.spec.parent if summary.spec is not None else "."
    print(
        f"# sweep {summary.name}: {len(summary.planned)} of {len(summary.states)} "
        f"tasks would run" + (f" (skipped: {skipped})" if skipped else ""),
        file=out,
    )
    print(f"# run these lines in {cwd}", file=out)
    for state, line in zip(summary.planned, summary.commands):
        print(f"# task {state.task.index} ({state.state})", file=out)
        print(line, file=out)
    for note in summary.notes:
        print(f"# note: {note}", file=out)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m exman.sweep SPEC ...``: the subcommand on its own."""
    parser = argparse.ArgumentParser(prog="exman sweep", description=DESCRIPTION)
    configure(parser)
    return run(parser.parse_args(argv))
