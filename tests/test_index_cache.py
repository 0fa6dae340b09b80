"""The cache of Index: reused while nothing changed, never stale, never trusted
blindly (damaged or tampered caches are rebuilt, nothing in them runs)."""

from __future__ import annotations

import os
import pathlib
import pickle
import shutil
import subprocess
import sys
import time
import warnings
import zlib
from collections.abc import Iterator
from typing import Any

import pytest
from _index_runs import make_run

import exman.look.cache
from exman.index import Index, SkippedRunWarning
from exman.look import cache
from exman.record.run import Run
from exman.record.store import Root, atomic_write


@pytest.fixture
def trusting(monkeypatch: pytest.MonkeyPatch) -> None:
    """Runs written a moment ago count as old enough to be cached as verified
    (else every run a test just made is read again by the next load)."""
    monkeypatch.setattr(cache, "RACY_NS", -(10**15))


class Parses:
    """Counts (and optionally forbids) the runs read from their folders."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.count = 0
        self.allowed = True
        real = exman.look.cache.read_run

        def counting(folder: Any, dir_fd: Any, memo: Any) -> Any:
            assert self.allowed, "a run was read again"
            self.count += 1
            return real(folder, dir_fd, memo)

        monkeypatch.setattr(exman.look.cache, "read_run", counting)

    def reset(self) -> int:
        count, self.count = self.count, 0
        return count


@pytest.fixture
def parses(monkeypatch: pytest.MonkeyPatch) -> Parses:
    return Parses(monkeypatch)


@pytest.fixture
def root(tmp_path: pathlib.Path) -> pathlib.Path:
    root = tmp_path / "exman"
    for i in range(5):
        make_run(root, {"lr": i / 10, "model": "mlp", "layers": [i]}, mark=f"m/{i % 2}")
    return root


def cache_files(root: pathlib.Path) -> list[str]:
    folder = root / ".exman" / "cache"
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


# -- reuse --------------------------------------------------------------------
@pytest.mark.usefixtures("trusting")
def test_a_second_load_parses_nothing(root: pathlib.Path, parses: Parses) -> None:
    first = Index(root).info()
    assert parses.reset() == 5
    assert cache_files(root) == ["runs.pickle"]
    parses.allowed = False
    second = Index(root).info()
    assert second.equals(first)
    assert Index(root).info("m/1").lr.tolist() == [0.1, 0.3]


def test_a_first_load_stats_each_run_folder_once(
    root: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With nothing cached every run is read: no stat pass to compare first."""
    names = {p.name for p in (root / "runs").iterdir()}
    seen: list[str] = []
    real = os.stat

    def counting(path: Any, *args: Any, **kwargs: Any) -> os.stat_result:
        name = os.path.basename(os.fspath(path))
        if name in names:
            seen.append(name)
        return real(path, *args, **kwargs)

    monkeypatch.setattr(os, "stat", counting)
    assert len(Index(root).info()) == 5
    assert sorted(seen) == sorted(names)


