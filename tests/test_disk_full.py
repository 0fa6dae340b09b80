"""A full disk and a read-only root, on a real small file system (tmpfs)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from _fs_helpers import fill, remount, small_fs

import exman
from exman.record.metrics import METRICS_FILE, Recorder

FAILING_SCRIPT = """\
import os, sys
import exman

parser = exman.ExParser(root=sys.argv[1], automark=["model"])
parser.add_argument("--model", default="a")
args = parser.parse_args(sys.argv[2:])
with args.safe_experiment:
    print("training")
    fd = os.open(os.path.join(os.path.dirname(sys.argv[1]), "filler"),
                 os.O_WRONLY | os.O_CREAT)
    try:
        while True:
            os.write(fd, b"x" * 4096)
    except OSError:
        pass
    os.close(fd)
    raise ValueError("the script's own error")
"""

NEW_RUN = """\
import sys
import exman
exman.ExParser(root=sys.argv[1], automark=["model"]).parse_args(["--tmp"] if
    len(sys.argv) > 2 else [])
"""


def python(code: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=60
    )


def test_the_scripts_own_exception_wins_on_a_full_disk(tmp_path: Path) -> None:
    with small_fs(tmp_path / "fs") as fs:
        root = fs / "exman"
        proc = python(FAILING_SCRIPT, str(root))
        assert proc.returncode == 1
        last = proc.stderr.strip().splitlines()[-1]
        assert last == "ValueError: the script's own error", proc.stderr
        assert "exman: run" in proc.stderr and "No space left on device" in proc.stderr
        (fs / "filler").unlink()
        # the run was still moved, its links with it
        failed = list((root / "fails").iterdir())
        assert len(failed) == 1 and list((root / "runs").iterdir()) == []
        assert [os.path.realpath(p) for p in (root / "marked").rglob("0*")] == [
            str(failed[0])
        ]


def test_a_new_run_on_a_full_disk_is_a_clear_error_and_leaves_nothing(
    tmp_path: Path,
) -> None:
    with small_fs(tmp_path / "fs") as fs:
        root = fs / "exman"
        assert python(NEW_RUN, str(root)).returncode == 0
        filler = fill(fs)
        before = sorted(p.name for p in (root / "runs").iterdir())
        for args in ([], ["tmp"]):
            proc = python(NEW_RUN, str(root), *args)
            assert proc.returncode == 2, proc.stderr
            assert f"cannot create a run in {root}: No space left on device" in (
                proc.stderr
            )
            assert "Traceback" not in proc.stderr
        assert sorted(p.name for p in (root / "runs").iterdir()) == before
        assert list((root / "tmp").iterdir()) == []
        filler.unlink()
        assert python(NEW_RUN, str(root)).returncode == 0
        # the ids the failed attempts claimed are not given again (ids are
        # never reused), but the root goes on with a new one
        first, second = exman.Index(root).info().id.tolist()
        assert first == 1 and second > 1


def test_a_failed_metrics_write_does_not_glue_the_next_record(tmp_path: Path) -> None:
    with small_fs(tmp_path / "fs") as fs:
        run = fs / "run"
        run.mkdir()
        recorder = Recorder(run)
        recorder.log(0, loss=0.5)
        recorder.flush()
        filler = fill(fs)
        # room left in the metrics file's last block: a write stops inside a line
        for step in range(1, 200):
            recorder.log(step, loss=0.25, note="n" * 50)
        recorder.flush()
        filler.unlink()
        recorder.log(1000, loss=0.125)
        recorder.flush()
        recorder.close()
        lines = (run / METRICS_FILE).read_bytes().split(b"\n")
        assert lines[-1] == b""
        records = []
        for line in lines[:-1]:
            try:
                records.append(json.loads(line))
            except ValueError:
                continue
        # nothing lost once there is room again, at most one line damaged
        assert [r["step"] for r in records] == [0, *range(1, 200), 1000]
        assert records[-1] == {"step": 1000, "time": records[-1]["time"], "loss": 0.125}
        damaged = [line for line in lines[:-1] if not line.endswith(b"}")]
        assert len(damaged) <= 1


def test_a_read_only_root_is_a_clear_error_for_runs_and_gc(tmp_path: Path) -> None:
    with small_fs(tmp_path / "fs") as fs:
        root = fs / "exman"
        assert python(NEW_RUN, str(root), "tmp").returncode == 0
        remount(fs, "ro")
        try:
            proc = python(NEW_RUN, str(root))
            assert proc.returncode == 2
            assert "Read-only file system" in proc.stderr
            assert "Traceback" not in proc.stderr
            gc = subprocess.run(
                [sys.executable, "-m", "exman", "--root", str(root), "gc"],
                capture_output=True,
                text=True,
                timeout=60,
            )
            assert gc.returncode == 1, gc.stderr
            tmp_run = next((root / "tmp").iterdir())
            assert f"refused: cannot delete {tmp_run}: Read-only file system" in (
                gc.stderr
            )
            assert "Traceback" not in gc.stderr
        finally:
            remount(fs, "rw")
