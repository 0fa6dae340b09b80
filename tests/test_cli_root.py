"""The exman command finds the root from the script's folder, as the README
has it: ``python main.py`` then ``exman ls`` in the same folder."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from exman.commands.selection import locate_root, root_candidates
from tests._run_helpers import exman_command


def make_root(path: Path) -> Path:
    for sub in ("runs", "index"):
        (path / sub).mkdir(parents=True, exist_ok=True)
    return path


def test_the_readme_commands_work_in_the_scripts_folder(
    make_script: Callable[..., Path], run: Callable[..., Any], tmp_path: Path
) -> None:
    script = make_script()
    run(script, "--lr", "0.2", check=True)
    run(script, "--lr", "0.3", check=True)
    listed = exman_command("ls", cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr
    assert "0.2" in listed.stdout and "0.3" in listed.stdout
    assert listed.stderr == ""  # one root qualified: nothing to say
    shown = exman_command("show", "2", cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    assert "0.3" in shown.stdout
    rerun = exman_command("rerun", "1", "--", "--lr", "0.5", cwd=tmp_path)
    assert rerun.returncode == 0, rerun.stderr
    assert len(list((tmp_path / "exman" / "runs").iterdir())) == 3


def test_a_parents_exman_folder_is_found(tmp_path: Path) -> None:
    root = make_root(tmp_path / "project" / "exman")
    below = tmp_path / "project" / "data" / "raw"
    below.mkdir(parents=True)
    found, others = locate_root(cwd=below, environ={})
    assert (found.path, others) == (root, [])


def test_the_nearest_root_wins_and_the_others_are_named(tmp_path: Path) -> None:
    outer = make_root(tmp_path / "exman")
    inner = make_root(tmp_path / "project" / "exman")
    inside = make_root(tmp_path / "project" / "exman" / "runs" / "r" / "exman")
    work = tmp_path / "project"
    assert [r.path for r in root_candidates(work)] == [inner, outer]
    # inside a root, the root itself comes before an exman/ above it
    assert [r.path for r in root_candidates(inner / "runs")] == [inner, outer]
    assert [r.path for r in root_candidates(inside.parent)] == [inside, inner, outer]


def test_the_command_says_which_root_it_used(tmp_path: Path) -> None:
    make_root(tmp_path / "exman")
    make_root(tmp_path / "project" / "exman")
    proc = exman_command("ls", cwd=tmp_path / "project")
    assert proc.returncode == 0, proc.stderr
    assert f"using the root {tmp_path / 'project' / 'exman'}" in proc.stderr
    assert str(tmp_path / "exman") in proc.stderr and "--root" in proc.stderr
