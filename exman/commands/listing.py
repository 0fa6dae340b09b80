"""The runs of a root as a table: ``exman ls``.

:func:`ls` returns the DataFrame to show (the rows and columns asked for);
:func:`render` writes it as a rich table, CSV or JSON. pandas and rich are
imported inside the functions: importing this module costs nothing.
"""

from __future__ import annotations

import datetime
import json
import math
import os
import pathlib
from collections.abc import Sequence
from itertools import repeat

from ..look.plain import PlainColumn, PlainFrame, iso_time
from ..record.store import ExmanError, Root, StrPath
from .selection import find_root
from .terminal import printable

# not typing's: importing typing would slow every command's start
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, TypeAlias

    import pandas as pd

    Frame: TypeAlias = pd.DataFrame | PlainFrame
    Column: TypeAlias = "pd.Series[Any] | PlainColumn"

__all__ = ["FORMATS", "META_COLUMNS", "STATUSES", "ls", "render"]

FORMATS = ("table", "csv", "json")
STATUSES = (
    "completed",
    "failed",
    "interrupted",
    "pruned",
    "running",
    "crashed",
    "unknown",
)
#: columns that describe a run rather than parametrise it
META_COLUMNS = frozenset(
    {
        "id",
        "time",
        "root",
        "status",
        "started",
        "finished",
        "duration",
        "host",
        "pid",
        "error",
        "reason",
        "exit_code",
        "commit",
        "dirty",
        "pid_start",
        # which task of a sweep made the run: a hash, for exman's own use
        "task_key",
        # exman's own flags: how a run was made, not what it computed; tmp
        # and name are not here: where they differ they tell runs apart
        "git_dirty",
        "config",
        "config_file",
        # what the run ran on, and which code: exman show prints them
        "python",
        "platform",
        "slurm_job",
        "code",
        "code_source",
        "stale",
        # shown by default where some run listed has one
        "tags",
        "note",
    }
)
#: always shown by default, around the parameters that differ
LEADING = ("id",)
#: shown by default after the parameters when some run listed has one
ANNOTATED = ("tags", "note")
TRAILING = ("status", "time")


def _cell_key(value: Any) -> str:
    """A hashable stand-in for a cell (lists are not hashable; NaN != NaN)."""
    if isinstance(value, float) and math.isnan(value):
        return "nan"
    return repr(value)


def _varying(df: Frame, columns: Sequence[str]) -> list[str]:
    if len(df) < 2:
        return list(columns)
    same = df.uniform if isinstance(df, PlainFrame) else frozenset()
    return [c for c in columns if c not in same and _distinct(_column(df, c)) > 1]


def _distinct(column: Column) -> int:
    if isinstance(column, PlainColumn):
        if column.kind != "O":  # hashable; None (NaN) is one value
            return len(set(column.values))
        values = column.values
    else:
        import pandas as pd

        if column.dtype.kind in "biufcmM" or isinstance(column.dtype, pd.StringDtype):
            return int(column.nunique(dropna=False))  # NaN counted once
        values = column.tolist()
    # one key per object, not per cell: most cells share their object (None,
    # the strings of a parameter), and a key costs a repr
    objects = {id(value): value for value in values}
    return len({_cell_key(value) for value in objects.values()})


def _any_value(values: list[Any]) -> bool:
    """Whether some cell is neither None nor NaN (the usual None everywhere
    counted in C)."""
    if values.count(None) == len(values):
        return False
    return any(v is not None and v == v for v in values)


def _any(column: Column) -> bool:
    """Whether some cell holds a value (a non-empty list or text)."""
    return any(isinstance(v, (list, str)) and v for v in _values(column))


def _column(df: Frame, name: str) -> Column:
    return df.columns[name] if isinstance(df, PlainFrame) else df[name]


def _values(column: Column) -> list[Any]:
    return column.values if isinstance(column, PlainColumn) else column.tolist()


def _kind(column: Column) -> str:
    """The dtype's kind; ``O`` for text, as pandas' str dtype has it."""
    if isinstance(column, PlainColumn):
        return "O" if column.kind == "S" else column.kind
    return str(column.dtype.kind)


def _names(df: Frame) -> list[str]:
    return (
        list(df.columns) if isinstance(df, PlainFrame) else list(map(str, df.columns))
    )


