"""How a run folder becomes a row, and :class:`Table`: many rows as columns.

A row is what :class:`exman.Index` shows of a run: the values of its
``params.yaml`` (typed by YAML: nothing is guessed from strings), a few
fields of its ``run.json``, for a run that failed or was interrupted the
last line of its ``traceback.txt``, its tags and note (``annotations.json``),
and its outcome: the values of its
``results.json`` and the last value of each other metric of its
``metrics.jsonl`` (see :mod:`exman.look.outcome`). A run that cannot be used (no or
invalid ``params.yaml``, an unsafe tag, no integer ``id``, which exman
writes last) gives a reason instead.
"""

from __future__ import annotations

import array
import datetime
import os
from collections.abc import Iterable, Sequence

from ..record import snapshot
from ..record.annotations import ANNOTATIONS_FILE, parse_annotations
from ..record.params import PARAMS_FILE
from ..record.run import RUN_FILE, TRACEBACK_FILE
from . import columns
from .outcome import parse_json, read_file, read_outcome

# not typing's: importing typing would slow every command's start
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from .columns import Column

    Parsed = tuple[dict[str, Any] | None, dict[str, Any], dict[str, Any], str | None]

__all__ = ["RECORD_FIELDS", "RowBuilder", "Table", "read_run"]

#: what is kept of run.json; ``started``/``finished`` as microseconds since
#: the epoch (UTC), ``error`` the last line of the traceback; ``tags`` (a
#: list, None for none) and ``note`` from annotations.json
RECORD_FIELDS = (
    "status",
    "started",
    "finished",
    "duration",
    "host",
    "pid",
    "pid_start",
    "error",
    "sweep",
    "task",
    "task_key",
    "attempts",
    "python",
    "platform",
    "slurm_job",
    "code",
    "code_source",
    "tags",
    "note",
)
# annotations.json is never a link: exman replaces it, never writes through it
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_ERROR_STATUSES = frozenset({"failed", "interrupted"})
_EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)
_MICROSECOND = datetime.timedelta(microseconds=1)
_SECTIONS = ("params", "record", "results")
_NUMBER = (int, float)
#: rows taken a stretch at a time when a stretch holds this many on average
_SPAN_ROWS = 16


# -- one run folder -----------------------------------------------------------
def _last_line(data: bytes) -> str | None:
    text = data[-8192:].decode("utf-8", errors="replace")
    for line in reversed(text.splitlines()):
        if line.strip():
            return line.strip()
    return None


def _why(e: BaseException) -> str:
    mark = getattr(e, "problem_mark", None)
    problem = getattr(e, "problem", None)
    if mark is not None and problem:
        return f"{problem} (line {mark.line + 1})"
    text = str(e).strip().splitlines()
    return text[0] if text else type(e).__name__


def _as(value: Any, types: tuple[type, ...]) -> Any:
    return value if isinstance(value, types) and not isinstance(value, bool) else None


def _epoch_us(value: Any) -> int | None:
    """An ISO 8601 time (local when it has no offset) as µs since the epoch."""
    if not isinstance(value, str):
        return None
    try:
        when = datetime.datetime.fromisoformat(value)
    except ValueError:
        return None
    if when.tzinfo is None:
        when = when.astimezone()
    return (when - _EPOCH) // _MICROSECOND


def _record(data: dict[str, Any]) -> dict[str, Any]:
    """The fields of a run.json that a row shows, each None unless it has
    the type exman writes (JSON gives exact types: ``type(v) is int`` leaves
    booleans out), read once per run of a first load: no call per field."""
    get = data.get
    running = (status := get("status")) == "running"
    sweep = sweep if type(sweep := get("sweep")) is dict else {}
    env = env if type(env := get("env")) is dict else {}
    slurm = slurm if type(slurm := env.get("slurm")) is dict else {}
    code = code if type(code := get("code")) is dict else {}
    return {
        "status": status if type(status) is str else None,
        "started": _epoch_us(get("started")),
        "finished": _epoch_us(get("finished")),
        "duration": v if type(v := get("duration")) in _NUMBER else None,
        "host": v if type(v := get("host")) is str else None,
        # only a running run's process matters
        "pid": v if running and type(v := get("pid")) is int else None,
        "pid_start": v if running and type(v := get("pid_start")) is int else None,
        "sweep": v if type(v := sweep.get("name")) is str else None,
        "task": v if type(v := sweep.get("task")) is int else None,
        "task_key": v if type(v := sweep.get("key")) is str else None,
        # only a resumed run says: the others made one attempt
        "attempts": v if type(v := get("attempt")) is int else None,
        "python": v if type(v := env.get("python")) is str else None,
        "platform": v if type(v := env.get("platform")) is str else None,
        "slurm_job": v if type(v := slurm.get("job_id")) is str else None,
        "code": v if type(v := code.get("fingerprint")) is str else None,
        "code_source": v if type(v := code.get("source")) is str else None,
    }


