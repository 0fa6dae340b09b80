"""Runs grouped by their parameters, a value aggregated over repetitions.

The one aggregation behind :meth:`exman.Index.aggregate`,
:meth:`exman.Index.table`, :meth:`exman.Index.plot` and
:meth:`exman.Index.plot_metrics`. A *group* is the runs that share every
parameter but the ones named ``over`` (the seed, typically) and exman's
own (``name``, ``tmp``, ``config_file``…); each group gets the count of
its values, their mean, sample standard deviation and the half-width of a
95 % confidence interval of the mean (Student's t), and the ids of its
runs, so that a number in a paper can be traced back to them.

pandas and numpy only: no plotting library, so that any view can use it.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ..record.flags import is_exmans
from ..record.store import ExmanError
from .analysis import as_names, quoted
from .frame import Columns
from .query import QueryError, query_frame
from .stats import describe

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

__all__ = ["STATS", "aggregate_frame", "curves", "select", "summarize"]

#: the spreads a table or a plot can show around a mean
STATS = ("std", "ci")


def _hashable(value: Any) -> Any:
    """A hashable stand-in for a cell: lists -> tuples, dicts -> JSON text."""
    if isinstance(value, (list, tuple)):
        return tuple(_hashable(v) for v in value)
    if isinstance(value, dict):
        return json.dumps(value, sort_keys=True, default=repr)
    if isinstance(value, (set, frozenset)):
        return frozenset(_hashable(v) for v in value)
    return value


def _key(value: Any) -> Any:
    """A hashable stand-in where None, NaN and NA are one missing value."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if type(value).__name__ in ("NAType", "NaTType"):
        return None
    return _hashable(value)


def _show(value: Any) -> str:
    """A value for a message: ``0.1``, not ``np.float64(0.1)``."""
    if hasattr(value, "item") and type(value).__module__ == "numpy":
        value = value.item()
    return repr(value)


def _numbers(column: pd.Series) -> Any:
    """The column as float64 values (NaN where missing), or None if some
    value is no number (strings are never read as numbers)."""
    import numpy as np
    import pandas as pd

    if pd.api.types.is_numeric_dtype(column.dtype):
        return column.to_numpy(dtype="float64", na_value=np.nan)
    cells = column.tolist()
    kinds = (int, float, np.integer, np.floating)
    if not all(v is None or isinstance(v, kinds) for v in cells):
        return None
    return np.array([np.nan if v is None else float(v) for v in cells])


def _grouping(
    frame: pd.DataFrame, columns: Columns, over: Sequence[str], extra: Sequence[str]
) -> list[str]:
    """The columns whose values make a group: every parameter but ``over``
    and exman's own, and the ``extra`` ones that are no parameter."""
    group = [
        p
        for p in columns.params
        if p not in over and p in frame.columns and not is_exmans(p, frame.columns)
    ]
    return group + [e for e in extra if e not in group]


def _codes(frame: pd.DataFrame, group: Sequence[str]) -> np.ndarray:
    """The group number of each row, numbered in the order of first rows."""
    import numpy as np
    import pandas as pd

    n = len(frame)
    if not group or not n:
        return np.zeros(n, dtype=np.int64)
    keys = {
        i: (frame[c].map(_key) if frame[c].dtype == object else frame[c])
        for i, c in enumerate(group)
    }
    table = pd.DataFrame({i: k.reset_index(drop=True) for i, k in keys.items()})
    codes = table.groupby(list(keys), dropna=False, sort=False).ngroup()
    return codes.to_numpy(dtype=np.int64)


def _check_over(frame: pd.DataFrame, columns: Columns, over: Sequence[str]) -> None:
    unknown = [o for o in over if o not in columns.params and o not in frame.columns]
    if unknown and len(frame):
        raise ExmanError(
            f"over={list(over)!r}: {quoted(unknown)} is no parameter of these "
            f"runs; their parameters: {quoted(columns.params)}"
        )


def _check_columns(frame: pd.DataFrame, names: Sequence[str], what: str) -> None:
    unknown = [n for n in names if n not in frame.columns]
    if unknown:
        raise ExmanError(
            f"{what}: no column {quoted(unknown)}; the columns are "
            f"{quoted([str(c) for c in frame.columns])}"
        )


def _with_status(
    frame: pd.DataFrame, columns: Columns, status: str | Sequence[str] | None
) -> pd.DataFrame:
    statuses = as_names(status, "status")
    if statuses is None:
        return frame
    return frame[frame[columns.status].isin(statuses).to_numpy()]


