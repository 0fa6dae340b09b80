"""The subcommands of ``exman``: print what a library call did, return a code.

Each ``cmd_<name>(args, root)`` calls the function ``<name>`` of
:mod:`exman.commands.manage` with the parsed options as keyword arguments.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Callable

from ..record.store import ExmanError, Root
from .manage import Report, delete, gc, mark, note, restore, tag, unmark, untag
from .pager import page, wants_pager
from .selection import format_ids, select
from .terminal import printable

__all__ = [
    "OK",
    "PARTIAL",
    "USAGE",
    "Command",
    "cmd_delete",
    "cmd_diff",
    "cmd_gc",
    "cmd_ls",
    "cmd_mark",
    "cmd_note",
    "cmd_report",
    "cmd_rerun",
    "cmd_restore",
    "cmd_show",
    "cmd_sweep",
    "cmd_table",
    "cmd_tag",
    "cmd_tail",
    "cmd_ui",
    "cmd_unmark",
    "cmd_untag",
    "err",
]

#: exit codes (see ``exman --help``)
OK, PARTIAL, USAGE = 0, 1, 2
#: ``exman tail --follow``: the run followed did not complete
RUN_FAILED = 3

Command = Callable[[argparse.Namespace, Root], int]


def err(message: str) -> None:
    """Print ``exman: message`` on stderr."""
    print(f"exman: {printable(message, newlines=True)}", file=sys.stderr)


def _for_terminal(text: str) -> str:
    """``text``, its control characters escaped when stdout is a terminal
    (CSV and JSON keep them for a pipe)."""
    try:
        tty = sys.stdout.isatty()
    except (AttributeError, ValueError):
        tty = False
    return printable(text, newlines=True) if tty else text


def _report(report: Report) -> int:
    prefix = "would remove " if report.dry_run else ""
    for change in report.done:
        print(prefix + change.message)
    for change in report.unchanged:
        err(f"note: {change.message}")
    for change in report.refused:
        err(f"refused: {change.message}")
    if report.missing:
        many = len(report.missing) > 1
        err(
            f"run{'s' if many else ''} {format_ids(report.missing)} "
            f"{'were' if many else 'was'} not found in {report.root.path}"
        )
    return OK if report.ok else PARTIAL


def cmd_mark(args: argparse.Namespace, root: Root) -> int:
    return _report(mark(root, args.key, args.ids))


def cmd_unmark(args: argparse.Namespace, root: Root) -> int:
    return _report(unmark(root, args.key, args.ids))


def _confirm(root: Root, args: argparse.Namespace) -> bool:
    sel = select(root, args.ids)
    if not sel.found or args.yes:
        return True
    question = (
        f"delete {len(sel.found)} run folder(s) ({format_ids(sel.found)}) in "
        f"{root.path} and every link to them, for good? [y/N] "
    )
    stdin = sys.stdin
    if stdin is None or not stdin.isatty():
        err(
            "error: delete --all removes run folders for good and stdin is not "
            "a terminal to ask: pass --yes to confirm"
        )
        return False
    sys.stderr.write(question)
    sys.stderr.flush()
    answer = stdin.readline().strip().lower()
    if answer not in ("y", "yes"):
        err("nothing deleted")
        return False
    return True


def cmd_delete(args: argparse.Namespace, root: Root) -> int:
    if args.all and not _confirm(root, args):
        return USAGE
    return _report(delete(root, args.ids, all=args.all))


def cmd_restore(args: argparse.Namespace, root: Root) -> int:
    return _report(restore(root, args.ids))


def cmd_gc(args: argparse.Namespace, root: Root) -> int:
    report = gc(root, older_than=args.older_than, dry_run=args.dry_run)
    if not report.done:
        err("nothing to remove")
    return _report(report)


def cmd_show(args: argparse.Namespace, root: Root) -> int:
    from .show import format_details, show

    details = show(root, args.id, lines=args.lines)
    if args.format == "json":
        text = json.dumps(details.to_json(), ensure_ascii=False, indent=1, default=str)
        print(_for_terminal(text))
    else:
        print(format_details(details))
    return OK


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
    print(_for_terminal(text), end="")
    return OK


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
    text = text if args.format == "table" else _for_terminal(text)
    _paged(text, no_pager=args.no_pager)
    return OK


def _paged(text: str, *, no_pager: bool) -> None:
    """Print ``text``, through ``$PAGER`` when longer than the terminal."""
    if not no_pager and wants_pager(text):
        why = page(text)
        if why is None:
            return
        if why != "no pager":
            err(f"note: {why}; printing instead")
    print(text)


def cmd_diff(args: argparse.Namespace, root: Root) -> int:
    from .diff import diff, format_diff

    _paged(
        format_diff(diff(root, args.ids, code=not args.no_code)), no_pager=args.no_pager
    )
    return OK


def cmd_tag(args: argparse.Namespace, root: Root) -> int:
    return _report(tag(root, args.id, args.tags))


def cmd_untag(args: argparse.Namespace, root: Root) -> int:
    return _report(untag(root, args.id, args.tags))


def cmd_note(args: argparse.Namespace, root: Root) -> int:
    from .annotate import edit_text, read_note

    if args.edit and args.text is not None:
        raise ExmanError("note: give the text or --edit, not both")
    if args.text is not None:
        return _report(note(root, args.id, args.text))
    num, text = read_note(root, args.id)
    if not args.edit:
        if text is None:
            err(f"run {num} has no note (exman note {num} TEXT sets one)")
        else:
            print(_for_terminal(text))
        return OK
    return _report(note(root, num, edit_text(text or "")))


def cmd_tail(args: argparse.Namespace, root: Root) -> int:
    from .follow import tail

    followed = tail(
        root, args.id, lines=args.lines, follow=args.follow, metrics=args.metrics
    )
    for text in followed:
        sys.stdout.write(_for_terminal(text))
        sys.stdout.flush()  # a reader that left shows here: main() ends quietly
    if args.follow and followed.status != "completed":
        err(f"run {followed.id} ended {followed.status}")
        return RUN_FAILED
    return OK


def cmd_sweep(args: argparse.Namespace) -> int:
    """``exman sweep``: the spec names its root, none is looked for here."""
    from ..sweep.cli import run

    return run(args)


def cmd_report(args: argparse.Namespace, root: Root) -> int:
    from ..views.report import report

    path = report(root, args.output, query=args.query, marked=args.marked)
    print(f"wrote {path}")
    return OK


def cmd_ui(args: argparse.Namespace, root: Root) -> int:
    from ..views.server import check_address, ui

    token = args.token or None
    if args.token == "":  # --token without a value: make one
        import secrets

        token = secrets.token_urlsafe(24)
    token, warning = check_address(args.host, token)
    if warning:
        err(f"warning: {warning}")
    host = f"[{args.host}]" if ":" in args.host else args.host
    query = f"?token={token}" if token else ""
    err(f"serving {root.path} at http://{host}:{args.port}/{query} (Ctrl-C stops)")
    ui(root.path, host=args.host, port=args.port, token=token, poll_ms=args.poll)
    return OK
