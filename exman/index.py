"""Index: every run of a root as a typed pandas DataFrame.

.. code-block:: python

    import exman
    index = exman.Index(exman.simpleroot("/path/to/main.py"))
    df = index.info()                   # the runs in index/
    best = index.info("best/lr")        # the runs marked under marked/best/lr
    everything = index.info(failed=True, tmp=True)
    one = index.row(42)                 # run 42 as a Series, wherever it is
    curves = index.metrics("loss")      # id, step, time, loss: every record
    table = index.aggregate(over="seed")  # count, loss_mean, loss_std per config

Signature: ``Index(root, *, cache=True)``; ``Index.info(source=None, *,
failed=False, tmp=False) -> DataFrame``; ``Index.row(id) -> Series``;
``Index.metrics(names=None, *, source=None, failed=False, tmp=False)``
(every logged record, long format) and ``Index.aggregate(over="seed", *,
results=None, source=None, status="completed")`` (mean and std of the
results over repetitions): see :mod:`exman.look.analysis`.

Rows: one per run, sorted by ``id``. ``info()`` takes the runs linked in
``index/``; ``info("a/b")`` the runs linked anywhere below ``marked/a/b``
(marks made by ``automark`` or by ``exman mark``, wherever the run is now:
the marks of a run that failed follow it to ``fails/``), and raises
:class:`MarkNotFound` (a ``KeyError``) when ``marked/a/b`` does not exist
(an empty folder there gives no rows).
``failed=True`` adds the runs in ``fails/``, ``tmp=True`` those in ``tmp/``
(their ``root`` tells where each run is). A run that cannot be read (a
dangling link, no or invalid ``params.yaml``, an unsafe YAML tag, a
non-UTF-8 byte, aliases that expand out of proportion to the file, a run
entry that is a symbolic link) is left out with one
:class:`SkippedRunWarning` naming it; a run deleted while it is read is
left out silently.

Columns: ``id`` first, then every parameter, in the order of ``params.yaml``
(keys that appear only in later runs come after), then the outcome of the
runs, then ``status``, ``started``, ``finished``, ``duration``, ``host`` and
``error``. A run column whose name a parameter already uses is called
``run_<name>``. The outcome: one column per value of the runs'
``results.json`` (see :func:`exman.result`) and, for each metric logged
with :func:`exman.log` that has no result of the same name, its last
value (found in the last few KiB of ``metrics.jsonl``: see
:mod:`exman.look.outcome`), typed like the parameters, in the order first met.
An outcome name that a parameter or a run column already uses (a metric
``lr`` logged by a run with a parameter ``lr``) is called ``result_<name>``.

Types. The values of ``params.yaml`` are typed by YAML already (int, float,
bool, str, list, dict, None); each column is built from those Python values
by pandas, and nothing is guessed from strings:

* ints -> int64; ints and floats -> float64; ints or floats with missing
  values -> float64 with NaN; bools -> bool (object, with None, when some
  runs lack the value); strings -> pandas' string dtype (NaN where
  missing); lists stay lists and dicts stay dicts (object); a key that is
  null in every run is kept as a column of None; a run without a key that
  others have (a parameter added later) gets None/NaN there.
* ``id`` -> int64; ``time`` (``%Y-%m-%dT%H:%M:%S``, local time, as written
  in params.yaml) -> naive ``datetime64[ns]``; ``root`` -> the absolute
  ``pathlib.Path`` of the run folder, where it is now (``fails/...`` for a
  failed run).
* ``status`` -> completed, failed, interrupted, running, crashed (the
  record says running but its heartbeat stopped, or its process is gone
  from this host: see :mod:`exman.record.heartbeat`) or unknown
  (no run.json: a run made by exman 0.1.9). It is worked out at every call,
  never cached. ``started``/``finished`` -> datetime64 in UTC
  (tz-aware: runs may come from hosts in different time zones; use
  ``.dt.tz_convert(...)`` for local times). ``duration`` -> float64 seconds.
  ``host`` -> the machine that ran it. ``error`` -> the last line of
  ``traceback.txt`` (or the recorded reason, like ``exit code 3``) for a
  failed or interrupted run, else missing. When some run was made by
  ``exman sweep``: ``sweep`` (its name), ``task`` (the task number) and
  ``task_key`` (the task's key), missing for the other runs.

Speed: the parsed runs are cached under ``.exman/cache/`` (see
:mod:`exman.look.cache`); a load on an unchanged root reads one file and stats
each run folder. ``Index(root, cache=False)`` reads every run again.
"""

from __future__ import annotations

