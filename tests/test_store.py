"""The root: run ids under the lock, atomic files, names and keys."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

import exman
from exman.record.store import Root, atomic_write, check_key, check_name, path_component

WORKERS = 50


def new_run(root: Path, *argv: str) -> Path:
    parser = exman.ExParser(root=root)
    parser.add_argument("--lr", type=float, default=0.1)
    folder: Path = parser.parse_args(list(argv)).root
    return folder


def ids(root: Path) -> list[int]:
    return sorted(exman.Run(p).id for p in Root(root).iter_runs())


def leftovers(root: Path) -> list[str]:
    return [
        os.path.join(folder, f)
        for folder, _, files in os.walk(root)
        for f in files
        if f.endswith(".tmp")
    ]


# -- ids ------------------------------------------------------------------------
def test_concurrent_processes_get_distinct_ids(
    make_script: Callable[..., Path], tmp_path: Path
) -> None:
    script = make_script("")
    env = dict(os.environ)
    env.pop("EXMAN_ROOT", None)
    procs = [
        subprocess.Popen(
            [sys.executable, str(script), "--lr", str(i)],
            cwd=tmp_path,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        for i in range(WORKERS)
    ]
    for proc in procs:
        out, _ = proc.communicate(timeout=90)
        assert proc.returncode == 0, out.decode()
    root = tmp_path / "exman"
    assert ids(root) == list(range(1, WORKERS + 1))
    folders = list((root / "runs").iterdir())
    saved = [yaml.safe_load((f / "params.yaml").read_text()) for f in folders]
    assert sorted(p["id"] for p in saved) == list(range(1, WORKERS + 1))
    assert sorted(p["lr"] for p in saved) == list(range(WORKERS))
    links = list((root / "index").iterdir())
    assert len(links) == WORKERS
    assert all(link.resolve().is_file() for link in links)
    assert (root / ".exman" / "counter").read_text().split()[0] == str(WORKERS)
    assert leftovers(root) == []


def test_ids_are_never_reused_after_a_delete(root: Path) -> None:
    *_, third = (new_run(root) for _ in range(3))
    shutil.rmtree(third)
    (root / "index" / f"{third.name}.yaml").unlink()
    assert exman.Run(new_run(root)).id == 4
    for folder in (root / "runs").iterdir():
        shutil.rmtree(folder)
    assert exman.Run(new_run(root)).id == 5


def test_ids_are_unique_across_runs_tmp_and_fails(root: Path) -> None:
    new_run(root)
    tmp_run = new_run(root, "--tmp")
    failed = new_run(root)
    os.replace(failed, root / "fails" / failed.name)
    assert exman.Run(tmp_run).id == 2
    assert exman.Run(new_run(root)).id == 4
    assert ids(root) == [1, 2, 3, 4]


def test_the_counter_is_used_not_a_scan(root: Path) -> None:
    new_run(root)
    counter = root / ".exman" / "counter"
    lines = counter.read_text().splitlines()
    assert lines[0] == "1"
    # a counter in step with the folders is trusted as it is
    counter.write_text("41\n" + "\n".join(lines[1:]) + "\n")
    assert exman.Run(new_run(root)).id == 42


def test_last_id_reads_the_counter(root: Path) -> None:
    assert Root(root).last_id() == 0  # no root yet
    for _ in range(3):
        new_run(root)
    assert Root(root).last_id() == 3
    (root / ".exman" / "counter").write_text("garbage")
    assert Root(root).last_id() == 0  # unreadable: nothing can be assumed


@pytest.mark.parametrize(
    "garbage", ["garbage", "", "\n\n", "\x00\xff", "-5", "1.5", "2\nnot a stamp"]
)
def test_a_damaged_counter_loses_no_id(root: Path, garbage: str) -> None:
    for _ in range(3):
        new_run(root)
    (root / ".exman" / "counter").write_text(garbage, errors="surrogateescape")
    assert exman.Run(new_run(root)).id == 4
    assert exman.Run(new_run(root)).id == 5


def test_a_missing_counter_loses_no_id(root: Path) -> None:
    for _ in range(3):
        new_run(root)
    shutil.rmtree(root / ".exman")
    assert exman.Run(new_run(root)).id == 4


def test_a_run_made_behind_the_counters_back_is_seen(root: Path) -> None:
    """exman 0.1.9 on the same root, or a process killed between creating its
    folder and writing the counter: the next id still comes after it."""
    new_run(root)
    new_run(root)
    (root / "runs" / "000003-2020-01-01-00-00-00-by-hand").mkdir()
    (root / "tmp" / "000004-2020-01-01-00-00-00").mkdir()
    assert exman.Run(new_run(root)).id == 5
    assert ids(root) == [1, 2, 3, 4, 5]


def test_allocate_in_threads(tmp_path: Path) -> None:
    store = Root(tmp_path / "root").ensure()
    got: list[int] = []

    def work() -> None:
        for _ in range(10):
            got.append(store.allocate().id)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(got) == list(range(1, 41))


# -- atomic files -----------------------------------------------------------------
def test_atomic_write_readers_see_old_or_new(tmp_path: Path) -> None:
    path = tmp_path / "file.txt"
    versions = ["a" * 200_000, "b" * 300_000]
    atomic_write(path, versions[0])
    done = threading.Event()
    seen: set[str] = set()

    def writer() -> None:
        for i in range(200):
            atomic_write(path, versions[i % 2])
        done.set()

    thread = threading.Thread(target=writer)
    thread.start()
    while not done.is_set():
        seen.add(path.read_text())
    thread.join()
    # both versions read: the reads ran while the writes did
    assert seen == set(versions), sorted(len(text) for text in seen)
    assert os.listdir(tmp_path) == ["file.txt"]


def test_atomic_write_keeps_the_old_file_when_it_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "params.yaml"
    atomic_write(path, "old\n")

    def broken(src: str, dst: str) -> None:
        raise OSError("disk gone")

    monkeypatch.setattr(os, "replace", broken)
    with pytest.raises(OSError, match="disk gone"):
        atomic_write(path, "new\n")
    monkeypatch.undo()
    assert path.read_text() == "old\n"
    assert os.listdir(tmp_path) == ["params.yaml"]


def test_atomic_write_bytes(tmp_path: Path) -> None:
    atomic_write(tmp_path / "b", b"\x00\xff")
    assert (tmp_path / "b").read_bytes() == b"\x00\xff"
    atomic_write(tmp_path / "u", "ü")
    assert (tmp_path / "u").read_bytes() == "ü".encode()


def test_a_run_leaves_no_temporary_files(root: Path) -> None:
    parser = exman.ExParser(root=root, automark=["lr"])
    parser.add_argument("--lr", type=float, default=0.1)
    for _ in range(3):
        parser.parse_args([])
    parser.parse_args(["--tmp"])
    assert leftovers(root) == []


# -- names and keys -------------------------------------------------------------------
@pytest.mark.parametrize("name", ["a b", "it's", "ü☃", "a;b", "x.y", "-", "..x"[1:]])
def test_check_name_accepts(name: str) -> None:
    assert check_name(name) == name


@pytest.mark.parametrize("name", ["", " ", "..", ".", "a/b", "a\\b", "x..y", "a\0b"])
def test_check_name_refuses(name: str) -> None:
    with pytest.raises(exman.ExmanError):
        check_name(name, "run name")


@pytest.mark.parametrize(
    ("key", "parts"),
    [("best", ("best",)), ("best/lr", ("best", "lr")), ("a//b/./c/", ("a", "b", "c"))],
)
def test_check_key(key: str, parts: tuple[str, ...]) -> None:
    assert check_key(key) == parts


@pytest.mark.parametrize("key", ["", "/abs", "..", "a/../b", "a/..", "\\x", "./."])
def test_check_key_refuses(key: str, tmp_path: Path) -> None:
    with pytest.raises(exman.ExmanError):
        Root(tmp_path).mark_dir(key)


@pytest.mark.parametrize(
    "value", ["a/b", "..", ".", "", "a\\b", "x..y", "%2F", "\0", "../../etc"]
)
def test_path_component_is_one_safe_child(value: str) -> None:
    part = path_component(value)
    assert part not in ("", ".", "..")
    assert "/" not in part
    assert "\\" not in part
    assert ".." not in part
    assert "\0" not in part


def test_path_component_is_one_to_one() -> None:
    values: list[Any] = ["a/b", "a%2Fb", "a%252Fb", "..", "%2E%2E", ".", "", "%", 1]
    assert len({path_component(v) for v in values}) == len(values)


def test_find_and_iter_runs(root: Path) -> None:
    first = new_run(root)
    tmp_run = new_run(root, "--tmp")
    store = Root(root)
    assert store.find(1) == first
    assert store.find(2) == tmp_run
    assert set(store.iter_runs(["tmp"])) == {tmp_run}
    with pytest.raises(exman.RunNotFound, match="run 7 not found"):
        store.find(7)