def read_run(folder: str, dir_fd: int | None, memo: dict[str, str]) -> Parsed:
    """Parse the run in ``folder`` (relative to ``dir_fd`` when given).

    The parameters come from the copy in run.json while params.yaml is the
    file it was made from (see :mod:`exman.record.snapshot`), else from
    params.yaml.

    :returns: ``(params, record, outcome, problem)``. ``params`` is None
        when the run cannot be used (``problem`` says why); otherwise
        ``problem`` is set when its run.json or results.json is damaged
        (the run is kept, its status unknown or its results missing).
    """
    problem = None
    try:
        data: Any = parse_json(read_file(f"{folder}/{RUN_FILE}", dir_fd))
        if not isinstance(data, dict):
            raise ValueError("not a JSON object")
    except FileNotFoundError:
        data = None  # a run made by exman 0.1.9
    except (OSError, ValueError) as e:
        data = {"status": "unknown"}
        problem = f"unreadable {RUN_FILE} ({_why(e)}): its status is unknown"
    params: Any = None
    raw: bytes | None = None  # params.yaml's text, when it was parsed
    if data is not None and snapshot.FIELD in data:
        try:
            st = os.stat(f"{folder}/{PARAMS_FILE}", dir_fd=dir_fd)
        except OSError:
            pass  # reading it says what is wrong
        else:
            params = snapshot.values(data, st)
    if params is None:
        try:
            raw = read_file(f"{folder}/{PARAMS_FILE}", dir_fd)
        except FileNotFoundError:
            return None, {}, {}, f"no {PARAMS_FILE}"
        except OSError as e:
            return None, {}, {}, f"cannot read {PARAMS_FILE}: {e.strerror or e}"
        from .fastyaml import load_document  # PyYAML: only for a run without a copy

        try:
            params = load_document(raw, memo)
        except Exception as e:  # any failure of the YAML loader is a bad file
            return None, {}, {}, f"invalid {PARAMS_FILE}: {_why(e)}"
    if not isinstance(params, dict):
        what = "empty" if params is None else f"a {type(params).__name__}"
        return None, {}, {}, f"{PARAMS_FILE} is {what}, not 'key: value' pairs"
    num = params.get("id")
    if type(num) is not int or not -(2**63) <= num < 2**63:
        return None, {}, {}, f"{PARAMS_FILE} has no integer id (a half-written file?)"
    # the copy's keys are strings (JSON's are); YAML's may be ints, bools...
    if raw is not None and not all(type(k) is str for k in params):
        params = {str(k): v for k, v in params.items()}
    record: dict[str, Any] = {}
    written = data  # run.json, with the copies of the outcome made at the end
    if data is not None:
        record = _record(data)
    if data is None or record["status"] in _ERROR_STATUSES:
        try:
            traceback = read_file(f"{folder}/{TRACEBACK_FILE}", dir_fd)
            record["error"] = _last_line(traceback)
        except OSError:
            record["error"] = _as((data or {}).get("reason"), (str,))
    tags: list[str] = []
    note: str | None = None
    annotations = f"{folder}/{ANNOTATIONS_FILE}"
    # most runs have none: a look at the name (no exception to raise) costs
    # half as much as a failed open
    if os.access(annotations, os.F_OK, dir_fd=dir_fd):
        try:
            data = read_file(annotations, dir_fd, _NOFOLLOW)
            tags, note = parse_annotations(data)
        except OSError:  # a link, or unreadable: no annotations
            pass
    record["tags"] = tags or None
    record["note"] = note
    outcome, damaged = read_outcome(folder, dir_fd, written)
    if damaged is not None:
        problem = damaged if problem is None else f"{problem}; {damaged}"
    return params, record, outcome, problem


