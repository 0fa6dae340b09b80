"""Rows into one typed DataFrame: the building half of :class:`exman.Index`.

The parameters' columns are typed by pandas from YAML's values; the run
columns (status, times, host, error) and the sweep's come last. See the
docstring of :mod:`exman.index` for every column and its type.
"""

from __future__ import annotations

import datetime
import pathlib
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from ..record.fingerprint import CodeCheck
from ..record.params import TIME_FORMAT
from ..record.run import effective_status
from .analysis import Columns
from .rows import Table

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "ANNOTATION_COLUMNS",
    "ATTEMPT_COLUMNS",
    "ENV_COLUMNS",
    "RUN_COLUMNS",
    "SWEEP_COLUMNS",
    "Plan",
    "build_frame",
    "frame_of",
    "plan_frame",
]

#: the columns every run has, after its parameters and outcome
RUN_COLUMNS = ("status", "started", "finished", "duration", "host", "error")
#: tags and note given with ``exman tag``/``note``: columns only when some
#: run has one
ANNOTATION_COLUMNS = ("tags", "note")
#: the sweep task a run belongs to: columns only when some run has one
SWEEP_COLUMNS = ("sweep", "task", "task_key")
#: how many attempts a run made: a column only when some run was resumed
ATTEMPT_COLUMNS = ("attempts",)
#: what a run ran on and which code: columns only when some run recorded them
ENV_COLUMNS = ("python", "platform", "slurm_job", "code", "code_source")


class Plan:
    """The columns of an index frame before they are typed: what
    :func:`build_frame` makes a DataFrame of, and what ``exman ls`` prints
    without pandas (:mod:`exman.look.plain`).

    ``ids``: the run ids in order; ``order``: the position of each row in the
    columns' values (None: they are in order already); ``columns``: name ->
    ``(how, values)``, in the frame's order, ``how`` saying how the values
    become a column: ``id``, ``root`` (``values`` the pair of place folders
    and run names), ``time`` (params.yaml's text), ``utc`` (µs since the
    epoch), ``float64``, ``int64``, ``object`` (kept as they are) or
    ``infer`` (typed by pandas from the values).
    """

    __slots__ = ("columns", "ids", "info", "order")

    def __init__(
        self,
        ids: list[int],
        order: list[int] | None,
        columns: dict[str, tuple[str, Any]],
        info: Columns,
    ) -> None:
        self.ids = ids
        self.order = order
        self.columns = columns
        self.info = info

    def __len__(self) -> int:
        return len(self.ids)

    def ordered(self, values: list[Any]) -> list[Any]:
        """``values`` (one per row) in id order."""
        index = self.order
        return values if index is None else [values[i] for i in index]


def plan_frame(parts: list[tuple[str, Table]], *, stale: bool = False) -> Plan:
    """The columns of the rows of every place, named and in order.

    :param stale: add a ``stale`` column: whether each run's code differs
        from the code in its source now (see :mod:`exman.record.fingerprint`).

    The tables of ``parts`` are taken over (``parts`` is emptied), so that
    their lists can be freed as the columns are made.
    """
    parts[:] = [(folder, rows) for folder, rows in parts if len(rows)]
    table = Table.concat([rows for _, rows in parts]) if parts else Table()
    folders = [folder for folder, rows in parts for _ in range(len(rows))]
    parts.clear()  # the caller's list too: its tables go as columns are used
    n = len(table)
    raw = table.params.pop("id", [])
    ids = [int(i) for i in raw]
    if n < 2 or all(a <= b for a, b in zip(ids, ids[1:])):
        order: list[int] | None = None
        positions: Sequence[int] = range(n)
    else:
        order = sorted(range(n), key=ids.__getitem__)
        ids = [ids[i] for i in order]
        positions = order
    keys = [k for k in table.keys(positions) if k != "id"]
    for key in ("time", "root"):
        if key not in keys:
            keys.append(key)
    columns: dict[str, tuple[str, Any]] = {"id": ("id", ids)}
    for key in keys:
        if key == "root":
            columns[key] = ("root", (folders, table.names))
        elif key == "time":
            columns[key] = ("time", table.params.pop(key, [None] * n))
        else:
            columns[key] = ("infer", table.params.pop(key, [None] * n))
    params = [k for k in columns if k not in ("id", "time", "root")]
    record = table.record
    sweep_columns = (
        SWEEP_COLUMNS if any(k is not None for k in record["task_key"]) else ()
    )
    attempt_columns = (
        ATTEMPT_COLUMNS if any(k is not None for k in record["attempts"]) else ()
    )
    env_columns = tuple(c for c in ENV_COLUMNS if any(v is not None for v in record[c]))
    if stale:
        check = CodeCheck()  # one look at each work tree or script
        record["stale"] = [
            check.stale(code, source)
            for code, source in zip(record["code"], record["code_source"])
        ]
        env_columns += ("stale",)
    own = RUN_COLUMNS + attempt_columns + sweep_columns + env_columns
    annotated = any(record["tags"]) or any(n is not None for n in record["note"])
    annotation_columns = ANNOTATION_COLUMNS if annotated else ()
    run_names = {c: f"run_{c}" if c in columns else c for c in own}
    taken = {
        *columns,
        *RUN_COLUMNS,
        *ATTEMPT_COLUMNS,
        *SWEEP_COLUMNS,
        *ENV_COLUMNS,
        "stale",
        *run_names.values(),
    }
    results = []
    for key in _first_met(table.results, positions):
        name = f"result_{key}" if key in taken else key
        columns[name] = ("infer", table.results.pop(key))
        results.append(name)
    # after the outcome: a result called note keeps its name, whether or not
    # some run has a note (the annotation is then run_note)
    named = {c: f"run_{c}" if c in columns else c for c in annotation_columns}
    run_names = {
        c: run_names.get(c) or named[c]
        for c in RUN_COLUMNS
        + annotation_columns
        + attempt_columns
        + sweep_columns
        + env_columns
    }
    for column, name in run_names.items():
        if column == "status":
            columns[name] = ("infer", _statuses(record))
        elif column in ("started", "finished"):
            columns[name] = ("utc", record[column])
        elif column == "stale":
            columns[name] = ("object", record[column])
        elif column == "tags":  # a list in every row, so that 'x' in tags works
            columns[name] = ("object", [t or [] for t in record[column]])
        elif column == "duration":
            columns[name] = ("float64", record[column])
        elif column == "attempts":
            columns[name] = ("int64", [1 if v is None else v for v in record[column]])
        else:
            columns[name] = ("infer", record[column])
    info = Columns(params, results, run_names["status"])
    return Plan(ids, order, columns, info)


