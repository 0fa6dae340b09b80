"""An aggregate as a table for a paper: LaTeX, Markdown or CSV.

:func:`table_frame` lays out the groups of
:func:`exman.look.aggregate.summarize` with one parameter down the rows
and another across the columns (what :meth:`exman.Index.table` returns);
:func:`render_table` writes that frame as text: mean ± std (or ± the 95 %
confidence interval) per cell, the best cell of each column in bold, the
number of runs behind each cell, and a comment naming those runs, so that
the table can be rebuilt and checked.
"""

from __future__ import annotations

import csv
import io
import math
import re
import shlex
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ..record.store import ExmanError
from .aggregate import STATS

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["FORMATS", "render_table", "table_frame"]

FORMATS = ("latex", "markdown", "csv")
#: the fields of each column of :func:`table_frame`; the spread is std or ci
FIELDS = ("mean", "count", "ids")


def _label(value: Any) -> Any:
    """A value as an index label: hashable (lists become tuples), and one
    label, None, for every missing value (NaN is not equal to itself)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if type(value).__name__ in ("NAType", "NaTType"):
        return None
    if isinstance(value, list):
        return tuple(_label(v) for v in value)
    if isinstance(value, dict):
        return tuple(sorted((str(k), _label(v)) for k, v in value.items()))
    return value


def _at(key: tuple[Any, ...], field: str) -> tuple[Any, ...]:
    """The column of ``field`` for the columns' value ``key``."""
    return (*key, field)


def table_frame(
    summary: pd.DataFrame,
    *,
    rows: Sequence[str],
    cols: Sequence[str] = (),
    value: str,
    stat: str = "std",
    attrs: dict[str, Any] | None = None,
) -> pd.DataFrame:
    """The groups of ``summary`` with ``rows`` down and ``cols`` across.

    :param summary: one row per group, from
        :func:`exman.look.aggregate.summarize` with ``keys=rows + cols``.
    :param stat: the spread to keep: ``"std"`` or ``"ci"``.
    :param attrs: kept in the frame's ``attrs`` (what made the table).
    :returns: one row per value of ``rows`` (a MultiIndex for several), in
        the order of their first runs; columns ``(*cols values, field)``
        with the fields ``mean``, ``std`` or ``ci``, ``count`` and ``ids``
        for each value of ``cols`` (``(value, field)`` without ``cols``).
        A cell without runs has NaN, count 0 and no ids.
    :raises ExmanError: an unknown ``stat``, or no ``rows``.
    """
    import pandas as pd

    if stat not in STATS:
        raise ExmanError(f"stat={stat!r}: use one of {', '.join(STATS)}")
    rows, cols = list(rows), list(cols)
    if not rows:
        raise ExmanError("rows: name at least one parameter for the rows")
    fields = ("mean", stat, "count", "ids")
    row_keys: dict[Any, Any] = {}
    col_keys: dict[Any, Any] = {}
    cells: dict[tuple[Any, Any], dict[str, Any]] = {}
    for record in summary.to_dict("records"):
        r = tuple(_label(record[k]) for k in rows)
        c = tuple(_label(record[k]) for k in cols) or (value,)
        row_keys.setdefault(r, r)
        col_keys.setdefault(c, c)
        cells[r, c] = record
    data: dict[tuple[Any, ...], list[Any]] = {}
    for c in col_keys:
        for field in fields:
            empty: Any = [] if field == "ids" else 0 if field == "count" else math.nan
            data[_at(c, field)] = [
                cells[r, c][field] if (r, c) in cells else empty for r in row_keys
            ]
    if len(rows) == 1:
        index = pd.Index([r[0] for r in row_keys], name=rows[0], dtype=object)
    else:
        index = pd.MultiIndex.from_tuples(list(row_keys), names=rows)
    names = [*cols, None] if cols else [None, None]
    columns = pd.MultiIndex.from_tuples(list(data), names=names)
    out = pd.DataFrame(list(zip(*data.values())), index=index, columns=columns)
    if not len(row_keys):
        out = pd.DataFrame(index=index, columns=columns)
    for key in data:
        if key[-1] == "count":
            out[key] = out[key].astype("int64")
        elif key[-1] in ("mean", stat):
            out[key] = out[key].astype("float64")
    out.attrs.update(attrs or {})
    out.attrs.update(rows=rows, cols=cols, value=value, stat=stat)
    return out


# -- text ------------------------------------------------------------------------
class _Cell:
    """One cell of the table: its numbers, and how they are written."""

    def __init__(self, mean: float, spread: float, count: int, ids: list[int]):
        self.mean, self.spread, self.count, self.ids = mean, spread, count, ids
        self.best = False

    def numbers(self) -> tuple[str, str]:
        """mean and spread as text, the mean to the spread's second digit."""
        if math.isnan(self.mean):
            return "", ""
        spread = self.spread
        if not math.isfinite(spread) or spread <= 0 or not math.isfinite(self.mean):
            return f"{self.mean:.4g}", ""
        decimals = 1 - math.floor(math.log10(spread))
        if decimals > 6:
            return f"{self.mean:.3g}", f"{spread:.2g}"
        decimals = max(decimals, 0)
        return f"{self.mean:.{decimals}f}", f"{spread:.{decimals}f}"


