"""Runs side by side: ``exman diff A B [C…]``.

:func:`diff` compares runs with the first of them (see
:meth:`exman.Index.diff`); :func:`format_diff` writes the comparison as text
for a terminal.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, Union

from ..record.store import ExmanError, Root, StrPath
from .changes import as_root
from .selection import parse_ids
from .terminal import printable

if TYPE_CHECKING:
    import pandas as pd

    from ..look.compare import RunDiff

__all__ = ["diff", "format_diff"]

Ids = Union[Iterable[Union[str, int]], str, int]


def diff(root: StrPath | Root, ids: Ids, *, code: bool = True) -> RunDiff:
    """Compare runs with the first of ``ids`` (see :meth:`exman.Index.diff`).

    :param ids: two or more runs: ``[3, 5]``, ``"3,5-7"``…
    :param code: also compare their code (``git diff``, ``changes.diff``).
    :raises RunNotFound: a run is not in the root.
    :raises ExmanError: fewer than two runs, or an id cannot be parsed.
    """
    from ..index import Index

    root = as_root(root)
    nums = parse_ids(ids)
    if len(nums) < 2:
        raise ExmanError("exman diff needs two runs or more: exman diff 3 5")
    return Index(root.path).diff(*nums, code=code)


def _text(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, float):
        return "" if math.isnan(value) else f"{value:.6g}"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, default=str)


def _delta(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return f"{value:+.6g}"


def _table(frame: pd.DataFrame) -> list[str]:
    """The frame as aligned lines: the name, then one column per run."""
    header = ["", *(f"run {c}" if isinstance(c, int) else str(c) for c in frame)]
    rows = [header]
    for name, cells in frame.iterrows():
        rows.append(
            [
                str(name),
                *(
                    _text(v) if isinstance(c, int) else _delta(v)
                    for c, v in cells.items()
                ),
            ]
        )
    rows = [[printable(cell) for cell in row] for row in rows]
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    return [
        "  " + "  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip()
        for row in rows
    ]


def format_diff(d: RunDiff) -> str:
    """``exman diff`` as text: parameters, results, run, environment, code."""
    others = ", ".join(map(str, d.ids[1:]))
    many = "s" if len(d.ids) > 2 else ""
    out = [f"run{many} {others} compared with run {d.ids[0]}"]
    sections = (
        ("parameters that differ", d.params, "the same parameters"),
        ("results", d.results, "no results or metrics"),
        ("run", d.run, ""),
        ("environment that differs", d.environment, "the same environment"),
    )
    for title, frame, none in sections:
        out.append("")
        if len(frame):
            out.append(f"{title}:")
            out += _table(frame)
        elif none:
            out.append(f"{none}")
    out.append("")
    if not d.code:
        out.append("the same code")
    for code in d.code:
        out.append(f"code of run {code.other} against run {code.first}: {code.how}")
        if code.text:
            out += [printable(line) for line in code.text.rstrip("\n").split("\n")]
        elif "not at hand" not in code.how and "unknown" not in code.how:
            out.append("  (no difference in the files)")
    return "\n".join(out)
