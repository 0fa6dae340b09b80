"""Text longer than the terminal, shown through the user's pager as git does.

``$PAGER`` (default ``less``) reads the text on its stdin; ``LESS`` defaults
to ``FRX`` (quit when the text fits, keep colours, leave it on the screen).
An empty ``PAGER`` or ``cat`` means no pager. subprocess is imported only
when a pager runs.
"""

from __future__ import annotations

import os
import sys

__all__ = ["DEFAULT_PAGER", "page", "wants_pager"]

DEFAULT_PAGER = "less"


def wants_pager(text: str) -> bool:
    """Whether ``text`` is for a terminal and longer than its screen."""
    try:
        tty = sys.stdout.isatty()
    except (AttributeError, ValueError):  # replaced or closed stdout
        return False
    if not tty:
        return False
    import shutil  # only for a terminal: not on the path of a pipe

    return text.count("\n") + 1 >= shutil.get_terminal_size((100, 24)).lines


def page(text: str) -> str | None:
    """Show ``text`` through ``$PAGER``; None once done, else why it was not.

    Nothing is lost: when the pager cannot be started the caller prints the
    text itself.
    """
    import shlex

    command = os.environ.get("PAGER", DEFAULT_PAGER)
    try:
        argv = shlex.split(command)
    except ValueError as e:
        return f"PAGER={command!r}: {e}"
    if not argv or argv == ["cat"]:
        return "no pager"
    import shutil

    if shutil.which(argv[0]) is None:
        return f"PAGER={command!r}: no program {argv[0]!r}"
    import subprocess

    env = {**os.environ, "LESS": os.environ.get("LESS", "FRX")}
    sys.stdout.flush()
    proc = subprocess.Popen(argv, stdin=subprocess.PIPE, env=env)
    assert proc.stdin is not None  # stdin=PIPE
    try:
        proc.stdin.write(text.encode(sys.stdout.encoding or "utf-8", "replace"))
        proc.stdin.write(b"\n")
        proc.stdin.close()
    except BrokenPipeError:
        pass  # the user quit the pager before the end: what they wanted
    while True:
        try:
            proc.wait()
            break
        except KeyboardInterrupt:
            # Ctrl-C reaches the pager too, which decides (less keeps going)
            continue
    return None
