"""The ``exman`` command: its parser, its help and :func:`main`.

Each subcommand is a function in :mod:`exman.commands.handlers` that calls the
library function of the same name (:mod:`exman.commands.manage`), prints what it did
and returns the exit code.
"""

from __future__ import annotations

import argparse
import os
import sys
import textwrap
from collections.abc import Sequence
from typing import Callable

from . import __version__
from .commands.argv import glue_dashed, rerun_rest
from .commands.handlers import (
    OK,
    PARTIAL,
    RUN_FAILED,
    USAGE,
    Command,
    cmd_delete,
    cmd_diff,
    cmd_gc,
    cmd_ls,
    cmd_mark,
    cmd_note,
    cmd_report,
    cmd_rerun,
    cmd_restore,
    cmd_show,
    cmd_sweep,
    cmd_table,
    cmd_tag,
    cmd_tail,
    cmd_ui,
    cmd_unmark,
    cmd_untag,
    err,
)
from .commands.selection import ROOT_ENV, locate_root
from .record.params import ParamsError
from .record.store import ExmanError, RunNotFound

__all__ = ["EXIT_CODES", "build_parser", "main", "subcommands"]

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
    codes = "\n".join(
        f"  {code:<3} " + textwrap.fill(text, 70, subsequent_indent=" " * 6)
        for code, text in EXIT_CODES.items()
    )
    return (
        f"{EXAMPLES}\nexit codes:\n{codes}\n"
        "  rerun exits with the exit code of the command it runs; sweep has its\n"
        "  own (exman sweep --help).\n"
    )


class _Formatter(argparse.RawDescriptionHelpFormatter):
    def __init__(self, prog: str) -> None:
        super().__init__(prog, max_help_position=32, width=88)


# -- the parser ---------------------------------------------------------------------
def _add(
    sub: argparse._SubParsersAction[argparse.ArgumentParser],
    name: str,
    func: Command,
    summary: str,
    examples: str,
    parent: argparse.ArgumentParser,
    description: str = "",
) -> argparse.ArgumentParser:
    parser = sub.add_parser(
        name,
        help=summary,
        description=f"{summary}\n\n{description}".rstrip(),
        epilog=f"examples:\n{textwrap.indent(examples, '  ')}",
        formatter_class=_Formatter,
        parents=[parent],
    )
    parser.set_defaults(func=func)
    return parser


