"""Reading run folders, and the cache of what was read under ``.exman/cache/``.

Reading a run means parsing its ``params.yaml`` (the slow part), its
``run.json`` and, for a run that failed, the last line of its
``traceback.txt``. What was read for the run folders of one place
(``runs``, ``fails``, ``tmp``) is kept in ``.exman/cache/<place>.pickle``,
column by column, together with the identity of each folder when it was read.
The run folders stay the truth: deleting the cache loses nothing.

**Staleness.** Everything exman writes into a run folder (``params.yaml``,
``run.json`` at the start and at the end of the run, ``traceback.txt``) is a
file created or renamed into place, and a run moved to ``fails/`` is a new
entry there: each of these changes the folder's ``st_ctime``. A load
``stat``\\ s every run folder it returns and reads a run again when its inode
or its ``st_ctime_ns`` differ from the cached ones. Runs are selected from
the current listing of ``index/``, ``marked/``, ``fails/`` or ``tmp/``, never
from the cache, so a deleted run is never returned and a new one never
missed. Two changes in the same tick of the file system's clock leave the
same ctime; so a run read less than :data:`RACY_NS` after its last change
(measured on the file system's own clock, through a probe file created in
the cache folder before the run is examined) is stored as unverified and
read again by the next load. A run that gave a warning (a damaged file) is
never cached. Not seen: a file edited in place, without a new file or a
rename (``params.yaml`` is never rewritten by exman); ``Index(root,
cache=False)`` or deleting ``.exman/cache`` reads everything again.

**Format.** A header line with the format version, a CRC-32 of the body, and
the body: a pickle of plain builtins (dicts, lists, strings, numbers, None)
and the ``datetime`` types that YAML timestamps become. It is read with an
unpickler whose ``find_class`` refuses every other global, so a tampered
cache cannot make Python run code; a pickle of builtins loads several times
faster than the same data as JSON and keeps every YAML value exact. A cache
that does not pass these checks is ignored and rebuilt. It is written
atomically (temporary file and rename).
"""

from __future__ import annotations

import datetime
import gc
import io
import json
import os
import pickle
import threading
import warnings
import zlib
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from .fastyaml import load_document
from .params import PARAMS_FILE
from .run import RUN_FILE, TRACEBACK_FILE
from .store import STATE_DIR, Root, atomic_write

__all__ = [
    "RACY_NS",
    "RECORD_FIELDS",
    "CacheFile",
    "SkippedRunWarning",
    "Table",
    "read_runs",
]

#: bump whenever what is stored, or how a run is read, changes
FORMAT = 1
HEADER = b"exman-cache %d\n" % FORMAT
CACHE_DIR = "cache"
#: a run changed less than this before it was read is read again next time
RACY_NS = 2_000_000_000
#: what is kept of run.json (``error``: the last line of the traceback)
RECORD_FIELDS = (
    "status",
    "started",
    "finished",
    "duration",
    "host",
    "pid",
    "pid_start",
    "error",
)
#: a params.yaml or run.json larger than this is refused, not read
MAX_FILE = 16 << 20
_BUF = 1 << 16
_OPEN_FLAGS = os.O_RDONLY | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NONBLOCK", 0)
_ERROR_STATUSES = frozenset({"failed", "interrupted"})
_ALLOWED_GLOBALS = frozenset(
    ("datetime", name) for name in ("date", "datetime", "time", "timedelta")
) | {("datetime", "timezone")}


class SkippedRunWarning(UserWarning):
    """A run could not be read and was left out; the message names it."""


