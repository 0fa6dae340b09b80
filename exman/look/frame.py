"""Rows into one typed DataFrame: the building half of :class:`exman.Index`.

The parameters' columns are typed by pandas from YAML's values; the run
columns (status, times, host, error) and the sweep's come last. See the
docstring of :mod:`exman.index` for every column and its type.
"""

from __future__ import annotations

import array
import datetime
import pathlib
from collections import namedtuple
from collections.abc import Callable, Iterable, Sequence
from itertools import islice

from ..record.params import TIME_FORMAT
from ..record.run import effective_status
from .cache import no_gc
from .columns import Coded, has_values, nones
from .rows import Table

# not typing's: importing typing would slow every command's start
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, NamedTuple

    import pandas as pd

    from .columns import Column

__all__ = [
    "ANNOTATION_COLUMNS",
    "ATTEMPT_COLUMNS",
    "ENV_COLUMNS",
    "RUN_COLUMNS",
    "SWEEP_COLUMNS",
    "Columns",
    "Plan",
    "build_frame",
    "frame_of",
    "plan_frame",
]

_NUMBER_DTYPES = {"q": "int64", "d": "float64"}

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


if TYPE_CHECKING:

    class Columns(NamedTuple):
        params: list[str]
        results: list[str]
        status: str

else:
    # a named tuple of collections: typing's would import typing
    Columns = namedtuple("Columns", ("params", "results", "status"))
