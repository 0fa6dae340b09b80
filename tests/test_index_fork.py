"""A first load read by two processes: the same rows, warnings and order as
one process reads, nothing lost when the forked copy dies, no copy left
behind when the load is interrupted, no fork where it is not safe."""

from __future__ import annotations

import json
import os
import pathlib
import select
import signal
import subprocess
import sys
import time
import warnings
from collections.abc import Iterator
from typing import Any

import pytest
from _index_runs import make_run

from exman.index import Index
from exman.look import cache, columns, fork, rows
from exman.look.gather import Load
from exman.record.store import Root

pytestmark = pytest.mark.skipif(
    not hasattr(os, "sched_getaffinity") or len(os.sched_getaffinity(0)) < 2,
    reason="one core: a load never forks",
)


@pytest.fixture(autouse=True)
def quiet(monkeypatch: pytest.MonkeyPatch) -> None:
    """This process counts as having no other thread: tests before these
    leave the heartbeat threads of runs they made running (a run is tracked
    until its process ends). :func:`test_no_fork_beside_another_thread`
    checks the real count, in new processes."""
    monkeypatch.setattr(fork, "_threads", lambda: 0)


@pytest.fixture
def root(tmp_path: pathlib.Path) -> pathlib.Path:
    """Runs of every kind a load meets: two schemas, results, tags, a failed
    run, a damaged run.json, a run without params.yaml."""
    root = tmp_path / "exman"
    for i in range(30):
        params: dict[str, Any] = {"lr": i / 10, "model": "mlp" if i % 3 else "cnn"}
        if i % 4 == 0:
            params["depth"] = i
        run = make_run(root, params)
        if i % 5 == 0:
            (run / "results.json").write_text(json.dumps({"acc": i / 30}))
        if i == 11:
            (run / "annotations.json").write_text('{"tags": ["best"], "note": "n"}')
        if i in (0, 2, 13):  # read first by the child, first by the parent
            (run / "run.json").write_text("{damaged")
        if i == 17:
            (run / "params.yaml").unlink()
    make_run(root, {"lr": 1.0}, status="failed")
    return root


@pytest.fixture
def small_pieces(monkeypatch: pytest.MonkeyPatch) -> None:
    """Pieces of two runs, so that 30 runs are shared by two processes."""
    monkeypatch.setattr(cache, "PIECE", 2)


class Shares:
    """Records what each :func:`exman.look.fork.share` returned."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.parts: list[list[tuple[list[int], Any]]] = []
        real = fork.share

        def recording(*args: Any, **kwargs: Any) -> Any:
            parts = real(*args, **kwargs)
            self.parts.append(parts)
            return parts

        monkeypatch.setattr(fork, "share", recording)


@pytest.fixture
def shares(monkeypatch: pytest.MonkeyPatch) -> Shares:
    return Shares(monkeypatch)


def _both_take(
    monkeypatch: pytest.MonkeyPatch, owner: Any, name: str
) -> Iterator[None]:
    """Each process of a share does a piece (``owner.name``) before the
    other goes on: the child does the first and waits until the parent has
    done one, so that both do pieces, whatever the scheduler does."""
    parent = os.getpid()
    to_parent = os.pipe()
    to_child = os.pipe()
    real = getattr(owner, name)
    started: set[int] = set()

    def piece(*args: Any) -> Any:
        if os.getpid() not in started:  # this process's first piece
            started.add(os.getpid())
            if os.getpid() != parent:
                os.write(to_parent[1], b"x")
                _wait(to_child[0])
            else:
                os.write(to_child[1], b"x")
        return real(*args)

    def share(pieces: int, do: Any, done: Any, meanwhile: Any = None) -> Any:
        def after_the_child() -> None:
            if meanwhile is not None:
                meanwhile()
            _wait(to_parent[0])

        return real_share(pieces, do, done, after_the_child)

    real_share = fork.share
    monkeypatch.setattr(owner, name, piece)
    monkeypatch.setattr(fork, "share", share)
    yield
    for fd in (*to_parent, *to_child):
        os.close(fd)


@pytest.fixture
def both_read(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Both processes of a first load read runs."""
    yield from _both_take(monkeypatch, cache._Reader, "read")


