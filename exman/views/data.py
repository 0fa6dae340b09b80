"""What every view draws, from one call: :func:`payload`.

The report (``exman report``) and the live page (``exman ui``) both show
the dict it returns, as JSON: the runs table (parameters, results, last
metric values, status, marks, times), the curves each run logged with
:func:`exman.log`, and the details of each run (command, git, files, the
end of its log). Every value is plain JSON (no NaN): the page inserts it as
text, never as markup.
"""

from __future__ import annotations

import datetime
import json
import math
import os
import shlex
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ..look.analysis import metrics_frame
from ..look.files import list_files, tail
from ..look.frame import build_frame
from ..look.gather import Load
from ..look.stats import T_975, Z_975
from ..record.metrics import METRICS_FILE
from ..record.run import DIFF_FILE, LOG_FILE, TRACEBACK_FILE, Run
from ..record.store import ExmanError, StrPath

if TYPE_CHECKING:
    import pathlib

    import pandas as pd

    from ..index import Index

__all__ = ["FORMAT", "CurveCache", "payload", "run_details"]

#: the version of the payload's layout (the page checks it)
FORMAT = 1
#: a run's files listed at most in the details
DETAIL_FILES = 50
#: bytes of a run's git diff kept in the details
DIFF_BYTES = 8192
#: significant digits of a curve's values: enough for any plot, and half
#: the size of the full ones in the report
CURVE_DIGITS = 7
#: the parameter repetitions differ by, when a run has it
REPETITION_NAMES = ("seed", "rep", "repeat", "repetition", "trial")
#: parameters that describe how a run was made, not what it computes
META = frozenset(
    {"time", "commit", "dirty", "git_dirty", "config", "config_file", "task_key"}
)


def payload(
    index: Index,
    *,
    source: StrPath | None = None,
    query: str | None = None,
    failed: bool = True,
    tmp: bool = False,
    curves: bool = True,
    details: bool = True,
    log_lines: int = 20,
    curve_cache: CurveCache | None = None,
) -> dict[str, Any]:
    """The runs of ``index`` as the views draw them: one JSON-ready dict.

    Keys: ``format``, ``root``, ``generated`` (ISO time, UTC), ``columns``
    (``name``, ``kind``: id, param, result or run; ``type``: number, bool,
    string, time or json), ``rows`` (one list of values per run, in the
    order of ``columns``, by id), ``over`` (the parameter repetitions
    differ by, like ``seed``, or None), ``t975`` (the 0.975 quantiles of
    Student's t for 1 to 30 degrees of freedom, then the normal one),
    ``metrics`` (names logged),
    ``curves`` (``{metric: {id: [steps, values]}}``, the values to
    :data:`CURVE_DIGITS` significant digits) and ``details``
    (``{id: {...}}``, see :func:`run_details`).

    :param source: a mark key: only the runs marked under it.
    :param query: a pandas query on the columns, as ``exman ls --query``.
    :param failed: also the runs in ``fails/`` (the views colour them);
        with ``source``, the marked ones are there already.
    :param tmp: also the runs in ``tmp/``.
    :param curves: read every run's ``metrics.jsonl`` for the curves.
    :param details: gather each run's command, files and log tail.
    :param log_lines: lines of each run's log in its details.
    :param curve_cache: the curves of an earlier call, reused while no
        run's ``metrics.jsonl`` changed (``exman ui`` keeps one).
    :raises ExmanError: a bad query; a mark key with ``..``.
    :raises MarkNotFound: no mark ``source``.
    """
    frame, params, results = _load(index, source, failed=failed, tmp=tmp)
    if query:
        try:
            frame = frame.query(query).reset_index(drop=True)
        except Exception as e:  # pandas raises a dozen kinds for a bad query
            raise ExmanError(
                f"--query {query!r}: {type(e).__name__}: {e}; "
                f"the columns are {', '.join(map(str, frame.columns))}"
            ) from None
    root = index.root.path
    folders: list[pathlib.Path] = frame["root"].tolist()
    ids: list[int] = frame["id"].tolist()
    marks = _marks(index)
    columns: list[dict[str, str]] = []
    values: list[list[Any]] = []
    for name in frame.columns:
        if name == "root":
            continue
        if name == "id":
            kind = "id"
        elif name in META:
            kind = "run"
        elif name in params:
            kind = "param"
        elif name in results:
            kind = "result"
        else:
            kind = "run"
        typ, cells = _column(frame[name])
        columns.append({"name": str(name), "kind": kind, "type": typ})
        values.append(cells)
    columns.append({"name": "marks", "kind": "run", "type": "json"})
    values.append([marks.get(f.name, []) for f in folders])
    columns.append({"name": "path", "kind": "run", "type": "string"})
    values.append(_relative(folders, root))
    rows = [list(row) for row in zip(*values)] if values else []
    data: dict[str, Any] = {
        "format": FORMAT,
        "root": str(root),
        "generated": datetime.datetime.now(datetime.timezone.utc).isoformat(
            timespec="seconds"
        ),
        "columns": columns,
        "rows": rows,
        "over": next((n for n in REPETITION_NAMES if n in params), None),
        # the page's 95% intervals use the library's quantiles of Student's t
        "t975": [*T_975, Z_975],
        "metrics": [],
        "curves": {},
        "details": {},
    }
    if curves:
        runs = list(zip(ids, folders))
        found = _curves(runs) if curve_cache is None else curve_cache.get(runs)
        data["metrics"], data["curves"] = found
    if details:
        data["details"] = {
            str(num): run_details(folder, num, lines=log_lines)
            for num, folder in zip(ids, folders)
        }
    return data