def _split(value: str | Sequence[str] | None) -> list[str]:
    if value is None:
        return []
    items = value.split(",") if isinstance(value, str) else list(value)
    return [item.strip() for item in items if item.strip()]


def _check_columns(df: Frame, names: Sequence[str], what: str) -> None:
    unknown = [name for name in names if name not in df.columns]
    if unknown:
        raise ExmanError(
            f"{what}: no column {', '.join(map(repr, unknown))}; "
            f"the columns are {', '.join(_names(df))}"
        )


def ls(
    root: StrPath | Root,
    *,
    query: str | None = None,
    sort: str | Sequence[str] | None = None,
    columns: str | Sequence[str] | None = None,
    marked: str | None = None,
    failed: bool = False,
    tmp: bool = False,
    status: str | Sequence[str] | None = None,
    all_columns: bool = False,
    last: int | None = None,
    limit: int | None = None,
    stale: bool = False,
    plain: bool = False,
) -> Any:
    """The runs of a root, filtered, sorted and cut to the columns to show.

    :param query: a pandas query on the columns: ``"lr > 0.01 and model == 'b'"``;
        ``"'baseline' in tags"`` tests a list (see :mod:`exman.look.query`).
    :param sort: columns to sort by, ``-`` in front for descending
        (``"-lr,id"``); default: by id.
    :param columns: the columns to show (``"lr,model"``); default: ``id``,
        the parameters that differ between the runs listed (all of them for
        one run) or that ``sort`` names, ``tags`` and ``note`` when a run
        listed has some, ``status``, ``time`` and, when a run listed failed,
        ``error``.
    :param marked: only the runs marked under this key (``Index.info(key)``).
    :param failed: include the failed runs (in ``fails/``).
    :param tmp: include the tmp runs.
    :param status: only runs with this status (or these, ``"running,crashed"``).
    :param all_columns: every column.
    :param last: only the last ``last`` runs, after sorting (by default the
        newest: the highest ids).
    :param limit: only the first ``limit`` runs, after sorting.
    :param stale: only the runs whose code differs from the code in their
        work tree (or script) now; the default view adds their ``code``.
    :param plain: the runs may come as a
        :class:`~exman.look.plain.PlainFrame` rather than a DataFrame, which
        :func:`render` prints alike, so that pandas is not imported where it
        is not needed (no ``query``, no ``stale``).
    :returns: a DataFrame (or, with ``plain``, maybe a PlainFrame).
    :raises ExmanError: an unknown column, status or mark key, a query
        that pandas refuses, a negative count, or both ``last`` and
        ``limit``; the message says which and lists the choices.
    """
    from ..look.frame import frame_of, plan_frame
    from ..look.gather import Load

    for option, count in (("--last", last), ("--limit", limit)):
        if count is not None and count < 0:
            raise ExmanError(f"{option} {count}: give a number of runs, 0 or more")
    if last is not None and limit is not None:
        raise ExmanError("--last and --limit: give one of them")
    root = root if isinstance(root, Root) else find_root(root)
    if not root.exists():
        raise ExmanError(
            f"{root.path} is not an exman root: it has no runs/ and index/ folders"
        )
    if marked is not None:
        folder = root.mark_dir(marked)
        if not folder.is_dir():
            keys = sorted(p.name for p in root.marked.iterdir() if p.is_dir())
            raise ExmanError(
                f"no runs are marked {marked!r} ({folder} does not exist); "
                f"keys: {', '.join(keys) or 'none yet (exman mark KEY ID)'}"
            )
    load = Load.of(root, True, marked, failed=failed, tmp=tmp)
    plan = plan_frame(load.run(), stale=stale)
    wanted = _split(status)
    bad = [s for s in wanted if s not in STATUSES]
    if bad:
        raise ExmanError(f"--status {', '.join(bad)}: use one of {', '.join(STATUSES)}")
    order = _split(sort)
    shown = _split(columns)
    if plain and not query and not stale:
        from ..look.plain import NotPlain, plain_frame

        rows = plain_frame(plan, os.fspath(root.path))
        try:  # the columns it looks at made, those it shows among them
            chosen = _ls_plain(rows, wanted, order, shown, all_columns, last, limit)
        except NotPlain:
            chosen = None
        if chosen is not None:
            return chosen
    df = frame_of(plan)
    if stale:
        flag = "run_stale" if "run_stale" in df.columns else "stale"
        df = df[df[flag].eq(True)] if flag in df.columns else df.iloc[0:0]
    if wanted:
        has = "status" in df.columns
        df = df[df["status"].isin(wanted)] if has else df.iloc[0:0]
    if query:
        from ..look.query import QueryError, query_frame  # tokenize, ast: asked for

        try:
            df = query_frame(df, query)
        except QueryError as e:
            raise ExmanError(f"--query {e}") from None
    names = [name.lstrip("-") for name in order]
    if order:
        _check_columns(df, names, "--sort")
        try:
            df = df.sort_values(
                names,
                ascending=[not name.startswith("-") for name in order],
                kind="stable",
            )
        except TypeError as e:
            raise ExmanError(f"--sort {','.join(order)}: {e}") from None
    if limit is not None:
        df = df.iloc[:limit]
    elif last is not None:
        df = df.iloc[len(df) - last :]
    if shown:
        _check_columns(df, shown, "--columns")
    else:
        shown = _default_columns(df, names, all_columns, stale)
    return df.loc[:, shown].reset_index(drop=True)


