"""The runs listed by ``exman ls`` written to a file: ``-o runs.parquet``.

CSV and JSON are the text :func:`exman.commands.listing.render` makes;
Parquet keeps the column types (ints, floats, bools, times with their zone,
lists) for pandas, polars or DuckDB elsewhere. pyarrow (the ``parquet``
extra) is imported only for Parquet. Every file is written atomically.
"""

from __future__ import annotations

import io
import json
import pathlib
from typing import TYPE_CHECKING, Any

from ..record.files import atomic_write
from ..record.store import ExmanError, Root, StrPath
from .listing import render

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["EXPORTS", "export", "parquet_frame"]

EXPORTS = ("csv", "json", "parquet")


def export(
    df: pd.DataFrame, path: StrPath, format: str, *, root: Root | None = None
) -> None:
    """Write ``df`` (what :func:`exman.commands.listing.ls` returns) to ``path``.

    :param format: ``csv``, ``json`` (as ``exman ls`` prints them) or
        ``parquet``.
    :param root: paths under it are written relative to it.
    :raises ExmanError: an unknown format, or Parquet without pyarrow.
    """
    if format not in EXPORTS:
        raise ExmanError(f"format {format!r}: use one of {', '.join(EXPORTS)}")
    if format != "parquet":
        atomic_write(path, render(df, format, root=root) + "\n")
        return
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        raise ExmanError(
            "--format parquet needs pyarrow, which is not installed: "
            "pip install 'exman[parquet]' (or write --format csv)"
        ) from None
    buf = io.BytesIO()
    parquet_frame(df, root=root).to_parquet(buf, engine="pyarrow", index=False)
    atomic_write(path, buf.getvalue())


def _path(value: pathlib.PurePath, root: Root | None) -> str:
    if root is not None and value.is_absolute():
        try:
            return value.relative_to(root.path).as_posix()
        except ValueError:
            pass
    return str(value)


def _text(value: Any) -> Any:
    """A cell as text: JSON for lists and dicts; None stays missing."""
    if value is None:
        return None
    if isinstance(value, (list, dict)):
        return json.dumps(value, ensure_ascii=False, default=str)
    return str(value)


def parquet_frame(df: pd.DataFrame, *, root: Root | None = None) -> pd.DataFrame:
    """``df`` with the cells Parquet cannot hold made plain.

    Paths become text (relative to ``root``); a column of dicts, or one
    that Arrow cannot type (lists of numbers and strings, numbers mixed
    with strings), becomes text (JSON for lists and dicts); other columns
    are kept as they are.
    """
    import pyarrow as pa

    out = df.copy()
    for name in out.columns:
        column = out[name]
        if column.dtype != object:
            continue
        values = column.tolist()
        if any(isinstance(v, pathlib.PurePath) for v in values):
            out[name] = [
                _path(v, root) if isinstance(v, pathlib.PurePath) else v for v in values
            ]
            continue
        if any(isinstance(v, dict) for v in values):
            out[name] = [_text(v) for v in values]
            continue
        try:
            pa.array(values, from_pandas=True)
        except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
            out[name] = [_text(v) for v in values]
    return out
