"""git commit, dirty flag and diff, through the ``git`` command."""

from __future__ import annotations

import os

from .store import ExmanError, StrPath

# not typing's: importing typing would slow every run's start
TYPE_CHECKING = False
if TYPE_CHECKING:
    import subprocess

__all__ = ["GitError", "GitState", "commit_diff", "git_state"]


class GitError(ExmanError, RuntimeError):
    """git is missing, the folder is not in a repository, or the tree is dirty."""


class GitState:
    """The state of a work tree: its commit (None before the first one)."""

    __slots__ = ("commit", "diff", "dirty")

    def __init__(self, commit: str | None, dirty: bool, diff: str) -> None:
        self.commit = commit
        self.dirty = dirty
        self.diff = diff

    def __repr__(self) -> str:
        return f"GitState(commit={self.commit!r}, dirty={self.dirty}, diff=...)"


def _git(repo: StrPath, *args: str) -> subprocess.CompletedProcess[str]:
    import subprocess  # only when git is asked for: not on every run's start

    try:
        return subprocess.run(
            ["git", "-C", os.fspath(repo), *args],
            capture_output=True,
            text=True,
            errors="replace",
            check=False,
        )
    except FileNotFoundError:
        raise GitError(
            "the git command is not installed, but this ExParser asks for git "
            "(git=... or git_assert_clean=True)"
        ) from None


def git_state(repo: StrPath, *, with_diff: bool = True) -> GitState:
    """The commit, dirty flag and (when dirty) ``git diff HEAD`` of ``repo``.

    Untracked files do not make a tree dirty (as in exman 0.1.9).

    :raises GitError: git is not installed or ``repo`` is not in a repository.
    """
    top = _git(repo, "rev-parse", "--show-toplevel")
    if top.returncode != 0:
        raise GitError(
            f"{os.fspath(repo)!r} is not inside a git repository: pass "
            "ExParser(git='path/to/the/repository')"
        )
    head = _git(repo, "rev-parse", "--verify", "-q", "HEAD")
    commit = head.stdout.strip() if head.returncode == 0 else None
    status = _git(repo, "status", "--porcelain", "--untracked-files=no")
    dirty = bool(status.stdout.strip())
    diff = ""
    if dirty and with_diff and commit is not None:
        diff = _git(repo, "diff", "HEAD").stdout
    return GitState(commit, dirty, diff)


def commit_diff(repo: StrPath, old: str, new: str) -> str | None:
    """``git diff old new`` in ``repo``; None when git is missing, ``repo``
    is not a repository or it lacks one of the commits (or one is not a
    commit's hex name: a value read from a run's files is never an option)."""
    hexdigits = set("0123456789abcdef")
    if not all(4 <= len(c) <= 64 and set(c) <= hexdigits for c in (old, new)):
        return None
    if not os.path.isdir(repo):
        return None
    try:
        for commit in (old, new):
            if _git(repo, "cat-file", "-e", f"{commit}^{{commit}}").returncode != 0:
                return None
        proc = _git(repo, "diff", old, new)
    except GitError:
        return None
    return proc.stdout if proc.returncode == 0 else None