def select(frame: pd.DataFrame, query: str | None) -> pd.DataFrame:
    """The rows of ``frame`` that ``query`` keeps (all for None), in the
    query language of ``exman ls`` (see :mod:`exman.look.query`).

    :raises ExmanError: pandas refuses the query; the message lists the columns.
    """
    if not query:
        return frame
    try:
        return query_frame(frame, query)
    except QueryError as e:
        raise ExmanError(f"query {e}") from None


# -- every result, by every parameter ------------------------------------------
def aggregate_frame(
    frame: pd.DataFrame,
    columns: Columns,
    *,
    over: str | Sequence[str] = "seed",
    results: str | Sequence[str] | None = None,
    status: str | Sequence[str] | None = "completed",
) -> pd.DataFrame:
    """Runs grouped by every parameter but ``over``: count, mean and std.

    See :meth:`exman.Index.aggregate`.
    """
    import numpy as np

    over_names = as_names(over, "over") or []
    _check_over(frame, columns, over_names)
    frame = _with_status(frame, columns, status)
    chosen = as_names(results, "results")
    if chosen is None:
        chosen = [r for r in columns.results if _numbers(frame[r]) is not None]
    else:
        missing = [r for r in chosen if r not in columns.results]
        if missing:
            raise ExmanError(
                f"results={results!r}: no result {quoted(missing)}; the runs "
                f"have: {quoted(columns.results)}"
            )
    values = {name: _number_column(frame, name) for name in chosen}
    group = _grouping(frame, columns, over_names, ())
    codes = _codes(frame, group)
    _, first = np.unique(codes, return_index=True)
    out = frame[group].iloc[first].reset_index(drop=True)
    out["count"] = np.bincount(codes, minlength=len(first)).astype("int64")
    for name, numbers in values.items():
        stats = describe(numbers, codes, len(first))
        out[f"{name}_mean"] = stats["mean"].to_numpy()
        out[f"{name}_std"] = stats["std"].to_numpy()
    return out


def _number_column(frame: pd.DataFrame, name: str) -> Any:
    numbers = _numbers(frame[name])
    if numbers is None:
        raise ExmanError(
            f"{name!r} is not a number in every run; choose a numeric column"
        )
    return numbers


# -- one value, by chosen keys ---------------------------------------------------
class _Groups:
    """The groups of ``frame``'s runs and the ``keys`` that name each one.

    :raises ExmanError: a key names no column or is also in ``over``, or
        two groups have the same keys (they differ in a parameter that is
        neither a key nor in ``over``: the message names it and the runs).
    """

    def __init__(
        self,
        frame: pd.DataFrame,
        columns: Columns,
        keys: Sequence[str],
        over: Sequence[str],
        what: str = "the keys",
    ) -> None:
        import numpy as np

        _check_columns(frame, keys, what)
        both = [k for k in keys if k in over]
        if both:
            raise ExmanError(
                f"{quoted(both)} is both a key of the groups and in over="
                f"{list(over)!r}: a parameter either names groups or varies "
                "within them"
            )
        _check_over(frame, columns, over)
        self.keys = list(keys)
        group = _grouping(frame, columns, over, self.keys)
        self.codes = _codes(frame, group)
        _, self.first = np.unique(self.codes, return_index=True)
        self.count = len(self.first)
        self.ids: list[list[int]] = [[] for _ in range(self.count)]
        for code, num in zip(self.codes.tolist(), frame["id"].tolist()):
            self.ids[code].append(int(num))
        self.frame = frame[self.keys].iloc[self.first].reset_index(drop=True)
        self._check_unique(frame, group, what)

    def _check_unique(
        self, frame: pd.DataFrame, group: Sequence[str], what: str
    ) -> None:
        seen: dict[tuple[Any, ...], int] = {}
        named = [self.frame[k].map(_key).tolist() for k in self.keys]
        for code, key in enumerate(zip(*named)):
            other = seen.setdefault(key, code)
            if other == code:
                continue
            a, b = frame.iloc[self.first[other]], frame.iloc[self.first[code]]
            differ = [
                g for g in group if g not in self.keys and _key(a[g]) != _key(b[g])
            ]
            where = ", ".join(f"{k}={v!r}" for k, v in zip(self.keys, key)) or "all"
            runs = ", ".join(map(str, sorted(self.ids[other] + self.ids[code])))
            values = ", ".join(f"{d}={_show(a[d])} or {_show(b[d])}" for d in differ)
            raise ExmanError(
                f"the runs with {where} differ in {values} as well (runs "
                f"{runs}): add {quoted(differ)} to {what}, or to over to pool "
                "those runs, or choose the runs with a query"
            )


