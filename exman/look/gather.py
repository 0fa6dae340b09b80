"""Which run folders a source names, read into rows: the gathering half of
:class:`exman.Index`.

A source is the runs linked in ``index/``, the runs marked under a key of
``marked/``, every run of a place (``fails/``, ``tmp/``), or one folder.
Links are resolved without leaving the root; each run is read once, through
the cache (:mod:`exman.look.cache`); a run that cannot be read is skipped
with a :class:`~exman.look.cache.SkippedRunWarning`, one deleted meanwhile
silently.
"""

from __future__ import annotations

import array
import bisect
import functools
import itertools
import os
import warnings
from collections.abc import Callable, Iterable, Sequence

from ..record.errors import ExmanError
from ..record.names import run_id, sorted_by_id
from ..record.params import PARAMS_FILE
from ..record.run import Run
from ..record.store import Root, StrPath
from .cache import CacheFile, Clock, SkippedRunWarning, read_runs
from .columns import Coded, set_cell
from .outcome import read_outcome
from .rows import Table, inode_column

# not typing's: importing typing would slow every command's start
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    #: see Load.subsets
    _Subset = tuple[list[int], Sequence[bool], list[str], dict[str, int] | None]

__all__ = ["PLACES", "Load", "MarkNotFound", "warm"]

PLACES = ("runs", "fails", "tmp")
_FOREIGN = ""  # the place of a run folder outside runs/, fails/ and tmp/
_GONE = object()  # an index link removed between listing index/ and reading it
#: a listing is made again from the one before when at most one folder in
#: this many is new (each new one costs a few ids parsed, not a sort)
_RELIST_SHARE = 64


