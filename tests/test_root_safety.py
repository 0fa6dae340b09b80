"""What gc, delete and the other commands may touch: only the root, never a
run being created, and what dead processes left once they are surely dead."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from _index_runs import make_run

import exman
from exman.commands import manage
from exman.index import SkippedRunWarning
from exman.record.store import ExmanError, Root

SUBS = ("runs", "index", "marked", "fails", "tmp", ".exman")


def exman_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "exman", *args],
        capture_output=True,
        text=True,
        timeout=60,
    )


def tree(folder: Path) -> list[tuple[str, bool]]:
    """Every entry below ``folder`` (links not followed), and whether it is a link."""
    out = []
    for here, dirs, files in os.walk(folder):
        for name in dirs + files:
            path = Path(here, name)
            out.append((str(path.relative_to(folder)), path.is_symlink()))
    return sorted(out)


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def age(path: Path, seconds: float) -> None:
    """Make ``path`` look unchanged for ``seconds``."""
    when = time.time() - seconds
    os.utime(path, (when, when), follow_symlinks=False)


# -- item 7: a symlinked folder of the root -------------------------------------------
@pytest.mark.parametrize("sub", SUBS)
def test_no_command_follows_a_symlinked_folder_out_of_the_root(
    tmp_path: Path, sub: str
) -> None:
    root = tmp_path / "exman"
    make_run(root, {"a": 1}, mark="best")
    make_run(root, {"a": 2}, tmp=True)
    outside = tmp_path / "outside"
    outside.mkdir()
    (root / sub).rename(outside / sub)
    (root / sub).symlink_to(outside / sub, target_is_directory=True)
    # what gc would clean if it followed the link
    (outside / sub / "empty-folder").mkdir()
    (outside / sub / "dangling").symlink_to(tmp_path / "nothing")
    before = tree(outside)
    for args in (["gc"], ["ls"], ["mark", "k", "1"], ["delete", "--all", "--yes", "1"]):
        proc = exman_cli("--root", str(root), *args)
        assert proc.returncode == 2, (args, proc.stderr)
        assert f"{root / sub} is a symbolic link" in proc.stderr
    with pytest.raises(ExmanError, match="symbolic link"):
        exman.Index(root)
    # a sweep refuses it too, even only to plan (its claims and jobs are there)
    spec = tmp_path / "sweep.yaml"
    spec.write_text(f"command: {sys.executable} main.py\ngrid: {{a: [1]}}\n")
    for args in ([], ["--status"], ["--dry-run"]):
        proc = exman_cli("sweep", str(spec), *args)
        assert proc.returncode == 2, (args, proc.stdout, proc.stderr)
        assert f"{root / sub} is a symbolic link" in proc.stderr
    script = tmp_path / "main.py"
    script.write_text(
        "import exman\nexman.ExParser(root=exman.simpleroot(__file__)).parse_args()\n"
    )
    proc = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 2 and "is a symbolic link" in proc.stderr
    assert tree(outside) == before


# -- item 8: a symlink entry among the runs -----------------------------
def test_a_symlink_entry_is_refused_and_gc_and_delete_go_on(tmp_path: Path) -> None:
    root = tmp_path / "exman"
    runs = [make_run(root, {"a": i}) for i in range(3)]
    tmp_run = make_run(root, {"a": 9}, tmp=True)
    outside = tmp_path / "outside" / "000007-2026-01-01-00-00-00"
    outside.mkdir(parents=True)
    (outside / "keep.txt").write_text("precious")
    (outside / "params.yaml").write_text("a: 7\nid: 7\n")
    for place, num in (("runs", 7), ("tmp", 8), ("fails", 9)):
        link = root / place / f"00000{num}-2026-01-01-00-00-00"
        link.symlink_to(outside, target_is_directory=True)
    index_link = root / "index" / "000007-2026-01-01-00-00-00.yaml"
    index_link.symlink_to("../runs/000007-2026-01-01-00-00-00/params.yaml")
    with pytest.warns(SkippedRunWarning, match="a symbolic link, not a run folder"):
        loaded = exman.Index(root).info(failed=True, tmp=True)
    assert loaded.id.tolist() == [1, 2, 3, 4]
    gc = exman_cli("--root", str(root), "gc")
    assert gc.returncode == 1, gc.stderr
    assert not tmp_run.exists()  # the rest was done
    for place, num in (("runs", 7), ("tmp", 8), ("fails", 9)):
        assert (
            f"refused: {place}/00000{num}-2026-01-01-00-00-00 is a symbolic link"
            in (gc.stderr)
        )
    delete = exman_cli("--root", str(root), "delete", "--all", "--yes", "1", "7", "2")
    assert delete.returncode == 1, delete.stderr
    assert "deleted run 1" in delete.stdout and "deleted run 2" in delete.stdout
    assert (
        "refused: runs/000007-2026-01-01-00-00-00 is a symbolic link" in delete.stderr
    )
    assert not runs[0].exists() and not runs[1].exists() and runs[2].exists()
    assert (outside / "keep.txt").read_text() == "precious"


# -- items 2 and 12: runs being created, crash debris ----------------------------------
SLOW_CREATION = """\
import sys, time
import exman

