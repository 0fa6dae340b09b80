"""git commit, dirty flag and diff, through the ``git`` command."""

from __future__ import annotations

import os

from .spawn import Spawned
from .store import ExmanError, StrPath

__all__ = [
    "CodeState",
    "GitError",
    "GitState",
    "commit_diff",
    "git_code_state",
    "git_state",
]

#: the uncommitted changes as a patch, whatever the user's diff settings
#: (colours, external diff tools, text conversions would change the bytes)
DIFF = ("diff", "--no-ext-diff", "--no-color", "--no-textconv", "HEAD")
#: a repository's own config must not run a command (core.fsmonitor) for a
#: look at it; git itself refuses repositories of other users
SAFE = ("-c", "core.fsmonitor=false")


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


class _Done:
    """The exit code and standard output of a finished git command."""

    __slots__ = ("returncode", "stdout")

    def __init__(self, returncode: int, stdout: str) -> None:
        self.returncode = returncode
        self.stdout = stdout


def _start(repo: StrPath, *args: str) -> Spawned:
    """``git -C repo args...``, started: its output is read later."""
    try:
        return Spawned(["git", "-C", os.fspath(repo), *args])
    except FileNotFoundError:
        raise GitError(
            "the git command is not installed, but this ExParser asks for git "
            "(git=... or git_assert_clean=True)"
        ) from None


def _git(repo: StrPath, *args: str) -> _Done:
    return _Done(*_start(repo, *args).output())


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


class CodeState:
    """The two git commands of :func:`git_code_state`, started at once.

    Both run while the caller goes on (a run's start: its parse and its
    folder); :meth:`result` waits for them.

    :raises GitError: git is not installed.
    """

    def __init__(self, repo: StrPath) -> None:
        self.repo = repo
        self._head = _start(repo, *SAFE, "rev-parse", "--show-toplevel", "HEAD")
        try:
            self._diff = _start(repo, *SAFE, *DIFF)
        except BaseException:
            self._head.discard()
            raise

    def result(self) -> GitState:
        """The top folder, commit and ``git diff HEAD`` of the repository.

        :raises GitError: ``repo`` is not in a repository.
        """
        try:
            code, out = self._head.output()
            diff = self._diff.output()[1]
        except BaseException:  # Ctrl-C while waiting: no command left behind
            self.discard()
            raise
        lines = out.split("\n")
        if code != 0 or len(lines) < 2 or not lines[1].strip():
            return git_state(self.repo)  # not a repository, or no commit yet
        return GitState(lines[1].strip(), bool(diff), diff, lines[0].strip() or None)

    def discard(self) -> None:
        """Let the commands end unread (the state is not wanted after all)."""
        self._head.discard()
        self._diff.discard()


def git_code_state(repo: StrPath) -> GitState:
    """The top folder, commit and ``git diff HEAD`` of ``repo`` in two git
    commands that run at once (:func:`git_state` takes three or four, one
    after the other); dirty when the diff is not empty.

    :raises GitError: git is not installed or ``repo`` is not in a repository.
    """
    return CodeState(repo).result()


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
            found = _git(repo, *SAFE, "cat-file", "-e", f"{commit}^{{commit}}")
            if found.returncode != 0:
                return None
        proc = _git(repo, *SAFE, *DIFF[:-1], old, new)
    except GitError:
        return None
    return proc.stdout if proc.returncode == 0 else None