import array
import datetime
import os
import pathlib
import warnings
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from .look.analysis import Columns, aggregate_frame, metrics_frame
from .look.cache import CacheFile, Clock, SkippedRunWarning, read_runs
from .look.outcome import DamagedMetricsWarning, read_outcome
from .look.rows import Table, inode_column
from .record.params import PARAMS_FILE, TIME_FORMAT
from .record.run import Run, effective_status
from .record.store import ExmanError, Root, RunNotFound, StrPath, run_id

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["DamagedMetricsWarning", "Index", "MarkNotFound", "SkippedRunWarning"]

RUN_COLUMNS = ("status", "started", "finished", "duration", "host", "error")
#: the sweep task a run belongs to: columns only when some run has one
SWEEP_COLUMNS = ("sweep", "task", "task_key")
PLACES = ("runs", "fails", "tmp")
_FOREIGN = ""  # the place of a run folder outside runs/, fails/ and tmp/
_GONE = object()  # an index link removed between listing index/ and reading it


class MarkNotFound(ExmanError, KeyError):
    """No runs were ever marked under this key."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class Index:
    """The runs of an exman root, as pandas DataFrames.

    :param root: the root folder (the one holding ``runs/`` and ``index/``).
    :param cache: keep what was read under ``.exman/cache/`` and reuse it
        while the run folders do not change; False reads every run again and
        leaves the cache alone.
    :raises ExmanError: ``root`` is not an exman root, or one of its
        folders is a symbolic link (exman never follows one out of the root).
    """

    def __init__(self, root: StrPath, *, cache: bool = True) -> None:
        self.root = Root(root)
        self.cache = cache
        if not self.root.exists():
            raise ExmanError(
                f"{self.root.path} is not an exman root: it has no runs/ and "
                "index/ folders. Pass the folder given to ExParser(root=...)"
            )
        self.root.check_layout()

    def __repr__(self) -> str:
        return f"Index({str(self.root.path)!r})"

    # -- the public calls -------------------------------------------------------
    def info(
        self,
        source: StrPath | None = None,
        *,
        failed: bool = False,
        tmp: bool = False,
        njobs: int | None = None,
    ) -> pd.DataFrame:
        """The runs as a DataFrame: one row per run, sorted by id.

        :param source: None for the runs in ``index/``; a mark key such as
            ``"best"`` or ``"lr/0.1"`` for the runs marked under it, at any
            depth below.
        :param failed: also the runs in ``fails/``.
        :param tmp: also the runs in ``tmp/`` (made with ``--tmp``).
        :param njobs: ignored (kept for code written for exman 0.1.9).
        :raises MarkNotFound: (a ``KeyError``) no mark ``source``.
        :raises ExmanError: ``source`` is an absolute path or has ``..``.
        """
        if njobs is not None:
            warnings.warn(
                "Index.info(njobs=...) is ignored: loading is fast without it",
                DeprecationWarning,
                stacklevel=2,
            )
        return self._load(source, failed=failed, tmp=tmp)[0]

    def metrics(
        self,
        names: str | Sequence[str] | None = None,
        *,
        source: StrPath | None = None,
        failed: bool = False,
        tmp: bool = False,
    ) -> pd.DataFrame:
        """Every record the runs logged with :func:`exman.log`, one row each.

        A long DataFrame: ``id``, ``step``, ``time`` (datetime64, UTC), then
        one column per metric, in the order first logged; the runs in id
        order, the records of each in the order of its ``metrics.jsonl``.
        A line cut short by a crash is left out; lines that are no JSON
        object are skipped with a :class:`DamagedMetricsWarning`.

        :param names: the metric(s) to keep; records with none of them are
            left out. None: every metric.
        :param source: the runs, as in :meth:`info`.
        :param failed: also the runs in ``fails/``.
        :param tmp: also the runs in ``tmp/``.
        :raises ExmanError: a name in ``names`` was logged by none of the runs.
        :raises MarkNotFound: no mark ``source``.
        """
        frame = self.info(source, failed=failed, tmp=tmp)
        runs = list(zip(frame["id"].tolist(), frame["root"].tolist()))
        del frame
        return metrics_frame(runs, names)

    def aggregate(
        self,
        over: str | Sequence[str] = "seed",
        *,
        results: str | Sequence[str] | None = None,
        source: StrPath | None = None,
        status: str | Sequence[str] | None = "completed",
    ) -> pd.DataFrame:
        """Results over repetitions: runs grouped by every parameter but ``over``.

        One row per group, in the order of the group's first run: the
        group's parameters, ``count`` (its runs), and ``<result>_mean`` and
        ``<result>_std`` (the sample standard deviation, NaN for one run) of
        each result; missing values are skipped. exman's own parameters
        (``name``, ``tmp``, ``config_file``, ``commit``…; ``exman_name``…
        where the script has its own ``--name``) group nothing; a
        list or dict parameter groups by its value; runs without a
        parameter form their own group.

        :param over: the parameter(s) that differ between the repetitions.
        :param results: the outcome column(s) to aggregate: results, or the
            last value of a logged metric; None: every outcome column whose
            values are numbers.
        :param source: the runs, as in :meth:`info`.
        :param status: only the runs with this status (or one of these);
            None: every run. A run that did not complete has no final result.
        :raises ExmanError: ``over`` is not a parameter, or a result named
            in ``results`` is missing or not a number.
        :raises MarkNotFound: no mark ``source``.
        """
        frame, columns = self._load(source)
        return aggregate_frame(
            frame, columns, over=over, results=results, status=status
        )

    def _load(
        self, source: StrPath | None, *, failed: bool = False, tmp: bool = False
    ) -> tuple[pd.DataFrame, Columns]:
        load = _Load(self.root, self.cache)
        if source is None:
            load.add_index()
        else:
            load.add_marks(source)
        if failed:
            load.add_place("fails")
        if tmp:
            load.add_place("tmp")
        return _frame(load.run())

    def row(self, num: int) -> pd.Series:
        """Run ``num`` (in ``runs/``, ``fails/`` or ``tmp/``) as a Series.

        :raises RunNotFound: no run has this id, or it cannot be read (a
            :class:`SkippedRunWarning` says why).
        """
        folder = self.root.find(num)
        load = _Load(self.root, self.cache)
        load.add(folder.parent.name, folder.name, str(folder))
        frame = _frame(load.run())[0]
        if not len(frame):
            raise RunNotFound(f"run {num} in {folder} cannot be read")
        return frame.iloc[0]


class _Load:
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

    def add(self, place: str, name: str, via: str) -> None:
        self.refs.setdefault(place, {}).setdefault(name, via)
        self.ordered.discard(place)

    def cached(self, place: str) -> tuple[CacheFile, Table, dict[str, Any]]:
        if place not in self.files:
            cache = CacheFile(self.root, place, enabled=self.cache)
            self.files[place] = (cache, *cache.read())
        return self.files[place]

    # -- sources ------------------------------------------------------------------
    def add_place(self, place: str) -> None:
        """Every run folder in ``place`` (``fails`` or ``tmp``)."""
        self.full.add(place)
        self.refs.setdefault(place, {})
        try:
            entries = os.scandir(self.root.path / place)
        except FileNotFoundError:
            return
        with entries:
            for entry in entries:
                if run_id(entry.name) is not None and entry.is_dir():
                    self.add(place, entry.name, "")

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
                found = sorted(
                    (_order(e.name[: -len(".yaml")]), e.inode())
                    for e in entries
                    if e.name.endswith(".yaml")
                )
            old = dict(zip(known["stems"], zip(known["inos"], known["targets"])))
            stems: list[str] = []
            inos = inode_column()
            targets = []
            for (_, stem), ino in found:
                seen = old.get(stem)
                target = (
                    seen[1]
                    if seen is not None and seen[0] == ino
                    else self._index_target(index, stem)
                )
                if target is _GONE:  # removed since the listing: a delete
                    continue
                stems.append(stem)
                inos.append(ino)
                targets.append(target)
            stamp = [st.st_ino, self.clock.trusted(st.st_ctime_ns)]
            known = {"dir": stamp, "stems": stems, "inos": inos, "targets": targets}
            self.extra["runs"] = {**extra, "index": known}
        for stem, target in zip(known["stems"], known["targets"]):
            if target is None:  # the usual link
                runs.setdefault(stem, None)
            elif isinstance(target, list) and len(target) == 2:
                self.add(str(target[0]), str(target[1]), f"index/{stem}.yaml")
            else:
                _warn(f"skipped index/{stem}.yaml: not a link to a run's {PARAMS_FILE}")

    def _index_target(self, index: str, stem: str) -> Any:
        """None for the usual link, ``[place, name]`` for another, :data:`_GONE`
        for a link removed since the listing, else False."""
        link = os.path.join(index, f"{stem}.yaml")
        try:
            target = os.readlink(link)
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

    # -- reading ---------------------------------------------------------------------
    def run(self) -> list[tuple[str, Table]]:
        """Read the runs: ``(folder of their place, rows)`` per place."""
        parts: list[tuple[str, Table]] = []
        for place in PLACES:
            if place not in self.refs:
                continue
            refs = self.refs[place]
            names = list(refs) if place in self.ordered else sorted(refs, key=_order)
            cache, stored, extra = self.cached(place)
            folder = str(self.root.path / place)
            loaded = read_runs(
                folder,
                names,
                stored,
                self.clock,
                full=place in self.full,
                label=f"{place}/",
            )
            if loaded.store is not stored or place in self.extra:
                extra = self.extra.get(place, extra)
                if "index" in extra:
                    extra = {**extra, "index": _shared(extra["index"], loaded.store)}
                cache.write(loaded.store, extra)
            self._missing(folder, loaded.missing, refs)
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
        self.files.clear()  # the frame can free the rows as it goes
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


def _order(name: str) -> tuple[int, str]:
    """Sort runs by id (names that are no run's come first)."""
    num = run_id(name)
    return (-1 if num is None else num), name


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
        and all(type(s) is str for s in stems)
    ):
        return empty
    return {"dir": known["dir"], "stems": stems, "inos": inos, "targets": targets}