def _ids(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument(
        "ids", nargs="+", metavar="ID", help=f"{what}: 3, 3-7 or 3,5,9-12"
    )


def build_parser() -> argparse.ArgumentParser:
    """The ``exman`` argument parser (the docs render its help)."""
    root_help = (
        f"the exman root (default: ${ROOT_ENV}, else the nearest root from "
        "the current folder up, or an exman/ folder beside one)"
    )
    parser = argparse.ArgumentParser(
        prog="exman",
        description=DESCRIPTION,
        epilog=_epilog(),
        formatter_class=_Formatter,
    )
    parser.add_argument("--root", metavar="PATH", help=root_help)
    parser.add_argument("--version", action="version", version=f"exman {__version__}")
    # --root is accepted after the command too; SUPPRESS keeps the global value
    parent = argparse.ArgumentParser(add_help=False)
    parent.add_argument(
        "--root", metavar="PATH", default=argparse.SUPPRESS, help=root_help
    )
    sub = parser.add_subparsers(title="commands", metavar="COMMAND", required=True)

    p = _add(
        sub,
        "ls",
        cmd_ls,
        "List runs as a table (or CSV, JSON).",
        "exman ls\nexman ls --query \"lr > 0.01 and model == 'b'\" --sort -lr\n"
        "exman ls --marked best --columns id,lr,model --format csv\n"
        "exman ls --failed --status failed,crashed\n"
        "exman ls --sort -lr --limit 5\nexman ls --last 20\nexman ls --stale\n"
        "exman ls -f parquet -o runs.parquet",
        parent,
        "By default: id, the parameters that differ between the runs listed, "
        "status and time. With -o FILE: every column, for pandas, polars or "
        "DuckDB to read back (Parquet keeps the types).",
    )
    p.add_argument(
        "-q", "--query", help="a pandas query: \"lr > 0.01 and model == 'b'\""
    )
    p.add_argument(
        "--sort",
        metavar="COL",
        help="sort by these columns; -COL descends: --sort -lr,id",
    )
    count = p.add_mutually_exclusive_group()
    count.add_argument(
        "--last",
        type=int,
        metavar="N",
        help="only the last N runs listed (the newest by default)",
    )
    count.add_argument(
        "--limit", type=int, metavar="N", help="only the first N runs listed"
    )
    p.add_argument("-c", "--columns", metavar="A,B,C", help="the columns to show")
    p.add_argument("-a", "--all-columns", action="store_true", help="show every column")
    p.add_argument("-m", "--marked", metavar="KEY", help="only runs marked under KEY")
    p.add_argument("--failed", action="store_true", help="include the failed runs")
    p.add_argument("--tmp", action="store_true", help="include the tmp runs")
    p.add_argument(
        "--stale",
        action="store_true",
        help="only the runs whose code differs from the code in their git work "
        "tree (commit and uncommitted changes) or script now",
    )
    p.add_argument(
        "--status",
        metavar="S",
        help="only runs with this status (completed, failed, interrupted, running, "
        "crashed, unknown; several with commas)",
    )
    p.add_argument(
        "--format",
        "-f",
        choices=("table", "csv", "json", "parquet"),
        default="table",
        help="output format (default: table); parquet needs -o and pyarrow",
    )
    p.add_argument(
        "-o",
        "--output",
        metavar="FILE",
        help="write the runs to FILE (csv, json or parquet), every column "
        "unless --columns says which",
    )
    p.add_argument(
        "--no-pager",
        action="store_true",
        help="print on the terminal even when longer than the screen "
        "(default: through $PAGER, else less)",
    )

    p = _add(
        sub,
        "table",
        cmd_table,
        "A table for a paper: a result over seeds, one parameter by another.",
        "exman table --rows model --cols dataset --value loss\n"
        "exman table --rows model --value acc --maximize --stat ci -f markdown\n"
        "exman table --rows model,lr --cols dataset --value loss "
        "--query 'epochs == 10' -o table.tex",
        parent,
        "Runs that share every parameter but --over (and exman's own) are "
        "repetitions: each cell is their mean ± std (or ± the 95% confidence "
        "interval of the mean), the best of each column in bold, the number "
        "of runs, and a comment that names them. Only completed runs count. "
        "A parameter that differs within a cell is an error: add it to --rows, "
        "--cols or --over, or choose runs with --query.",
    )
    p.add_argument(
        "--rows", required=True, metavar="A,B", help="the parameter(s) down the rows"
    )
    p.add_argument("--cols", metavar="A,B", help="the parameter(s) across")
    p.add_argument(
        "--value", required=True, metavar="NAME", help="the result to aggregate"
    )
    p.add_argument(
        "--over",
        default="seed",
        metavar="A,B",
        help="the parameter(s) that differ between repetitions (default: seed)",
    )
    p.add_argument(
        "--stat",
        choices=("std", "ci"),
        default="std",
        help="± the standard deviation (default) or the 95%% confidence interval",
    )
    best = p.add_mutually_exclusive_group()
    best.add_argument(
        "--minimize",
        dest="minimize",
        action="store_true",
        default=True,
        help="the lowest mean of a column is the best (default)",
    )
    best.add_argument(
        "--maximize",
        dest="minimize",
        action="store_false",
        help="the highest mean of a column is the best",
    )
    p.add_argument("-q", "--query", help="a pandas query that keeps the runs to use")
    p.add_argument("-m", "--marked", metavar="KEY", help="only runs marked under KEY")
    p.add_argument(
        "-f",
        "--format",
        choices=("latex", "markdown", "csv"),
        default="latex",
        help="output format (default: latex)",
    )
    p.add_argument("-o", "--output", metavar="FILE", help="write the table to FILE")

    p = _add(
        sub,
        "show",
        cmd_show,
        "Show one run: parameters, status, times, command, files, log.",
        "exman show 42\nexman show 42 --lines 100\nexman show 42 --format json",
        parent,
        "A failed or interrupted run shows its traceback instead of the log.",
    )
    p.add_argument("id", metavar="ID", help="the run id")
    p.add_argument(
        "-n", "--lines", type=int, default=20, help="lines of log.txt to show (20)"
    )
    p.add_argument("-f", "--format", choices=("text", "json"), default="text")

    p = _add(
        sub,
        "diff",
        cmd_diff,
        "Compare runs: parameters, results, status, code, environment.",
        "exman diff 3 5\nexman diff 3 5 8 --no-code\nexman diff 3 5 | less",
        parent,
        "The second run and each one after it are compared with the first: the "
        "parameters that differ (and those only some runs have), every result "
        "and last metric with its change (Δ), status, times and duration, the "
        "commit, the environment where it differs, and the code: 'git diff' "
        "between the commits when the repository the runs were started from "
        "is at hand, otherwise the changes.diff files the runs saved.",
    )
    p.add_argument(
        "ids",
        nargs="+",
        metavar="ID",
        help="two runs or more: 3 5, or 3 5-7 (compared with the first)",
    )
    p.add_argument("--no-code", action="store_true", help="do not compare the code")
    p.add_argument(
        "--no-pager",
        action="store_true",
        help="print on the terminal even when longer than the screen",
    )

    p = _add(
        sub,
        "tag",
        cmd_tag,
        "Tag runs: labels kept in the run folder.",
        "exman tag 42 baseline\nexman tag 3-5 paper sweep:lr\n"
        "exman ls --query \"'baseline' in tags\"",
        parent,
        "Tags go to the run's annotations.json, follow the run to fails/ and "
        "show in 'exman ls' and 'exman show' and as the tags column of "
        "Index.info(). A tag is a word of letters, digits and _ . - + : @. "
        "Marks are links under marked/; tags are labels in the run.",
    )
    p.add_argument("id", metavar="ID", help="the run(s): 3, 3-7 or 3,5,9-12")
    p.add_argument("tags", nargs="+", metavar="TAG", help="the tags to add")

    p = _add(
        sub,
        "untag",
        cmd_untag,
        "Remove tags from runs.",
        "exman untag 42 baseline",
        parent,
    )
    p.add_argument("id", metavar="ID", help="the run(s): 3, 3-7 or 3,5,9-12")
    p.add_argument("tags", nargs="+", metavar="TAG", help="the tags to remove")

    p = _add(
        sub,
        "note",
        cmd_note,
        "Write a note on runs, or show one.",
        'exman note 42 "lr too high: diverged at step 900"\nexman note 42\n'
        'exman note 42 --edit\nexman note 42 ""',
        parent,
        "With TEXT the note of the runs is replaced (an empty TEXT removes it); "
        "without it the note of the run is printed; --edit opens it in $VISUAL "
        "or $EDITOR (else vi). The note is kept in the run's annotations.json, "
        "never in a file the run writes, so a running run can be annotated.",
    )
    p.add_argument("id", metavar="ID", help="the run(s): 3, 3-7 or 3,5,9-12")
    p.add_argument("text", nargs="?", metavar="TEXT", help="the note")
    p.add_argument("-e", "--edit", action="store_true", help="edit in $EDITOR")

    p = _add(
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

    p = _add(
        sub,
        "mark",
        cmd_mark,
        "Mark runs: link them under marked/KEY/.",
        "exman mark best 3 5 9-12\nexman mark best/lr 7",
        parent,
        'Index(root).info("KEY") loads the marked runs. KEY is a relative path '
        "like best or best/lr; absolute keys and '..' are refused.",
    )
    p.add_argument("key", metavar="KEY", help="the mark, like best or best/lr")
    _ids(p, "runs to mark")

    p = _add(
        sub,
        "unmark",
        cmd_unmark,
        "Remove marks: the links marked/KEY/<run>.",
        "exman unmark best 3 5",
        parent,
        "Key folders left empty are removed. Marks deeper under KEY stay.",
    )
    p.add_argument("key", metavar="KEY", help="the mark, like best or best/lr")
    _ids(p, "runs to unmark")

    p = _add(
        sub,
        "delete",
        cmd_delete,
        "Remove runs from the index (--all: delete them for good).",
        "exman delete 7 8\nexman restore 7 8\nexman delete --all 3-5 --yes",
        parent,
        "Without --all the run folders and marks stay and 'exman restore' puts "
        "the runs back; failed and tmp runs are not in the index anyway. With "
        "--all the folders (in runs/, fails/ or tmp/) are deleted with their "
        "index link and every mark link; on a terminal exman asks first, "
        "otherwise --yes is required.",
    )
    p.add_argument(
        "--all", action="store_true", help="delete the run folders and every link"
    )
    p.add_argument(
        "-y", "--yes", action="store_true", help="do not ask before --all deletes"
    )
    _ids(p, "runs to delete")

    p = _add(
        sub,
        "restore",
        cmd_restore,
        "Put deleted runs back in the index.",
        "exman restore 7 8",
        parent,
        "Only runs whose folder is still in runs/ (deleted without --all).",
    )
    _ids(p, "runs to restore")

    p = _add(
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

    p = _add(
        sub,
        "gc",
        cmd_gc,
        "Remove tmp runs, dangling links and empty mark folders.",
        "exman gc --dry-run\nexman gc --older-than 7d",
        parent,
        "Tmp runs that are still running, or being created, are kept. Also "
        "removes what processes that died left once unchanged for an hour: "
        "run folders without params.yaml and unfinished *.tmp files. Entries "
        "of runs/, fails/ or tmp/ that are symbolic links are refused.",
    )
    p.add_argument(
        "--older-than",
        metavar="AGE",
        help="only tmp runs that ended longer ago: 90s, 30m, 12h, 7d, 2w",
    )
    p.add_argument(
        "--dry-run", action="store_true", help="list what would go, remove nothing"
    )

    p = _add(
        sub,
        "report",
        cmd_report,
        "Write the views of the runs into one self-contained HTML file.",
        'exman report\nexman report -o sweep.html --query "lr > 0.01"\n'
        "exman report --marked best",
        parent,
        "The runs table, parallel coordinates, interest ~ parameter, curves, "
        "one run and two runs side by side, with the data, plotly.js and the "
        "styles inside the file: it opens offline in any browser. Failed runs "
        "are included. Needs the ui extra: pip install 'exman[ui]'.",
    )
    p.add_argument(
        "-o",
        "--output",
        metavar="FILE",
        default="report.html",
        help="the file to write (default: report.html)",
    )
    p.add_argument(
        "-q", "--query", help="a pandas query: \"lr > 0.01 and model == 'b'\""
    )
    p.add_argument("-m", "--marked", metavar="KEY", help="only runs marked under KEY")

    p = _add(
        sub,
        "ui",
        cmd_ui,
        "Serve the views of the runs live, in the browser.",
        "exman ui\nexman ui --port 9000\nexman ui --host 0.0.0.0 --token",
        parent,
        "The page of exman report, served from the root: new and finished runs "
        "appear while it is open and a running run's log is followed. Read-only. "
        "It listens on 127.0.0.1 unless --host says otherwise; any other "
        "address prints a warning and requires a token (made when --token "
        "gives none), passed in the printed address. Needs the ui extra: "
        "pip install 'exman[ui]'.",
    )
    p.add_argument(
        "--port", type=int, default=8765, help="the port to listen on (8765)"
    )
    p.add_argument(
        "--host",
        default="127.0.0.1",
        help="the address to listen on (127.0.0.1; others require a token)",
    )
    p.add_argument(
        "--token",
        nargs="?",
        const="",
        default=None,
        metavar="TOKEN",
        help="require this token (a new one when none is given)",
    )
    p.add_argument(
        "--poll",
        type=int,
        default=2000,
        metavar="MS",
        help="how often the page looks for new runs, in milliseconds (2000)",
    )

    # the sweep spec names its root: this command needs none from here
    from .sweep.cli import add_parser as add_sweep

    p = add_sweep(sub)
    p.formatter_class = _Formatter
    p.epilog = (
        "examples:\n  exman sweep sweep.yaml --dry-run\n"
        "  exman sweep sweep.yaml -j 4\n  exman sweep sweep.yaml --status"
    )
    p.set_defaults(func=None, standalone=cmd_sweep)
    return parser


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


def _main(args_list: list[str]) -> int:
    parser = build_parser()
    args_list = glue_dashed(args_list)
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
