"""The ``exman`` command: its parser, its help and :func:`main`.

Each subcommand lives in a ``exman.commands.cli_<group>`` module, its parser
(``add_<name>``: arguments, help, examples) beside its handler
(``cmd_<name>``), which calls the library function of the same name, prints
what it did and returns the exit code. :data:`COMMANDS` puts them in the
order of ``exman --help``.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from . import __version__
from .commands import (
    cli_annotate,
    cli_follow,
    cli_launch,
    cli_look,
    cli_manage,
    cli_views,
)
from .commands.argv import glue_dashed, rerun_rest
from .commands.common import (
    OK,
    PARTIAL,
    RUN_FAILED,
    USAGE,
    AddParser,
    Command,
    Formatter,
    err,
)
from .commands.selection import ROOT_ENV, locate_root
from .record.params import ParamsError
from .record.store import ExmanError, RunNotFound

# not typing's: importing typing would slow every command's start
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Callable

__all__ = [
    "COMMANDS",
    "EXIT_CODES",
    "build_parser",
    "command_name",
    "command_of",
    "main",
    "subcommands",
]

#: the subcommands, in the order of ``exman --help``
COMMANDS: tuple[AddParser, ...] = (
    cli_look.add_ls,
    cli_look.add_table,
    cli_look.add_show,
    cli_look.add_diff,
    cli_annotate.add_tag,
    cli_annotate.add_untag,
    cli_annotate.add_note,
    cli_follow.add_tail,
    cli_manage.add_mark,
    cli_manage.add_unmark,
    cli_manage.add_delete,
    cli_manage.add_restore,
    cli_launch.add_rerun,
    cli_manage.add_gc,
    cli_views.add_report,
    cli_views.add_ui,
    cli_launch.add_sweep,
)

EXIT_CODES = {
    OK: "done: every run asked for was found and handled",
    PARTIAL: "some ids were not found or could not be handled (each is "
    "reported on stderr); the others were done. Also: a file operation failed",
    USAGE: "nothing was done: a usage error; an invalid key, id, query or "
    "column; not an exman root; a run that cannot be re-run; or delete --all "
    "not confirmed",
    RUN_FAILED: "tail --follow: the run followed ended failed, interrupted or "
    "crashed, or was deleted",
    130: "interrupted (Ctrl-C)",
}

DESCRIPTION = """\
Manage the runs of an exman root: list, show, compare, tag, follow,
tabulate, mark, delete, re-run, sweep.

The root is --root PATH, else the EXMAN_ROOT environment variable, else the
nearest exman root (a folder with runs/ and index/) from the current folder
up: each folder itself, then its exman/ (where simpleroot(__file__) puts the
runs of a script). Runs are given by id: 3, a range 3-7, or a list 3 5 9-12.
"""

EXAMPLES = """\
examples:
  exman ls                            runs and the parameters that differ
  exman ls --query "lr > 0.01" --sort -lr
  exman show 42                       everything about run 42
  exman table --rows model --cols dataset --value loss
  exman diff 3 5                      what differs between runs 3 and 5
  exman tag 3-5 baseline              tag runs; exman ls -q "'baseline' in tags"
  exman tail -f 42                    follow run 42's log until it ends
  exman mark best 3 5 9-12            link runs under marked/best/
  exman delete 7                      take run 7 out of the index
  exman rerun 42 -- --lr 0.5          run 42 again with another lr
  exman --root path/to/exman gc --older-than 7d
