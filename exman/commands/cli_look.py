"""``exman ls``, ``table``, ``show`` and ``diff``: looking at runs.

Each command's parser (``add_<name>``) and its handler (``cmd_<name>``).
"""

from __future__ import annotations

import argparse
import json
import os

from ..record.store import Root
from .common import OK, USAGE, Subparsers, add_command, err, for_terminal, paged

__all__ = [
    "add_diff",
    "add_ls",
    "add_show",
    "add_table",
    "cmd_diff",
    "cmd_ls",
    "cmd_show",
    "cmd_table",
]


# -- ls -------------------------------------------------------------------------------
def add_ls(sub: Subparsers, parent: argparse.ArgumentParser) -> argparse.ArgumentParser:
    p = add_command(
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
    return p


def cmd_ls(args: argparse.Namespace, root: Root) -> int:
    import warnings

    from .listing import ls, render

    if args.format == "parquet" and not args.output:
        err("error: --format parquet writes a file: give -o FILE")
        return USAGE
    # a run that cannot be read is left out with a warning: say which, once
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        df = ls(
            root,
            query=args.query,
            sort=args.sort,
            columns=args.columns,
            marked=args.marked,
            failed=args.failed,
            tmp=args.tmp,
            status=args.status,
            # a file is for a program: every column, unless told
            all_columns=args.all_columns or bool(args.output),
            last=args.last,
            limit=args.limit,
            stale=args.stale,
            # printed, not written to a file: pandas only where needed
            plain=not args.output,
        )
    for warning in caught:
        err(f"warning: {warning.message}")
    if args.output:
        from .export import EXPORTS, export

        format = args.format
        if format == "table":  # -o runs.csv: the format from the suffix
            format = os.path.splitext(args.output)[1].lstrip(".").lower()
            if format not in EXPORTS:
                err(f"error: -o {args.output}: give --format {'|'.join(EXPORTS)}")
                return USAGE
        export(df, args.output, format, root=root)
        print(f"wrote {len(df)} run(s) to {args.output}")
        return OK
    if args.format == "table" and len(df) == 0:
        err(f"no runs to list in {root.path}")
        return OK
    text = render(df, args.format, root=root)
    # the table escapes its cells itself, and its colours are escapes
    text = text if args.format == "table" else for_terminal(text)
    paged(text, no_pager=args.no_pager)
    return OK


# -- table ----------------------------------------------------------------------------
def add_table(
    sub: Subparsers, parent: argparse.ArgumentParser
) -> argparse.ArgumentParser:
    p = add_command(
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
    return p


def _names(text: str | None) -> list[str]:
    """``"a, b"`` as ``["a", "b"]``; nothing for None or ``""``."""
    return [name.strip() for name in (text or "").split(",") if name.strip()]


def cmd_table(args: argparse.Namespace, root: Root) -> int:
    import warnings

    from ..index import Index
    from ..look.tables import render_table
    from ..record.files import atomic_write

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        frame = Index(root).table(
            _names(args.rows),
            _names(args.cols),
            value=args.value,
            over=_names(args.over),
            stat=args.stat,
            source=args.marked,
            query=args.query,
        )
    for warning in caught:
        err(f"warning: {warning.message}")
    if not len(frame):
        err(f"no completed run with a value of {args.value!r} to tabulate")
        return OK
    text = render_table(frame, args.format, minimize=args.minimize)
    if args.output:
        atomic_write(args.output, text)
        print(f"wrote a table of {len(frame)} row(s) to {args.output}")
        return OK
    print(for_terminal(text), end="")
    return OK


# -- show -----------------------------------------------------------------------------
def add_show(
    sub: Subparsers, parent: argparse.ArgumentParser
) -> argparse.ArgumentParser:
    p = add_command(
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
    return p


def cmd_show(args: argparse.Namespace, root: Root) -> int:
    from .show import format_details, show

    details = show(root, args.id, lines=args.lines)
    if args.format == "json":
        text = json.dumps(details.to_json(), ensure_ascii=False, indent=1, default=str)
        print(for_terminal(text))
    else:
        print(format_details(details))
    return OK


# -- diff -----------------------------------------------------------------------------
def add_diff(
    sub: Subparsers, parent: argparse.ArgumentParser
) -> argparse.ArgumentParser:
    p = add_command(
        sub,
        "diff",
        cmd_diff,
        "Compare runs: parameters, results, status, code, environment.",
        "exman diff 3 5\nexman diff 3 5 8 --no-code\nexman diff 3 5 | less\n"
        "exman diff 3 5 --format json | jq .params",
        parent,
        "The second run and each one after it are compared with the first: the "
        "parameters that differ (and those only some runs have), every result "
        "and last metric with its change (Δ), status, times and duration, the "
        "commit, the environment where it differs, and the code: 'git diff' "
        "between the commits when the repository the runs were started from "
        "is at hand, otherwise the changes.diff files the runs saved. "
        "--format json writes the same for scripts: each section maps a name "
        "to its value per run id and its change (Δ<id>); a run without the "
        "name has no key.",
    )
    p.add_argument(
        "ids",
        nargs="+",
        metavar="ID",
        help="two runs or more: 3 5, or 3 5-7 (compared with the first)",
    )
    p.add_argument("--no-code", action="store_true", help="do not compare the code")
    p.add_argument(
        "-f",
        "--format",
        choices=("text", "json"),
        default="text",
        help="output format (default: text)",
    )
    p.add_argument(
        "--no-pager",
        action="store_true",
        help="print on the terminal even when longer than the screen",
    )
    return p


def cmd_diff(args: argparse.Namespace, root: Root) -> int:
    from .diff import diff, format_diff

    compared = diff(root, args.ids, code=not args.no_code)
    if args.format == "json":
        text = json.dumps(compared.to_json(), ensure_ascii=False, indent=1)
        paged(for_terminal(text), no_pager=args.no_pager)
    else:
        paged(format_diff(compared), no_pager=args.no_pager)
    return OK
