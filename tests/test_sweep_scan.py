"""A sweep reads its runs through the index's cache, and never a stale one.

``exman sweep --status`` and a re-run find the runs of a sweep from
``.exman/cache`` (checked run by run against the folders), not from every
``run.json``; a run edited, deleted, moved or marked with another status
since is seen by the next look. The runs that no sweep made are read into
the cache once and not looked at again by a sweep (a run's sweep fields
never change), so a sweep's look costs its own runs, not the root's.
"""

from __future__ import annotations

import builtins
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from _sweep_helpers import EXTRA, write_spec

import exman
from exman.look import cache
from exman.look.gather import Load
from exman.record.names import sorted_by_id
from exman.record.run import RUN_FILE, Run
from exman.record.store import Root
from exman.sweep import sweep

BODY = """\
with args.safe_experiment:
    pass
"""


@pytest.fixture(autouse=True)
def trusting(monkeypatch: pytest.MonkeyPatch) -> None:
    """Trust every folder at once (the runs here are changed within a second
    of being read, which the cache would otherwise read again anyway)."""
    monkeypatch.setattr(cache, "RACY_NS", -(10**15))


@pytest.fixture
def done(make_script: Callable[..., Path], root: Path) -> Iterator[Path]:
    """The spec of a sweep of three tasks, all completed, and looked at once."""
    script = make_script(BODY, extra=EXTRA)
    spec = write_spec(script.parent, grid={"lr": [1, 2, 3]})
    assert sweep(spec, jobs=2).exit_code == 0
    assert states(spec) == ["completed"] * 3
    yield spec


def states(spec: Path) -> list[str]:
    return [s.state for s in sweep(spec, status=True).states]


def run_of(root: Path, task: int) -> Path:
    for folder in (root / "runs").iterdir():
        if f'"task": {task},' in (folder / RUN_FILE).read_text():
            return folder
    raise AssertionError(f"no run of task {task}")