# -- many rows ----------------------------------------------------------------
def inode_column(values: Iterable[int] = ()) -> array.array[int]:
    """A compact column of inode numbers (unsigned 64-bit)."""
    return array.array("Q", values)


def ctime_column(values: Iterable[int] = ()) -> array.array[int]:
    """A compact column of ``st_ctime_ns`` values (-1: to be read again)."""
    return array.array("q", values)


def _from_bytes(data: Any, n: int, typecode: str) -> array.array[int] | None:
    if not isinstance(data, bytes) or len(data) != 8 * n:
        return None
    values = array.array(typecode)
    values.frombytes(data)
    return values


class Table:
    """Runs of one place as columns, one row per run folder.

    ``params`` holds one column per parameter key (None where a run has no
    such key or a null value); ``schemas`` the distinct key tuples and
    ``schema`` the one of each row, so that a key present with null values
    only is still known. ``root`` is not stored: it is where the folder is.
    ``ctimes`` holds -1 for a row that must be read again. ``results``
    holds one column per outcome name (results and last metric values; None
    where a run has none), in the order the names were first met. Each
    column is a sequence of Python values in a compact form (see
    :mod:`exman.look.columns`); change one with
    :func:`~exman.look.columns.set_cell`.
    """

    __slots__ = (
        "ctimes",
        "inos",
        "names",
        "params",
        "record",
        "results",
        "schema",
        "schemas",
    )

    def __init__(
        self,
        names: list[str] | None = None,
        inos: array.array[int] | None = None,
        ctimes: array.array[int] | None = None,
        schemas: list[tuple[str, ...]] | None = None,
        schema: list[int] | None = None,
        params: dict[str, Column] | None = None,
        record: dict[str, Column] | None = None,
        results: dict[str, Column] | None = None,
    ) -> None:
        self.names: list[str] = [] if names is None else names
        self.inos: array.array[int] = inode_column() if inos is None else inos
        self.ctimes: array.array[int] = ctime_column() if ctimes is None else ctimes
        self.schemas: list[tuple[str, ...]] = [] if schemas is None else schemas
        self.schema: list[int] = [] if schema is None else schema
        self.params: dict[str, Column] = {} if params is None else params
        self.record: dict[str, Column] = (
            {f: [] for f in RECORD_FIELDS} if record is None else record
        )
        self.results: dict[str, Column] = {} if results is None else results

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Table):
            return NotImplemented
        return all(getattr(self, k) == getattr(other, k) for k in self.__slots__)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"<Table of {len(self)} runs>"

    def __len__(self) -> int:
        return len(self.names)

    def take(self, positions: Sequence[int]) -> Table:
        """The rows at ``positions``, in that order."""
        if len(positions) == len(self) and all(i == p for i, p in enumerate(positions)):
            return self
        spans = _spans(positions)
        if spans is not None:  # a few stretches of rows: a slice of each column
            taken = Table.interleave([self], [(0, a, b) for a, b in spans])
            if taken is self:
                return self
        else:
            taken = Table(
                names=[self.names[p] for p in positions],
                inos=inode_column(self.inos[p] for p in positions),
                ctimes=ctime_column(self.ctimes[p] for p in positions),
                schemas=list(self.schemas),
                schema=[self.schema[p] for p in positions],
                **{
                    section: {
                        k: columns.take(col, positions)
                        for k, col in getattr(self, section).items()
                    }
                    for section in _SECTIONS
                },
            )
        return taken._pruned()

    def updated(self, changed: Sequence[int], new: Table) -> Table:
        """This table with its rows at ``changed`` (in increasing order)
        replaced by the first rows of ``new``, one for one, and the other
        rows of ``new`` after its own: a load's rows when some runs changed
        and others came. Each row is copied once."""
        spans: list[tuple[int, int, int]] = []
        start = 0
        for i, p in enumerate(changed):
            spans += [(0, start, p), (1, i, i + 1)]
            start = p + 1
        spans += [(0, start, len(self)), (1, len(changed), len(new))]
        updated = Table.interleave([self, new], spans)
        return updated if updated is self else updated._pruned()

    def _pruned(self) -> Table:
        """This table without the schemas, parameters and results that none
        of its rows has (changed in place)."""
        used = sorted(set(self.schema))
        if len(used) < len(self.schemas):
            remap = {old: new for new, old in enumerate(used)}
            self.schemas = [self.schemas[s] for s in used]
            self.schema = [remap[s] for s in self.schema]
        keys = {k for s in self.schemas for k in s}
        self.params = {k: c for k, c in self.params.items() if k in keys}
        self.results = {k: c for k, c in self.results.items() if columns.has_values(c)}
        return self

    @staticmethod
    def concat(tables: Sequence[Table]) -> Table:
        """The rows of ``tables`` one after the other."""
        return Table.interleave(tables, [(k, 0, len(t)) for k, t in enumerate(tables)])

    @staticmethod
    def interleave(
        tables: Sequence[Table], spans: Sequence[tuple[int, int, int]]
    ) -> Table:
        """For each ``(k, start, end)`` of ``spans``, the rows ``start`` to
        ``end`` of ``tables[k]``, one span after the other: the pieces of a
        load read by two processes put back in their order. A slice of each
        column per span, so that the rows are copied once, into the result."""
        spans = [(k, a, b) for k, a, b in spans if b > a]
        if len(spans) == 1:
            k, a, b = spans[0]
            if a == 0 and b == len(tables[k]):
                return tables[k]
        out = Table()
        index: dict[tuple[str, ...], int] = {}
        for k, a, b in spans:
            t = tables[k]
            remap = [index.setdefault(s, len(index)) for s in t.schemas]
            out.schema += [remap[s] for s in t.schema[a:b]]
            out.names += t.names[a:b]
            out.inos += t.inos[a:b]
            out.ctimes += t.ctimes[a:b]
        out.schemas = list(index)
        used = dict.fromkeys(k for k, _, _ in spans)
        for section in ("params", "record", "results"):
            parts = [getattr(t, section) for t in tables]
            keys = dict.fromkeys(key for k in used for key in parts[k])
            getattr(out, section).update(
                (
                    key,
                    columns.concat(
                        [
                            (columns.part(parts[k].get(key), a, b), b - a)
                            for k, a, b in spans
                        ]
                    ),
                )
                for key in keys
            )
        return out

    def keys(self, order: Iterable[int] | None = None) -> list[str]:
        """Every parameter key, as first met going through rows in ``order``."""
        keys: dict[str, None] = {}
        seen: set[int] = set()
        for p in range(len(self)) if order is None else order:
            s = self.schema[p]
            if s not in seen:
                seen.add(s)
                keys.update(dict.fromkeys(self.schemas[s]))
                if len(seen) == len(self.schemas):
                    break
        return list(keys)

    # -- (de)serialisation ----------------------------------------------------
    def to_plain(self) -> dict[str, Any]:
        def plain(section: dict[str, Column]) -> dict[str, Any]:
            return {k: columns.to_plain(col) for k, col in section.items()}

        return {
            "names": self.names,
            "inos": self.inos.tobytes(),
            "ctimes": self.ctimes.tobytes(),
            "schemas": [list(s) for s in self.schemas],
            "schema": array.array("q", self.schema).tobytes(),
            "params": plain(self.params),
            "record": plain(self.record),
            "results": plain(self.results),
        }

    @classmethod
    def from_plain(cls, data: Any) -> Table | None:
        """The table stored as ``data``, or None if it is not a valid one.

        Its columns are taken out of ``data`` as they are read, so that the
        two are not held whole at once.
        """
        try:
            names, schemas = data["names"], data["schemas"]
            if not isinstance(names, list) or not isinstance(schemas, list):
                return None
            n = len(names)
            inos = _from_bytes(data["inos"], n, "Q")
            times = _from_bytes(data["ctimes"], n, "q")
            numbers = _from_bytes(data["schema"], n, "q")
            sections = [
                _columns(data.pop(k), n) for k in ("params", "record", "results")
            ]
        except (TypeError, KeyError, AttributeError):
            return None
        params, record, results = sections
        if (
            inos is None
            or times is None
            or numbers is None
            or params is None
            or record is None
            or results is None
            or set(record) != set(RECORD_FIELDS)
            or not all(isinstance(s, list) for s in schemas)
            or not set(map(type, names)) <= {str}
            or (n and not 0 <= min(numbers) <= max(numbers) < len(schemas))
        ):
            return None
        keys = {k for s in schemas for k in s}
        if not all(type(k) is str for k in keys) or not set(params) <= keys:
            return None
        if not all(type(k) is str for k in results):
            return None
        schema = numbers.tolist()
        return cls(
            names,
            inos,
            times,
            [tuple(s) for s in schemas],
            schema,
            params,
            record,
            results,
        )