def build_frame(
    parts: list[tuple[str, Table]], *, stale: bool = False
) -> tuple[pd.DataFrame, Columns]:
    """One DataFrame from the rows of every place, typed and sorted by id,
    and what its columns are (:func:`plan_frame`, then :func:`frame_of`).

    :param stale: add a ``stale`` column: whether each run's code differs
        from the code in its source now (see :mod:`exman.record.fingerprint`).
    """
    plan = plan_frame(parts, stale=stale)
    return frame_of(plan), plan.info


def frame_of(plan: Plan) -> pd.DataFrame:
    """The DataFrame of ``plan``, which it consumes: each list is dropped once
    it is a Series and nothing is copied afterwards, so that a load needs
    little more memory than the frame it returns."""
    import numpy as np
    import pandas as pd

    ordered = plan.ordered
    data: dict[str, Any] = {}
    columns = plan.columns
    for name in list(columns):
        how, values = columns.pop(name)
        if how == "id":
            data[name] = np.asarray(values, dtype=np.int64)
        elif how == "root":
            folders, names = values
            data[name] = _paths(ordered(folders), ordered(names))
        elif how == "time":
            data[name] = _times(ordered(values))
        elif how == "utc":
            data[name] = _utc(ordered(values))
        elif how == "infer":
            data[name] = pd.Series(ordered(values))
        else:
            data[name] = pd.Series(ordered(values), dtype=how)
        del values
    return pd.DataFrame(data, copy=False)


def _first_met(columns: dict[str, list[Any]], order: Iterable[int]) -> list[str]:
    """The keys of ``columns`` by the first row (in id ``order``) with a value."""
    if len(columns) < 2:
        return list(columns)
    found: list[str] = []
    left = dict(columns)
    for p in order:  # usually the first run has every key
        for key, col in list(left.items()):
            if col[p] is not None:
                found.append(key)
                del left[key]
        if not left:
            break
    return found + list(left)


def _paths(folders: list[str], names: list[str]) -> pd.Series:
    """Absolute Paths of the run folders as an object Series."""
    import pandas as pd

    # with_name on a sibling: the cheapest public way to many Paths
    templates = {folder: pathlib.Path(folder, "_") for folder in set(folders)}
    paths = [templates[f].with_name(name) for f, name in zip(folders, names)]
    return pd.Series(paths, dtype=object)


def _statuses(record: dict[str, list[Any]]) -> list[str]:
    out = []
    for i, status in enumerate(record["status"]):
        if status == "running":
            status = effective_status(
                {
                    "status": status,
                    "host": record["host"][i],
                    "pid": record["pid"][i],
                    "pid_start": record["pid_start"][i],
                }
            )
        out.append(status or "unknown")
    return out


def _times(values: list[Any]) -> pd.Series:
    """``time`` of params.yaml as naive datetime64 (NaT where unreadable)."""
    import pandas as pd

    if not all(type(v) is str for v in values):
        values = [
            v if isinstance(v, (str, datetime.datetime)) else None for v in values
        ]
    times = pd.to_datetime(values, format=TIME_FORMAT, errors="coerce")
    # nanoseconds, as exman 0.1.9 documented (pandas 3 parses to microseconds)
    return pd.Series(times.astype("datetime64[ns]"))


def _utc(values: list[Any]) -> pd.Series:
    """Microseconds since the epoch as tz-aware datetime64 in UTC."""
    import numpy as np
    import pandas as pd

    nat = np.iinfo(np.int64).min
    micros = np.fromiter(
        (nat if v is None else v for v in values), dtype=np.int64, count=len(values)
    )
    return pd.Series(pd.DatetimeIndex(micros.view("datetime64[us]")).tz_localize("UTC"))
