"""git commit, dirty flag and diff, through the ``git`` command."""

from __future__ import annotations

import os

from .store import ExmanError, StrPath

# not typing's: importing typing would slow every run's start
TYPE_CHECKING = False
if TYPE_CHECKING:
    import subprocess

__all__ = ["GitError", "GitState", "git_code_state", "git_state"]

#: the uncommitted changes as a patch, whatever the user's diff settings
#: (colours, external diff tools, text conversions would change the bytes)
DIFF = ("diff", "--no-ext-diff", "--no-color", "--no-textconv", "HEAD")


class GitError(ExmanError, RuntimeError):
    """git is missing, the folder is not in a repository, or the tree is dirty."""


class GitState:
    """The state of a work tree: its commit (None before the first one)."""

    __slots__ = ("commit", "diff", "dirty", "top")

    def __init__(
        self, commit: str | None, dirty: bool, diff: str, top: str | None = None
    ) -> None:
        self.commit = commit
        self.dirty = dirty
        self.diff = diff
        #: the top folder of the work tree
        self.top = top

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
        diff = _git(repo, *DIFF).stdout
    return GitState(commit, dirty, diff, top.stdout.strip() or None)


def git_code_state(repo: StrPath) -> GitState:
    """The top folder, commit and ``git diff HEAD`` of ``repo`` in two git
    commands (:func:`git_state` takes three or four); dirty when the diff
    is not empty.

    :raises GitError: git is not installed or ``repo`` is not in a repository.
    """
    # a repository's own config must not run a command (core.fsmonitor) for
    # a look at it; git itself refuses repositories of other users
    safe = ("-c", "core.fsmonitor=false")
    head = _git(repo, *safe, "rev-parse", "--show-toplevel", "HEAD")
    lines = head.stdout.split("\n")
    if head.returncode != 0 or len(lines) < 2 or not lines[1].strip():
        return git_state(repo)  # not a repository, or no commit yet
    diff = _git(repo, *safe, *DIFF).stdout
    return GitState(lines[1].strip(), bool(diff), diff, lines[0].strip() or None)