def test_status_reads_no_run_json_of_runs_seen_before(
    done: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    opened: list[str] = []
    real_open, real_os_open = builtins.open, os.open

    def spy_open(file: object, *args: object, **kwargs: object) -> object:
        opened.append(os.fspath(file))  # type: ignore[arg-type]
        return real_open(file, *args, **kwargs)  # type: ignore[call-overload]

    def spy_os_open(path: object, *args: object, **kwargs: object) -> int:
        opened.append(os.fspath(path))  # type: ignore[arg-type]
        return real_os_open(path, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(builtins, "open", spy_open)
    monkeypatch.setattr(os, "open", spy_os_open)
    assert states(done) == ["completed"] * 3
    assert [p for p in opened if p.endswith(RUN_FILE)] == []


def test_a_run_marked_failed_since_is_seen(done: Path, root: Path) -> None:
    Run(run_of(root, 1)).finish("failed", reason="found wrong later")
    assert states(done) == ["completed", "failed", "completed"]


def test_a_deleted_run_is_seen(done: Path, root: Path) -> None:
    shutil.rmtree(run_of(root, 2))
    assert states(done) == ["completed", "completed", "pending"]


def test_a_run_moved_to_fails_or_tmp_is_seen(done: Path, root: Path) -> None:
    first = run_of(root, 0)
    Run(first).finish("failed", reason="moved by hand")
    (root / "fails").mkdir(exist_ok=True)
    first.rename(root / "fails" / first.name)
    second = run_of(root, 1)
    (root / "tmp").mkdir(exist_ok=True)
    second.rename(root / "tmp" / second.name)  # tmp/ runs never count
    assert states(done) == ["failed", "pending", "completed"]


def test_a_run_edited_in_place_with_a_new_record_is_seen(
    done: Path, root: Path
) -> None:
    folder = run_of(root, 0)
    record = (folder / RUN_FILE).read_text()
    # another task's key: the run no longer belongs to task 0
    key = next(s.task.key for s in sweep(done, status=True).states if s.task.index == 2)
    (folder / "new.json").write_text(
        record.replace('"task": 0,', '"task": 2,').replace(
            record.split('"key": "')[1].split('"')[0], key
        )
    )
    os.replace(folder / "new.json", folder / RUN_FILE)
    assert states(done) == ["pending", "completed", "completed"]


@pytest.mark.parametrize("damage", ["removed", "not yaml"])
def test_a_done_run_whose_params_the_index_cannot_read_still_counts(
    done: Path, root: Path, damage: str
) -> None:
    """The index leaves such a run out; the sweep still goes by its run.json,
    so a finished task is not started again."""
    params = run_of(root, 1) / "params.yaml"
    if damage == "removed":
        params.unlink()
    else:
        params.write_text("lr: [1\n")
    assert states(done) == ["completed"] * 3
    assert sweep(done, jobs=2).exit_code == 0
    assert len(list((root / "runs").iterdir())) == 3


def test_the_listing_of_runs_is_reused_until_a_run_comes_or_goes(
    done: Path, root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    listed: list[str] = []
    real_scandir = os.scandir

    def spy_scandir(path: object = ".") -> object:
        if not isinstance(path, int):  # a folder's descriptor: not runs/
            listed.append(os.path.basename(os.fspath(path)))  # type: ignore[arg-type]
        return real_scandir(path)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "scandir", spy_scandir)
    assert states(done) == ["completed"] * 3
    assert "runs" not in listed
    shutil.rmtree(run_of(root, 2))
    assert states(done) == ["completed", "completed", "pending"]
    assert "runs" in listed
    listed.clear()
    assert sweep(done, jobs=1).exit_code == 0  # makes task 2's run again
    assert states(done) == ["completed"] * 3
    assert "runs" in listed


def plain_run(spec: Path, seed: int) -> Path:
    """A run of the sweep's script started by hand: no sweep's."""
    before = set((spec.parent / "exman" / "runs").iterdir())
    subprocess.run(
        [sys.executable, "main.py", "--seed", str(seed)], cwd=spec.parent, check=True
    )
    (made,) = set((spec.parent / "exman" / "runs").iterdir()) - before
    return made


def stat_spy(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The names of the folders stat'ed without following a link: the run
    folders that a load looks at (by a folder's descriptor, or by path when
    the spy hides that ``os.stat`` takes one)."""
    looked: list[str] = []
    real_stat = os.stat

    def spy(path: object, *args: object, **kwargs: object) -> os.stat_result:
        if kwargs.get("follow_symlinks") is False:
            looked.append(os.path.basename(os.fspath(path)))  # type: ignore[arg-type]
        return real_stat(path, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "stat", spy)
    return looked


def test_a_look_at_a_sweep_leaves_the_other_runs_of_the_root_alone(
    done: Path, root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    plain = {plain_run(done, seed).name for seed in range(4)}
    assert states(done) == ["completed"] * 3  # reads the new runs in
    mine = {run_of(root, task).name for task in range(3)}
    looked = stat_spy(monkeypatch)
    assert states(done) == ["completed"] * 3
    assert set(looked) == mine
    # an index load still looks at every run
    looked.clear()
    assert len(exman.Index(root).info()) == 7
    assert set(looked) == mine | plain


def test_a_run_read_too_soon_to_be_trusted_is_looked_at_again(
    done: Path, root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A run that no sweep made, read just after it changed, is cached
    untrusted: a sweep's look reads it again rather than keep it so, and
    then leaves it alone."""
    plain = plain_run(done, 1)
    monkeypatch.setattr(cache, "RACY_NS", 10**15)  # nothing is trusted
    assert states(done) == ["completed"] * 3
    monkeypatch.setattr(cache, "RACY_NS", -(10**15))
    looked = stat_spy(monkeypatch)
    assert states(done) == ["completed"] * 3
    assert plain.name in looked
    looked.clear()
    assert states(done) == ["completed"] * 3
    assert plain.name not in looked


def test_a_run_without_run_json_is_looked_at_every_time(
    done: Path, root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A run of exman 0.1.9 (params.yaml, no run.json) may gain a record:
    it is not left out of a sweep's look like a run read with one."""
    old = root / "runs" / "000099-2026-01-01-00-00-00"
    old.mkdir()
    (old / "params.yaml").write_text("lr: 9\nid: 99\n")
    assert states(done) == ["completed"] * 3
    looked = stat_spy(monkeypatch)
    assert states(done) == ["completed"] * 3
    assert old.name in looked


def test_a_sweep_looks_at_its_runs_with_the_cyclic_gc_paused(
    done: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A sweep's look makes a state and runs for every task, and ``--status``
    a row for each: made with the cyclic GC paused (a sweep of 100,000
    done tasks in a root of a million runs spent a sixth of its time in
    collections that freed nothing), which is on again after."""
    import gc

    from exman.sweep import cli as sweep_cli
    from exman.sweep import plan as sweep_plan

    during: list[bool] = []

    def spy(real: Callable[..., object]) -> Callable[..., object]:
        def call(*args: object, **kwargs: object) -> object:
            during.append(gc.isenabled())
            return real(*args, **kwargs)

        return call

    monkeypatch.setattr(sweep_plan, "scan_runs", spy(sweep_plan.scan_runs))
    monkeypatch.setattr(sweep_cli, "_status_row", spy(sweep_cli._status_row))
    assert gc.isenabled()
    summary = sweep(done, status=True)
    sweep_cli.print_status(summary)
    assert "3 tasks: 3 completed" in capsys.readouterr().out
    assert during and not any(during)
    assert gc.isenabled()


def test_the_index_after_a_look_at_a_sweep_sees_every_change(
    done: Path, root: Path
) -> None:
    """The cache that a sweep's look leaves (its own runs read again, the
    others kept as they were) gives the next load the root as it is."""
    gone, kept = plain_run(done, 1), plain_run(done, 2)
    assert states(done) == ["completed"] * 3
    shutil.rmtree(gone)  # deleted, with its link
    (root / "index" / f"{gone.name}.yaml").unlink()
    new = plain_run(done, 3)
    Run(run_of(root, 1)).finish("failed", reason="found wrong later")
    assert states(done) == ["completed", "failed", "completed"]
    # the cache left holds the runs as listed, in id order: the next look
    # finds the place as it was cached
    listed = sorted_by_id([p.name for p in (root / "runs").iterdir()])
    assert Load(Root(root), True).cached("runs")[1].names == listed
    df = exman.Index(root).info()
    sweeps = {run_of(root, task).name: task for task in range(3)}
    assert sorted(df["root"].map(lambda p: p.name)) == sorted(
        [*sweeps, kept.name, new.name]
    )
    status = dict(zip(df["root"].map(lambda p: p.name), df["status"]))
    assert status[run_of(root, 1).name] == "failed"
    assert status[kept.name] == status[new.name] == "completed"
    # and so does a load that reads every run from its files
    shutil.rmtree(root / ".exman" / "cache")
    fresh = exman.Index(root).info()
    assert sorted(fresh["root"].map(str)) == sorted(df["root"].map(str))


@pytest.fixture
def keeping(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Keep the keys of any sweep; count the keys made by hashing."""
    from exman.sweep import plan
    from exman.sweep.expand import TaskList

    monkeypatch.setattr(plan, "KEEP_KEYS", 1)
    made: list[int] = []
    real = TaskList._key

    def counted(self: TaskList, *args: object) -> str:
        made.append(1)
        return real(self, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(TaskList, "_key", counted)
    return made


def key_files(root: Path) -> list[Path]:
    return sorted((root / ".exman" / "cache" / "tasks").glob("*.keys"))


def test_the_keys_of_the_tasks_are_kept(
    done: Path, root: Path, keeping: list[int]
) -> None:
    assert states(done) == ["completed"] * 3
    assert len(key_files(root)) == 1
    keeping.clear()
    assert states(done) == ["completed"] * 3
    assert keeping == []


def test_kept_keys_of_another_expansion_are_not_used(
    done: Path, root: Path, keeping: list[int]
) -> None:
    states(done)
    old = key_files(root)[0].read_bytes()
    write_spec(done.parent, done.name, grid={"lr": [1, 2, 4]})
    assert states(done) == ["completed", "completed", "pending"]
    assert key_files(root)[0].read_bytes() != old
    write_spec(done.parent, done.name, grid={"lr": [1, 2, 3]})
    assert states(done) == ["completed"] * 3


@pytest.mark.parametrize("damage", ["a flipped key", "truncated", "garbage"])
def test_damaged_kept_keys_are_ignored(
    done: Path, root: Path, keeping: list[int], damage: str
) -> None:
    states(done)
    path = key_files(root)[0]
    data = path.read_bytes()
    path.write_bytes(
        {
            "a flipped key": data[:-1] + (b"0" if data[-1:] != b"0" else b"1"),
            "truncated": data[:-5],
            "garbage": b"\x00\xff" * 40,
        }[damage]
    )
    keeping.clear()
    assert states(done) == ["completed"] * 3
    assert keeping != []


def test_a_run_that_records_itself_while_the_finder_looks_is_found(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A task's run whose run.json is written between the finder's read of
    its folder (no record yet: a run being made) and its look for the file
    is read again by the next look, not taken for a folder that is no run
    (the sweep said its task "recorded no run")."""
    import json

    from exman.sweep import outcome

    root = Root(tmp_path / "root").ensure()
    folder = root.runs / "000001-2026-01-01-00-00-00"
    folder.mkdir()
    record = {"id": 1, "status": "completed", "sweep": {"key": "k", "task": 0}}
    real = outcome.read_run

    def racing(path: Path) -> Any:
        info = real(path)
        if not (path / RUN_FILE).exists():  # the run records itself just now
            (path / RUN_FILE).write_text(json.dumps(record))
        return info

    monkeypatch.setattr(outcome, "read_run", racing)
    finder = outcome.RunFinder(root, after=0)
    assert finder.take("another task's key") is None  # the look that raced
    found = finder.take("k")
    assert found is not None and found.id == 1
