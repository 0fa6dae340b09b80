"""The outcome of many runs as pandas frames: learning curves and aggregates.

:meth:`exman.Index.metrics` and :meth:`exman.Index.aggregate` are thin
wrappers around :func:`metrics_frame` and :func:`aggregate_frame`; the runs
come from :meth:`exman.Index.info`.
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

from ..record.flags import is_exmans
from ..record.metrics import METRICS_FILE
from ..record.store import ExmanError
from .outcome import DamagedMetricsWarning, read_records

if TYPE_CHECKING:
    import pathlib

    import pandas as pd

__all__ = ["Columns", "aggregate_frame", "metrics_frame"]

#: the first columns of :meth:`exman.Index.metrics`
LEADING = ("id", "step", "time")


class Columns(NamedTuple):
    """What the columns of an :meth:`exman.Index.info` frame are.

    ``params``: the parameters (not ``id``, ``time``, ``root``);
    ``results``: the outcome columns; ``status``: the name of the run's
    status column (``run_status`` when a parameter is called ``status``).
    """

    params: list[str]
    results: list[str]
    status: str


def _names(value: str | Sequence[str] | None, what: str) -> list[str] | None:
    if value is None:
        return None
    names = [value] if isinstance(value, str) else list(value)
    if not all(isinstance(n, str) for n in names):
        raise ExmanError(f"{what} must be a name or a list of names, not {value!r}")
    return names


def _choices(names: Sequence[str]) -> str:
    return ", ".join(map(repr, names)) if names else "none"


# -- metrics -------------------------------------------------------------------
def metrics_frame(
    runs: Sequence[tuple[int, pathlib.Path]],
    names: str | Sequence[str] | None = None,
) -> pd.DataFrame:
    """Every record of the runs' ``metrics.jsonl`` as one long DataFrame.

    :param runs: ``(id, run folder)`` of each run, in the order wanted.
    :param names: the metrics to keep (None: all); records with none of
        them are left out.
    :raises ExmanError: a name in ``names`` was logged by none of the runs.
    """
    import pandas as pd

    wanted = _names(names, "names")
    records: list[dict[str, Any]] = []
    ids: list[int] = []
    for num, folder in runs:
        path = os.path.join(folder, METRICS_FILE)
        try:
            got = read_records(path)
        except OSError as e:
            warnings.warn(
                f"exman: run {folder.name}: cannot read {METRICS_FILE}: "
                f"{e.strerror or e}; its metrics are left out",
                DamagedMetricsWarning,
                stacklevel=3,
            )
            continue
        if got.bad:
            more = ", …" if len(got.bad) > 5 else ""
            lines = ", ".join(map(str, got.bad[:5])) + more
            warnings.warn(
                f"exman: run {folder.name}: skipped {len(got.bad)} damaged "
                f"line(s) of {path} (line {lines}): not JSON objects",
                DamagedMetricsWarning,
                stacklevel=3,
            )
        records += got.records
        ids += [num] * len(got.records)
    frame = pd.DataFrame(records) if records else pd.DataFrame()
    del records
    if "id" in frame.columns:  # only a file written by hand can have it
        frame = frame.rename(columns={"id": "metric_id"})
    metrics = [c for c in frame.columns if c not in LEADING]
    if wanted is not None:
        unknown = [n for n in wanted if n not in metrics]
        if unknown:
            raise ExmanError(
                f"no run logged the metric(s) {_choices(unknown)}; the runs "
                f"logged: {_choices(metrics)}"
            )
        metrics = list(dict.fromkeys(wanted))
    frame.insert(0, "id", pd.Series(ids, dtype="int64"))
    if "step" not in frame.columns:
        frame["step"] = pd.Series([None] * len(frame), dtype="float64")
    if "time" in frame.columns:
        # written to the millisecond: through float seconds it would gain noise
        millis = (pd.to_numeric(frame["time"], errors="coerce") * 1000).round()
        frame["time"] = pd.to_datetime(millis, unit="ms", utc=True)
    else:
        utc = "datetime64[ns, UTC]"
        frame["time"] = pd.Series(pd.NaT, index=frame.index, dtype=utc)
    frame = frame[[*LEADING, *metrics]]
    if wanted is not None and len(frame):
        frame = frame.dropna(subset=metrics, how="all").reset_index(drop=True)
    return frame


# -- aggregate -----------------------------------------------------------------
def _hashable(value: Any) -> Any:
    """A hashable stand-in for a cell: lists -> tuples, dicts -> JSON text."""
    if isinstance(value, (list, tuple)):
        return tuple(_hashable(v) for v in value)
    if isinstance(value, dict):
        return json.dumps(value, sort_keys=True, default=repr)
    if isinstance(value, (set, frozenset)):
        return frozenset(_hashable(v) for v in value)
    return value


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
    import pandas as pd

    over_names = _names(over, "over") or []
    params = columns.params
    unknown = [o for o in over_names if o not in params and o not in frame.columns]
    if unknown and len(frame):
        raise ExmanError(
            f"over={over!r}: {_choices(unknown)} is no parameter of these runs; "
            f"their parameters: {_choices(params)}"
        )
    statuses = _names(status, "status")
    if statuses is not None:
        frame = frame[frame[columns.status].isin(statuses).to_numpy()]
    chosen = _names(results, "results")
    if chosen is None:
        chosen = [r for r in columns.results if _numbers(frame[r]) is not None]
    else:
        missing = [r for r in chosen if r not in columns.results]
        if missing:
            raise ExmanError(
                f"results={results!r}: no result {_choices(missing)}; the runs "
                f"have: {_choices(columns.results)}"
            )
    values: dict[str, Any] = {}
    for name in chosen:
        numbers = _numbers(frame[name])
        if numbers is None:
            raise ExmanError(
                f"result {name!r} is not a number in every run; name the numeric "
                "results with results=[...]"
            )
        values[name] = numbers
    group = [
        p
        for p in params
        if p not in over_names
        and p in frame.columns
        and not is_exmans(p, frame.columns)
    ]
    n = len(frame)
    if group and n:
        keys = [
            frame[c].map(_hashable) if frame[c].dtype == object else frame[c]
            for c in group
        ]
        keys = [k.reset_index(drop=True) for k in keys]
        codes = (
            pd.DataFrame({i: k for i, k in enumerate(keys)})
            .groupby(list(range(len(keys))), dropna=False, sort=False)
            .ngroup()
            .to_numpy()
        )
    else:
        codes = np.zeros(n, dtype=np.int64)
    _, first = np.unique(codes, return_index=True)
    out = frame[group].iloc[first].reset_index(drop=True)
    out["count"] = np.bincount(codes, minlength=len(first)) if n else []
    out["count"] = out["count"].astype("int64")
    for name, numbers in values.items():
        grouped = pd.Series(numbers, copy=False).groupby(codes)
        out[f"{name}_mean"] = grouped.mean().to_numpy() if n else []
        out[f"{name}_std"] = grouped.std().to_numpy() if n else []
    return out