class Slow:
    def __str__(self):
        # written into params.yaml: the run folder exists, run.json not yet
        time.sleep(1.5)
        return "slow"

parser = exman.ExParser(root=sys.argv[1])
parser.register_setter(lambda ns: setattr(ns, "slow", Slow()))
args = parser.parse_args(sys.argv[2:])
with args.safe_experiment:
    print("done", args.root)
"""


def test_gc_and_delete_leave_a_run_being_created_alone(tmp_path: Path) -> None:
    root = tmp_path / "exman"
    script = tmp_path / "slow.py"
    script.write_text(SLOW_CREATION)
    procs = [
        subprocess.Popen(
            [sys.executable, str(script), str(root), *argv],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for argv in (["--tmp"], [])
    ]
    deadline = time.monotonic() + 30
    while len(list(Root(root).iter_runs())) < 2:
        assert time.monotonic() < deadline, "the runs did not start"
        time.sleep(0.02)
    report = manage.gc(root)
    assert report.done == [] and len(report.unchanged) == 1
    assert "is starting" in report.unchanged[0].message
    report = manage.delete(root, [1, 2], all=True)
    assert report.done == [] and len(report.refused) == 2
    assert all("being created" in c.message for c in report.refused)
    for proc in procs:
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
        assert "done" in out
    assert {exman.Run(p).status for p in Root(root).iter_runs()} == {"completed"}


def test_gc_removes_what_dead_processes_left_and_nothing_else(tmp_path: Path) -> None:
    root = tmp_path / "exman"
    good = make_run(root, {"a": 1})
    store = Root(root)
    old_empty = store.allocate().path  # killed before params.yaml
    young_empty = store.allocate().path  # still being created
    failed_empty = store.allocate().path
    failed_empty = failed_empty.rename(root / "fails" / failed_empty.name)
    pid = dead_pid()
    dead_tmp = good / f"results.json.{pid}.140.tmp"
    young_tmp = good / f"run.json.{pid}.140.tmp"
    live_tmp = root / ".exman" / f"counter.{os.getpid()}.140.tmp"
    cache_tmp = root / ".exman" / "cache" / f"runs.pickle.{pid}.7.tmp"
    cache_tmp.parent.mkdir(exist_ok=True)
    for path in (dead_tmp, young_tmp, live_tmp, cache_tmp):
        path.write_text("half")
    mark_tmp = root / "marked" / f".{good.name}.{pid}.140.tmp"  # a re-pointed mark
    mark_tmp.symlink_to(f"../runs/{good.name}")
    # what rank 0 of a distributed launch told its ranks, long ago and just now
    old_launch = root / ".exman" / "launches" / "0123abcd.1.json"
    young_launch = old_launch.with_name("4567cdef.1.json")
    old_launch.parent.mkdir()
    for path in (old_launch, young_launch):
        path.write_text("{}")
    olds = (
        old_empty,
        failed_empty,
        dead_tmp,
        live_tmp,
        cache_tmp,
        mark_tmp,
        old_launch,
    )
    for path in olds:
        age(path, 2 * 3600)

    dry = manage.gc(root, dry_run=True)
    going = {c.path for c in dry.done}
    assert going == {old_empty, failed_empty, dead_tmp, cache_tmp, mark_tmp, old_launch}
    assert old_empty.exists() and dead_tmp.exists()

    report = manage.gc(root)
    assert {c.path for c in report.done} == going
    assert not any(os.path.lexists(p) for p in going)
    assert young_empty.is_dir() and young_tmp.exists() and live_tmp.exists()
    assert young_launch.exists()
    assert (good / "params.yaml").exists()
    assert exman.Index(root).info().id.tolist() == [1]


def test_show_does_not_call_an_incomplete_folder_a_run_of_0_1_9(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from exman.cli import main

    root = tmp_path / "exman"
    make_run(root, {"a": 1})
    Root(root).allocate()
    assert main(["--root", str(root), "show", "2"]) == 0
    out = capsys.readouterr().out
    assert "0.1.9" not in out
    assert "incomplete" in out


# -- item 13: a delete beside a load -----------------------------
DELETER = """\
import sys
from exman.commands import manage
from exman.index import SkippedRunWarning
for num in range(1, int(sys.argv[2]) + 1):
    manage.delete(sys.argv[1], [num], all=True)
"""


def test_a_load_beside_a_delete_gives_no_warning(tmp_path: Path) -> None:
    root = tmp_path / "exman"
    count = 200
    for i in range(count):
        make_run(root, {"a": i, "text": "x" * 2000}, mark="all")
    deleter = subprocess.Popen(
        [sys.executable, "-c", DELETER, str(root), str(count)],
        stderr=subprocess.PIPE,
        text=True,
    )
    loads = 0
    while deleter.poll() is None or loads < 3:
        index = exman.Index(root, cache=False)  # every link and run read again
        index.info()  # a warning is an error in the tests
        try:
            index.info("all")
        except exman.index.MarkNotFound:
            pass
        index.info(failed=True, tmp=True)
        loads += 1
    _, err = deleter.communicate(timeout=60)
    assert deleter.returncode == 0, err
    assert exman.Index(root).info().empty