@pytest.mark.usefixtures("trusting")
def test_a_new_process_parses_nothing(root: pathlib.Path) -> None:
    Index(root).info()
    code = (
        "import sys, exman.look.cache\n"
        "def refuse(*a, **k): raise SystemExit('a run was read again')\n"
        "exman.look.cache.read_run = refuse\n"
        "from exman.index import Index\n"
        f"df = Index({str(root)!r}).info()\n"
        "assert df.lr.tolist() == [0.0, 0.1, 0.2, 0.3, 0.4], df\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.usefixtures("trusting")
def test_results_equal_with_and_without_the_cache(root: pathlib.Path) -> None:
    make_run(root, {"lr": 1.0, "new": "x"}, status="failed")
    make_run(root, {"lr": 2.0, "opt": {"a": [1]}}, tmp=True)
    for kwargs in ({}, {"failed": True, "tmp": True}):
        fresh = Index(root, cache=False).info(**kwargs)
        Index(root).info(**kwargs)
        assert Index(root).info(**kwargs).equals(fresh)
    for key in ("m", "m/0"):
        assert Index(root).info(key).equals(Index(root, cache=False).info(key))


@pytest.mark.usefixtures("trusting")
def test_without_dir_fd(root: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Systems whose os.stat/os.open take no dir_fd use whole paths."""
    expected = Index(root, cache=False).info(failed=True)
    monkeypatch.setattr(os, "supports_dir_fd", set())
    for _ in range(2):
        assert Index(root).info(failed=True).equals(expected)
    assert Index(root, cache=False).info().equals(expected)


def test_no_cache_means_no_cache(root: pathlib.Path) -> None:
    Index(root, cache=False).info(failed=True, tmp=True)
    assert cache_files(root) == []


def test_just_written_runs_are_read_again(root: pathlib.Path, parses: Parses) -> None:
    """Without the trusting fixture: runs changed within RACY_NS of the load
    are not trusted, so the next load reads them."""
    Index(root).info()
    assert parses.reset() == 5
    Index(root).info()
    assert parses.reset() == 5


# -- staleness: every change between two loads is seen ------------------------
@pytest.mark.usefixtures("trusting")
def test_created_runs_appear(root: pathlib.Path, parses: Parses) -> None:
    Index(root).info()
    parses.reset()
    make_run(root, {"lr": 9.0})
    assert Index(root).info().lr.tolist()[-1] == 9.0
    assert parses.reset() == 1


@pytest.mark.usefixtures("trusting")
def test_deleted_runs_disappear(root: pathlib.Path) -> None:
    from exman.commands import manage

    Index(root).info()
    manage.delete(root, [2])  # the index link only
    assert Index(root).info().id.tolist() == [1, 3, 4, 5]
    manage.delete(root, [3], all=True)  # the folder too
    assert Index(root).info().id.tolist() == [1, 4, 5]
    assert Index(root).info("m/0").id.tolist() == [1, 5]


@pytest.mark.usefixtures("trusting")
def test_a_folder_deleted_under_its_link_warns(root: pathlib.Path) -> None:
    Index(root).info()
    folder = Root(root).find(4)
    shutil.rmtree(folder)
    with pytest.warns(SkippedRunWarning, match=folder.name):
        assert Index(root).info().id.tolist() == [1, 2, 3, 5]


@pytest.mark.usefixtures("trusting")
def test_marked_runs_appear(root: pathlib.Path) -> None:
    Index(root).info("m")
    Root(root).link_mark("m/new", Root(root).find(2).name)
    assert Index(root).info("m/new").id.tolist() == [2]
    assert Index(root).info("m").id.tolist() == [1, 2, 3, 4, 5]


@pytest.mark.usefixtures("trusting")
def test_failed_runs_move(root: pathlib.Path) -> None:
    Index(root).info()
    Index(root).info(failed=True)
    failed = make_run(root, {"lr": 7.0}, status="failed")
    assert 7.0 not in Index(root).info().lr.tolist()
    df = Index(root).info(failed=True)
    assert df.lr.tolist()[-1] == 7.0 and df.root.tolist()[-1] == failed
    assert df.error.tolist()[-1] == "ValueError: asked to fail"


@pytest.mark.usefixtures("trusting")
def test_a_run_that_finishes_between_loads(tmp_path: pathlib.Path) -> None:
    root = tmp_path / "exman"
    folder = make_run(root, {"a": 1}, status="running")
    time.sleep(0.02)  # a later tick of the file system's clock
    assert Index(root).info().status.tolist() == ["running"]
    time.sleep(0.02)
    Run(folder).finish("completed", exit_code=0)
    df = Index(root).info()
    assert df.status.tolist() == ["completed"] and df.finished.notna().all()


def test_a_run_that_finishes_at_once_after_a_load(tmp_path: pathlib.Path) -> None:
    """No pause: the change may fall in the tick of the cached ctime; the
    race rule (runs changed shortly before they were read are not trusted)
    keeps the load right."""
    root = tmp_path / "exman"
    folder = make_run(root, {"a": 1}, status="running")
    assert Index(root).info().status.tolist() == ["running"]
    Run(folder).finish("completed", exit_code=0)
    assert Index(root).info().status.tolist() == ["completed"]


@pytest.mark.usefixtures("trusting")
def test_a_run_json_rewritten_during_a_load(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "exman"
    folder = make_run(root, {"a": 1}, status="running")
    real = exman.look.rows.read_run
    done = []

    def finishing(*args: Any, **kwargs: Any) -> Any:
        out = real(*args, **kwargs)
        if not done:
            done.append(Run(folder).finish("completed", exit_code=0))
        return out

    monkeypatch.setattr(exman.look.cache, "read_run", finishing)
    assert Index(root).info().status.tolist() == ["running"]
    assert Index(root).info().status.tolist() == ["completed"]


def test_runs_created_during_a_load(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "exman"
    for i in range(3):
        make_run(root, {"a": i})
    real = exman.look.rows.read_run
    made: list[pathlib.Path] = []

    def creating(*args: Any, **kwargs: Any) -> Any:
        if len(made) < 2:
            made.append(make_run(root, {"a": 10 + len(made)}))
        return real(*args, **kwargs)

    monkeypatch.setattr(exman.look.cache, "read_run", creating)
    first = Index(root).info().a.tolist()
    assert first[:3] == [0, 1, 2]
    monkeypatch.setattr(exman.look.cache, "read_run", real)
    assert Index(root).info().a.tolist() == [0, 1, 2, 10, 11]
    assert Index(root).info().a.tolist() == [0, 1, 2, 10, 11]


@pytest.mark.usefixtures("trusting")
@pytest.mark.parametrize("seed", range(6))
def test_runs_changed_and_new_are_read_alone(
    tmp_path: pathlib.Path, parses: Parses, monkeypatch: pytest.MonkeyPatch, seed: int
) -> None:
    """The usual load after runs came and others changed (a result, a
    finished run): the cached runs come first in the listing, so only the
    changed and the new runs are read, and the cached rows are not matched
    one by one, yet the load gives what a load without the cache gives;
    a run that cannot be read any more falls back to that matching."""
    import json
    import random

    rng = random.Random(seed)
    root = tmp_path / "exman"
    folders = [make_run(root, {"lr": i, "model": "ab"[i % 2]}) for i in range(12)]
    Index(root).info()
    matched: list[int] = []
    real = cache._matched

    def matching(*args: Any) -> Any:
        matched.append(1)
        return real(*args)

    monkeypatch.setattr(cache, "_matched", matching)
    for _ in range(2):
        parses.reset()
        changed = rng.sample(folders, rng.randint(0, 3))
        for folder in changed:
            atomic_write(folder / "results.json", json.dumps({"acc": rng.random()}))
        came = rng.randint(0 if changed else 1, 3)
        for k in range(came):
            params: dict[str, Any] = {"lr": 100 + k, "model": "c"}
            if rng.random() < 0.5:
                params["seed"] = k  # a key no run had
            folders.append(make_run(root, params))
        broken = seed % 3 == 0 and changed
        if broken:
            os.unlink(changed[0] / "params.yaml")  # a warning, the run left out
            with pytest.warns(SkippedRunWarning):
                df = Index(root).info()
            folders.remove(changed[0])
        else:
            df = Index(root).info()
        assert parses.reset() == len(changed) + came
        assert bool(matched) == bool(broken)
        matched.clear()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", SkippedRunWarning)
            fresh = Index(root, cache=False).info()
        assert df.equals(fresh)
        if broken:  # gone for good: the next loads have nothing to warn of
            (root / "index" / f"{changed[0].name}.yaml").unlink()
            shutil.rmtree(changed[0])
        parses.reset()
        assert Index(root).info().equals(fresh)
        assert parses.reset() == 0


@pytest.mark.usefixtures("trusting")
def test_a_re_pointed_index_link_is_followed(root: pathlib.Path) -> None:
    Index(root).info()
    other = make_run(root, {"lr": 5.0}, tmp=True)
    name = Root(root).find(3).name
    link = root / "index" / f"{name}.yaml"
    tmp_link = root / "index" / "new.tmp"
    os.symlink(f"../tmp/{other.name}/params.yaml", tmp_link)
    os.replace(tmp_link, link)
    assert Index(root).info().lr.tolist() == [0.0, 0.1, 0.3, 0.4, 5.0]


@pytest.mark.usefixtures("trusting")
def test_marks_then_everything(root: pathlib.Path, parses: Parses) -> None:
    """A load of a mark caches what it read; the full load reads the rest."""
    assert Index(root).info("m/1").id.tolist() == [2, 4]
    assert parses.reset() == 2
    assert Index(root).info().id.tolist() == [1, 2, 3, 4, 5]
    assert parses.reset() == 3
    assert Index(root).info("m/0").id.tolist() == [1, 3, 5]
    assert parses.reset() == 0


@pytest.mark.usefixtures("trusting")
def test_a_run_edited_in_place_needs_cache_false(root: pathlib.Path) -> None:
    """The documented limit: exman never edits a file in place; if a person
    does, cache=False (or deleting .exman/cache) reads it again."""
    Index(root).info()
    params = Root(root).find(1) / "params.yaml"
    with open(params, "r+") as f:
        text = f.read().replace("model: mlp", "model: cnn")
        f.seek(0)
        f.write(text)
    assert Index(root, cache=False).info().model.tolist()[0] == "cnn"
    shutil.rmtree(root / ".exman" / "cache")
    assert Index(root).info().model.tolist()[0] == "cnn"


# -- the cache file itself ----------------------------------------------------
def _evil_body() -> bytes:
    class Evil:
        def __reduce__(self) -> Any:
            return (os.system, ("touch executed",))

    return pickle.dumps({"table": Evil(), "extra": {}}, protocol=4)


DAMAGE = {
    "garbage": lambda blob: b"\x00\xff" * 100,
    "empty": lambda blob: b"",
    "truncated": lambda blob: blob[: len(blob) // 2],
    "a flipped byte": lambda blob: blob[:-20] + bytes([blob[-20] ^ 1]) + blob[-19:],
    "another format": lambda blob: blob.replace(
        b"exman-cache %d " % cache.FORMAT, b"exman-cache 999 ", 1
    ),
    "a global in the pickle": lambda blob: _blob(_evil_body()),
    "a wrong structure": lambda blob: _blob(
        pickle.dumps({"table": {"names": 5}, "extra": {}})
    ),
    "lengths that disagree": lambda blob: _shortened(blob),
    "another byte order": lambda blob: blob.replace(
        b" %s " % sys.byteorder.encode(),
        b" big " if sys.byteorder == "little" else b" little ",
        1,
    ),
    "a code out of range": lambda blob: _recoded(blob, "record", "status"),
    "a column of numbers cut short": lambda blob: _recoded(blob, "params", "id"),
}


def _recoded(blob: bytes, section: str, key: str) -> bytes:
    """The cache with the bytes of a compact column damaged (sum made again)."""
    data = pickle.loads(blob.partition(b"\n")[2])
    column = data["table"][section][key]
    assert isinstance(column, tuple), "a compact column"
    if column[0] == "coded":  # every row the code of a value that is not there
        raw = bytes([len(column[1])]) * len(column[3])
        data["table"][section][key] = (*column[:3], raw)
    else:
        data["table"][section][key] = (column[0], column[1][:-8])
    return _blob(pickle.dumps(data, protocol=4))


def _shortened(blob: bytes) -> bytes:
    data = pickle.loads(blob.partition(b"\n")[2])
    data["table"]["names"] = data["table"]["names"][:-1]
    return _blob(pickle.dumps(data, protocol=4))


def _blob(body: bytes) -> bytes:
    """A cache file with a valid header around ``body``."""
    return cache._header(len(body), zlib.adler32(body)) + body


@pytest.mark.usefixtures("trusting")
@pytest.mark.parametrize("how", list(DAMAGE))
def test_a_damaged_cache_is_rebuilt(
    root: pathlib.Path, how: str, parses: Parses, chdir_tmp: pathlib.Path
) -> None:
    expected = Index(root, cache=False).info()
    Index(root).info()
    path = root / ".exman" / "cache" / "runs.pickle"
    path.write_bytes(DAMAGE[how](path.read_bytes()))
    parses.reset()
    assert Index(root).info().equals(expected)
    assert parses.reset() == 5
    assert not (chdir_tmp / "executed").exists()
    assert Index(root).info().equals(expected)
    assert parses.reset() == 0


@pytest.mark.usefixtures("trusting")
def test_a_deleted_cache_loses_nothing(root: pathlib.Path) -> None:
    first = Index(root).info(failed=True)
    shutil.rmtree(root / ".exman")
    assert Index(root).info(failed=True).equals(first)


@pytest.mark.usefixtures("trusting")
def test_the_cache_forgets_deleted_runs(root: pathlib.Path) -> None:
    from exman.commands import manage

    Index(root).info()
    manage.delete(root, [1, 2, 3], all=True)
    Index(root).info()
    stored, _ = cache.CacheFile(Root(root), "runs").read()
    assert len(stored) == 2


def test_the_clock_decides_what_is_trusted(tmp_path: pathlib.Path) -> None:
    root = Root(tmp_path / "exman").ensure()
    clock = cache.Clock(root)
    now = clock()
    assert now is not None and abs(now - time.time_ns()) < 60 * 10**9
    assert clock() == now  # read once per load
    assert clock.trusted(now - cache.RACY_NS) == -1
    assert clock.trusted(now - cache.RACY_NS - 1) == now - cache.RACY_NS - 1
    assert clock.trusted(now + 10**12) == -1
    assert cache.Clock(root, enabled=False).trusted(0) == -1
    assert os.listdir(root.path / ".exman" / "cache") == []


@pytest.fixture
def chdir_tmp(tmp_path: pathlib.Path) -> Iterator[pathlib.Path]:
    old = os.getcwd()
    os.chdir(tmp_path)
    try:
        yield tmp_path
    finally:
        os.chdir(old)


# -- every change is seen, however many runs the root holds -------------------
@pytest.mark.usefixtures("trusting")
@pytest.mark.parametrize("size", [5, pytest.param(3000, marks=pytest.mark.slow)])
def test_every_change_is_seen_at_any_size(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch, size: int
) -> None:
    """An edited, annotated, resulted, deleted, failed, marked and unmarked
    run, each seen by the next load of a root of ``size`` runs whose cache
    is warm: no shortcut is taken where a root is large."""
    from exman.commands import annotate, manage
    from exman.record.safe import SafeExperiment

    root = tmp_path / "exman"
    with monkeypatch.context() as building:  # the flushes are not under test
        building.setattr(os, "fsync", lambda fd: None)
        for i in range(size):
            make_run(root, {"lr": float(i), "model": "mlp"}, mark=f"m/{i % 2}")
    store = Root(root)
    first = Index(root).info()
    assert len(first) == size
    assert Index(root).info().equals(first)  # warm: read from the cache

    # params.yaml rewritten as an editor that renames does; a tag; a result
    edited = store.find(2) / "params.yaml"
    text = edited.read_text().replace("model: mlp", "model: cnn")
    tmp = edited.with_name("params.yaml.new")
    tmp.write_text(text)
    os.replace(tmp, edited)
    annotate.tag(root, [3], ["best"])
    atomic_write(store.find(4) / "results.json", '{"acc": 0.5}')
    manage.delete(root, [5], all=True)
    df = Index(root).info()
    row = df.set_index("id")
    assert row.loc[2, "model"] == "cnn"
    assert row.loc[3, "tags"] == ["best"]
    assert row.loc[4, "acc"] == 0.5
    assert 5 not in row.index and len(df) == size - 1

    # a run moved to fails/; a run marked, another unmarked
    run = Run(store.find(1))
    SafeExperiment(store, run).move_to_fails(
        "Traceback\nValueError: x\n", "failed", 1, None
    )
    manage.mark(root, "new", [3])
    manage.unmark(root, "m/1", [4])  # the runs of even ids are marked m/1
    df = Index(root).info()
    assert 1 not in df.id.tolist() and len(df) == size - 2
    failed = Index(root).info(failed=True)
    assert failed.set_index("id").loc[1, "status"] == "failed"
    assert Index(root).info("new").id.tolist() == [3]
    evens = [i for i in range(2, size + 1, 2) if i != 4]
    assert Index(root).info("m/1").id.tolist() == evens


def _generation(obj: object) -> int | None:
    import gc

    for generation in range(3):
        if any(o is obj for o in gc.get_objects(generation)):
            return generation
    return None


def test_what_a_load_made_goes_to_the_oldest_generation_unscanned() -> None:
    """A load's many long-lived objects are not scanned by young collections
    on their way to the oldest generation; frozen objects stay frozen."""
    import gc

    assert gc.isenabled()
    with cache.no_gc():
        assert not gc.isenabled()
        made = [[i] for i in range(10)]
    assert gc.isenabled()
    assert _generation(made) == _generation(made[0]) == 2
    # a process that froze objects itself (before forking workers) keeps them so
    kept = [[1]]
    gc.freeze()
    try:
        with cache.no_gc():
            made = [[2]]
        assert _generation(kept) is None  # still frozen
        assert _generation(made) == 0
    finally:
        gc.unfreeze()
    # a GC the caller paused stays paused
    gc.disable()
    try:
        with cache.no_gc():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()


@pytest.mark.usefixtures("trusting")
def test_the_cache_file_holds_each_run_name_once(root: pathlib.Path) -> None:
    """The listings of ``runs/`` and ``index/`` kept in the cache are the
    very strings of its table's names (the pickle holds each name once),
    whether listed and sorted anew or made from the listing before when a
    run came: at a million runs a second copy of each name is tens of MB to
    write and to read."""
    from exman.look.gather import Load

    def stored() -> tuple[list[str], list[str], list[str]]:
        blob = (root / ".exman" / "cache" / "runs.pickle").read_bytes()
        data = pickle.loads(blob.partition(b"\n")[2])
        extra = data["extra"]
        names = data["table"]["names"]
        return names, extra["index"]["stems"], extra["listing"]["names"]

    def look() -> None:  # a sweep's: the listing of runs/
        load = Load(Root(root), cache=True)
        load.add_place("runs", wanted=lambda table: [True] * len(table))
        load.run()

    Index(root).info()
    look()
    names, stems, listing = stored()
    assert len(names) == 5
    assert all(a is b is c for a, b, c in zip(names, stems, listing))
    time.sleep(0.01)  # a ctime of runs/ and index/ of their own
    make_run(root, {"lr": 9.0})
    Index(root).info()
    look()
    names, stems, listing = stored()
    assert len(names) == len(stems) == len(listing) == 6
    assert names == stems == listing
    shared = [a is b is c for a, b, c in zip(names, stems, listing)]
    assert shared[:5] == [True] * 5
