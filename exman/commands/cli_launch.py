"""``exman rerun`` and ``exman sweep``: starting runs.

Each command's parser (``add_<name>``) and its handler (``cmd_<name>``).
"""

from __future__ import annotations

import argparse

from ..record.store import Root
from .common import OK, Formatter, Subparsers, add_command, err
from .selection import format_ids

__all__ = [
    "SWEEP_HELP",
    "add_rerun",
    "add_sweep",
    "add_sweep_summary",
    "cmd_rerun",
    "cmd_sweep",
]

#: the line of ``exman --help`` for ``sweep`` (its parser says it too)
SWEEP_HELP = "Run a grid, random search or repetitions of a script."


def add_rerun(
    sub: Subparsers, parent: argparse.ArgumentParser
) -> argparse.ArgumentParser:
    p = add_command(
        sub,
        "rerun",
        cmd_rerun,
        "Run a run's command again with its --config and more arguments.",
        "exman rerun 42\nexman rerun 42 -- --lr 0.5 --epochs 10\n"
        "exman rerun 42 --dry-run -- --lr 0.5",
        parent,
        "Runs the recorded Python and script from the recorded folder with "
        "--config <run>/params.yaml and the arguments after '--', which "
        "override the restored ones. The new run goes to the same root. Runs "
        "made by exman 0.1.9 have no recorded command.",
    )
    p.add_argument("id", metavar="ID", help="the run to run again")
    p.add_argument(
        "extra",
        nargs="*",
        metavar="ARG",
        help="more arguments for the script, after --",
    )
    p.add_argument(
        "--dry-run", action="store_true", help="print the command, do not run it"
    )
    return p


def cmd_rerun(args: argparse.Namespace, root: Root) -> int:
    from .rerun import rerun

    plan = rerun(root, args.id, args.extra, dry_run=True)
    for warning in plan.warnings:
        err(f"warning: {warning}")
    if args.dry_run:
        print(plan.shell())
        return OK
    err(f"re-running run {plan.id}: {plan.shell()}")
    code = plan.run()
    made = f"as run {format_ids(plan.new_runs)}" if plan.new_runs else "(no new run)"
    err(f"re-ran run {plan.id} {made}: exit code {code}")
    return code


def add_sweep(
    sub: Subparsers, parent: argparse.ArgumentParser
) -> argparse.ArgumentParser:
    """``exman sweep``: its options are :mod:`exman.sweep.cli`'s. The spec
    names its root, so the command looks for none (no ``parent``)."""
    from ..sweep.cli import add_parser

    p = add_parser(sub)
    p.formatter_class = Formatter
    p.epilog = (
        "examples:\n  exman sweep sweep.yaml --dry-run\n"
        "  exman sweep sweep.yaml -j 4\n  exman sweep sweep.yaml --status"
    )
    p.set_defaults(func=None, standalone=cmd_sweep)
    return p


def add_sweep_summary(
    sub: Subparsers, parent: argparse.ArgumentParser
) -> argparse.ArgumentParser:
    """``exman sweep`` as ``exman --help`` lists it, without its options:
    every other command is spared importing the sweep package."""
    p = sub.add_parser("sweep", help=SWEEP_HELP, add_help=False)
    p.set_defaults(func=None, standalone=cmd_sweep)
    return p


def cmd_sweep(args: argparse.Namespace) -> int:
    """``exman sweep``: the spec names its root, none is looked for here."""
    from ..sweep.cli import run

    return run(args)
