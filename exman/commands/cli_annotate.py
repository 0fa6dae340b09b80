"""``exman tag``, ``untag`` and ``note``: labels and notes kept in a run.

Each command's parser (``add_<name>``) and its handler (``cmd_<name>``).
"""

from __future__ import annotations

import argparse

from ..record.store import ExmanError, Root
from .common import OK, Subparsers, add_command, err, for_terminal, report

__all__ = ["add_note", "add_tag", "add_untag", "cmd_note", "cmd_tag", "cmd_untag"]


def add_tag(
    sub: Subparsers, parent: argparse.ArgumentParser
) -> argparse.ArgumentParser:
    p = add_command(
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
    return p


def cmd_tag(args: argparse.Namespace, root: Root) -> int:
    from .annotate import tag

    return report(tag(root, args.id, args.tags))


def add_untag(
    sub: Subparsers, parent: argparse.ArgumentParser
) -> argparse.ArgumentParser:
    p = add_command(
        sub,
        "untag",
        cmd_untag,
        "Remove tags from runs.",
        "exman untag 42 baseline",
        parent,
    )
    p.add_argument("id", metavar="ID", help="the run(s): 3, 3-7 or 3,5,9-12")
    p.add_argument("tags", nargs="+", metavar="TAG", help="the tags to remove")
    return p


def cmd_untag(args: argparse.Namespace, root: Root) -> int:
    from .annotate import untag

    return report(untag(root, args.id, args.tags))


def add_note(
    sub: Subparsers, parent: argparse.ArgumentParser
) -> argparse.ArgumentParser:
    p = add_command(
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
    return p


def cmd_note(args: argparse.Namespace, root: Root) -> int:
    from .annotate import edit_text, note, read_note

    if args.edit and args.text is not None:
        raise ExmanError("note: give the text or --edit, not both")
    if args.text is not None:
        return report(note(root, args.id, args.text))
    num, text = read_note(root, args.id)
    if not args.edit:
        if text is None:
            err(f"run {num} has no note (exman note {num} TEXT sets one)")
        else:
            print(for_terminal(text))
        return OK
    return report(note(root, num, edit_text(text or "")))