def _default_columns(
    df: Frame, names: Sequence[str], all_columns: bool, stale: bool = False
) -> list[str]:
    """The columns ``ls`` shows unless told (see :func:`ls`)."""
    every = _names(df)
    if all_columns:
        return every
    params = [c for c in every if c not in META_COLUMNS]
    shown = [c for c in LEADING if c in every]
    varying = set(_varying(df, params))
    # a column sorted by explains the order even where it is constant
    shown += [c for c in params if c in varying or c in names]
    shown += [c for c in ANNOTATED if c in every and _any(_column(df, c))]
    shown += [c for c in TRAILING if c in every]
    if stale:
        shown += [c for c in ("code", "run_code") if c in every][:1]
    if "error" in every and _any_value(_values(_column(df, "error"))):
        shown.append("error")  # why the failed runs listed failed
    return shown


#: the kinds of column :func:`_ls_plain` sorts as pandas does
_SORTABLE = frozenset("ifbSM")


def _ls_plain(
    rows: PlainFrame,
    wanted: list[str],
    order: list[str],
    shown: list[str],
    all_columns: bool,
    last: int | None,
    limit: int | None,
) -> PlainFrame | None:
    """What :func:`ls` makes of the DataFrame, made of ``rows``; None where
    pandas is needed (a column that sorts otherwise than here, a column
    named twice).

    :raises NotPlain: a column it looks at is one pandas must type.
    """
    positions = list(range(len(rows)))
    if wanted:
        column = rows.columns.get("status")
        if column is None:
            positions = []
        else:
            keep = set(wanted)
            values = column.values
            positions = [p for p in positions if values[p] in keep]
    names = [name.lstrip("-") for name in order]
    if order:
        _check_columns(rows, names, "--sort")
        if any(rows.columns[n].kind not in _SORTABLE for n in names):
            return None
        for name, key in reversed(list(zip(order, names))):
            positions = _sorted(positions, rows.columns[key].values, name != key)
    if limit is not None:
        positions = positions[:limit]
    elif last is not None:
        positions = positions[len(positions) - last :]
    if len(set(shown)) < len(shown):
        return None
    if len(positions) < len(rows) or positions != sorted(positions):
        rows = rows.take(positions)
    if shown:
        _check_columns(rows, shown, "--columns")
    else:
        shown = _default_columns(rows, names, all_columns)
    return rows.select(shown)


def _sorted(positions: list[int], values: list[Any], descending: bool) -> list[int]:
    """``positions`` stably sorted by their ``values``, missing ones last (as
    pandas' ``sort_values``)."""
    known: list[int] = []
    missing: list[int] = []
    for p in positions:
        value = values[p]
        (known if value is not None and value == value else missing).append(p)
    known.sort(key=values.__getitem__, reverse=descending)
    return known + missing


# -- output ---------------------------------------------------------------------
def _plain(value: Any, root: Root | None = None) -> Any:
    """A cell as a JSON value."""
    if value is None:
        return None
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, pathlib.PurePath):
        if root is not None and value.is_absolute():
            try:
                return value.relative_to(root.path).as_posix()
            except ValueError:
                return str(value)
        return str(value)
    if isinstance(value, (datetime.datetime, datetime.date)):
        text = value.isoformat()
        return "" if text == "NaT" else text
    if isinstance(value, (list, tuple)):
        return [_plain(v, root) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v, root) for k, v in value.items()}
    if hasattr(value, "item") and type(value).__module__ == "numpy":
        return _plain(value.item(), root)
    if type(value).__name__ in ("NaTType", "NAType"):
        return None
    if isinstance(value, (bool, int, float, str)):
        return value
    return str(value)


