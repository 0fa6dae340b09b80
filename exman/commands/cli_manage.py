"""``exman mark``, ``unmark``, ``delete``, ``restore`` and ``gc``: the runs
in the index, their marks, and what is left to clean.

Each command's parser (``add_<name>``) and its handler (``cmd_<name>``).
"""

from __future__ import annotations

import argparse
import sys

from ..record.store import Root
from .common import USAGE, Subparsers, add_command, add_ids, err, report
from .selection import format_ids, select

__all__ = [
    "add_delete",
    "add_gc",
    "add_mark",
    "add_restore",
    "add_unmark",
    "cmd_delete",
    "cmd_gc",
    "cmd_mark",
    "cmd_restore",
    "cmd_unmark",
]


# -- mark, unmark ---------------------------------------------------------------------
def add_mark(
    sub: Subparsers, parent: argparse.ArgumentParser
) -> argparse.ArgumentParser:
    p = add_command(
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
    add_ids(p, "runs to mark")
    return p


def cmd_mark(args: argparse.Namespace, root: Root) -> int:
    from .manage import mark

    return report(mark(root, args.key, args.ids))


def add_unmark(
    sub: Subparsers, parent: argparse.ArgumentParser
) -> argparse.ArgumentParser:
    p = add_command(
        sub,
        "unmark",
        cmd_unmark,
        "Remove marks: the links marked/KEY/<run>.",
        "exman unmark best 3 5",
        parent,
        "Key folders left empty are removed. Marks deeper under KEY stay.",
    )
    p.add_argument("key", metavar="KEY", help="the mark, like best or best/lr")
    add_ids(p, "runs to unmark")
    return p


def cmd_unmark(args: argparse.Namespace, root: Root) -> int:
    from .manage import unmark

    return report(unmark(root, args.key, args.ids))


# -- delete, restore ------------------------------------------------------------------
def add_delete(
    sub: Subparsers, parent: argparse.ArgumentParser
) -> argparse.ArgumentParser:
    p = add_command(
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
    add_ids(p, "runs to delete")
    return p


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
    from .manage import delete

    if args.all and not _confirm(root, args):
        return USAGE
    return report(delete(root, args.ids, all=args.all))


def add_restore(
    sub: Subparsers, parent: argparse.ArgumentParser
) -> argparse.ArgumentParser:
    p = add_command(
        sub,
        "restore",
        cmd_restore,
        "Put deleted runs back in the index.",
        "exman restore 7 8",
        parent,
        "Only runs whose folder is still in runs/ (deleted without --all).",
    )
    add_ids(p, "runs to restore")
    return p


def cmd_restore(args: argparse.Namespace, root: Root) -> int:
    from .manage import restore

    return report(restore(root, args.ids))


# -- gc -------------------------------------------------------------------------------
def add_gc(sub: Subparsers, parent: argparse.ArgumentParser) -> argparse.ArgumentParser:
    p = add_command(
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
    return p


def cmd_gc(args: argparse.Namespace, root: Root) -> int:
    from .gc import gc

    done = gc(root, older_than=args.older_than, dry_run=args.dry_run)
    if not done.done:
        err("nothing to remove")
    return report(done)
