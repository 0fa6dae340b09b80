"""The cache of parsed runs under ``.exman/cache/``, and when to trust it.

What was read of the run folders of one place (``runs``, ``fails``,
``tmp``; see :mod:`exman.look.rows`) is kept in ``.exman/cache/<place>.pickle``,
column by column, with the identity of each folder when it was read: its
inode and ``st_ctime_ns``. The run folders stay the truth: deleting the
cache loses nothing, and a missing, damaged or stale cache is rebuilt.

**Staleness.** Everything exman writes into a run folder (``params.yaml``,
``run.json`` when the run starts and when it ends, ``traceback.txt``,
``results.json``, ``annotations.json``) is a file created or renamed into
place (or, for ``annotations.json``, removed), and a run moved
to ``fails/`` is a new entry there: each of these changes the folder's
ctime. Lines appended to ``metrics.jsonl`` do not, nor does the heartbeat
of a running run (the modification time of its ``run.json``), so the status
and the last metric values of a run whose record says ``running`` are read
again at every load (see :mod:`exman.index`); its end rewrites
``run.json``, after which the cached values are final. A load ``stat``\\ s
every run folder it returns and reads the run again when the inode or the
ctime differ from the cached ones. The runs are chosen from the current
listing of ``index/``, ``marked/``, ``fails/`` or ``tmp/``, never from the
cache, so a deleted run is never returned and a new one never missed; the
listing of ``index/`` is itself cached, keyed by the folder's inode and
ctime, and each link by its name and inode, and so is the listing of
``runs/`` or ``fails/`` when every run there is asked for.

Two changes within one tick of the file system's clock leave the same
ctime, so a folder changed less than :data:`RACY_NS` before it was read is
stored as unverified and read again by the next load (as git does with its
index). "Before" is measured on the file system's own clock: the ctime of a
probe file created in the cache folder before the folder is examined, so
that a remote file server with another clock changes nothing. A run that
gave a warning (a damaged file) is never trusted either. Not seen: a file
edited in place, without a new file or a rename; exman never does that, and
``Index(root, cache=False)`` or deleting ``.exman/cache`` reads every run
again.

**Format.** A header line with the format version, the machine's byte
order and the length and Adler-32 of the body, then the body: a pickle of
plain builtins (dicts, lists, tuples, strings, bytes, numbers, None) and
the ``datetime`` types that YAML timestamps become; a compact column is a
tuple of its typecode and bytes (see :mod:`exman.look.columns`). It is
loaded by an unpickler whose ``find_class`` refuses every other global,
so a tampered cache cannot make Python import or call anything; such a
pickle loads several times faster than the same data as JSON and keeps
every YAML value exact (dates, bytes, int keys).
A file that fails any check is ignored. It is written atomically.
"""

from __future__ import annotations

import _thread
import array
import datetime
import gc
import os
import pickle
import sys
import warnings
import zlib
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

from ..record.files import group_bits, make_dir, share
from ..record.store import STATE_DIR, Root
from . import fork
from .rows import RowBuilder, Table, ctime_column, inode_column, read_run

# not typing's: importing typing would slow every command's start
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

__all__ = ["RACY_NS", "CacheFile", "Clock", "Loaded", "SkippedRunWarning", "read_runs"]

#: bump whenever what is stored, or how a run is read, changes
FORMAT = 5
CACHE_DIR = "cache"
#: a folder changed less than this before it was read is read again next time
RACY_NS = 2_000_000_000
#: runs read at least per piece of a load shared by two processes
PIECE = 256
#: run folders a warm load stats at least per piece shared by two processes
STAT_PIECE = 1024
_ALLOWED_GLOBALS = frozenset(
    ("datetime", name) for name in ("date", "datetime", "time", "timedelta", "timezone")
)


class SkippedRunWarning(UserWarning):
    """A run could not be read and was left out; the message names it."""


class _Unpickler(pickle.Unpickler):
    """Builds builtins and datetime values only: never imports or calls anything."""

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _ALLOWED_GLOBALS:
            return getattr(datetime, name)
        raise pickle.UnpicklingError(f"the cache may not refer to {module}.{name}")