@pytest.fixture
def both_stat(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Both processes of a warm listing stat run folders."""
    yield from _both_take(monkeypatch, cache, "_stat_piece")


def _wait(fd: int) -> None:
    ready, _, _ = select.select([fd], [], [], 30)
    assert ready, "the other process took no piece"
    os.read(fd, 1)


def _load(root: pathlib.Path, **kwargs: Any) -> tuple[Any, list[str]]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        frame = Index(root, cache=False).info(**kwargs)
    return frame, [str(w.message) for w in caught]


def _forked_away(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EXMAN_FORK", "0")


# -- the same rows ---------------------------------------------------------------
@pytest.mark.usefixtures("small_pieces", "both_read")
def test_two_processes_read_what_one_reads(
    root: pathlib.Path, monkeypatch: pytest.MonkeyPatch, shares: Shares
) -> None:
    forked, forked_warnings = _load(root, failed=True)
    assert shares.parts and len(shares.parts[0]) == 2, "no second process read"
    (mine, _), (theirs, _) = shares.parts[0]
    assert mine and theirs
    assert sorted(mine + theirs) == list(range(15))  # each piece once
    monkeypatch.setenv("EXMAN_FORK", "0")
    alone, alone_warnings = _load(root, failed=True)
    assert len(shares.parts) == 1  # the second load read in one process
    assert forked.equals(alone)
    assert list(forked.index) == list(alone.index)
    assert forked_warnings == alone_warnings
    assert len(forked_warnings) == 4  # 3 run.json, run 18's params.yaml
    assert forked.set_index("id").loc[12, "tags"] == ["best"]  # ids from 1
    assert forked["status"].tolist().count("failed") == 1


@pytest.mark.usefixtures("small_pieces", "both_read")
def test_the_cache_a_shared_load_writes_is_the_one_a_single_load_writes(
    root: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(cache, "RACY_NS", -(10**15))  # every run trusted
    with pytest.warns(cache.SkippedRunWarning):
        Index(root).info()
    shared = cache.CacheFile(Root(root), "runs").read()
    assert len(shared[0]) == 29
    monkeypatch.setenv("EXMAN_FORK", "0")
    (root / ".exman" / "cache" / "runs.pickle").unlink()
    with pytest.warns(cache.SkippedRunWarning):
        Index(root).info()
    alone = cache.CacheFile(Root(root), "runs").read()
    assert _cells(alone[0]) == _cells(shared[0])
    assert alone[1] == shared[1]


def _cells(table: Any) -> dict[str, Any]:
    """What a table holds, whatever the form of its columns."""
    keys = [dict.fromkeys(table.schemas[s]) for s in table.schema]
    return {
        "names": table.names,
        "inos": list(table.inos),
        "ctimes": list(table.ctimes),
        "keys": keys,
        **{
            f"{section}.{key}": list(column)
            for section in ("params", "record", "results")
            for key, column in getattr(table, section).items()
        },
    }


@pytest.mark.usefixtures("small_pieces")
def test_pandas_is_imported_while_the_copy_reads(
    root: pathlib.Path, shares: Shares, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[int] = []
    load = Load.of(Root(root), False, failed=True)
    with pytest.warns(cache.SkippedRunWarning):
        load.run(meanwhile=lambda: calls.append(os.getpid()))
    assert calls == [os.getpid()]  # once, here, for two places read
    assert len(shares.parts) == 1  # fails/ holds one run: no second fork
    _forked_away(monkeypatch)
    load = Load.of(Root(root), False)
    with pytest.warns(cache.SkippedRunWarning):
        load.run(meanwhile=lambda: calls.append(os.getpid()))
    assert len(calls) == 1  # nothing read by another process: not called


# -- a warm listing ------------------------------------------------------------------
def _changed_since_cached(
    root: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> tuple[str, str, str]:
    """Cache every run, then edit one, delete one and put a link in the
    place of a third; their names."""
    monkeypatch.setattr(cache, "RACY_NS", -(10**15))  # every run trusted
    with monkeypatch.context() as alone:
        alone.setenv("EXMAN_FORK", "0")
        with pytest.warns(cache.SkippedRunWarning):
            Load.of(Root(root), True).run()
    runs = sorted((root / "runs").iterdir())
    edited = runs[5] / "params.yaml"
    (runs[5] / "new.yaml").write_text(edited.read_text().replace("lr: 0.5", "lr: 5.5"))
    os.replace(runs[5] / "new.yaml", edited)
    for path in sorted(runs[7].iterdir()):
        path.unlink()
    runs[7].rmdir()
    for path in sorted(runs[9].iterdir()):
        path.unlink()
    runs[9].rmdir()
    runs[9].symlink_to(runs[10])
    return runs[5].name, runs[7].name, runs[9].name


@pytest.mark.usefixtures("both_stat")
def test_a_warm_listing_stats_in_two_processes_what_one_stats(
    root: pathlib.Path, monkeypatch: pytest.MonkeyPatch, shares: Shares
) -> None:
    _, deleted, linked = _changed_since_cached(root, monkeypatch)
    monkeypatch.setattr(cache, "STAT_PIECE", 2)
    place = str(root / "runs")
    names = [*sorted(os.listdir(place)), deleted]
    fd = os.open(place, os.O_RDONLY)
    try:
        forked = cache._stats(place, names, fd, shared=True)
        assert len(shares.parts) == 1
        (mine, _), (theirs, _) = shares.parts[0]
        assert mine and theirs
        assert sorted(mine + theirs) == list(range(15))  # 30 names, pieces of 2
        alone = cache._stats(place, names, fd, shared=False)
    finally:
        os.close(fd)
    assert len(shares.parts) == 1  # not shared: one process
    assert forked == alone
    inos, ctimes, missing, links = forked
    assert len(inos) == len(ctimes) == len(names)
    assert missing == [deleted]
    assert links == [linked]
    assert ctimes[names.index(linked)] == ctimes[-1] == -1
    assert inos[0] == os.stat(os.path.join(place, names[0])).st_ino


@pytest.mark.usefixtures("both_stat")
def test_a_warm_listing_in_two_processes_sees_every_change(
    root: pathlib.Path, monkeypatch: pytest.MonkeyPatch, shares: Shares
) -> None:
    edited, deleted, linked = _changed_since_cached(root, monkeypatch)
    monkeypatch.setattr(cache, "STAT_PIECE", 4)
    with pytest.warns(cache.SkippedRunWarning) as caught:
        parts = Load.of(Root(root), True).run()  # what `exman ls` reads
    assert len(shares.parts) == 1, "the folders were not stat'ed by two processes"
    ((_, rows),) = [part for part in parts if part[0].endswith("runs")]
    assert deleted not in rows.names and linked not in rows.names
    lr = dict(zip(rows.names, rows.params["lr"]))
    assert lr[edited] == 5.5
    assert any("symbolic link" in str(w.message) for w in caught)
    with monkeypatch.context() as alone:  # the cache it wrote: a single load's
        alone.setenv("EXMAN_FORK", "0")
        with pytest.warns(cache.SkippedRunWarning):
            again = Load.of(Root(root), True).run()
    assert [(folder, t.names) for folder, t in again] == [
        (folder, t.names) for folder, t in parts
    ]
    ((_, cached),) = [part for part in again if part[0].endswith("runs")]
    assert dict(zip(cached.names, cached.params["lr"])) == lr


@pytest.mark.usefixtures("small_pieces", "both_read")
def test_both_processes_finish_their_rows_at_once(
    root: pathlib.Path, monkeypatch: pytest.MonkeyPatch, shares: Shares
) -> None:
    """The parent makes its table of the rows it read before it waits for
    the copy's: the copy's finish here waits (10 s at most, then fails) for
    a byte that only the parent's finish sends."""
    parent = os.getpid()
    signal_r, signal_w = os.pipe()
    finished: list[int] = []
    real = cache._Reader.done

    def done(self: Any) -> Any:
        if os.getpid() == parent:
            finished.append(parent)
            os.write(signal_w, b"x")
        elif not select.select([signal_r], [], [], 10)[0]:
            raise TimeoutError("the parent waited before it finished its own")
        return real(self)

    monkeypatch.setattr(cache._Reader, "done", done)
    try:
        frame, _ = _load(root)
    finally:
        os.close(signal_r)
        os.close(signal_w)
    assert finished == [parent]  # once: the copy's rows came from the copy
    assert len(shares.parts[0]) == 2
    monkeypatch.setattr(cache._Reader, "done", real)
    _forked_away(monkeypatch)
    assert frame.equals(_load(root)[0])


# -- failures --------------------------------------------------------------------
@pytest.mark.usefixtures("small_pieces")
@pytest.mark.parametrize("how", ["killed", "raises", "exits"])
def test_a_copy_that_dies_loses_nothing(
    root: pathlib.Path, monkeypatch: pytest.MonkeyPatch, shares: Shares, how: str
) -> None:
    parent = os.getpid()
    real = cache._Reader.read

    def read(self: Any, piece: int, names: list[str]) -> None:
        real(self, piece, names)  # the child reads one piece, then dies
        if os.getpid() != parent:
            if how == "killed":
                os.kill(os.getpid(), signal.SIGKILL)
            elif how == "raises":
                raise MemoryError
            else:
                os._exit(0)

    monkeypatch.setattr(cache._Reader, "read", read)
    slow = _slowed(monkeypatch)
    frame, caught = _load(root)
    # the parent did every piece: its own, then those the copy took
    (mine, _), (rest, _) = shares.parts[0]
    assert sorted(mine + rest) == list(range(15)) and len(rest) >= 1
    slow.undo()
    _forked_away(monkeypatch)
    assert frame.equals(_load(root)[0])
    assert caught == _load(root)[1]


class _Slowed:
    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.monkeypatch = monkeypatch

    def undo(self) -> None:
        self.monkeypatch.undo()


def _slowed(monkeypatch: pytest.MonkeyPatch) -> _Slowed:
    """The parent starts reading after the child has had time to take a piece."""
    real = fork.share

    def share(pieces: int, do: Any, done: Any, meanwhile: Any = None) -> Any:
        def later() -> None:
            if meanwhile is not None:
                meanwhile()
            select.select([], [], [], 0.3)

        return real(pieces, do, done, later)

    patch = pytest.MonkeyPatch()
    patch.setattr(fork, "share", share)
    return _Slowed(patch)


@pytest.mark.usefixtures("small_pieces")
def test_an_interrupted_load_leaves_no_copy_behind(
    root: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    forked: list[int] = []
    real_fork = os.fork

    def recording() -> int:
        pid = real_fork()
        if pid:
            forked.append(pid)
        return pid

    monkeypatch.setattr(os, "fork", recording)

    def interrupted() -> None:
        raise KeyboardInterrupt

    load = Load.of(Root(root), False)
    with pytest.raises(KeyboardInterrupt):
        load.run(meanwhile=interrupted)
    assert len(forked) == 1
    assert not os.path.exists(f"/proc/{forked[0]}")  # killed and reaped


@pytest.mark.usefixtures("small_pieces")
def test_the_copy_does_not_run_the_parents_signal_handlers(
    root: pathlib.Path, monkeypatch: pytest.MonkeyPatch, tmp_path: pathlib.Path
) -> None:
    """A run's SIGTERM handler (marks it failed) is its own, not the copy's."""
    ran = tmp_path / "handler-ran"
    parent = os.getpid()

    def handler(signum: int, frame: Any) -> None:
        with open(ran, "a") as f:
            f.write(f"{os.getpid()}\n")

    old = signal.signal(signal.SIGTERM, handler)
    real = cache._Reader.read

    def read(self: Any, piece: int, names: list[str]) -> None:
        if os.getpid() != parent:
            os.kill(os.getpid(), signal.SIGTERM)
        real(self, piece, names)

    monkeypatch.setattr(cache._Reader, "read", read)
    try:
        slow = _slowed(monkeypatch)
        frame, _ = _load(root)
        slow.undo()
    finally:
        signal.signal(signal.SIGTERM, old)
    assert not ran.exists()
    assert len(frame) == 29  # every run but the one without params.yaml


# -- when not to fork ----------------------------------------------------------------
def test_no_fork_beside_another_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    code = """
import threading
from exman.look import fork
print(fork.can_fork())
stop = threading.Event()
thread = threading.Thread(target=stop.wait)
thread.start()
print(fork.can_fork())
done = []
print(fork.share(5, done.append, lambda: list(done)))
stop.set()
"""
    env = {k: v for k, v in os.environ.items() if k != "EXMAN_FORK"}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env
    )
    assert out.stdout.split("\n")[:3] == [
        "True",
        "False",
        "[([0, 1, 2, 3, 4], [0, 1, 2, 3, 4])]",
    ], out.stderr
    monkeypatch.setenv("EXMAN_FORK", "0")
    assert not fork.can_fork()


def test_few_runs_are_read_in_one_process(root: pathlib.Path, shares: Shares) -> None:
    _load(root)  # 30 runs, pieces of 256
    assert shares.parts == []


def test_share_does_each_piece_once(monkeypatch: pytest.MonkeyPatch) -> None:
    done: list[int] = []
    parts = fork.share(200, done.append, lambda: list(done))
    every = sorted(i for taken, _ in parts for i in taken)
    assert every == list(range(200))
    for taken, made in parts:  # what each process did is what it returned
        assert made == taken
    with pytest.raises(ValueError):
        fork.share(fork.MAX_PIECES + 1, done.append, list)


@pytest.mark.parametrize("items", [1, 9, 10, 11, fork.MAX_PIECES * 10 + 1])
def test_pieces_cover_every_item_within_the_queue(items: int) -> None:
    size, count = fork.pieces_of(items, 10)
    assert size >= 10 and 0 < count <= fork.MAX_PIECES
    assert size * (count - 1) < items <= size * count  # no empty piece


# -- the columns of the pieces, put together ------------------------------------------
def test_interleaved_pieces_are_concat_then_take() -> None:
    """Table.interleave: what the rows of the pieces put together and then
    taken in the order of the spans would be, however the columns are kept."""
    from exman.look.rows import RowBuilder

    def table(start: int, n: int, extra: str) -> Any:
        builder = RowBuilder()
        for i in range(start, start + n):
            params: dict[str, Any] = {"lr": i / 10, "model": "ab"[i % 2], "n": i}
            if i % 3 == 0:
                params[extra] = [i]  # a list column, a second schema
            record = {"status": "completed" if i % 4 else "failed"}
            outcome = {"acc": i / 100} if i % 5 else {}
            builder.add(f"{i:06d}-x", i, i, params, record, outcome)
        return builder.finish()

    tables = [table(0, 12, "depth"), table(12, 9, "width")]
    spans = [(1, 0, 4), (0, 0, 5), (0, 5, 5), (1, 4, 9), (0, 5, 12)]
    joined = rows.Table.interleave(tables, spans)
    both = rows.Table.concat(tables)
    order = [p + (12 if k else 0) for k, a, b in spans for p in range(a, b)]
    assert _cells(joined) == _cells(both.take(order))
    assert rows.Table.interleave(tables, [(0, 0, 12)]) is tables[0]
    assert _cells(rows.Table.concat([tables[0], rows.Table()])) == _cells(tables[0])


@pytest.mark.parametrize(
    "positions",
    [
        [*range(10, 60), *range(100, 180)],  # two stretches: sliced
        [*range(0, 40), *range(160, 200)],  # the first and last rows
        list(range(5, 200, 3)),  # no stretch: row by row
        [*range(100, 180), *range(10, 60)],  # out of order: row by row
    ],
)
def test_rows_taken_in_stretches_are_the_rows_taken_one_by_one(
    positions: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Table.take slices each column once per stretch of consecutive rows
    (a sweep's runs among a root's): the same table as taking each row,
    without the parameters and results that no taken row has."""
    from exman.look.rows import RowBuilder

    builder = RowBuilder()
    for i in range(200):
        params: dict[str, Any] = {"lr": i / 10, "model": "ab"[i % 2], "n": i}
        if 60 <= i < 100:
            params["only_between"] = [i]  # a schema of rows never taken in stretches
        record = {"status": "completed" if i % 4 else "failed"}
        outcome = {"acc": i / 100} if i % 5 else {}
        if 60 <= i < 100:
            outcome["late"] = i
        builder.add(f"{i:06d}-x", i, i, params, record, outcome)
    table = builder.finish()
    sliced = _cells(table.take(positions))
    monkeypatch.setattr(rows, "_SPAN_ROWS", len(table) + 1)  # never in stretches
    one_by_one = _cells(table.take(positions))
    assert sliced == one_by_one
    assert sliced["names"] == [f"{i:06d}-x" for i in positions]
    if positions[0] == 10:
        assert "params.only_between" not in sliced
        assert "results.late" not in sliced


@pytest.mark.parametrize(
    ("changed", "added"),
    [
        ([], 3),  # runs came
        ([0, 7, 39], 2),  # runs changed (the first and last too) and came
        ([20, 21], 0),  # runs changed, none came
        ([10, 11, 12], 3),  # the only runs with a key changed: it is gone
    ],
)
def test_rows_updated_in_place_are_the_rows_concatenated_and_taken(
    changed: list[int], added: int
) -> None:
    """Table.updated (a load's rows when some runs changed and others
    came) gives the table that concatenating the new rows and taking them
    in the listing's order gives, without what no row has any more."""
    from exman.look.rows import RowBuilder, Table

    def table(rows: list[tuple[int, dict[str, Any], dict[str, Any]]]) -> Table:
        builder = RowBuilder()
        for i, params, outcome in rows:
            builder.add(f"{i:06d}-x", i, i, params, {"status": "completed"}, outcome)
        return builder.finish()

    old = []
    for i in range(40):
        params: dict[str, Any] = {"lr": i / 10, "model": "ab"[i % 2]}
        if 10 <= i < 13:
            params["gone"] = [i]  # a schema no row has once they changed
        old.append((i, params, {"acc": i / 100} if i % 3 else {}))
    stored = table(old)
    new = table(
        [(i, {"lr": -i, "model": "c"}, {"loss": i}) for i in changed]
        + [(40 + k, {"lr": k, "model": "a", "seed": k}, {}) for k in range(added)]
    )
    where = {name: p for p, name in enumerate(stored.names)}
    where.update((name, len(stored) + k) for k, name in enumerate(new.names))
    listing = [f"{i:06d}-x" for i in range(40 + added)]
    expected = Table.concat([stored, new]).take([where[n] for n in listing])
    updated = stored.updated(changed, new)
    assert _cells(updated) == _cells(expected)
    assert updated.names == listing
    assert ("params.gone" in _cells(updated)) == (changed != [10, 11, 12])


@pytest.mark.parametrize("wide", [False, True])
def test_coded_columns_concat_with_their_codes_mapped(wide: bool) -> None:
    many = [f"v{i}" for i in range(300)] if wide else []
    a = columns.compact(["x", "y", "x", "y", *many, *many])
    b = columns.compact(["y", "z", "y", "x", "z", "z"])
    c = columns.compact(["x", "y", "x", "y"])
    for parts in ([a, b], [a, c], [c, b], [b, a, c]):
        joined = columns.concat([(p, len(p)) for p in parts])
        assert isinstance(joined, columns.Coded)
        assert list(joined) == [v for p in parts for v in p]


def _children(pid: int) -> list[int]:
    """The processes whose parent is ``pid``."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    stat = f.read()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry))
    return found


def _running(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie has ended)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_a_killed_load_leaves_no_copy_running_and_the_root_readable(
    root: pathlib.Path,
) -> None:
    """SIGKILL to a load while its copy reads: the copy ends by itself (its
    results have nowhere to go), and the next load reads every run."""
    code = """
import os, sys, time
from exman.look import cache, fork
cache.PIECE = 2
fork._threads = lambda: 0
real = cache._Reader.read
def slow(self, piece, names):
    time.sleep(0.1)
    real(self, piece, names)
cache._Reader.read = slow
print(os.getpid(), flush=True)
import exman
exman.Index(sys.argv[1]).info()
"""
    env = {k: v for k, v in os.environ.items() if k != "EXMAN_FORK"}
    proc = subprocess.Popen(
        [sys.executable, "-W", "ignore", "-c", code, str(root)],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert proc.stdout is not None
    with proc.stdout:
        pid = int(proc.stdout.readline())
    deadline = time.monotonic() + 30
    while not (children := _children(pid)):
        assert proc.poll() is None, "the load ended without a copy"
        assert time.monotonic() < deadline, "the load never forked"
        time.sleep(0.01)
    os.kill(pid, signal.SIGKILL)
    proc.wait()
    deadline = time.monotonic() + 30
    while _running(children[0]):
        assert time.monotonic() < deadline, "the copy outlived its parent"
        time.sleep(0.05)
    with pytest.warns(cache.SkippedRunWarning):
        assert len(Index(root).info()) == 29