def _text(value: Any, root: Root | None) -> str:
    value = _plain(value, root)
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, str):
        return value.replace("T", " ", 1) if _looks_like_time(value) else value
    return json.dumps(value, ensure_ascii=False)


def _looks_like_time(text: str) -> bool:
    return len(text) >= 19 and text[4] == "-" and text[10] == "T" and text[13] == ":"


STATUS_STYLE = {
    "completed": "green",
    "failed": "red",
    "crashed": "red",
    "interrupted": "yellow",
    "pruned": "magenta",
    "running": "cyan",
}


def render(df: Frame, format: str = "table", *, root: Root | None = None) -> str:
    """``df`` as text: a table for people, ``csv`` or ``json`` for scripts.

    The table is aligned plain text; on a terminal, a listing that fits on
    the screen is coloured by status (rich).

    :param root: paths under it are written relative to it.
    :raises ExmanError: an unknown format.
    """
    if format not in FORMATS:
        raise ExmanError(f"format {format!r}: use one of {', '.join(FORMATS)}")
    columns = _names(df)
    if isinstance(df, PlainFrame):
        series: list[Column] = list(df.columns.values())
    else:
        series = [df.iloc[:, i] for i in range(len(columns))]
    if format == "table":
        header = [printable(c) for c in columns]
        cells = [_texts(column, root) for column in series]
        if _tty() and len(df) < _lines():
            return _table(header, [list(row) for row in zip(*cells)])
        return _aligned(header, cells)
    if format == "json":
        cols = [_plains(column, root) for column in series]
        rows = list(zip(*cols)) if cols else [() for _ in range(len(df))]
        records = [dict(zip(columns, row)) for row in rows]
        return json.dumps(records, ensure_ascii=False, indent=1)
    import csv
    import io

    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(columns)
    cells = [_csv_cells(column, root) for column in series]
    writer.writerows(zip(*cells) if cells else [() for _ in range(len(df))])
    return buf.getvalue().rstrip("\n")


def _csv_cells(column: Column, root: Root | None) -> list[Any]:
    """The cells of a column for the CSV writer: as JSON values, and lists,
    mappings and booleans in JSON (true/false as the table and JSON write
    them; pandas reads both)."""
    values = _plains(column, root)
    kind = _kind(column)
    if kind in "iufM":  # numbers and times: never a list or a boolean
        return values
    if kind == "b":
        return ["true" if v is True else "false" if v is False else v for v in values]
    return [
        json.dumps(v, ensure_ascii=False) if isinstance(v, (list, dict, bool)) else v
        for v in values
    ]


def _plains(column: Column, root: Root | None) -> list[Any]:
    """The cells of a column as JSON values (as :func:`_plain`)."""
    kind = _kind(column)
    if kind == "M":
        return _times(column, "T")
    values = _values(column)  # Python scalars, far cheaper per cell than numpy's
    if kind in "iub":
        return values
    if kind == "f":
        return [v if v == v else None for v in values]
    if all(type(v) is str for v in values):
        return values
    return [_plain(v, root) for v in values]


def _texts(column: Column, root: Root | None) -> list[str]:
    """The cells of a column as the table shows them (as :func:`_text`)."""
    kind = _kind(column)
    if kind == "M":
        return _times(column, " ")
    values = _values(column)
    if kind in "iu":
        return list(map(str, values))
    if kind == "b":
        return ["true" if v else "false" for v in values]
    if kind == "f":
        return _float_texts(values)
    if set(map(type, values)) <= {str}:  # whole-column checks, in C
        joined = "".join(values)
        if joined.isprintable():  # per character: as every cell is
            if "T" not in joined:  # no cell looks like a time
                return values
            return [
                v.replace("T", " ", 1) if _looks_like_time(v) else v for v in values
            ]
    return [printable(_text(v, root)) for v in values]


