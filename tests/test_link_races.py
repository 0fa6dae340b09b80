"""Links under concurrency: marks made and removed at once by many
processes, and a mark added while a run runs that must follow the run."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from _index_runs import make_run

import exman
from exman.commands import manage

WORKER = """\
import sys, traceback
from exman.commands import manage
root, first, rounds = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
errors = 0
for i in range(rounds):
    num = first + i % 2
    try:
        assert manage.mark(root, "k/deep", [num]).ok
        assert manage.unmark(root, "k/deep", [num]).ok
    except Exception:
        errors += 1
        traceback.print_exc()
print(errors)
"""


def test_concurrent_mark_and_unmark_on_one_key_never_fail(tmp_path: Path) -> None:
    root = tmp_path / "exman"
    for i in range(8):
        make_run(root, {"a": i})
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, str(root), str(first), "150"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for first in (1, 3, 5, 7)
    ]
    for worker in workers:
        out, err = worker.communicate(timeout=120)
        assert worker.returncode == 0, err
        assert out.strip() == "0", err[-3000:]
    assert not (root / "marked" / "k").exists()  # every mark was removed


AUTOMARK_WORKER = """\
import sys
import exman
parser = exman.ExParser(root=sys.argv[1], automark=["group"])
parser.add_argument("--group", default="g")
for _ in range(int(sys.argv[2])):
    parser.parse_args([])
"""

UNMARKER = """\
import sys
from exman.commands import manage
for _ in range(int(sys.argv[2])):
    report = manage.unmark(sys.argv[1], "group/g", list(range(1, 200)))
    assert not report.refused, report.refused
"""


def test_automark_beside_unmark_of_the_same_key(tmp_path: Path) -> None:
    root = tmp_path / "exman"
    exman.Root(root).ensure()
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", code, str(root), str(n)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for code, n in ((AUTOMARK_WORKER, 40), (AUTOMARK_WORKER, 40), (UNMARKER, 300))
    ]
    for proc in procs:
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err[-3000:]
    assert len(list((root / "runs").iterdir())) == 80


# -- item 3 ---------------------------------------------------------------------------
def test_a_mark_added_while_a_run_runs_follows_it_to_fails(
    make_script: Callable[..., Path], tmp_path: Path
) -> None:
    body = """\
        with args.safe_experiment:
            print("ready", flush=True)
            sys.stdin.readline()
            raise ValueError("failed after being marked")
    """
    script = make_script(body, parser_kwargs=", automark=['model']")
    env = {k: v for k, v in os.environ.items() if k != "EXMAN_ROOT"}
    proc = subprocess.Popen(
        [sys.executable, str(script)],
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    assert proc.stdout.readline() == "ready\n"
    root = tmp_path / "exman"
    assert manage.mark(root, "keep/these", [1]).ok
    _, err = proc.communicate("go\n", timeout=60)
    assert proc.returncode == 1 and "failed after being marked" in err
    folder = next((root / "fails").iterdir())
    marks = [p for p in (root / "marked").rglob("*") if p.is_symlink()]
    assert len(marks) == 2  # the automark and the mark added while it ran
    assert {os.path.realpath(p) for p in marks} == {str(folder)}
    manage.gc(root)
    assert all(p.is_symlink() and p.exists() for p in marks)
    frame = exman.Index(root).info("keep")
    assert frame.id.tolist() == [1] and frame.status.tolist() == ["failed"]


def test_a_move_to_fails_cut_short_is_finished_by_readers_and_gc(
    tmp_path: Path,
) -> None:
    root = tmp_path / "exman"
    folder = make_run(root, {"a": 1}, mark="keep")
    make_run(root, {"a": 2}, mark="keep")
    # what a SIGKILL between the rename and the links leaves
    os.replace(folder, root / "fails" / folder.name)
    assert exman.Index(root).info().id.tolist() == [2]  # no warning
    assert exman.Index(root).info("keep").id.tolist() == [2]
    report = manage.gc(root)
    assert any("now points to fails/" in c.message for c in report.done)
    assert exman.Index(root).info("keep").id.tolist() == [1, 2]
    assert not (root / "index" / f"{folder.name}.yaml").exists()