class MarkNotFound(ExmanError, KeyError):
    """No runs were ever marked under this key."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class Load:
    """One load: collects the runs that sources name, then reads them."""

    def __init__(self, root: Root, cache: bool) -> None:
        self.root = root
        self.cache = cache
        self.clock = Clock(root, enabled=cache)
        # place -> run name -> the link that names it ("" none, None the usual
        # index/<name>.yaml: not spelled out for each of 100,000 runs)
        self.refs: dict[str, dict[str, str | None]] = {}
        self.full: set[str] = set()
        self.ordered: set[str] = set()  # places whose refs are in id order
        self.files: dict[str, tuple[CacheFile, Table, dict[str, Any]]] = {}
        self.extra: dict[str, dict[str, Any]] = {}  # place -> extras to store
        #: place -> the run folders asked for that gave no row (after run())
        self.unread: dict[str, list[str]] = {}
        #: place -> when only some runs are wanted (see :meth:`add_place`):
        #: the cached rows read, whether each cached row is wanted, the
        #: listing of the place, and the cached row of each of its runs
        #: (None: the listing is the cached table's); the rows not wanted
        #: stay as they are
        self.subsets: dict[str, _Subset] = {}
        #: place -> its extras ("listing", "index") whose names were sorted
        #: anew: new strings, to be made the table's before they are stored
        self.resorted: dict[str, set[str]] = {}

    def add(self, place: str, name: str, via: str) -> None:
        self.refs.setdefault(place, {}).setdefault(name, via)
        self.ordered.discard(place)

    def cached(self, place: str) -> tuple[CacheFile, Table, dict[str, Any]]:
        if place not in self.files:
            cache = CacheFile(self.root, place, enabled=self.cache)
            self.files[place] = (cache, *cache.read())
        return self.files[place]

    # -- sources ------------------------------------------------------------------
    def add_place(
        self, place: str, wanted: Callable[[Table], Sequence[bool]] | None = None
    ) -> None:
        """Every run folder in ``place`` (``runs``, ``fails`` or ``tmp``).

        :param wanted: for a reader that needs some of the runs and can tell
            from a cached row that its run will never be one of them (a
            sweep: a run read with a run.json that names no sweep), whether
            each cached row may matter. The others are not looked at, not
            even with a ``stat``, nor returned, and stay in the cache as
            they are; the runs the cache does not hold are read as usual.
            Used when no other source named a run of the place before.
        """
        self.full.add(place)
        fresh = not self.refs.setdefault(place, {})
        names = self._listing(place)
        if fresh:  # nothing else named a run of it
            if wanted is not None:
                names = self._wanted(place, names, wanted)
            self.refs[place] = dict.fromkeys(names, "")
            self.ordered.add(place)
            return
        for name in names:
            self.add(place, name, "")

    def _wanted(
        self, place: str, names: list[str], wanted: Callable[[Table], Sequence[bool]]
    ) -> list[str]:
        """``names`` without the cached runs that ``wanted`` leaves out; the
        cached rows of the others are remembered, to be read alone."""
        stored = self.cached(place)[1]
        if not len(stored):
            return names
        keep = wanted(stored)
        if -1 in stored.ctimes:  # read too soon to be trusted: read them again
            keep = [k or c == -1 for k, c in zip(keep, stored.ctimes)]
        if all(keep):  # every cached run may matter: a plain load
            return names
        rows: list[int] = []
        if names == stored.names:  # the usual: the place as it was cached
            rows = list(itertools.compress(range(len(keep)), keep))
            self.subsets[place] = (rows, keep, names, None)
            return list(itertools.compress(names, keep))
        row = {name: p for p, name in enumerate(stored.names)}
        kept: list[str] = []
        for name in names:
            p = row.get(name)
            if p is None:  # not cached: read it
                kept.append(name)
            elif keep[p]:
                kept.append(name)
                rows.append(p)
        self.subsets[place] = (rows, keep, names, row)
        return kept

    def _listing(self, place: str) -> list[str]:
        """The run folders of ``place`` in the order of their ids.

        The listing is reused while the folder's inode and ctime stay what
        they were (a run created, moved or deleted there changes its ctime),
        and trusted as the cache trusts a run folder.
        """
        folder = str(self.root.path / place)
        _, _, extra = self.cached(place)
        known = extra.get("listing")
        try:
            st = os.stat(folder)
        except FileNotFoundError:
            return []
        if (
            isinstance(known, dict)
            and known.get("dir") == [st.st_ino, st.st_ctime_ns]
            and isinstance(known.get("names"), list)
            and set(map(type, known["names"])) <= {str}
        ):
            names: list[str] = known["names"]
            return names
        self.clock()  # before the folder is examined: see exman.look.cache
        st = os.stat(folder)
        with os.scandir(folder) as entries:
            folders = [entry.name for entry in entries if entry.is_dir()]
        before = known.get("names") if isinstance(known, dict) else None
        names = self._in_order(place, "listing", before, folders, runs_only=True)
        stamp = [st.st_ino, self.clock.trusted(st.st_ctime_ns)]
        self._extra(place)["listing"] = {"dir": stamp, "names": names}
        return names

    def _in_order(
        self, place: str, what: str, before: Any, folders: list[str], *, runs_only: bool
    ) -> list[str]:
        """``sorted_by_id(folders)``: made from the listing ``before`` (the
        cache's extra ``what`` of ``place``) when few folders came since,
        else sorted anew, and its strings then noted as new (see
        :func:`_shared`)."""
        names = _relisted(before, folders, runs_only=runs_only)
        if names is None:
            names = sorted_by_id(folders, runs_only=runs_only)
            self.resorted.setdefault(place, set()).add(what)
        return names

    def _extra(self, place: str) -> dict[str, Any]:
        """The extras of ``place`` to store, to be changed."""
        if place not in self.extra:
            self.extra[place] = dict(self.cached(place)[2])
        return self.extra[place]

    def add_index(self) -> None:
        """The runs linked in ``index/``, in the order of their ids.

        ``index/<name>.yaml`` links to ``../runs/<name>/params.yaml``: only a
        link not met before (by name and inode) is read to check that. The
        listing itself is reused while the folder's inode and ctime stay.
        """
        self.full.add("runs")
        self.ordered.add("runs")
        runs = self.refs.setdefault("runs", {})
        index = str(self.root.index)
        _, _, extra = self.cached("runs")
        known = _index_map(extra.get("index"))
        st = os.stat(index)
        if known["dir"] != [st.st_ino, st.st_ctime_ns]:
            self.clock()  # before the folder is examined: see exman.look.cache
            st = os.stat(index)
            with os.scandir(index) as entries:
                listed = {
                    e.name[: -len(".yaml")]: e.inode()
                    for e in entries
                    if e.name.endswith(".yaml")
                }
            stems = self._in_order(
                "runs", "index", known["stems"], list(listed), runs_only=False
            )
            inos = inode_column(map(listed.__getitem__, stems))
            count = len(known["stems"])
            fd = _open_dir(index)
            try:
                if stems[:count] == known["stems"] and inos[:count] == known["inos"]:
                    # the usual listing after runs came: the known links
                    # first, as they were (compared at once, not one by one)
                    new = [self._index_target(index, s, fd) for s in stems[count:]]
                    targets = known["targets"] + new
                else:
                    old = dict(
                        zip(known["stems"], zip(known["inos"], known["targets"]))
                    )
                    targets = [
                        seen[1]
                        if (seen := old.get(stem)) is not None and seen[0] == ino
                        else self._index_target(index, stem, fd)
                        for stem, ino in zip(stems, inos)
                    ]
            finally:
                if fd is not None:
                    os.close(fd)
            if any(target is _GONE for target in targets):  # removed since: deleted
                kept = [p for p, target in enumerate(targets) if target is not _GONE]
                stems = [stems[p] for p in kept]
                inos = inode_column(inos[p] for p in kept)
                targets = [targets[p] for p in kept]
            stamp = [st.st_ino, self.clock.trusted(st.st_ctime_ns)]
            known = {"dir": stamp, "stems": stems, "inos": inos, "targets": targets}
            self._extra("runs")["index"] = known
        if not runs and known["targets"].count(None) == len(known["targets"]):
            self.refs["runs"] = dict.fromkeys(known["stems"])  # the usual index/
            return
        for stem, target in zip(known["stems"], known["targets"]):
            if target is None:  # the usual link
                runs.setdefault(stem, None)
            elif isinstance(target, list) and len(target) == 2:
                self.add(str(target[0]), str(target[1]), f"index/{stem}.yaml")
            else:
                _warn(f"skipped index/{stem}.yaml: not a link to a run's {PARAMS_FILE}")

    def _index_target(self, index: str, stem: str, fd: int | None) -> Any:
        """None for the usual link, ``[place, name]`` for another, :data:`_GONE`
        for a link removed since the listing, else False (``fd``: index/'s)."""
        try:
            if fd is not None:
                target = os.readlink(f"{stem}.yaml", dir_fd=fd)
            else:
                target = os.readlink(os.path.join(index, f"{stem}.yaml"))
        except FileNotFoundError:
            return _GONE
        except OSError:
            return False
        if target == f"../runs/{stem}/{PARAMS_FILE}":
            return None
        path = os.path.normpath(os.path.join(index, target))
        if os.path.basename(path) != PARAMS_FILE:
            return False
        return list(self._where(os.path.dirname(path)))

    def _where(self, folder: str) -> tuple[str, str]:
        """``(place, name)`` of a run folder; ``("", folder)`` outside the root."""
        parent, name = os.path.split(folder)
        for place in PLACES:
            if parent == str(self.root.path / place):
                return place, name
        return _FOREIGN, folder

    def add_marks(self, key: StrPath) -> None:
        """The runs linked anywhere below ``marked/<key>``.

        :raises MarkNotFound: no such mark.
        """
        top = str(self.root.mark_dir(key))
        if not os.path.lexists(top):
            raise MarkNotFound(
                f"no runs are marked {os.fspath(key)!r} in {self.root.path} "
                f"({top} does not exist)"
            )
        marked = str(self.root.marked)
        stack: list[str] = []
        if os.path.islink(top):
            self._add_mark(top, marked)
        elif os.path.isdir(top):
            stack.append(top)
        while stack:
            with os.scandir(stack.pop()) as entries:
                for entry in entries:
                    if entry.is_symlink():
                        self._add_mark(entry.path, marked)
                    elif entry.is_dir(follow_symlinks=False):
                        stack.append(entry.path)

    def _add_mark(self, link: str, marked: str) -> None:
        try:
            target = os.readlink(link)
        except OSError:
            return
        folder = os.path.normpath(os.path.join(os.path.dirname(link), target))
        place, name = self._where(folder)
        self.add(place, name, "marked/" + os.path.relpath(link, marked))

    @classmethod
    def of(
        cls,
        root: Root,
        cache: bool,
        source: StrPath | None = None,
        *,
        failed: bool = False,
        tmp: bool = False,
    ) -> Load:
        """The runs of ``index/`` (or of the mark ``source``), and with
        ``failed`` and ``tmp`` those of ``fails/`` and ``tmp/``: what
        :meth:`exman.Index.info` and ``exman ls`` show.

        :raises MarkNotFound: no mark ``source``.
        """
        load = cls(root, cache)
        if source is None:
            load.add_index()
        else:
            load.add_marks(source)
        if failed:
            load.add_place("fails")
        if tmp:
            load.add_place("tmp")
        return load

    # -- reading ---------------------------------------------------------------------
    def run(
        self, meanwhile: Callable[[], None] | None = None
    ) -> list[tuple[str, Table]]:
        """Read the runs: ``(folder of their place, rows)`` per place.

        :param meanwhile: called (once) while another process reads runs,
            if one does (see :mod:`exman.look.fork`).
        """
        parts: list[tuple[str, Table]] = []
        if meanwhile is not None:  # once, whatever the places read
            meanwhile = functools.cache(meanwhile)
        for place in PLACES:
            if place not in self.refs:
                continue
            refs = self.refs[place]
            names = list(refs) if place in self.ordered else sorted_by_id(list(refs))
            cache, stored, extra = self.cached(place)
            whole = stored
            subset = self.subsets.get(place)
            if subset is not None:
                stored = stored.take(subset[0])
            folder = str(self.root.path / place)
            loaded = read_runs(
                folder,
                names,
                stored,
                self.clock,
                full=place in self.full,
                label=f"{place}/",
                meanwhile=meanwhile,
            )
            if loaded.store is not stored or place in self.extra:
                store = loaded.store
                if subset is not None:  # with the rows left out, as they were
                    store = _merged(whole, *subset[1:], store)
                extra = self.extra.get(place, extra)
                extra = _shared(extra, store, self.resorted.get(place, set()))
                cache.write(store, extra)
            self._missing(folder, loaded.missing, refs)
            if len(loaded.rows) != len(names):
                returned = set(loaded.rows.names)
                self.unread[place] = [n for n in names if n not in returned]
            _refresh_running(folder, loaded.rows)
            parts.append((folder, loaded.rows))
        for path, via in self.refs.get(_FOREIGN, {}).items():
            parent, name = os.path.split(path)
            off = Clock(self.root, enabled=False)
            loaded = read_runs(
                parent, [name], Table(), off, full=True, label=f"{parent}/"
            )
            self._missing(parent, loaded.missing, {name: via})
            _refresh_running(parent, loaded.rows)
            parts.append((parent, loaded.rows))
        # the frame can free the rows as it goes; a load reads once
        self.files.clear()
        self.refs.clear()
        return parts

    def _missing(
        self, folder: str, names: list[str], via: dict[str, str | None]
    ) -> None:
        for name in names:
            link = via.get(name, "")
            if link is None:
                link = f"index/{name}.yaml"
            # a link that is gone by now: the run was deleted during the load;
            # a run now in fails/: it failed, and its links are being moved
            if (
                link
                and os.path.lexists(self.root.path / link)
                and not os.path.isdir(self.root.fails / name)
            ):
                _warn(f"skipped run {name}: {link} points to a missing folder")


def warm(root: Root, folders: Iterable[StrPath]) -> None:
    """Read the run folders ``folders`` (of ``runs/`` and ``fails/``; any
    others are left) into the cache, as a load does, without making a frame
    (nor importing pandas): the next load only ``stat``\\ s them. ``exman
    sweep`` calls it with the runs it made once its tasks have ended, so
    that the first load after a sweep does not read them. Its cost is those
    runs and the cache file, not the root's other runs. A run changed less
    than :data:`~exman.look.cache.RACY_NS` before is read again by that
    load (see :mod:`exman.look.cache`). A root whose cache cannot be written
    is left as it is; a run that cannot be read is left for that load to
    report.
    """
    load = Load(root, True)
    places = {os.path.abspath(root.path / place): place for place in ("runs", "fails")}
    for folder in folders:
        parent, name = os.path.split(os.path.abspath(folder))
        if parent in places:
            load.add(places[parent], name, "")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        load.run()


def _open_dir(path: str) -> int | None:
    """A descriptor of the folder ``path`` to read links in, if the platform
    has them (each link is then found without walking ``path`` again)."""
    if os.readlink not in os.supports_dir_fd:
        return None
    try:
        return os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return None


def _index_map(known: Any) -> dict[str, Any]:
    """The cached listing of index/, or an empty one if it is not valid.

    ``stems``: the link names without ``.yaml``, in id order; ``inos``:
    their inodes; ``targets``: None for the usual link, ``[place, name]``
    for a link to another run folder, False for an entry that is none.
    """
    empty = {"dir": [], "stems": [], "inos": inode_column(), "targets": []}
    if not isinstance(known, dict):
        return empty
    stems, targets, inos = known.get("stems"), known.get("targets"), known.get("inos")
    if isinstance(inos, bytes) and len(inos) % 8 == 0:
        inos = inode_column()
        inos.frombytes(known["inos"])
    if not (
        isinstance(known.get("dir"), list)
        and isinstance(stems, list)
        and isinstance(targets, list)
        and isinstance(inos, array.array)
        and len(stems) == len(inos) == len(targets)
        and set(map(type, stems)) <= {str}
    ):
        return empty
    return {"dir": known["dir"], "stems": stems, "inos": inos, "targets": targets}


def _relisted(old: Any, folders: list[str], *, runs_only: bool) -> list[str] | None:
    """``sorted_by_id(folders, runs_only=runs_only)``, made from ``old``,
    what it gave before (a cache's listing), when few folders came since
    (the usual change: a run made); else None.

    The folders still there keep their order, and each new one is put in
    its place: for one more run, no id of the others is parsed again nor a
    million names sorted.
    """
    if not isinstance(old, list) or not set(map(type, old)) <= {str}:
        return None
    now = set(folders)
    came = now.difference(old)
    if len(came) * _RELIST_SHARE > len(now):
        return None
    there = len(now) - len(came)  # of the names listed before
    names = old if there == len(old) else [name for name in old if name in now]
    out: list[str] = []
    start = 0
    for name in sorted_by_id(list(came), runs_only=runs_only):
        at = bisect.bisect(names, _order(name), lo=start, key=_order)
        out += names[start:at]
        out.append(name)
        start = at
    out += names[start:]
    return out


def _order(name: str) -> tuple[int, str]:
    """Where a run folder goes in a listing: by id, then by name."""
    num = run_id(name)
    return -1 if num is None else num, name


def _merged(
    whole: Table,
    wanted: Sequence[bool],
    listing: list[str],
    cached: dict[str, int] | None,
    read: Table,
) -> Table:
    """The table to cache after a load of some runs of a place: for each run
    of its ``listing``, in that order, its row ``read``, else its row of the
    cached ``whole`` if it was not ``wanted`` (kept as it was). A wanted run
    that gave no row now is left out, as a full load leaves it out; so is a
    cached row of a run no longer listed. The order is the listing's, so
    that the next look finds the place as it was cached.

    A row read that is the cached one (same inode and ctime) is taken from
    ``whole``, so that the table is made of a few slices of the two: a
    look that found one new run in a million copies each column once.
    """
    fresh = {name: i for i, name in enumerate(read.names)}
    spans: list[list[int]] = []  # [table, start, end]: 0 whole, 1 read
    for at, name in enumerate(listing):
        p = at if cached is None else cached.get(name)
        i = fresh.get(name)
        if i is not None and (
            p is None
            or whole.inos[p] != read.inos[i]
            or whole.ctimes[p] != read.ctimes[i]
        ):
            k, p = 1, i  # read anew
        elif p is None or (i is None and wanted[p]):
            continue  # wanted, and gone or unreadable now
        else:
            k = 0
        if spans and spans[-1][0] == k and spans[-1][2] == p:
            spans[-1][2] += 1
        else:
            spans.append([k, p, p + 1])
    return Table.interleave([whole, read], [(k, a, b) for k, a, b in spans])


def _shared(extra: dict[str, Any], table: Table, fresh: set[str]) -> dict[str, Any]:
    """``extra`` to store, its names the very strings of ``table`` (so that
    the pickle holds them once) and its inodes as bytes; a listing that is
    not one (a tampered cache) is dropped.

    Only the names of ``fresh`` (``"index"``, ``"listing"``) were listed
    and sorted anew; the others are the cache's strings already (a listing
    kept, or made from the one before), but for the few runs that came.
    """
    same: dict[str, str] = {}

    def shared(names: list[str], what: str) -> list[str]:
        if names == table.names:  # the usual: a copy of the table's list
            return list(table.names)
        if what not in fresh:
            return names
        if not same:
            same.update((name, name) for name in table.names)
        return [same.get(name, name) for name in names]

    extra = dict(extra)
    try:
        if "index" in extra:
            known = extra["index"]
            stems = shared(known["stems"], "index")
            extra["index"] = {**known, "stems": stems, "inos": bytes(known["inos"])}
    except (TypeError, KeyError, ValueError):
        del extra["index"]
    try:
        if "listing" in extra:
            known = extra["listing"]
            extra["listing"] = {**known, "names": shared(known["names"], "listing")}
    except (TypeError, KeyError, ValueError):
        del extra["listing"]
    return extra


def _refresh_running(folder: str, rows: Table) -> None:
    """Read the status and outcome of running runs again: a heartbeat and
    metrics.jsonl's appends leave the folder's ctime (what the cache checks)
    as it was, so a cached "running" may be a run that died since."""
    statuses = rows.record["status"]
    if isinstance(statuses, Coded) and "running" not in statuses.values:
        return  # the usual large root: not one row to look at
    running = [p for p, status in enumerate(statuses) if status == "running"]
    for p in running:
        path = os.path.join(folder, rows.names[p])
        if Run(path).status == "crashed":
            set_cell(rows.record, "status", p, "crashed")
        outcome, _ = read_outcome(path)
        for key in list(rows.results):
            set_cell(rows.results, key, p, outcome.pop(key, None))
        for key, value in outcome.items():
            rows.results[key] = [None] * len(rows)
            set_cell(rows.results, key, p, value)


def _warn(message: str) -> None:
    warnings.warn(f"exman: {message}", SkippedRunWarning, stacklevel=4)


# -- the frame ----------------------------------------------------------------
