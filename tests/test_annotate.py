"""Tags and notes given after the fact: ``exman tag``/``untag``/``note``.

Through the real console script, on roots made by real ExParser scripts.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from _run_helpers import exman_command, record

import exman

Run = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def runs(make_script: Callable[..., Path], run: Run, tmp_path: Path) -> Path:
    """Two completed runs (lr 0.1 and 0.2); returns the root."""
    script = make_script()
    for lr in ("0.1", "0.2"):
        run(script, "--lr", lr, check=True)
    return tmp_path / "exman"


def ls_json(root: Path, *args: str) -> list[dict[str, object]]:
    proc = exman_command("ls", "--format", "json", *args, cwd=root)
    assert proc.returncode == 0, proc.stderr
    rows: list[dict[str, object]] = json.loads(proc.stdout)
    return rows


def test_tags_and_note_in_ls_show_and_the_index(runs: Path) -> None:
    assert "tags" not in ls_json(runs)[0]  # also warms the index cache
    proc = exman_command("tag", "1", "baseline", "paper", cwd=runs)
    assert proc.returncode == 0, proc.stderr
    assert "run 1: tagged baseline paper" in proc.stdout
    proc = exman_command("note", "2", "lr too high: ¿diverged?", cwd=runs)
    assert proc.returncode == 0, proc.stderr

    rows = ls_json(runs)
    assert [(r["id"], r["tags"], r["note"]) for r in rows] == [
        (1, ["baseline", "paper"], None),
        (2, [], "lr too high: ¿diverged?"),
    ]
    table = exman_command("ls", cwd=runs).stdout
    assert "tags" in table.splitlines()[0] and "¿diverged?" in table

    only = ls_json(runs, "--query", "'baseline' in tags")
    assert [r["id"] for r in only] == [1]
    others = ls_json(runs, "--query", "'baseline' not in tags and lr > 0.15")
    assert [r["id"] for r in others] == [2]

    index = exman.Index(runs)
    df = index.info()
    assert df["tags"].tolist() == [["baseline", "paper"], []]
    assert index.query("'paper' in tags")["id"].tolist() == [1]
    assert index.query("note == note")["id"].tolist() == [2]  # has a note

    shown = exman_command("show", "1", cwd=runs).stdout
    assert "tags      baseline, paper" in shown
    shown = exman_command("show", "2", cwd=runs).stdout
    assert "note:\n  lr too high: ¿diverged?" in shown
    assert exman_command("note", "2", cwd=runs).stdout == "lr too high: ¿diverged?\n"

    proc = exman_command("untag", "1", "paper", cwd=runs)
    assert proc.returncode == 0, proc.stderr
    proc = exman_command("note", "2", "", cwd=runs)
    assert proc.returncode == 0 and "note removed" in proc.stdout
    assert [r["tags"] for r in ls_json(runs, "--all-columns")] == [["baseline"], []]
    assert ls_json(runs, "--all-columns")[1]["note"] is None


def test_a_query_on_tags_where_no_run_has_any(runs: Path) -> None:
    assert ls_json(runs, "--query", "'baseline' in tags") == []
    assert exman.Index(runs).query("'x' not in tags")["id"].tolist() == [1, 2]


def test_tags_of_several_runs_and_repeats(runs: Path) -> None:
    proc = exman_command("tag", "1-2", "a", "b", "a", cwd=runs)
    assert proc.returncode == 0, proc.stderr
    proc = exman_command("tag", "1", "b", cwd=runs)
    assert proc.returncode == 0 and "already" in proc.stderr
    proc = exman_command("tag", "1,7", "c", cwd=runs)
    assert proc.returncode == 1 and "run 7 was not found" in proc.stderr
    assert [r["tags"] for r in ls_json(runs)] == [["a", "b", "c"], ["a", "b"]]


@pytest.mark.parametrize(
    "bad", ["two words", "a,b", "../x", "a/b", "'q'", "é\n", "x" * 65, "-x", ""]
)
def test_invalid_tags_are_refused_by_name(runs: Path, bad: str) -> None:
    proc = exman_command("tag", "1", "ok", "--", bad, cwd=runs)
    assert proc.returncode == 2
    assert f"tag {bad!r}" in proc.stderr
    assert not list((runs / "runs").glob("*/annotations.json"))


def test_unicode_tags_are_words(runs: Path) -> None:
    proc = exman_command("tag", "1", "résumé", "v1.2", "lr:0.1", "a@b", cwd=runs)
    assert proc.returncode == 0, proc.stderr
    assert ls_json(runs)[0]["tags"] == ["résumé", "v1.2", "lr:0.1", "a@b"]


def test_a_damaged_annotations_file_costs_only_itself(runs: Path) -> None:
    folder = next((runs / "runs").glob("000001-*"))
    (folder / "annotations.json").write_text('{"tags": ["ok", "no good", 3], "no')
    assert [r["id"] for r in ls_json(runs)] == [1, 2]
    (folder / "annotations.json").write_text('{"tags": ["ok", "no good", 3]}')
    assert ls_json(runs)[0]["tags"] == ["ok"]


def test_note_edit_runs_the_editor(runs: Path, tmp_path: Path) -> None:
    editor = tmp_path / "editor.py"
    editor.write_text(
        "import sys\n"
        "path = sys.argv[1]\n"
        "old = open(path).read()\n"
        "open(path, 'w').write(old + 'edited by the editor\\n')\n"
    )
    exman_command("note", "1", "first line", cwd=runs)
    env = {k: v for k, v in os.environ.items() if k not in ("EXMAN_ROOT", "VISUAL")}
    env["EDITOR"] = f"{sys.executable} {editor}"
    proc = subprocess.run(
        [sys.executable, "-m", "exman", "note", "1", "--edit"],
        capture_output=True,
        text=True,
        cwd=runs,
        env=env,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert ls_json(runs)[0]["note"] == "first line\nedited by the editor"

    env["EDITOR"] = f"{sys.executable} -c 'import sys; sys.exit(4)'"
    proc = subprocess.run(
        [sys.executable, "-m", "exman", "note", "1", "--edit"],
        capture_output=True,
        text=True,
        cwd=runs,
        env=env,
        timeout=60,
    )
    assert proc.returncode == 2 and "exited with code 4" in proc.stderr
    assert ls_json(runs)[0]["note"] == "first line\nedited by the editor"


WAITING = """\
import pathlib, time
with args.safe_experiment:
    go = pathlib.Path(args.root).parent.parent.parent / "go"
    print("started", flush=True)
    while not go.exists():
        time.sleep(0.05)
    raise ValueError("asked to fail")