# -- the columns --------------------------------------------------------------
@dataclass
class Table:
    """Runs of one place as columns, one row per run folder.

    ``params`` holds one list per parameter key (None where a run has no
    such key or a null value); ``schemas`` the distinct key tuples and
    ``schema`` the one of each row, so that a key present with null values
    only is still known. ``root`` is not stored: it is where the folder is.
    ``ctimes`` holds -1 for a row that must be read again.
    """

    names: list[str] = field(default_factory=list)
    inos: list[int] = field(default_factory=list)
    ctimes: list[int] = field(default_factory=list)
    schemas: list[tuple[str, ...]] = field(default_factory=list)
    schema: list[int] = field(default_factory=list)
    params: dict[str, list[Any]] = field(default_factory=dict)
    record: dict[str, list[Any]] = field(
        default_factory=lambda: {f: [] for f in RECORD_FIELDS}
    )

    def __len__(self) -> int:
        return len(self.names)

    def take(self, positions: Sequence[int]) -> Table:
        """The rows at ``positions``, in that order."""
        if len(positions) == len(self) and all(i == p for i, p in enumerate(positions)):
            return self
        used = sorted({self.schema[p] for p in positions})
        remap = {old: new for new, old in enumerate(used)}
        schemas = [self.schemas[s] for s in used]
        keys = {k for s in schemas for k in s}
        return Table(
            names=[self.names[p] for p in positions],
            inos=[self.inos[p] for p in positions],
            ctimes=[self.ctimes[p] for p in positions],
            schemas=schemas,
            schema=[remap[self.schema[p]] for p in positions],
            params={
                k: [col[p] for p in positions]
                for k, col in self.params.items()
                if k in keys
            },
            record={k: [col[p] for p in positions] for k, col in self.record.items()},
        )

    @staticmethod
    def concat(tables: Sequence[Table]) -> Table:
        """The rows of ``tables`` one after the other."""
        tables = [t for t in tables if len(t)]
        if len(tables) == 1:
            return tables[0]
        out = Table()
        for t in tables:
            n = len(out)
            remap = []
            for s in t.schemas:
                if s not in out.schemas:
                    out.schemas.append(s)
                remap.append(out.schemas.index(s))
            out.schema += [remap[s] for s in t.schema]
            for k, col in t.params.items():
                if k not in out.params:
                    out.params[k] = [None] * n
                out.params[k] += col
            out.names += t.names
            out.inos += t.inos
            out.ctimes += t.ctimes
            for k in RECORD_FIELDS:
                out.record[k] += t.record[k]
            for col in out.params.values():
                if len(col) < len(out.names):
                    col += [None] * (len(out.names) - len(col))
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
        return {
            "names": self.names,
            "inos": self.inos,
            "ctimes": self.ctimes,
            "schemas": [list(s) for s in self.schemas],
            "schema": self.schema,
            "params": self.params,
            "record": self.record,
        }

    @classmethod
    def from_plain(cls, data: Any) -> Table | None:
        """The table stored as ``data``, or None if it is not a valid one."""
        try:
            names, inos, ctimes = data["names"], data["inos"], data["ctimes"]
            schemas, schema = data["schemas"], data["schema"]
            params, record = data["params"], data["record"]
        except (TypeError, KeyError):
            return None
        n = len(names) if isinstance(names, list) else -1
        lists = [inos, ctimes, schema, *params.values(), *record.values()]
        if (
            n < 0
            or not all(isinstance(col, list) and len(col) == n for col in lists)
            or not all(isinstance(s, list) for s in schemas)
            or set(record) != set(RECORD_FIELDS)
            or not all(type(x) is str for x in names)
            or not all(type(x) is int for x in inos)
            or not all(type(x) is int for x in ctimes)
            or not all(type(x) is int and 0 <= x < len(schemas) for x in schema)
        ):
            return None
        keys = {k for s in schemas for k in s}
        if not all(type(k) is str for k in keys) or not set(params) <= keys:
            return None
        return cls(
            names, inos, ctimes, [tuple(s) for s in schemas], schema, params, record
        )