Columns.__doc__ = """What the columns of an :meth:`exman.Index.info` frame are.

``params``: the parameters (not ``id``, ``time``, ``root``);
``results``: the outcome columns; ``status``: the name of the run's
status column (``run_status`` when a parameter is called ``status``).
"""


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
    ``infer`` (typed by pandas from the values). The values are sequences
    of Python values, often a compact column (see
    :mod:`exman.look.columns`).
    """

    __slots__ = ("columns", "ids", "info", "order")

    def __init__(
        self,
        ids: Sequence[int],
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

    def ordered(self, values: Sequence[Any]) -> Sequence[Any]:
        """``values`` (one per row) in id order."""
        index = self.order
        return values if index is None else [values[i] for i in index]


def plan_frame(parts: list[tuple[str, Table]], *, stale: bool = False) -> Plan:
    """The columns of the rows of every place, named and in order.

    :param stale: add a ``stale`` column: whether each run's code differs
        from the code in its source now (see :mod:`exman.record.fingerprint`).

    The tables of ``parts`` are taken over (``parts`` is emptied), so that
    their columns can be freed as the frame is made; a column stays in the
    compact form it has (no Python loop per row where a column is whole).
    """
    parts[:] = [(folder, rows) for folder, rows in parts if len(rows)]
    table = Table.concat([rows for _, rows in parts]) if parts else Table()
    folders: list[str] = []
    for folder, rows in parts:
        folders += [folder] * len(rows)
    parts.clear()  # the caller's list too: its tables go as columns are used
    n = len(table)
    raw = table.params.pop("id", [])
    ids = raw if isinstance(raw, array.array) else array.array("q", raw)
    del raw
    if n < 2 or all(map(int.__le__, ids, islice(ids, 1, None))):
        order: list[int] | None = None
        positions: Sequence[int] = range(n)
    else:
        order = sorted(range(n), key=ids.__getitem__)
        ids = array.array("q", [ids[i] for i in order])
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
            columns[key] = ("time", _pop(table.params, key) or nones(n))
        else:
            columns[key] = ("infer", _pop(table.params, key) or nones(n))
    params = [k for k in columns if k not in ("id", "time", "root")]
    record = table.record
    sweep_columns = SWEEP_COLUMNS if has_values(record["task_key"]) else ()
    attempt_columns = ATTEMPT_COLUMNS if has_values(record["attempts"]) else ()
    env_columns = tuple(c for c in ENV_COLUMNS if has_values(record[c]))
    if stale:
        from ..record.fingerprint import CodeCheck  # not for a listing without

        check = CodeCheck()  # one look at each work tree or script
        record["stale"] = [
            check.stale(code, source)
            for code, source in zip(record["code"], record["code_source"])
        ]
        env_columns += ("stale",)
    own = RUN_COLUMNS + attempt_columns + sweep_columns + env_columns
    annotated = _any_tags(record["tags"]) or has_values(record["note"])
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


def prepare() -> None:
    """Import what a frame is built with: a load calls it while another
    process reads runs (see :mod:`exman.look.fork`)."""
    import pandas  # noqa: F401


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
    """The DataFrame of ``plan``, which it consumes.

    Each column is dropped once it is a Series, a compact column becomes a
    Series whole, without a Python value per row, the ``root`` Paths are
    made last (when the rest is freed), and nothing is copied afterwards,
    so that a load needs little more time and memory than the frame.
    """
    with no_gc():  # the Paths are many new objects; the rest, a few arrays
        return _frame_of(plan)


def _frame_of(plan: Plan) -> pd.DataFrame:
    import numpy as np
    import pandas as pd

    index = None if plan.order is None else np.asarray(plan.order, dtype=np.intp)
    data: dict[str, Any] = {}
    root: tuple[str, Any] | None = None
    columns = plan.columns
    for name in list(columns):
        how, values = columns.pop(name)
        if how == "id":
            data[name] = _series(values, None, "int64")
        elif how == "root":
            data[name] = None  # made last, when the rest is gone
            root = (name, values)
        elif how == "time":
            data[name] = _times(values, index)
        elif how == "utc":
            data[name] = _utc(values, index)
        elif how == "infer":
            data[name] = _series(values, index)
        else:
            data[name] = _series(values, index, how)
        del values
    if root is not None:
        name, (folders, names) = root
        del root
        data[name] = _paths(folders, names, index)
    return pd.DataFrame(data, copy=False)


def _pop(columns: dict[str, Column], key: str) -> Column | None:
    return columns.pop(key) if key in columns else None


def _first_met(columns: dict[str, Column], order: Iterable[int]) -> list[str]:
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


def _ordered(values: Sequence[Any], index: Any) -> list[Any]:
    return list(values) if index is None else [values[i] for i in index.tolist()]


def _objects(column: Coded, index: Any) -> Any:
    """A coded column as an object ndarray, in id order."""
    import numpy as np

    codes = np.frombuffer(column.codes, dtype=column.codes.typecode)
    if index is not None:
        codes = codes[index]
    lookup = np.empty(len(column.values), dtype=object)
    lookup[:] = column.values
    return lookup[codes]


def _series(column: Column, index: Any, dtype: str | None = None) -> pd.Series:
    """One column as a Series, typed as pandas types the list of its values."""
    import numpy as np
    import pandas as pd

    if isinstance(column, array.array) and len(column):
        values = np.frombuffer(column, dtype=_NUMBER_DTYPES[column.typecode])
        if index is not None:
            values = values[index]
        out = pd.Series(values, copy=False)
        return out if dtype is None else out.astype(dtype)
    if isinstance(column, Coded) and len(column):
        codes = np.frombuffer(column.codes, dtype=column.codes.typecode)
        counts = np.bincount(codes, minlength=len(column.values)).tolist()
        used = [v for v, count in zip(column.values, counts) if count]
        # the dtype pandas gives a list follows from which values it holds,
        # not from how often each comes
        inferred = pd.Series(used, dtype=dtype).dtype
        return pd.Series(_objects(column, index), dtype=inferred, copy=False)
    return pd.Series(_ordered(column, index), dtype=dtype)


def _any_tags(column: Column) -> bool:
    if isinstance(column, Coded):
        return any(column.values) and has_values(column)
    return any(column)


def _paths(folders: list[str], names: list[str], index: Any) -> pd.Series:
    """Absolute Paths of the run folders as an object Series."""
    import pandas as pd

    makers = {folder: _child(pathlib.Path(folder)) for folder in set(folders)}
    paths = [makers[f](name) for f, name in zip(folders, names)]
    return pd.Series(
        _ordered(paths, index) if index is not None else paths, dtype=object
    )


def _child(base: pathlib.Path) -> Callable[[str], pathlib.Path]:
    """What makes the Path of a folder named in ``base``: ``base / name``,
    or where pathlib has it (3.11 to 3.13), the method its ``iterdir``
    uses, which does not parse the name again (a third of the time of
    10,000 Paths; a name listed in a folder is one part, never ``/``)."""
    child = getattr(base, "_make_child_relpath", None)
    return child if callable(child) else base.__truediv__


def _statuses(record: dict[str, Column]) -> Column:
    """The status of each run, worked out for those that say running."""
    column = record["status"]
    if isinstance(column, Coded) and "running" not in column.values:
        return Coded([s or "unknown" for s in column.values], column.codes)
    out = []
    for i, status in enumerate(column):
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


def _times(column: Column, index: Any) -> pd.Series:
    """``time`` of params.yaml as naive datetime64 (NaT where unreadable)."""
    import pandas as pd

    values = _ordered(column, index)
    if set(map(type, values)) != {str}:
        values = [
            v if isinstance(v, (str, datetime.datetime)) else None for v in values
        ]
    times = pd.to_datetime(values, format=TIME_FORMAT, errors="coerce")
    # nanoseconds, as exman 0.1.9 documented (pandas 3 parses to microseconds)
    return pd.Series(times.astype("datetime64[ns]"))


def _utc(column: Column, index: Any) -> pd.Series:
    """Microseconds since the epoch as tz-aware datetime64 in UTC."""
    import numpy as np
    import pandas as pd

    if isinstance(column, array.array) and column.typecode == "q" and len(column):
        micros = np.frombuffer(column, dtype=np.int64)
    else:
        nat = np.iinfo(np.int64).min
        micros = np.fromiter(
            (nat if v is None else v for v in column), dtype=np.int64, count=len(column)
        )
    if index is not None:
        micros = micros[index]
    return pd.Series(pd.DatetimeIndex(micros.view("datetime64[us]")).tz_localize("UTC"))