class _Layout:
    """A :func:`table_frame` frame read back: labels, cells, best cells."""

    def __init__(self, table: pd.DataFrame, minimize: bool) -> None:
        if not len(table):
            raise ExmanError(
                "the table has no runs, nothing to write: no run with the "
                "status asked for has the value, or the query kept none"
            )
        levels = table.columns.nlevels
        fields = list(dict.fromkeys(c[-1] for c in table.columns))
        spread = [f for f in fields if f in STATS]
        if levels < 2 or spread == [] or not set(FIELDS) <= set(fields):
            raise ExmanError(
                "render_table: give the frame that Index.table returns "
                "(columns: each value of cols, then mean, std or ci, count, ids)"
            )
        attrs = table.attrs
        self.stat = spread[0]
        self.value = str(attrs.get("value", ""))
        self.over = [str(o) for o in attrs.get("over", [])]
        self.row_names = [str(n) for n in table.index.names]
        self.col_names = [str(n) for n in table.columns.names[:-1] if n is not None]
        self.col_keys = list(dict.fromkeys(c[:-1] for c in table.columns))
        self.row_keys = [k if isinstance(k, tuple) else (k,) for k in table.index]
        self.minimize = minimize
        self.attrs = attrs
        # whole columns: a lookup per cell in a MultiIndex row is slow
        columns = [
            zip(
                table[_at(c, "mean")].tolist(),
                table[_at(c, self.stat)].tolist(),
                table[_at(c, "count")].tolist(),
                table[_at(c, "ids")].tolist(),
            )
            for c in self.col_keys
        ]
        self.cells: list[list[_Cell]] = [
            [_Cell(float(m), float(s), int(n), list(ids)) for m, s, n, ids in row]
            for row in zip(*columns)
        ]
        for j in range(len(self.col_keys)):
            means = [r[j].mean for r in self.cells if not math.isnan(r[j].mean)]
            if means:
                best = min(means) if minimize else max(means)
                for r in self.cells:
                    r[j].best = r[j].mean == best
        counts = {c.count for r in self.cells for c in r if c.count}
        self.uniform = len(counts) <= 1
        self.count = counts.pop() if len(counts) == 1 else None

    def col_title(self, key: tuple[Any, ...]) -> str:
        if not self.col_names:
            return str(key[0])
        return ", ".join(_text(v) for v in key)

    def where(self, i: int, j: int) -> str:
        """The cell's keys as ``model=a, dataset=b``."""
        pairs = list(zip(self.row_names, self.row_keys[i]))
        pairs += list(zip(self.col_names, self.col_keys[j]))
        return ", ".join(f"{n}={_text(v)}" for n, v in pairs)

    def summary(self) -> str:
        """What a cell holds, in words."""
        spread = "std" if self.stat == "std" else "95% CI"
        over = ", ".join(self.over) or "repetitions"
        runs = (
            f"{self.count} run{'s' if self.count != 1 else ''} per cell"
            if self.uniform and self.count is not None
            else "(n): runs in the cell"
        )
        best = "lowest" if self.minimize else "highest"
        return (
            f"{self.value}: mean ± {spread} over {over}, {runs}; "
            f"the {best} mean of each column in bold"
        )

    def command(self) -> str:
        """The ``exman table`` command that makes this table again."""
        a = self.attrs
        words = ["exman", "table", "--rows", ",".join(self.row_names)]
        if self.col_names:
            words += ["--cols", ",".join(self.col_names)]
        words += ["--value", self.value, "--over", ",".join(self.over) or "''"]
        words += ["--stat", self.stat]
        if a.get("query"):
            words += ["--query", str(a["query"])]
        if a.get("source"):
            words += ["--marked", str(a["source"])]
        if not self.minimize:
            words.append("--maximize")
        return " ".join(w if w == "''" else shlex.quote(w) for w in words)

    def comments(self) -> list[str]:
        lines = [self.command(), self.summary()]
        for i in range(len(self.row_keys)):
            for j in range(len(self.col_keys)):
                ids = self.cells[i][j].ids
                runs = ", ".join(map(str, ids)) if ids else "none"
                lines.append(f"{self.where(i, j)}: runs {runs}")
        return [_one_line(line) for line in lines]


def _text(value: Any) -> str:
    """A key as a label: a missing one (None, NaN) is empty."""
    if _label(value) is None:
        return ""
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, tuple):
        return "[" + ", ".join(_text(v) for v in value) + "]"
    return str(value)


_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def _one_line(text: str) -> str:
    """Control characters (a newline in a name) as spaces."""
    return _CONTROL.sub(" ", text)