def _columns(plain: Any, n: int) -> dict[str, Column] | None:
    """The columns of one section of a stored table, emptying ``plain``."""
    if not isinstance(plain, dict):
        return None
    out: dict[str, Column] = {}
    for key in list(plain):
        column = columns.from_plain(plain.pop(key), n)
        if column is None:
            return None
        out[key] = column
    return out


class RowBuilder:
    """Collects parsed runs into a :class:`Table`, one row at a time."""

    def __init__(self) -> None:
        self.table = Table()
        self._schemas: dict[tuple[str, ...], int] = {}
        self._strings: dict[str, str] = {}
        # the columns as lists while rows are added
        self._params: dict[str, list[Any]] = {}
        # each field's column as rows are added: a row's record is not kept
        # (a dict per run would double the peak memory of a first load), its
        # strings are shared (each run's run.json gives new ones)
        self._record: dict[str, list[Any]] = {f: [] for f in RECORD_FIELDS}
        self._record_columns = list(self._record.items())
        self._results: dict[str, list[Any]] = {}
        # schema number -> the column of each of its keys but root, in order
        self._columns: dict[int, list[list[Any]]] = {}
        self._last = -1  # the schema of the row added last

    def add(
        self,
        name: str,
        ino: int,
        ctime: int,
        params: dict[str, Any],
        record: dict[str, Any],
        outcome: dict[str, Any] | None = None,
    ) -> None:
        t = self.table
        n = len(t.names)
        keys = tuple(params)
        num = self._schemas.get(keys)
        if num is None:
            num = self._schemas[keys] = len(t.schemas)
            t.schemas.append(keys)
        t.schema.append(num)
        strings = self._strings
        known = self._columns.get(num)
        if known is not None and (
            num == self._last or all(map(n.__eq__, map(len, known)))
        ):
            # the usual row: the same keys as an earlier one, every column full
            # (as it is when the row before had these keys)
            values = list(params.values())
            if "root" in params:
                del values[keys.index("root")]
            for column, value in zip(known, values):
                column.append(
                    strings.setdefault(value, value) if type(value) is str else value
                )
        else:
            for key, value in params.items():
                if key == "root":
                    continue
                if type(value) is str:
                    value = strings.setdefault(value, value)
                col = self._params.get(key)
                if col is None:
                    col = self._params[key] = [None] * n
                elif len(col) < n:
                    col += [None] * (n - len(col))
                col.append(value)
            self._columns[num] = [self._params[key] for key in keys if key != "root"]
        self._last = num
        for key, column in self._record_columns:
            value = record.get(key)
            if type(value) is str:
                value = strings.setdefault(value, value)
            column.append(value)
        if outcome:
            for key, value in outcome.items():
                col = self._results.get(key)
                if col is None:
                    col = self._results[key] = [None] * n
                elif len(col) < n:
                    col += [None] * (n - len(col))
                col.append(value)
        t.names.append(name)
        t.inos.append(ino)
        t.ctimes.append(ctime)

    def finish(self) -> Table:
        """The table, each column in its compact form."""
        t = self.table
        n = len(t.names)
        for lists, section in (
            (self._params, t.params),
            (self._record, t.record),
            (self._results, t.results),
        ):
            for key, col in lists.items():
                if len(col) < n:
                    col += [None] * (n - len(col))
                section[key] = columns.compact(col)
        self._columns.clear()
        return t


def _spans(positions: Sequence[int]) -> list[tuple[int, int]] | None:
    """``positions`` as stretches ``(start, end)`` of consecutive rows, when
    they go up and a stretch holds many of them on average (a sweep's runs
    among a root's); else None."""
    spans: list[tuple[int, int]] = []
    most = len(positions) // _SPAN_ROWS + 1
    start = end = -1
    for p in positions:
        if p != end:
            if p < end:
                return None
            if start >= 0:
                spans.append((start, end))
                if len(spans) > most:
                    return None
            start = p
        end = p + 1
    if start >= 0:
        spans.append((start, end))
    return spans if len(spans) <= most else None
