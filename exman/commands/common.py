"""What every subcommand of ``exman`` shares: exit codes, messages, the
printing of a :class:`~exman.commands.changes.Report`, and how a command
adds its parser.

Each ``cli_<group>`` module beside this one holds the commands of a group:
for each, the function that adds its parser (arguments, help, examples)
and its handler ``cmd_<name>(args, root)``, which calls the library
function of the same name, prints what it did and returns the exit code.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

from ..record.store import Root
from .changes import Report
from .pager import page, wants_pager
from .selection import format_ids
from .terminal import printable

__all__ = [
    "OK",
    "PARTIAL",
    "RUN_FAILED",
    "USAGE",
    "AddParser",
    "Command",
    "Formatter",
    "Subparsers",
    "add_command",
    "add_ids",
    "err",
    "for_terminal",
    "paged",
    "report",
]

#: exit codes (see ``exman --help``)
OK, PARTIAL, USAGE = 0, 1, 2
#: ``exman tail --follow``: the run followed did not complete
RUN_FAILED = 3

Command = Callable[[argparse.Namespace, Root], int]
Subparsers = argparse._SubParsersAction
#: adds one subcommand: ``(subparsers, parent) -> its parser``; ``parent``
#: holds the options every command accepts after its name (``--root``)
AddParser = Callable[[Subparsers, argparse.ArgumentParser], argparse.ArgumentParser]


class Formatter(argparse.RawDescriptionHelpFormatter):
    """The help of ``exman`` and its commands: 88 columns, paragraphs kept."""

    def __init__(self, prog: str) -> None:
        super().__init__(prog, max_help_position=32, width=88)


def add_command(
    sub: Subparsers,
    name: str,
    func: Command,
    summary: str,
    examples: str,
    parent: argparse.ArgumentParser,
    description: str = "",
) -> argparse.ArgumentParser:
    """Add the subcommand ``name``, run by ``func``; returns its parser.

    :param summary: one line, for ``exman --help`` and the top of its own.
    :param examples: command lines, one a line, shown under ``examples:``.
    :param description: a paragraph after the summary.
    """
    parser: argparse.ArgumentParser = sub.add_parser(
        name,
        help=summary,
        description=f"{summary}\n\n{description}".rstrip(),
        epilog="examples:\n" + _indented(examples),
        formatter_class=Formatter,
        parents=[parent],
    )
    parser.set_defaults(func=func)
    return parser


def _indented(text: str) -> str:
    """``textwrap.indent(text, "  ")`` (textwrap compiles patterns on import,
    for every command's start)."""
    return "".join(
        "  " + line if line.strip() else line for line in text.splitlines(True)
    )


def add_ids(parser: argparse.ArgumentParser, what: str) -> None:
    """The positional run ids of a command that takes one or more."""
    parser.add_argument(
        "ids", nargs="+", metavar="ID", help=f"{what}: 3, 3-7 or 3,5,9-12"
    )


def err(message: str) -> None:
    """Print ``exman: message`` on stderr."""
    print(f"exman: {printable(message, newlines=True)}", file=sys.stderr)


def for_terminal(text: str) -> str:
    """``text``, its control characters escaped when stdout is a terminal
    (CSV and JSON keep them for a pipe)."""
    try:
        tty = sys.stdout.isatty()
    except (AttributeError, ValueError):
        tty = False
    return printable(text, newlines=True) if tty else text


def report(done: Report) -> int:
    """Print what a command did, refused or did not find; the exit code."""
    prefix = "would remove " if done.dry_run else ""
    for change in done.done:
        print(prefix + change.message)
    for change in done.unchanged:
        err(f"note: {change.message}")
    for change in done.refused:
        err(f"refused: {change.message}")
    if done.missing:
        many = len(done.missing) > 1
        err(
            f"run{'s' if many else ''} {format_ids(done.missing)} "
            f"{'were' if many else 'was'} not found in {done.root.path}"
        )
    return OK if done.ok else PARTIAL


def paged(text: str, *, no_pager: bool) -> None:
    """Print ``text``, through ``$PAGER`` when longer than the terminal."""
    if not no_pager and wants_pager(text):
        why = page(text)
        if why is None:
            return
        if why != "no pager":
            err(f"note: {why}; printing instead")
    print(text)
