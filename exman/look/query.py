"""The query language of ``exman ls --query`` and :meth:`exman.Index.query`.

pandas' ``DataFrame.query`` with one addition: ``'baseline' in tags`` (and
``not in``) asks whether each run's *list* holds the value, for ``tags``
and for every parameter whose values are lists (``2 in layers``). pandas
alone reads ``x in column`` as "x is one of the column's labels", which is
never what is meant of a column of lists. Such a test is worked out before
the query and handed to pandas as a local variable.
"""

from __future__ import annotations

import ast
import io
import tokenize

from .frame import ANNOTATION_COLUMNS

# not typing's: importing typing would slow every command's start
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    import pandas as pd

__all__ = ["QueryError", "query_frame"]


class QueryError(ValueError):
    """The query cannot be read or pandas refuses it."""


def _is_list_column(column: pd.Series[Any]) -> bool:
    if column.dtype.kind != "O":
        return False
    found = False
    for value in column.tolist():
        if isinstance(value, (list, tuple)):
            found = True
        elif value is not None and value == value:  # None and NaN: no list
            return False
    return found


def _offsets(expr: str) -> list[int]:
    starts, at = [], 0
    for line in expr.splitlines(keepends=True) or [""]:
        starts.append(at)
        at += len(line)
    return starts


def _rewrite(df: pd.DataFrame, expr: str) -> tuple[str, dict[str, Any]]:
    """``expr`` with each ``LITERAL [not] in LISTCOLUMN`` replaced by a local."""
    try:
        tokens = [
            t
            for t in tokenize.generate_tokens(io.StringIO(expr).readline)
            if t.type not in (tokenize.NL, tokenize.NEWLINE, tokenize.ENDMARKER)
        ]
    except (tokenize.TokenError, SyntaxError):
        return expr, {}  # pandas says what is wrong
    starts = _offsets(expr)

    def offset(pos: tuple[int, int]) -> int:
        return starts[pos[0] - 1] + pos[1]

    lists: dict[str, bool] = {}
    values: dict[str, Any] = {}
    spans: list[tuple[int, int, str]] = []
    i = 0
    while i < len(tokens):
        first = tokens[i]
        negated = i + 3 < len(tokens) and tokens[i + 1].string == "not"
        op = i + (2 if negated else 1)
        name = op + 1
        if (
            first.type in (tokenize.STRING, tokenize.NUMBER)
            and name < len(tokens)
            and tokens[op].string == "in"
            and tokens[name].type == tokenize.NAME
            and tokens[name].string in df.columns
            and (name + 1 == len(tokens) or tokens[name + 1].string not in ".[(")
            and (i == 0 or tokens[i - 1].string not in ".")
        ):
            column = tokens[name].string
            if column not in lists:
                lists[column] = _is_list_column(df[column])
            if lists[column]:
                try:
                    literal = ast.literal_eval(first.string)
                except (ValueError, SyntaxError):
                    literal = None
                if literal is not None:
                    local = f"_exman_in_{len(values)}"
                    values[local] = df[column].map(
                        lambda cell, v=literal: (
                            isinstance(cell, (list, tuple)) and v in cell
                        )
                    )
                    text = f"(not @{local})" if negated else f"@{local}"
                    spans.append((offset(first.start), offset(tokens[name].end), text))
                    i = name + 1
                    continue
        i += 1
    for start, end, text in reversed(spans):
        expr = expr[:start] + text + expr[end:]
    return expr, values


def query_frame(df: pd.DataFrame, expr: str) -> pd.DataFrame:
    """The rows of ``df`` for which the query ``expr`` holds.

    ``tags`` and ``note`` may be named even when no run has any (the frame
    then has no such columns): no run has a tag, none a note.

    :raises QueryError: pandas refuses the query; the message has its reason
        and the columns.
    """
    import pandas as pd

    missing = [c for c in ANNOTATION_COLUMNS if c not in df.columns and c in expr]
    frame = df
    if missing:
        frame = df.copy(deep=False)
        if "tags" in missing:
            frame["tags"] = pd.Series([[] for _ in range(len(df))], dtype=object)
        if "note" in missing:
            frame["note"] = pd.Series([None] * len(df), dtype="str")
        frame.index = df.index
    rewritten, local = _rewrite(frame, expr)
    try:
        kept = frame.query(rewritten, local_dict=local)
    except Exception as e:  # pandas raises a dozen kinds for a bad query
        raise QueryError(
            f"{expr!r}: {type(e).__name__}: {e}; "
            f"the columns are {', '.join(map(str, df.columns))}"
        ) from None
    return df.loc[kept.index] if missing else kept