def _load(
    index: Index, source: StrPath | None, *, failed: bool, tmp: bool
) -> tuple[pd.DataFrame, list[str], list[str]]:
    """The frame of :meth:`Index.info` and which columns are params, results."""
    # marked runs that failed are marked there: fails/ only for the index
    failed = failed and source is None
    load = Load.of(index.root, index.cache, source, failed=failed, tmp=tmp)
    frame, columns = build_frame(load.run())
    return frame, columns.params, columns.results


def _marks(index: Index) -> dict[str, list[str]]:
    """Run folder name -> the mark keys that link to it."""
    found: dict[str, list[str]] = {}
    marked = index.root.marked
    for link in index.root.mark_links():
        key = os.path.relpath(link.parent, marked)
        found.setdefault(link.name, []).append(key)
    return {name: sorted(keys) for name, keys in found.items()}


def _plain(value: Any) -> Any:
    """A value as JSON has it: NaN and infinities as None, others as text."""
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if hasattr(value, "item"):  # a numpy scalar
        try:
            return _plain(value.item())
        except (TypeError, ValueError):
            pass
    return str(value)


def _column(column: pd.Series) -> tuple[str, list[Any]]:
    """The column's type for the page and its cells as JSON values.

    What :func:`_plain` makes of each cell, without a call per cell where
    the column's dtype (or the cell's type) says the answer: a root of
    100,000 runs has a million cells.
    """
    import numpy as np
    import pandas as pd

    dtype = column.dtype
    if pd.api.types.is_bool_dtype(dtype):
        if dtype == np.bool_:
            return "bool", column.tolist()  # Python bools already
        return "bool", [_plain(v) for v in column.tolist()]
    if pd.api.types.is_datetime64_any_dtype(dtype):
        return "time", _times(column)
    if pd.api.types.is_numeric_dtype(dtype):
        if isinstance(dtype, np.dtype) and dtype.kind in "iu":
            return "number", column.tolist()  # Python ints already
        if isinstance(dtype, np.dtype) and dtype.kind == "f":
            array = column.to_numpy()
            return "number", _blank(array.tolist(), ~np.isfinite(array))
        return "number", [_plain(v) for v in column.tolist()]
    cells = _blank(column.tolist(), column.isna().to_numpy())
    for i, value in enumerate(cells):
        kind = type(value)
        if kind is float:
            if not math.isfinite(value):
                cells[i] = None
        elif value is not None and kind not in _AS_IS:
            cells[i] = _plain(value)
    kinds = set(map(type, cells))
    kinds.discard(type(None))
    if kinds <= {str}:
        return "string", cells
    if kinds <= {int, float} and bool not in kinds:
        return "number", cells
    if kinds <= {bool}:
        return "bool", cells
    return "json", cells


