"""``exman tail``: the end of a run's log or metrics, followed until it ends.

The command's parser (:func:`add_tail`) and its handler (:func:`cmd_tail`).
"""

from __future__ import annotations

import argparse
import sys

from ..record.store import Root
from .common import OK, RUN_FAILED, Subparsers, add_command, err, for_terminal

__all__ = ["add_tail", "cmd_tail"]


def add_tail(
    sub: Subparsers, parent: argparse.ArgumentParser
) -> argparse.ArgumentParser:
    p = add_command(
        sub,
        "tail",
        cmd_tail,
        "Show the end of a run's log; -f follows it until the run ends.",
        "exman tail 42\nexman tail -f 42\nexman tail -f --metrics 42\n"
        "exman tail -n 100 42 | grep loss",
        parent,
        "With --follow exman prints what the run adds to its log until the run "
        "ends, then exits with 0 when the run completed and 3 otherwise (failed, "
        "interrupted, crashed). --metrics shows the records of metrics.jsonl "
        "(exman.log) as a table instead, a new header when a metric first "
        "appears.",
    )
    p.add_argument("id", metavar="ID", help="the run")
    p.add_argument(
        "-f", "--follow", action="store_true", help="go on until the run ends"
    )
    p.add_argument(
        "-n",
        "--lines",
        type=int,
        default=20,
        help="lines (or metric records) of the end to show first (20)",
    )
    p.add_argument(
        "-m", "--metrics", action="store_true", help="the metric records, as a table"
    )
    return p


def cmd_tail(args: argparse.Namespace, root: Root) -> int:
    from .follow import tail

    followed = tail(
        root, args.id, lines=args.lines, follow=args.follow, metrics=args.metrics
    )
    for text in followed:
        sys.stdout.write(for_terminal(text))
        sys.stdout.flush()  # a reader that left shows here: main() ends quietly
    if args.follow and followed.status != "completed":
        err(f"run {followed.id} ended {followed.status}")
        return RUN_FAILED
    return OK