def _shared(known: dict[str, Any], table: Table) -> dict[str, Any]:
    """``known`` to store, its names the very strings of ``table`` (so that
    the pickle holds them once) and its inodes as bytes."""
    same = {name: name for name in table.names}
    stems = [same.get(stem, stem) for stem in known["stems"]]
    inos = known["inos"]
    return {**known, "stems": stems, "inos": bytes(inos)}


def _refresh_running(folder: str, rows: Table) -> None:
    """Read the status and outcome of running runs again: a heartbeat and
    metrics.jsonl's appends leave the folder's ctime (what the cache checks)
    as it was, so a cached "running" may be a run that died since."""
    statuses = rows.record["status"]
    for p, status in enumerate(statuses):
        if status != "running":
            continue
        path = os.path.join(folder, rows.names[p])
        if Run(path).status == "crashed":
            statuses[p] = "crashed"
        outcome, _ = read_outcome(path)
        for key, col in rows.results.items():
            col[p] = outcome.pop(key, None)
        for key, value in outcome.items():
            col = rows.results[key] = [None] * len(rows)
            col[p] = value


def _warn(message: str) -> None:
    warnings.warn(f"exman: {message}", SkippedRunWarning, stacklevel=4)


# -- the frame ----------------------------------------------------------------
def _frame(parts: list[tuple[str, Table]]) -> tuple[pd.DataFrame, Columns]:
    """One DataFrame from the rows of every place, typed and sorted by id,
    and what its columns are.

    The table is consumed column by column (each list is dropped once it is
    a Series) and nothing is copied afterwards, so that a load needs little
    more memory than the frame it returns.
    """
    import numpy as np
    import pandas as pd

    parts[:] = [(folder, rows) for folder, rows in parts if len(rows)]
    table = Table.concat([rows for _, rows in parts]) if parts else Table()
    folders = [folder for folder, rows in parts for _ in range(len(rows))]
    parts.clear()  # the caller's list too: its tables go as columns are used
    n = len(table)
    ids = np.asarray(table.params.pop("id", []), dtype=np.int64)
    order = np.argsort(ids, kind="stable")
    if n < 2 or bool((ids[1:] >= ids[:-1]).all()):
        index: list[int] | None = None
    else:
        index = order.tolist()
        ids = ids[order]

    def ordered(values: list[Any]) -> list[Any]:
        return values if index is None else [values[i] for i in index]

    keys = [k for k in table.keys(order.tolist()) if k != "id"]
    for key in ("time", "root"):
        if key not in keys:
            keys.append(key)
    data: dict[str, Any] = {"id": ids}
    for key in keys:
        if key == "root":
            data[key] = pd.Series(_paths(ordered(folders), ordered(table.names)))
        elif key == "time":
            data[key] = _times(ordered(table.params.pop(key, [None] * n)))
        else:
            data[key] = pd.Series(ordered(table.params.pop(key, [None] * n)))
    del folders
    params = [k for k in data if k not in ("id", "time", "root")]
    record = table.record
    sweep_columns = (
        SWEEP_COLUMNS if any(k is not None for k in record["task_key"]) else ()
    )
    run_names = {c: f"run_{c}" if c in data else c for c in RUN_COLUMNS + sweep_columns}
    taken = {*data, *RUN_COLUMNS, *SWEEP_COLUMNS, *run_names.values()}
    results = []
    for key in _first_met(table.results, order):
        name = f"result_{key}" if key in taken else key
        data[name] = pd.Series(ordered(table.results.pop(key)))
        results.append(name)
    statuses = _statuses(record)
    for column, name in run_names.items():
        if column == "status":
            data[name] = pd.Series(ordered(statuses))
        elif column in ("started", "finished"):
            data[name] = _utc(ordered(record[column]))
        elif column == "duration":
            data[name] = pd.Series(ordered(record[column]), dtype="float64")
        else:
            data[name] = pd.Series(ordered(record[column]))
    del table, record
    columns = Columns(params, results, run_names["status"])
    return pd.DataFrame(data, copy=False), columns


def _first_met(columns: dict[str, list[Any]], order: Any) -> list[str]:
    """The keys of ``columns`` by the first row (in id ``order``) with a value."""
    if len(columns) < 2:
        return list(columns)
    found: list[str] = []
    left = dict(columns)
    for p in order.tolist():  # usually the first run has every key
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