"""


def _epilog() -> str:
    import textwrap  # its patterns are compiled on import: only for this help

    codes = "\n".join(
        f"  {code:<3} " + textwrap.fill(text, 70, subsequent_indent=" " * 6)
        for code, text in EXIT_CODES.items()
    )
    return (
        f"{EXAMPLES}\nexit codes:\n{codes}\n"
        "  rerun exits with the exit code of the command it runs; sweep has its\n"
        "  own (exman sweep --help).\n"
    )


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The ``exman`` argument parser (the docs render its help).

    :param command: the subcommand about to run, when known: only its
        parser is made then.
    """
    root_help = (
        f"the exman root (default: ${ROOT_ENV}, else the nearest root from "
        "the current folder up, or an exman/ folder beside one)"
    )
    parser = argparse.ArgumentParser(
        prog="exman",
        description=DESCRIPTION,
        # shown by exman's own help only, not by a command's (``exman ls -h``)
        epilog=_epilog() if command is None else None,
        formatter_class=Formatter,
    )
    parser.add_argument("--root", metavar="PATH", help=root_help)
    parser.add_argument("--version", action="version", version=f"exman {__version__}")
    # --root is accepted after the command too; SUPPRESS keeps the global value
    parent = argparse.ArgumentParser(add_help=False, formatter_class=Formatter)
    parent.add_argument(
        "--root", metavar="PATH", default=argparse.SUPPRESS, help=root_help
    )
    sub = parser.add_subparsers(title="commands", metavar="COMMAND", required=True)
    # a known command gets its own parser only: each parser costs imports
    # and gettext look-ups, several milliseconds of every `exman ls`
    named = [add for add in COMMANDS if command_name(add) == command]
    for add in named or COMMANDS:
        if add is cli_launch.add_sweep and command not in (None, "sweep"):
            add = cli_launch.add_sweep_summary
        add(sub, parent)
    return parser


def command_name(add: AddParser) -> str:
    """The subcommand that the function ``add`` adds (``add_ls``: ``ls``)."""
    return add.__name__.removeprefix("add_")


def command_of(args: Sequence[str]) -> str | None:
    """The subcommand named in ``args`` (``exman --root R ls -a``: ``ls``)."""
    after_root = False
    for arg in args:
        if after_root:
            after_root = False
        elif arg == "--root":
            after_root = True
        elif arg in ("-h", "--help"):
            return None  # the help of exman itself, which lists every command
        elif not arg.startswith("-"):
            return arg
        elif arg == "--":
            return None
    return None


def subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    """The subcommands of ``parser`` by name, in the order of ``--help``."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``exman`` command; returns the exit code (see ``exman --help``).

    A reader that stops early (``exman ls | head``) ends the command quietly,
    with exit code 0: what it read is what it asked for.

    :param argv: the arguments (default: ``sys.argv[1:]``).
    """
    try:
        code = _main(list(sys.argv[1:] if argv is None else argv))
        sys.stdout.flush()  # a closed pipe shows here, not at exit
    except BrokenPipeError:
        # the recipe of Python's docs (signal module, "Note on SIGPIPE"):
        # Python flushes stdout again at exit, which would fail as well
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return OK
    return code


def console() -> int:
    """The ``exman`` command itself (and ``python -m exman``): :func:`main`,
    then an exit that does not walk the objects the command made.

    Python collects garbage as it exits, looking at every object still
    alive (the rows of a listing: about 4 ms of a 120 ms ``exman ls`` of
    10,000 runs) only to free what the end of the process frees anyway.
    Frozen (``gc.freeze``), they are left to it; exit handlers, the flush
    of open files and the freeing of memory are as always. Not in
    :func:`main`, which another program may call and go on.
    """
    code = main()
    import gc  # built in: nothing to read

    gc.freeze()
    return code


def _main(args_list: list[str]) -> int:
    args_list = glue_dashed(args_list)
    parser = build_parser(command_of(args_list))
    split = rerun_rest(args_list)
    try:
        args = parser.parse_args(args_list if split is None else split[0])
    except SystemExit as e:  # argparse: --help, --version or a usage error
        return OK if e.code is None else e.code if isinstance(e.code, int) else USAGE
    if split is not None:
        args.extra = [*args.extra, *split[1]]
    try:
        standalone: Callable[[argparse.Namespace], int] | None = getattr(
            args, "standalone", None
        )
        if standalone is not None:
            return standalone(args)
        func: Command = args.func
        root, others = locate_root(args.root)
        if others:
            also = ", ".join(str(o.path) for o in others)
            err(f"using the root {root.path} (also found: {also}; --root chooses)")
        return func(args, root)
    except RunNotFound as e:
        err(str(e))
        return PARTIAL
    except (ExmanError, ParamsError) as e:
        err(f"error: {e}")
        return USAGE
    except BrokenPipeError:
        raise  # stdout closed by its reader: main() ends quietly
    except OSError as e:
        err(f"error: {e}")
        return PARTIAL
    except KeyboardInterrupt:
        err("interrupted")
        return 130