def _times(column: pd.Series) -> list[str | None]:
    """A datetime column as ``2026-01-02 03:04:05`` (naive) or
    ``2026-01-02T03:04:05Z`` (with a time zone, its wall time), to the
    second; None for NaT. numpy writes these ten times faster than pandas'
    ``strftime`` and the same for years 1000 to 9999; others are left to
    ``strftime``."""
    import numpy as np

    tz = getattr(column.dtype, "tz", None) is not None
    missing = column.isna().to_numpy()
    wall = column.dt.tz_localize(None) if tz else column
    seconds = wall.to_numpy().astype("datetime64[s]")
    known = seconds[~missing]
    if len(known) and not (
        np.datetime64("1000-01-01") <= known.min()
        and known.max() < np.datetime64("10000-01-01")
    ):
        fmt = "%Y-%m-%dT%H:%M:%SZ" if tz else "%Y-%m-%d %H:%M:%S"
        return _blank(column.dt.strftime(fmt).tolist(), missing)
    text = np.datetime_as_string(seconds, unit="s")
    text = np.char.add(text, "Z") if tz else np.char.replace(text, "T", " ")
    return _blank(text.tolist(), missing)


#: the types of cells that :func:`_plain` returns as they are
_AS_IS = frozenset({str, int, bool})


def _blank(cells: list[Any], missing: Any) -> list[Any]:
    """``cells`` with None where the boolean array ``missing`` is true."""
    for i in missing.nonzero()[0].tolist():
        cells[i] = None
    return cells


def _relative(folders: Sequence[pathlib.Path], root: pathlib.Path) -> list[str]:
    """Each run folder's path relative to ``root``, as ``os.path.relpath``
    gives it: the text after the root's when a folder's path starts with
    it (both are pathlib's normal form, so the rest is already relative and
    normal unless it holds ``..``), ``relpath`` otherwise (a run that a
    link leads to outside the root)."""
    prefix = str(root).rstrip("/") + "/"
    cut = len(prefix)
    out: list[str] = []
    for folder in folders:
        text = str(folder)
        rest = text[cut:]
        if text.startswith(prefix) and rest and ".." not in rest:
            out.append(rest)
        else:
            out.append(os.path.relpath(folder, root))
    return out


class CurveCache:
    """The curves of the last call, reused while every run's
    ``metrics.jsonl`` has the inode, size and modification time it had
    then (and the runs the same ids): reading every record is most of a
    payload's time, and a page that polls a finished sweep asks for the
    same curves again and again. A file changed less than :data:`SETTLE_NS`
    before it was looked at is not trusted (two writes within one tick of
    the file system's clock leave the same time): the curves are read
    again at the next call. Only the last curves are kept, no records.
    """

    #: a metrics.jsonl younger than this is read again at the next call
    SETTLE_NS = 2_000_000_000

    def __init__(self) -> None:
        self.key: tuple[Any, ...] | None = None
        self.value: Curves | None = None

    def get(self, runs: Sequence[tuple[int, pathlib.Path]]) -> Curves:
        """The curves of ``runs`` (as :func:`payload` draws them)."""
        key, settled = self._identity(runs)  # before the files are read
        if key == self.key and self.value is not None:
            return self.value
        value = _curves(runs)
        self.key, self.value = (key, value) if settled else (None, None)
        return value

    def _identity(
        self, runs: Sequence[tuple[int, pathlib.Path]]
    ) -> tuple[tuple[Any, ...], bool]:
        now = time.time_ns()
        key: list[tuple[Any, ...]] = []
        settled = True
        for num, folder in runs:
            path = os.path.join(folder, METRICS_FILE)
            try:
                st = os.stat(path)
            except OSError:
                key.append((num, path))
                continue
            key.append((num, path, st.st_ino, st.st_size, st.st_mtime_ns))
            settled = settled and st.st_mtime_ns < now - self.SETTLE_NS
        return tuple(key), settled


#: the metrics logged, and for each ``{id: [steps, values]}``
Curves = tuple[list[str], dict[str, dict[str, list[list[Any]]]]]


