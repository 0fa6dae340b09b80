"""git: the commit and dirty flag of the script's repository, its diff."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from _git_helpers import git

import exman


@pytest.fixture
def repo(tmp_path: Path, git_env: dict[str, str]) -> Path:
    """A repository with one commit of ``train.py``."""
    path = tmp_path / "repo"
    path.mkdir()
    git(path, "init", "-q")
    (path / "train.py").write_text("print('v1')\n")
    git(path, "add", "train.py")
    git(path, "commit", "-q", "-m", "first")
    return path


def make_parser(root: Path, **kwargs: Any) -> exman.ExParser:
    parser = exman.ExParser(root=root, **kwargs)
    parser.add_argument("--lr", type=float, default=0.1)
    return parser


def test_a_clean_tree(repo: Path) -> None:
    ns = make_parser(repo / "exman", git=repo).parse_args([])
    params = exman.Run(ns.root).params
    assert params["commit"] == git(repo, "rev-parse", "HEAD")
    assert params["dirty"] is False
    assert not (ns.root / "changes.diff").exists()


def test_a_dirty_tree_saves_its_diff(repo: Path) -> None:
    (repo / "train.py").write_text("print('v2 ünï')\n")
    ns = make_parser(repo / "exman", git=str(repo)).parse_args([])
    params = exman.Run(ns.root).params
    assert params["dirty"] is True
    assert params["commit"] == git(repo, "rev-parse", "HEAD")
    diff = (ns.root / "changes.diff").read_text()
    assert "-print('v1')" in diff
    assert "+print('v2 ünï')" in diff


def test_staged_changes_are_dirty_too(repo: Path) -> None:
    (repo / "new.py").write_text("x = 1\n")
    git(repo, "add", "new.py")
    ns = make_parser(repo / "exman", git=repo).parse_args([])
    assert exman.Run(ns.root).params["dirty"] is True
    assert "+x = 1" in (ns.root / "changes.diff").read_text()


def test_untracked_files_are_not_dirty(repo: Path) -> None:
    """As in exman 0.1.9; the root itself usually sits untracked in the repo."""
    (repo / "notes.txt").write_text("scratch\n")
    ns = make_parser(repo / "exman", git=repo, git_assert_clean=True).parse_args([])
    assert exman.Run(ns.root).params["dirty"] is False


def test_git_assert_clean_refuses_a_dirty_tree(repo: Path) -> None:
    (repo / "train.py").write_text("print('v2')\n")
    parser = make_parser(repo / "exman", git=repo, git_assert_clean=True)
    with pytest.raises(exman.GitError) as exc:
        parser.parse_args([])
    assert isinstance(exc.value, RuntimeError)
    assert "--git-dirty" in str(exc.value)
    assert str(repo) in str(exc.value)
    assert not (repo / "exman").exists()

    ns = parser.parse_args(["--git-dirty"])
    params = exman.Run(ns.root).params
    assert (params["dirty"], params["git_dirty"]) == (True, True)
    assert (ns.root / "changes.diff").is_file()


def test_git_dirty_is_not_restored_by_config(repo: Path) -> None:
    (repo / "train.py").write_text("print('v2')\n")
    parser = make_parser(repo / "exman", git=repo, git_assert_clean=True)
    ns = parser.parse_args(["--git-dirty"])
    with pytest.raises(exman.GitError):
        parser.parse_args(["--config", str(ns.root / "params.yaml")])


def test_a_repository_without_commits(tmp_path: Path, git_env: dict[str, str]) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    git(empty, "init", "-q")
    ns = make_parser(tmp_path / "exman", git=empty).parse_args([])
    assert exman.Run(ns.root).params["commit"] is None


def test_no_repository_is_a_clear_error(
    tmp_path: Path, git_env: dict[str, str]
) -> None:
    parser = make_parser(tmp_path / "exman", git=tmp_path)
    with pytest.raises(exman.GitError, match="not inside a git repository"):
        parser.parse_args([])
    assert not (tmp_path / "exman").exists()


def test_git_true_is_the_scripts_repository(
    repo: Path, git_env: dict[str, str], run: Callable[..., Any]
) -> None:
    script = repo / "train.py"
    script.write_text(
        "import exman\n"
        "parser = exman.ExParser(root=exman.simpleroot(__file__), git=True)\n"
        "args = parser.parse_args()\n"
    )
    git(repo, "commit", "-q", "-am", "an ExParser script")
    run(script, env=git_env, cwd=repo.parent, check=True)
    (folder,) = (repo / "exman" / "runs").iterdir()
    params = exman.Run(folder).params
    assert (params["commit"], params["dirty"]) == (
        git(repo, "rev-parse", "HEAD"),
        False,
    )


def test_git_assert_clean_in_a_script(
    repo: Path, git_env: dict[str, str], run: Callable[..., Any]
) -> None:
    script = repo / "train.py"
    script.write_text(
        "import exman\n"
        "parser = exman.ExParser(root=exman.simpleroot(__file__),"
        " git_assert_clean=True)\n"
        "args = parser.parse_args()\n"
    )
    proc = run(script, env=git_env, cwd=repo.parent)
    assert proc.returncode == 1
    assert "GitError" in proc.stderr
    assert "--git-dirty" in proc.stderr
    assert not (repo / "exman").exists()
    run(script, "--git-dirty", env=git_env, cwd=repo.parent, check=True)
    assert len(list((repo / "exman" / "runs").iterdir())) == 1


def test_git_true_outside_a_repository(
    tmp_path: Path, git_env: dict[str, str], run: Callable[..., Any]
) -> None:
    script = tmp_path / "main.py"
    script.write_text(
        "import exman\n"
        "parser = exman.ExParser(root=exman.simpleroot(__file__), git=True)\n"
        "args = parser.parse_args()\n"
    )
    proc = run(script, env=git_env)
    assert proc.returncode == 1
    assert "GitError" in proc.stderr
    assert "is not inside a git repository" in proc.stderr
    assert not (tmp_path / "exman").exists()