def render_table(
    table: pd.DataFrame, format: str = "latex", *, minimize: bool = True
) -> str:
    """The frame of :func:`table_frame` (:meth:`exman.Index.table`) as text.

    :param format: ``latex`` (a ``tabular``, with ``%`` comments), ``markdown``
        (a pipe table, a line saying what the cells hold, and ``<!-- -->``
        comments) or ``csv`` (one row per cell: the keys, ``mean``, the
        spread, ``count``, ``best`` and ``ids``).
    :param minimize: the best mean of a column is the lowest (True) or the
        highest (False); it is written in bold.
    :raises ExmanError: an unknown format, or a frame of another shape.
    """
    if format not in FORMATS:
        raise ExmanError(f"format {format!r}: use one of {', '.join(FORMATS)}")
    layout = _Layout(table, minimize)
    if format == "latex":
        return _latex(layout)
    if format == "markdown":
        return _markdown(layout)
    return _csv(layout)


# -- LaTeX -----------------------------------------------------------------------
_LATEX = {
    "\\": r"\textbackslash{}",
    "{": r"\{",
    "}": r"\}",
    "$": r"\$",
    "&": r"\&",
    "#": r"\#",
    "^": r"\textasciicircum{}",
    "_": r"\_",
    "%": r"\%",
    "~": r"\textasciitilde{}",
    "<": r"$<$",
    ">": r"$>$",
    "|": r"$|$",
}


def latex_escape(text: str) -> str:
    """``text`` as LaTeX source that prints it (on one line)."""
    return "".join(_LATEX.get(ch, ch) for ch in _one_line(text))


def _latex_number(cell: _Cell, count: bool) -> str:
    mean, spread = cell.numbers()
    if not mean:
        return "--"
    body = f"{mean} \\pm {spread}" if spread else mean
    body = f"\\mathbf{{{body}}}" if cell.best else body
    return f"${body}$" + (f" ({cell.count})" if count else "")


def _latex(layout: _Layout) -> str:
    lines = [f"% {line}" for line in layout.comments()]
    nrows, ncols = len(layout.row_names), len(layout.col_keys)
    lines.append(f"\\begin{{tabular}}{{{'l' * nrows}{'r' * ncols}}}")
    lines.append("\\hline")
    if layout.col_names:
        title = latex_escape(", ".join(layout.col_names))
        lines.append(" & " * nrows + f"\\multicolumn{{{ncols}}}{{c}}{{{title}}} \\\\")
    header = [latex_escape(n) for n in layout.row_names]
    header += [latex_escape(layout.col_title(k)) for k in layout.col_keys]
    lines.append(" & ".join(header) + " \\\\")
    lines.append("\\hline")
    for key, cells in zip(layout.row_keys, layout.cells):
        labels = [latex_escape(_text(v)) for v in key]
        numbers = [_latex_number(c, not layout.uniform) for c in cells]
        lines.append(" & ".join(labels + numbers) + " \\\\")
    lines.append("\\hline")
    lines.append("\\end{tabular}")
    return "\n".join(lines) + "\n"


# -- Markdown --------------------------------------------------------------------
_MARKDOWN = re.compile(r"([\\`*_\[\]<>|#~])")


def markdown_escape(text: str) -> str:
    """``text`` as Markdown that shows it as it is, inside a table cell."""
    return _MARKDOWN.sub(r"\\\1", _one_line(text))


def _markdown_number(cell: _Cell, count: bool) -> str:
    mean, spread = cell.numbers()
    if not mean:
        return "–"
    body = f"{mean} ± {spread}" if spread else mean
    body = f"**{body}**" if cell.best else body
    return body + (f" ({cell.count})" if count else "")


def _markdown(layout: _Layout) -> str:
    header = [markdown_escape(n) for n in layout.row_names]
    for key in layout.col_keys:
        title = layout.col_title(key)
        if layout.col_names:
            title = ", ".join(f"{n}={_text(v)}" for n, v in zip(layout.col_names, key))
        header.append(markdown_escape(title))
    rule = [":--"] * len(layout.row_names) + ["--:"] * len(layout.col_keys)
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join(rule) + " |"]
    for key, cells in zip(layout.row_keys, layout.cells):
        labels = [markdown_escape(_text(v)) for v in key]
        numbers = [_markdown_number(c, not layout.uniform) for c in cells]
        lines.append("| " + " | ".join(labels + numbers) + " |")
    comments = layout.comments()
    lines += ["", markdown_escape(comments[1]) + ".", ""]
    # an HTML comment ends at the first "-->"
    lines += [
        f"<!-- {c.replace('-->', '- ->')} -->" for c in [comments[0], *comments[2:]]
    ]
    return "\n".join(lines) + "\n"


# -- CSV -------------------------------------------------------------------------
def _csv(layout: _Layout) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(
        [
            *layout.row_names,
            *layout.col_names,
            "mean",
            layout.stat,
            "count",
            "best",
            "ids",
        ]
    )
    for key, cells in zip(layout.row_keys, layout.cells):
        for col, cell in zip(layout.col_keys, cells):
            keys = [_text(v) for v in key]
            keys += [_text(v) for v in col] if layout.col_names else []
            mean = "" if math.isnan(cell.mean) else repr(cell.mean)
            spread = "" if math.isnan(cell.spread) else repr(cell.spread)
            best = "true" if cell.best else "false"
            writer.writerow(
                [*keys, mean, spread, cell.count, best, " ".join(map(str, cell.ids))]
            )
    return buf.getvalue()