def _curves(runs: Sequence[tuple[int, pathlib.Path]]) -> Curves:
    """The metrics logged and, for each, every run's ``[steps, values]``."""
    import numpy as np

    frame = metrics_frame(runs)
    metrics = [str(c) for c in frame.columns if c not in ("id", "step", "time")]
    if not len(frame):
        return metrics, {}
    ids = frame["id"].to_numpy()
    cuts = np.flatnonzero(ids[1:] != ids[:-1]) + 1
    starts = [0, *cuts.tolist()]
    ends = [*cuts.tolist(), len(ids)]
    steps = frame["step"].to_numpy(dtype="float64", na_value=np.nan)
    whole = bool(np.isfinite(steps).all() and (steps == np.round(steps)).all())
    step_list: Any = steps.astype("int64") if whole else steps
    out: dict[str, dict[str, list[list[Any]]]] = {}
    for metric in metrics:
        try:
            column = frame[metric].to_numpy(dtype="float64", na_value=np.nan)
        except (TypeError, ValueError):
            continue  # text logged as a metric: nothing to draw
        column = _significant(column)
        finite = np.isfinite(column)
        curves: dict[str, list[list[Any]]] = {}
        for start, end in zip(starts, ends):
            keep = finite[start:end]
            if not keep.any():
                continue
            if np.isnan(steps[start:end]).all():
                xs = np.arange(end - start)[keep].tolist()
            else:
                xs = step_list[start:end][keep].tolist()
            curves[str(int(ids[start]))] = [xs, column[start:end][keep].tolist()]
        if curves:
            out[metric] = curves
    return [m for m in metrics if m in out], out


def _significant(values: Any) -> Any:
    """``values`` (float64) rounded to :data:`CURVE_DIGITS` significant
    digits: each the double nearest to a short decimal, so that JSON writes
    it short. Values of 1e15 and more, and non-finite ones, stay."""
    import numpy as np

    out = values.copy()
    with np.errstate(divide="ignore", invalid="ignore"):
        size = np.floor(np.log10(np.abs(values)))
        decimals = CURVE_DIGITS - 1 - size
        ok = np.isfinite(decimals) & (decimals >= 0) & (decimals <= 22)
        scale = 10.0 ** decimals[ok]
        # scale is an exact power of ten: the division rounds correctly
        out[ok] = np.round(values[ok] * scale) / scale
    return out


def run_details(folder: pathlib.Path, num: int, *, lines: int = 20) -> dict[str, Any]:
    """One run as its own view shows it: record, command, git, files, log.

    Keys: ``id``, ``name``, ``place`` (runs, fails or tmp), ``record`` (the
    run's ``run.json``), ``command`` (the shell line that started it),
    ``cwd``, ``rerun`` (the ``exman rerun`` line), ``diff`` (the start of
    its ``changes.diff``), ``files`` (``[path, size]``), ``more_files``,
    ``log`` (the last ``lines`` of ``log.txt``),
    ``traceback``. Nothing read here raises: a file that cannot be read
    is missing.
    """
    run = Run(folder)
    record = _plain(run.record())
    out: dict[str, Any] = {
        "id": num,
        "name": folder.name,
        "place": folder.parent.name,
        "record": record,
        "rerun": f"exman rerun {num}",
        "command": None,
        "cwd": None,
        "diff": None,
        "files": [],
        "more_files": 0,
        "log": [],
        "traceback": None,
    }
    command = record.get("command") if isinstance(record, dict) else None
    if isinstance(command, dict):
        argv = command.get("orig_argv") or command.get("argv") or []
        if isinstance(argv, list):
            out["command"] = shlex.join(str(a) for a in argv)
        out["cwd"] = command.get("cwd")
    files, more = list_files(folder, DETAIL_FILES)
    out["files"], out["more_files"] = [list(f) for f in files], more
    names = {f[0] for f in files}
    if LOG_FILE in names or more:
        out["log"] = _read(lambda: tail(folder / LOG_FILE, lines), [])
    if TRACEBACK_FILE in names or more:
        text = _read(lambda: (folder / TRACEBACK_FILE).read_text(errors="replace"))
        out["traceback"] = text[-DIFF_BYTES:] if text else None
    if DIFF_FILE in names or more:
        out["diff"] = _read(lambda: _head(folder / DIFF_FILE, DIFF_BYTES))
    return out


def _read(call: Any, default: Any = None) -> Any:
    try:
        return call()
    except OSError:
        return default


def _head(path: pathlib.Path, size: int) -> str:
    with open(path, "rb") as f:
        data = f.read(size + 1)
    text = data[:size].decode("utf-8", errors="replace")
    return text + ("\n…" if len(data) > size else "")


def dumps(data: dict[str, Any]) -> str:
    """``data`` as JSON that is safe inside an HTML ``<script>`` element:
    ``<``, ``>`` and ``&`` escaped, so no value can close the element."""
    text = json.dumps(data, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    return (
        text.replace("<", "\\u003c")
        .replace(">", "\\u003e")
        .replace("&", "\\u0026")
        .replace("\u2028", "\\u2028")
        .replace("\u2029", "\\u2029")
    )