def summarize(
    frame: pd.DataFrame,
    columns: Columns,
    *,
    value: str,
    keys: Sequence[str] = (),
    over: str | Sequence[str] = "seed",
    status: str | Sequence[str] | None = "completed",
    what: str = "the keys",
) -> pd.DataFrame:
    """``value`` over the repetitions of each group, one row per group.

    The runs are grouped by every parameter but ``over`` and exman's own;
    ``keys`` must tell the groups apart. Runs without ``value`` are left out.

    :param what: what the keys are, for the error that says to add one.
    :returns: the ``keys``, then ``count``, ``mean``, ``std``, ``ci`` (see
        :func:`describe`) and ``ids`` (the list of the group's run ids), in
        the order of each group's first run.
    :raises ExmanError: ``value`` names no column or is not a number, a key
        names no column, ``over`` no parameter, or two groups have the same
        keys.
    """
    import numpy as np

    over_names = as_names(over, "over") or []
    _check_columns(frame, [value], "value")
    frame = _with_status(frame, columns, status)
    numbers = _number_column(frame, value)
    present = ~np.isnan(numbers)
    frame, numbers = frame[present], numbers[present]
    groups = _Groups(frame, columns, keys, over_names, what)
    stats = describe(numbers, groups.codes, groups.count)
    out = groups.frame.copy()
    for name in ("count", "mean", "std", "ci"):
        out[name] = stats[name].to_numpy()
    out["ids"] = groups.ids
    return out


def curves(
    metrics: pd.DataFrame,
    frame: pd.DataFrame,
    columns: Columns,
    *,
    value: str,
    keys: Sequence[str] = (),
    over: str | Sequence[str] | None = "seed",
    status: str | Sequence[str] | None = "completed",
    smooth: int | None = None,
) -> pd.DataFrame:
    """A logged metric against ``step``, per run or aggregated per group.

    :param metrics: the records, as :meth:`exman.Index.metrics` gives them.
    :param frame: the runs, as :meth:`exman.Index.info` gives them.
    :param over: None: one curve per run; else the runs are grouped as by
        :func:`summarize`, and each step of a group aggregated over them.
    :param smooth: the mean of the last ``smooth`` records of a run (a
        trailing rolling mean) instead of each record, before aggregating.
    :returns: over=None: the ``keys``, ``id``, ``step`` and ``value`` per
        record; else: the ``keys``, ``step``, ``count``, ``mean``, ``std``,
        ``ci`` per group and step, and ``ids`` (the group's runs).
    :raises ExmanError: as :func:`summarize`; ``smooth`` is below 1.
    """
    import numpy as np

    if smooth is not None and (isinstance(smooth, bool) or smooth < 1):
        raise ExmanError(f"smooth={smooth!r}: give a number of records, 1 or more")
    _check_columns(metrics, [value], "value")
    frame = _with_status(frame, columns, status)
    records = metrics[["id", "step", value]]
    records = records[records["id"].isin(frame["id"]).to_numpy()]
    records = records.dropna(subset=["step", value]).reset_index(drop=True)
    if smooth and smooth > 1 and len(records):
        rolling = records.groupby("id", sort=False)[value].rolling(smooth, 1)
        records[value] = rolling.mean().reset_index(level=0, drop=True)
    frame = frame[frame["id"].isin(records["id"]).to_numpy()]
    over_names = as_names(over, "over")
    if over_names is None:
        _check_columns(frame, keys, "by")
        named = frame[["id", *keys]].reset_index(drop=True)
        return named.merge(records, on="id", how="inner", sort=False)
    groups = _Groups(frame, columns, keys, over_names, "by")
    of_run = dict(zip(frame["id"].tolist(), groups.codes.tolist()))
    group_of = records["id"].map(of_run).to_numpy(dtype=np.int64)
    steps = records["step"].to_numpy(dtype="float64")
    pairs = np.stack([group_of, steps], axis=1) if len(records) else np.zeros((0, 2))
    cells, codes = np.unique(pairs, axis=0, return_inverse=True)
    stats = describe(
        records[value].to_numpy(dtype="float64"), codes.ravel(), len(cells)
    )
    out = groups.frame.iloc[cells[:, 0].astype(np.int64)].reset_index(drop=True)
    out["step"] = cells[:, 1]
    for name in ("count", "mean", "std", "ci"):
        out[name] = stats[name].to_numpy()
    out["ids"] = [groups.ids[g] for g in cells[:, 0].astype(np.int64).tolist()]
    return out