@contextmanager
def no_gc() -> Iterator[None]:
    """Pause the cyclic GC: it would rescan the many new lists over and over.

    What was made meanwhile (the rows of a load, the modules pandas
    imports) lives long: it is put in the oldest generation at once
    (``gc.freeze`` then ``gc.unfreeze``), where a full collection still
    looks at it, rather than scanned by two young collections on its way
    there (about 40 ms after a first load of 10,000 runs). Not when the
    process keeps objects frozen itself (a server that forks workers):
    those would be unfrozen.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            if not gc.get_freeze_count():
                gc.freeze()
                gc.unfreeze()
            gc.enable()


def _header(size: int, adler: int) -> bytes:
    # fixed width: written first as a placeholder, then over it; the byte
    # order, since the compact columns are the machine's bytes (a root may
    # be shared with another kind of machine)
    order = sys.byteorder.encode("ascii")
    return b"exman-cache %d %s %020d %08x\n" % (FORMAT, order, size, adler)


class _Summed:
    """A file seen through ``read``/``readline``/``write``, summing what passes.

    The cache streams through it both ways, so that neither a load nor a
    store holds the whole file in memory besides the table.
    """

    def __init__(self, file: Any) -> None:
        self.file = file
        self.size = 0
        self.adler = zlib.adler32(b"")

    def _count(self, data: bytes) -> bytes:
        self.size += len(data)
        self.adler = zlib.adler32(data, self.adler)
        return data

    def read(self, n: int = -1) -> bytes:
        return self._count(self.file.read(n))

    def readline(self) -> bytes:
        return self._count(self.file.readline())

    def write(self, data: bytes) -> int:
        self._count(data)
        written: int = self.file.write(data)
        return written


class CacheFile:
    """``.exman/cache/<place>.pickle``: a :class:`~exman.look.rows.Table` and extras.

    :param root: the root.
    :param place: ``runs``, ``fails`` or ``tmp``.
    :param enabled: False: never read, never written.
    """

    def __init__(self, root: Root, place: str, *, enabled: bool = True) -> None:
        self.folder = os.path.join(root.path, STATE_DIR, CACHE_DIR)
        self.path = os.path.join(self.folder, f"{place}.pickle")
        self.enabled = enabled

    def read(self) -> tuple[Table, dict[str, Any]]:
        """The stored table and extras; empty ones when missing or damaged."""
        if not self.enabled:
            return Table(), {}
        try:
            with open(self.path, "rb") as f, no_gc():
                head = f.readline()
                body = _Summed(f)
                data = _Unpickler(body).load()
                body.read()  # to the end: the sum covers the whole body
                if head != _header(body.size, body.adler):
                    return Table(), {}
                table = Table.from_plain(data["table"])
                extra = data["extra"]
        except Exception:  # a damaged cache is ignored, whatever is wrong with it
            return Table(), {}
        if table is None or not isinstance(extra, dict):
            return Table(), {}
        return table, extra

    def write(self, table: Table, extra: dict[str, Any]) -> None:
        """Store ``table`` and ``extra`` atomically; a read-only root keeps
        the old cache (it only saves time)."""
        if not self.enabled:
            return
        tmp = f"{self.path}.{os.getpid()}.{_thread.get_ident()}.tmp"
        try:
            make_dir(self.folder, exist_ok=True)
            with open(tmp, "wb") as f:
                share(f.fileno(), group_bits(self.folder))
                f.write(_header(0, 0))
                body = _Summed(f)
                pickle.dump({"table": table.to_plain(), "extra": extra}, body, 4)
                f.seek(0)
                f.write(_header(body.size, body.adler))
            os.replace(tmp, self.path)
        except OSError:
            pass
        finally:
            if os.path.lexists(tmp):
                os.unlink(tmp)


class Clock:
    """Now, on the clock of the file system that holds the cache (see above).

    Read once per load, when first needed: the ctime of a probe file created
    for the purpose. None when the cache folder cannot be written (then
    nothing read in this load is trusted; nothing is stored either).
    """

    def __init__(self, root: Root, *, enabled: bool = True) -> None:
        self.folder = os.path.join(root.path, STATE_DIR, CACHE_DIR)
        self.enabled = enabled
        self._now: int | None = None
        self._read = False

    def __call__(self) -> int | None:
        if not self._read:
            self._read = True
            self._now = self._probe() if self.enabled else None
        return self._now

    def trusted(self, ctime: int) -> int:
        """``ctime`` if a folder with this ctime can be trusted later, else -1."""
        now = self()
        return ctime if now is not None and ctime < now - RACY_NS else -1

    def _probe(self) -> int | None:
        probe = os.path.join(self.folder, f".clock.{os.getpid()}.{_thread.get_ident()}")
        try:
            make_dir(self.folder, exist_ok=True)
            fd = os.open(probe, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o600)
            try:
                return os.fstat(fd).st_ctime_ns
            finally:
                os.close(fd)
                os.unlink(probe)
        except OSError:
            return None


# -- loading the runs of one place --------------------------------------------
class Loaded:
    """What :func:`read_runs` found.

    ``rows``: the runs asked for that could be read, in the order asked.
    ``store``: the table to cache next (``stored`` itself when unchanged).
    ``missing``: the names whose folder could not be found.
    """

    __slots__ = ("missing", "rows", "store")

    def __init__(self, rows: Table, store: Table, missing: list[str]) -> None:
        self.rows = rows
        self.store = store
        self.missing = missing


def read_runs(
    place_dir: str,
    names: Sequence[str],
    stored: Table,
    clock: Clock,
    *,
    full: bool,
    label: str = "",
    meanwhile: Callable[[], None] | None = None,
) -> Loaded:
    """The rows of the run folders ``names`` (distinct) of ``place_dir``.

    A row comes from ``stored`` (the cache) when the folder's inode and ctime
    are the stored ones, else the run is read. Runs that cannot be read are
    left out with a :class:`SkippedRunWarning` naming ``label + name``.

    :param clock: a :class:`Clock` (it decides which rows are trusted).
    :param full: ``names`` are all the runs of the place that matter, so the
        table to cache next holds exactly them; otherwise the rows read are
        merged into ``stored``.
    :param meanwhile: called while another process reads runs, if one does
        (see :mod:`exman.look.fork`).
    """
    dir_fd: int | None = None
    if os.stat in os.supports_dir_fd and os.open in os.supports_dir_fd:
        try:
            dir_fd = os.open(place_dir, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
        except OSError:
            return Loaded(Table(), Table() if full else stored, list(names))
    try:
        with no_gc():
            return _read_runs(
                place_dir, list(names), stored, clock, dir_fd, full, label, meanwhile
            )
    finally:
        if dir_fd is not None:
            os.close(dir_fd)


def _lstat(place_dir: str, name: str, dir_fd: int | None) -> os.stat_result:
    if dir_fd is not None:
        return os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    return os.stat(os.path.join(place_dir, name), follow_symlinks=False)


def _is_link(st: os.stat_result) -> bool:
    return st.st_mode & 0o170000 == 0o120000


def _warn_links(links: list[str], label: str) -> None:
    for name in links:
        warnings.warn(
            f"exman: skipped run {label}{name}: a symbolic link, not a run folder",
            SkippedRunWarning,
            stacklevel=5,
        )


def _read_runs(
    place_dir: str,
    names: list[str],
    stored: Table,
    clock: Clock,
    dir_fd: int | None,
    full: bool,
    label: str,
    meanwhile: Callable[[], None] | None,
) -> Loaded:
    if not len(stored):
        # nothing cached (the first load after a sweep): every run is read,
        # and stat'ed once, by _parse
        parsed, missing, links = _parse(
            place_dir, names, clock, dir_fd, label, meanwhile
        )
        _warn_links(links, label)
        return Loaded(parsed, parsed, missing)
    # with pandas to import meanwhile, one process stats: see _stats
    inos, ctimes, missing, links = _stats(
        place_dir, names, dir_fd, shared=meanwhile is None
    )
    if (
        not missing
        and not links
        and ctimes == stored.ctimes
        and names == stored.names
        and inos == stored.inos
    ):
        return Loaded(stored, stored, [])
    changed = None if missing or links else _changed(stored, names, inos, ctimes)
    if changed is not None:  # the stored runs first, in order: the usual listing
        stale = [names[p] for p in changed] + names[len(stored) :]
    else:
        where, stale = _matched(stored, names, inos, ctimes, {*missing, *links})
    parsed, vanished, turned = _parse(place_dir, stale, clock, dir_fd, label, meanwhile)
    _warn_links(links + turned, label)
    missing += vanished
    base = len(stored)
    if changed is not None and parsed.names == stale:  # every stale run was read
        combined = rows = stored.updated(changed, parsed)
    else:
        if changed is not None:
            where, _ = _matched(stored, names, inos, ctimes, set(stale))
        combined = Table.concat([stored, parsed]) if len(parsed) else stored
        where.update((name, base + i) for i, name in enumerate(parsed.names))
        rows = combined.take([where[name] for name in names if name in where])
    if full or combined is rows:  # rows: every stored run, and the new ones
        store = rows
    else:
        replaced = set(stale) | set(missing)
        old = [p for p, name in enumerate(stored.names) if name not in replaced]
        store = combined.take(old + list(range(base, base + len(parsed))))
    return Loaded(rows, store, missing)


def _matched(
    stored: Table,
    names: list[str],
    inos: array.array[int],
    ctimes: array.array[int],
    skipped: set[str],
) -> tuple[dict[str, int], list[str]]:
    """The stored row of each name whose folder is the stored one (name ->
    position), and the names to read again (new or changed); the names in
    ``skipped`` are neither."""
    position = {name: p for p, name in enumerate(stored.names)}
    where: dict[str, int] = {}
    stale: list[str] = []
    for name, ino, ctime in zip(names, inos, ctimes):
        if name in skipped:
            continue
        p = position.get(name)
        if p is not None and stored.inos[p] == ino and stored.ctimes[p] == ctime:
            where[name] = p
        else:
            stale.append(name)
    return where, stale


#: rows compared at once by :func:`_changed` (a slice of each column)
_CHUNK = 4096


def _changed(
    stored: Table, names: list[str], inos: array.array[int], ctimes: array.array[int]
) -> list[int] | None:
    """When ``names`` starts with the stored names, in their order (a listing
    after new runs came: they sort last), the positions of the stored rows
    whose folder changed since; else None.

    Compared a slice at a time, with the new runs left aside: no dict of
    every name and no step per row, as a listing of a million runs after
    one new run would otherwise take.
    """
    n = len(stored)
    if len(names) < n or names[:n] != stored.names:
        return None
    changed: list[int] = []
    for start in range(0, n, _CHUNK):
        end = min(start + _CHUNK, n)
        if (
            inos[start:end] != stored.inos[start:end]
            or ctimes[start:end] != stored.ctimes[start:end]
        ):
            changed += (
                p
                for p in range(start, end)
                if inos[p] != stored.inos[p] or ctimes[p] != stored.ctimes[p]
            )
    return changed


def _stats(
    place_dir: str,
    names: list[str],
    dir_fd: int | None,
    *,
    shared: bool,
) -> tuple[array.array[int], array.array[int], list[str], list[str]]:
    """The inode and ctime of each folder of ``names`` (0 and -1 where it is
    missing or a link), the names missing and the names that are links.

    With ``shared``, many folders are stat'ed by two processes (see
    :mod:`exman.look.fork`), in pieces of :data:`STAT_PIECE` or more: the
    warm load of ``exman ls`` is mostly these system calls. A load that
    imports pandas meanwhile stats them in one process: a copy alive while
    the import writes to the process's pages makes the kernel copy those
    pages, which cost what the copy saved.
    """
    if not shared or len(names) < 2 * STAT_PIECE or not fork.can_fork():
        return _stat_piece(place_dir, names, dir_fd)
    size, count = fork.pieces_of(len(names), STAT_PIECE)
    made: dict[int, Any] = {}

    def do(i: int) -> None:
        made[i] = _stat_piece(place_dir, names[i * size : (i + 1) * size], dir_fd)

    def handed() -> dict[int, Any]:
        got = dict(made)
        made.clear()
        return got

    pieces: dict[int, Any] = {}
    for _, got in fork.share(count, do, handed):
        pieces.update(got)
    inos, ctimes = inode_column(), ctime_column()
    missing: list[str] = []
    links: list[str] = []
    for i in range(count):
        piece_inos, piece_ctimes, piece_missing, piece_links = pieces[i]
        inos.extend(piece_inos)
        ctimes.extend(piece_ctimes)
        missing += piece_missing
        links += piece_links
    return inos, ctimes, missing, links


def _stat_piece(
    place_dir: str, names: list[str], dir_fd: int | None
) -> tuple[array.array[int], array.array[int], list[str], list[str]]:
    """:func:`_stats` of ``names`` in this process."""
    inos = inode_column()
    ctimes = ctime_column()
    missing: list[str] = []
    links: list[str] = []
    stat = os.stat
    for name in names:  # the hot loop of a warm load: keep it bare
        try:
            st = (
                stat(name, dir_fd=dir_fd, follow_symlinks=False)
                if dir_fd is not None
                else stat(os.path.join(place_dir, name), follow_symlinks=False)
            )
        except OSError:
            missing.append(name)
            inos.append(0)
            ctimes.append(-1)
            continue
        if st.st_mode & 0o170000 == 0o120000:  # a link would lead out of the root
            links.append(name)
            inos.append(0)
            ctimes.append(-1)
            continue
        inos.append(st.st_ino)
        ctimes.append(st.st_ctime_ns)
    return inos, ctimes, missing, links


def _gone(place_dir: str, name: str, dir_fd: int | None) -> bool:
    try:
        _lstat(place_dir, name, dir_fd)
    except FileNotFoundError:
        return True
    except OSError:
        pass
    return False


def _parse(
    place_dir: str,
    names: list[str],
    clock: Clock,
    dir_fd: int | None,
    label: str,
    meanwhile: Callable[[], None] | None = None,
) -> tuple[Table, list[str], list[str]]:
    """Read the runs ``names``; rows changed too recently are unverified.

    Many runs are read in two processes (see :mod:`exman.look.fork`), in
    pieces of :data:`PIECE` or more; ``meanwhile`` is called meanwhile, if
    they are.

    :returns: the rows, the names whose folder is gone, and the names that
        are symbolic links (never followed: they could lead out of the root).
    """
    if not names:
        return Table(), [], []
    clock()  # read before the folders are stat'ed again: see the module docstring
    reader = _Reader(place_dir, clock, dir_fd, label)
    if len(names) < 2 * PIECE or not fork.can_fork():
        reader.read(0, names)
        parts = [([0], reader.done())]
    else:
        size, count = fork.pieces_of(len(names), PIECE)
        parts = fork.share(
            count,
            lambda i: reader.read(i, names[i * size : (i + 1) * size]),
            reader.done,
            meanwhile,
        )
    return _joined(parts)


class _Reader:
    """Reads pieces of a load into one table, noting where each piece went."""

    def __init__(
        self, place_dir: str, clock: Clock, dir_fd: int | None, label: str
    ) -> None:
        self.place_dir = place_dir
        self.clock = clock
        self.dir_fd = dir_fd
        self.label = label
        self.memo: dict[str, str] = {}
        self.builder = RowBuilder()
        self.rows = 0
        #: piece -> (first row, end row, vanished, links, warnings)
        self.pieces: dict[int, tuple[int, int, list[str], list[str], list[str]]] = {}

    def read(self, piece: int, names: list[str]) -> None:
        place_dir, dir_fd, label = self.place_dir, self.dir_fd, self.label
        builder = self.builder
        first = self.rows
        vanished: list[str] = []
        links: list[str] = []
        problems: list[str] = []
        for name in names:
            try:
                st = _lstat(place_dir, name, dir_fd)
            except OSError:
                vanished.append(name)
                continue
            if _is_link(st):
                links.append(name)
                continue
            folder = name if dir_fd is not None else os.path.join(place_dir, name)
            params, record, outcome, problem = read_run(folder, dir_fd, self.memo)
            if params is None and _gone(place_dir, name, dir_fd):
                vanished.append(name)  # deleted while it was read: no warning
                continue
            if problem is not None:
                problems.append(
                    f"exman: skipped run {label}{name}: {problem}"
                    if params is None
                    else f"exman: run {label}{name}: {problem}"
                )
            if params is None:
                continue
            ctime = -1 if problem is not None else self.clock.trusted(st.st_ctime_ns)
            builder.add(name, st.st_ino, ctime, params, record, outcome)
            self.rows += 1
        self.pieces[piece] = (first, self.rows, vanished, links, problems)

    def done(self) -> tuple[Table, dict[int, Any]]:
        """The rows read since the last call, and where each piece went."""
        made = self.builder.finish(), self.pieces
        self.builder = RowBuilder()
        self.rows = 0
        self.pieces = {}
        return made


def _joined(parts: list[tuple[list[int], Any]]) -> tuple[Table, list[str], list[str]]:
    """The pieces read by one or two processes, in the order of the pieces."""
    tables = []
    spans: list[tuple[int, int, int, int]] = []  # piece, table, first row, end
    problems = []
    for k, (_, (table, pieces)) in enumerate(parts):
        tables.append(table)
        for piece, (first, end, gone, linked, warned) in pieces.items():
            spans.append((piece, k, first, end))
            problems.append((piece, warned, gone, linked))
    vanished: list[str] = []
    links: list[str] = []
    for _, warned, gone, linked in sorted(problems, key=lambda p: p[0]):
        for message in warned:
            warnings.warn(message, SkippedRunWarning, stacklevel=6)
        vanished += gone
        links += linked
    spans.sort()
    joined = Table.interleave(tables, [(k, first, end) for _, k, first, end in spans])
    return joined, vanished, links