def _float_texts(values: list[float]) -> list[str]:
    """Floats as the table writes them (six significant digits), "" for
    NaN: each distinct value formatted once where values repeat (as a
    parameter's do), a look-up for the rest."""
    distinct = set(values)
    if 4 * len(distinct) < len(values) and 0.0 not in distinct:  # -0.0 == 0.0
        texts = dict(zip(distinct, map(format, distinct, repeat(".6g"))))
        cells = list(map(texts.__getitem__, values))
    else:
        cells = list(map(format, values, repeat(".6g")))
    if "nan" in cells:
        return ["" if cell == "nan" else cell for cell in cells]
    return cells


def _times(column: Column, sep: str) -> list[str]:
    """The times of a column in ISO 8601 (``sep`` between date and time), ""
    for none: ``Timestamp.isoformat`` per cell, or numpy's formatting of the
    whole column at once where it writes the same (no time zone, no
    fraction of a second: the times exman records), 20 times cheaper."""
    if isinstance(column, PlainColumn):
        values = column.values
        if set(map(type, values)) == {str}:  # params.yaml's times, checked
            if sep == "T":
                return values
            # one T each (exman.look.plain checked them): all replaced at once
            return "\n".join(values).replace("T", sep).split("\n")
        isos = [iso_time(value) or "" for value in values]
        return isos if sep == "T" else [text.replace("T", sep, 1) for text in isos]
    import numpy as np

    values = column.to_numpy()
    if values.dtype.kind == "M":  # no time zone: numpy's datetime64
        seconds = values.astype("datetime64[s]")
        known = ~np.isnat(values)
        if (seconds[known] == values[known]).all():
            texts: list[str] = np.datetime_as_string(seconds, unit="s").tolist()
            if sep != "T":
                texts = [text.replace("T", sep, 1) for text in texts]
            if not known.all():  # NaT
                texts = [t if ok else "" for t, ok in zip(texts, known.tolist())]
            return texts
    return [v.isoformat(sep=sep) if v == v else "" for v in column.tolist()]


def _aligned(header: list[str], cells: list[list[str]]) -> str:
    """The table as rich prints it without a terminal, at a fraction of its
    cost per cell: columns two spaces apart, ``id`` to the right. An ASCII
    column is padded whole (``str.ljust`` mapped over it), a wider one cell
    by cell; the lines are joined and stripped by maps."""
    columns: list[list[str]] = []
    for name, col in zip(header, cells):
        texts = [name, *col]
        if "".join(texts).isascii():
            width = max(map(len, texts))
            pad = str.rjust if name == "id" else str.ljust
            columns.append(list(map(pad, texts, repeat(width))))
            continue
        from rich.cells import cell_len  # wide characters take two cells

        sizes = [cell_len(text) for text in texts]
        width = max(sizes)
        if name == "id":
            columns.append([" " * (width - n) + t for t, n in zip(texts, sizes)])
        else:
            columns.append([t + " " * (width - n) for t, n in zip(texts, sizes)])
    return "\n".join(map(str.rstrip, map("  ".join, zip(*columns))))


def _table(columns: list[str], rows: list[list[str]]) -> str:
    import io

    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    table = Table(box=None, header_style="bold", pad_edge=False)
    for name in columns:
        # Text, not str: a value like "[red]" or "[/]" is data, not markup
        table.add_column(Text(name), justify="right" if name == "id" else "left")
    styles = STATUS_STYLE if "status" in columns else {}
    at = columns.index("status") if styles else -1
    for row in rows:
        table.add_row(
            *(Text(cell) for cell in row),
            style=styles.get(row[at]) if at >= 0 else None,
        )
    buf = io.StringIO()
    tty = _tty()
    console = Console(file=buf, width=10_000, force_terminal=tty)
    natural = console.measure(table).maximum
    # never squeeze cells to "…": a table wider than the terminal wraps (or
    # scrolls in `less -S`), and a pipe gets whole lines for grep and awk
    if tty:
        import shutil

        console.width = max(shutil.get_terminal_size((100, 24)).columns, natural)
    console.print(table, soft_wrap=False)
    return "\n".join(line.rstrip() for line in buf.getvalue().splitlines())


def _lines() -> int:
    """The terminal's height (shutil: imported for a terminal only)."""
    import shutil

    return shutil.get_terminal_size((100, 24)).lines


def _tty() -> bool:
    import sys

    try:
        return sys.stdout.isatty()
    except (AttributeError, ValueError):  # replaced or closed stdout
        return False
