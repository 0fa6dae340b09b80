"""Text from run files made safe to print on a terminal.

Parameter values, run names, log lines and tracebacks come from files that
anyone may have written. Printed raw, an ESC in them is a terminal command
(colours, a moved cursor, a changed window title, worse); a newline breaks
a table's rows. :func:`printable` shows each control character as an
escape instead.
"""

from __future__ import annotations

import re

__all__ = ["printable"]

_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")
_NAMED = {"\n": "\\n", "\t": "\\t", "\r": "\\r"}


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    return _NAMED.get(char) or f"\\x{ord(char):02x}"


def printable(text: str, *, newlines: bool = False) -> str:
    """``text`` with control characters written as ``\\n``, ``\\t``, ``\\x1b``…

    :param newlines: keep newlines as they are (text of several lines).
    """
    if newlines:
        return "\n".join(_CONTROL.sub(_escape, line) for line in text.split("\n"))
    return _CONTROL.sub(_escape, text)