class _Builder:
    """Collects parsed runs into a :class:`Table`, one row at a time."""

    def __init__(self) -> None:
        self.table = Table()
        self._schemas: dict[tuple[str, ...], int] = {}
        self._strings: dict[str, str] = {}

    def add(
        self,
        name: str,
        ino: int,
        ctime: int,
        params: dict[str, Any],
        record: dict[str, Any],
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
        for key, value in params.items():
            if key == "root":
                continue
            if type(value) is str:
                value = strings.setdefault(value, value)
            col = t.params.get(key)
            if col is None:
                col = t.params[key] = [None] * n
            elif len(col) < n:
                col += [None] * (n - len(col))
            col.append(value)
        for key in RECORD_FIELDS:
            value = record.get(key)
            if type(value) is str:
                value = strings.setdefault(value, value)
            t.record[key].append(value)
        t.names.append(name)
        t.inos.append(ino)
        t.ctimes.append(ctime)

    def finish(self) -> Table:
        n = len(self.table.names)
        for col in self.table.params.values():
            if len(col) < n:
                col += [None] * (n - len(col))
        return self.table


# -- reading one run folder ---------------------------------------------------
def _read(path: str, dir_fd: int | None) -> bytes:
    fd = os.open(path, _OPEN_FLAGS, dir_fd=dir_fd)
    try:
        data = os.read(fd, _BUF)
        if len(data) < _BUF:
            return data
        chunks = [data]
        size = len(data)
        while data:
            data = os.read(fd, _BUF)
            chunks.append(data)
            size += len(data)
            if size > MAX_FILE:
                raise OSError(f"larger than {MAX_FILE >> 20} MiB")
        return b"".join(chunks)
    finally:
        os.close(fd)


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


def read_run(
    folder: str, dir_fd: int | None, memo: dict[str, str]
) -> tuple[dict[str, Any] | None, dict[str, Any], str | None]:
    """Parse the run in ``folder`` (relative to ``dir_fd`` when given).

    :returns: ``(params, record, problem)``. ``params`` is None when the run
        cannot be used (``problem`` says why); otherwise ``problem`` is set
        when its run.json is damaged (the run is kept, its status unknown).
    """
    try:
        raw = _read(f"{folder}/{PARAMS_FILE}", dir_fd)
    except FileNotFoundError:
        return None, {}, f"no {PARAMS_FILE}"
    except OSError as e:
        return None, {}, f"cannot read {PARAMS_FILE}: {e.strerror or e}"
    try:
        params = load_document(raw, memo)
    except Exception as e:  # any failure of the YAML loader is a bad file
        return None, {}, f"invalid {PARAMS_FILE}: {_why(e)}"
    if not isinstance(params, dict):
        what = "empty" if params is None else f"a {type(params).__name__}"
        return None, {}, f"{PARAMS_FILE} is {what}, not 'key: value' pairs"
    num = params.get("id")
    if type(num) is not int or not -(2**63) <= num < 2**63:
        return None, {}, f"{PARAMS_FILE} has no integer id (a half-written file?)"
    if not all(type(k) is str for k in params):
        params = {str(k): v for k, v in params.items()}
    problem = None
    try:
        data: Any = json.loads(_read(f"{folder}/{RUN_FILE}", dir_fd))
        if not isinstance(data, dict):
            raise ValueError("not a JSON object")
    except FileNotFoundError:
        data = None  # a run made by exman 0.1.9
    except (OSError, ValueError) as e:
        data = {"status": "unknown"}
        problem = f"unreadable {RUN_FILE} ({_why(e)}): its status is unknown"
    record: dict[str, Any] = {}
    if data is not None:
        record = {
            "status": _as(data.get("status"), (str,)),
            "started": _as(data.get("started"), (str,)),
            "finished": _as(data.get("finished"), (str,)),
            "duration": _as(data.get("duration"), (int, float)),
            "host": _as(data.get("host"), (str,)),
            "pid": _as(data.get("pid"), (int,)),
            "pid_start": _as(data.get("pid_start"), (int,)),
        }
    if data is None or record["status"] in _ERROR_STATUSES:
        try:
            record["error"] = _last_line(_read(f"{folder}/{TRACEBACK_FILE}", dir_fd))
        except OSError:
            record["error"] = _as((data or {}).get("reason"), (str,))
    return params, record, problem


# -- the cache file -------------------------------------------------------------
class _Unpickler(pickle.Unpickler):
    """Builds builtins and datetime values only: never imports or calls anything."""

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _ALLOWED_GLOBALS:
            return getattr(datetime, name)
        raise pickle.UnpicklingError(f"the cache may not refer to {module}.{name}")


@contextmanager
def _no_gc() -> Iterator[None]:
    """Pause the cyclic GC: it would rescan the many new lists over and over."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


class CacheFile:
    """``.exman/cache/<place>.pickle``: a :class:`Table` and a few extras.

    :param root: the root.
    :param place: ``runs``, ``fails`` or ``tmp``.
    :param enabled: False ignores the file (never read, never written).
    """

    def __init__(self, root: Root, place: str, *, enabled: bool = True) -> None:
        self.folder = os.path.join(root.path, STATE_DIR, CACHE_DIR)
        self.path = os.path.join(self.folder, f"{place}.pickle")
        self.enabled = enabled

    def read(self) -> tuple[Table, dict[str, Any]]:
        """The stored table and extras; empty ones when missing or damaged."""
        if self.enabled:
            try:
                with open(self.path, "rb") as f:
                    blob = f.read()
            except OSError:
                blob = b""
            data = self._decode(blob)
            if data is not None:
                table = Table.from_plain(data.get("table"))
                extra = data.get("extra")
                if table is not None and isinstance(extra, dict):
                    return table, extra
        return Table(), {}

    @staticmethod
    def _decode(blob: bytes) -> dict[str, Any] | None:
        head, _, rest = blob.partition(b"\n")
        if head + b"\n" != HEADER or len(rest) < 9:
            return None
        crc, body = rest[:8], rest[9:]
        if crc != b"%08x" % zlib.crc32(body):
            return None
        try:
            with _no_gc():
                data = _Unpickler(io.BytesIO(body)).load()
        except Exception:  # a damaged cache is rebuilt, whatever is wrong with it
            return None
        return data if isinstance(data, dict) else None

    def write(self, table: Table, extra: dict[str, Any]) -> None:
        """Store ``table`` and ``extra`` (atomically); give up quietly if the
        root is read-only: the cache only saves time."""
        if not self.enabled:
            return
        body = pickle.dumps({"table": table.to_plain(), "extra": extra}, protocol=4)
        blob = HEADER + b"%08x\n" % zlib.crc32(body) + body
        try:
            os.makedirs(self.folder, exist_ok=True)
            atomic_write(self.path, blob)
        except OSError:
            pass

    def clock(self) -> int | None:
        """Now, on the clock of the file system that holds the cache.

        The ctime of a file created for the purpose; None when the cache
        folder cannot be written (then nothing is cached).
        """
        if not self.enabled:
            return None
        probe = os.path.join(
            self.folder, f".clock.{os.getpid()}.{threading.get_ident()}"
        )
        try:
            os.makedirs(self.folder, exist_ok=True)
            fd = os.open(probe, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o600)
            try:
                return os.fstat(fd).st_ctime_ns
            finally:
                os.close(fd)
                os.unlink(probe)
        except OSError:
            return None


# -- loading the runs of one place ------------------------------------------------
@dataclass
class Loaded:
    """What :func:`read_runs` found.

    ``rows``: the runs asked for that could be read, in the order asked.
    ``store``: the table to cache next (``stored`` itself when unchanged).
    ``missing``: the names whose folder could not be found.
    """

    rows: Table
    store: Table
    missing: list[str]


def read_runs(
    place_dir: str,
    names: Sequence[str],
    cache: CacheFile,
    stored: Table,
    *,
    full: bool,
    label: str = "",
) -> Loaded:
    """The rows of the run folders ``names`` (distinct) of ``place_dir``.

    A row comes from ``stored`` (the cache) when the folder's inode and ctime
    are those stored, else the run is read. Runs that cannot be read are
    left out with a :class:`SkippedRunWarning` naming ``label + name``.

    :param full: ``names`` are all the runs of the place that matter, so the
        table to cache next holds exactly them; otherwise the rows read are
        merged into ``stored``.
    """
    dir_fd: int | None = None
    if os.stat in os.supports_dir_fd and os.open in os.supports_dir_fd:
        try:
            dir_fd = os.open(place_dir, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
        except OSError:
            return Loaded(Table(), Table() if full else stored, list(names))
    try:
        with _no_gc():
            return _read_runs(
                place_dir, list(names), cache, stored, dir_fd, full, label
            )
    finally:
        if dir_fd is not None:
            os.close(dir_fd)


def _stat(place_dir: str, name: str, dir_fd: int | None) -> os.stat_result:
    if dir_fd is not None:
        return os.stat(name, dir_fd=dir_fd)
    return os.stat(os.path.join(place_dir, name))


def _read_runs(
    place_dir: str,
    names: list[str],
    cache: CacheFile,
    stored: Table,
    dir_fd: int | None,
    full: bool,
    label: str,
) -> Loaded:
    inos: list[int] = []
    ctimes: list[int] = []
    missing: list[str] = []
    for name in names:  # the hot loop of a warm load: keep it bare
        try:
            st = _stat(place_dir, name, dir_fd)
        except OSError:
            missing.append(name)
            inos.append(-1)
            ctimes.append(-1)
            continue
        inos.append(st.st_ino)
        ctimes.append(st.st_ctime_ns)
    if (
        not missing
        and names == stored.names
        and inos == stored.inos
        and ctimes == stored.ctimes
    ):
        return Loaded(stored, stored, [])
    position = {name: p for p, name in enumerate(stored.names)}
    where: dict[str, int] = {}
    stale: list[str] = []
    gone = set(missing)
    for name, ino, ctime in zip(names, inos, ctimes):
        if name in gone:
            continue
        p = position.get(name)
        if p is not None and stored.inos[p] == ino and stored.ctimes[p] == ctime:
            where[name] = p
        else:
            stale.append(name)
    parsed, vanished = _parse(place_dir, stale, cache, dir_fd, label)
    missing += vanished
    base = len(stored)
    combined = Table.concat([stored, parsed]) if len(parsed) else stored
    where.update((name, base + i) for i, name in enumerate(parsed.names))
    rows = combined.take([where[name] for name in names if name in where])
    if full:
        store = rows
    else:
        replaced = set(stale) | set(missing)
        old = [p for p, name in enumerate(stored.names) if name not in replaced]
        store = combined.take(old + list(range(base, base + len(parsed))))
    return Loaded(rows, store, missing)


def _parse(
    place_dir: str,
    names: list[str],
    cache: CacheFile,
    dir_fd: int | None,
    label: str,
) -> tuple[Table, list[str]]:
    """Read the runs ``names``; rows changed too recently are marked unverified."""
    if not names:
        return Table(), []
    # the clock is read before the folders are stat'ed: see the module docstring
    now = cache.clock()
    memo: dict[str, str] = {}
    builder = _Builder()
    vanished: list[str] = []
    for name in names:
        try:
            st = _stat(place_dir, name, dir_fd)
        except OSError:
            vanished.append(name)
            continue
        folder = name if dir_fd is not None else os.path.join(place_dir, name)
        params, record, problem = read_run(folder, dir_fd, memo)
        if problem is not None:
            warnings.warn(
                f"exman: skipped run {label}{name}: {problem}"
                if params is None
                else f"exman: run {label}{name}: {problem}",
                SkippedRunWarning,
                stacklevel=4,
            )
        if params is None:
            continue
        ctime = st.st_ctime_ns
        if problem is not None or now is None or ctime >= now - RACY_NS:
            ctime = -1
        builder.add(name, st.st_ino, ctime, params, record)
    return builder.finish(), vanished