"""


def test_tags_of_a_running_run_survive_its_failure_and_restore(
    make_script: Callable[..., Path], tmp_path: Path
) -> None:
    script = make_script(WAITING)
    proc = subprocess.Popen(
        [sys.executable, str(script)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        cwd=tmp_path,
    )
    assert proc.stdout is not None and proc.stdout.readline() == "started\n"
    root = tmp_path / "exman"
    tagged = exman_command("tag", "1", "baseline", cwd=root)
    noted = exman_command("note", "1", "watch this one", cwd=root)
    (tmp_path / "go").touch()
    assert proc.wait(timeout=60) != 0
    proc.stdout.close()
    assert tagged.returncode == 0 and noted.returncode == 0, tagged.stderr
    folder = next((root / "fails").glob("000001-*"))
    assert record(folder)["status"] == "failed"  # the run's own record is whole
    rows = ls_json(root, "--failed", "--query", "'baseline' in tags")
    assert [(r["id"], r["note"]) for r in rows] == [(1, "watch this one")]

    # out of the index and back: the annotations stay with the folder
    script2 = make_script(name="other.py")
    subprocess.run(
        [sys.executable, str(script2)], cwd=tmp_path, check=True, capture_output=True
    )
    exman_command("tag", "2", "kept", cwd=root)
    assert exman_command("delete", "2", cwd=root).returncode == 0
    assert exman_command("restore", "2", cwd=root).returncode == 0
    assert ls_json(root)[0]["tags"] == ["kept"]


def test_annotating_waits_for_the_root_lock(runs: Path) -> None:
    """Two writers never lose each other's tags (the root's lock orders them)."""
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "exman", "tag", "1", f"t{i}"],
            cwd=runs,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        for i in range(6)
    ]
    deadline = time.monotonic() + 60
    for p in procs:
        err = p.communicate(timeout=max(1, deadline - time.monotonic()))[1]
        assert p.returncode == 0, err
    tags = ls_json(runs)[0]["tags"]
    assert isinstance(tags, list) and sorted(tags) == [f"t{i}" for i in range(6)]


def test_planted_files_neither_hang_nor_lead_outside(
    runs: Path, tmp_path: Path
) -> None:
    """A FIFO or a link where annotations.json, changes.diff or log.txt go."""
    secret = tmp_path / "secret.json"
    secret.write_text('{"tags": ["leaked"], "note": "outside the root"}')
    first, second = sorted((runs / "runs").iterdir())
    (first / "annotations.json").symlink_to(secret)
    os.mkfifo(second / "annotations.json")
    os.mkfifo(second / "changes.diff")
    (second / "log.txt").unlink()
    os.mkfifo(second / "log.txt")
    for args in (["show", "1"], ["show", "2"], ["diff", "1", "2"], ["tail", "2"]):
        proc = exman_command(*args, cwd=runs)
        assert proc.returncode == 0, proc.stderr
        assert "leaked" not in proc.stdout and "outside" not in proc.stdout
    assert "tags" not in ls_json(runs)[0]
    proc = exman_command("tag", "1", "mine", cwd=runs)  # the link is replaced
    assert proc.returncode == 0, proc.stderr
    assert secret.read_text().startswith('{"tags": ["leaked"]')
    assert ls_json(runs)[0]["tags"] == ["mine"]
