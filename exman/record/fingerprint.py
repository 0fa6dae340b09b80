"""The fingerprint of a run's code, and whether the code has changed since.

A run records the code it ran as ``code`` in its ``run.json``:

* in a git work tree, ``git:<commit>`` and, when the tracked files differ
  from the commit, ``+<hash of git diff HEAD>`` (untracked files do not
  count, as for the ``dirty`` flag); ``source`` is the top folder of the
  work tree;
* outside git, ``file:<hash of the script>``; ``source`` is the script.

A run is *stale* when the fingerprint of its source now differs from the
one it recorded. :class:`CodeCheck` computes the current fingerprint once
per source, however many runs share it.
"""

from __future__ import annotations

import os
import stat

# not typing's: importing typing would slow every run's start
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from .vcs import CodeState, GitState

__all__ = ["CodeCheck", "PendingCode", "code_record", "find_work_tree"]

#: hex digits kept of a hash: 64 bits tell apart any two versions of a file
HASH_DIGITS = 16


def _hasher() -> Any:
    try:
        # the builtin module: hashlib would cost every run's start ~8 ms
        from _blake2 import blake2b
    except ImportError:  # pragma: no cover - an interpreter without it
        from hashlib import blake2b
    return blake2b(digest_size=HASH_DIGITS // 2)


def _hash(data: bytes) -> str:
    h = _hasher()
    h.update(data)
    return str(h.hexdigest())


def find_work_tree(folder: str) -> str | None:
    """The nearest folder from ``folder`` up that holds ``.git``, if any.

    No git command runs: a stat per level, so that a script outside git
    pays nothing for being asked.
    """
    folder = os.path.abspath(folder)
    while True:
        if os.path.exists(os.path.join(folder, ".git")):
            return folder
        parent = os.path.dirname(folder)
        if parent == folder:
            return None
        folder = parent


def git_fingerprint(state: GitState) -> str:
    """``git:<commit>`` with ``+<hash of the diff>`` when there is one."""
    code = f"git:{state.commit or 'none'}"
    if state.diff:
        code += "+" + _hash(state.diff.encode("utf-8", "surrogateescape"))
    return code


def file_fingerprint(path: str) -> str:
    """``file:<hash of the file's bytes>``.

    :raises OSError: the file cannot be read, or is no regular file (a
        FIFO named by a planted record must not hang the reader).
    """
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(f"{path} is not a regular file")
        h = _hasher()
        while chunk := os.read(fd, 1 << 20):
            h.update(chunk)
    finally:
        os.close(fd)
    return "file:" + str(h.hexdigest())


def code_record(git: GitState | None, script: str | None) -> dict[str, Any] | None:
    """What a run records of its code: ``{"fingerprint": ..., "source": ...}``.

    :param git: the state of the work tree the run was told to record
        (``ExParser(git=...)``); None looks for one above ``script``.
    :param script: the script that runs (``sys.argv[0]``), if it is a file.
    :returns: None when there is nothing to fingerprint (code typed at a
        prompt or given with ``-c``) or git cannot tell.
    """
    if git is not None:
        return _record(git, script)
    return PendingCode(script).result()


class PendingCode:
    """:func:`code_record` of a script, its git commands started now.

    A script in a git work tree needs two ``git`` commands; they run while
    the run's start goes on (its parse, its folder) and :meth:`result`
    collects them before the run's ``run.json`` is written, so that every
    run that has a record has its fingerprint in it.

    :param script: the script that runs, if it is a file.
    :param find_git: look for a work tree above ``script`` (the run is not
        told which one to record).
    """

    def __init__(self, script: str | None, *, find_git: bool = True) -> None:
        self.script = script
        self._state: CodeState | None = None
        tree = None
        if find_git and script:
            tree = find_work_tree(os.path.dirname(script))
        if tree is not None:
            from .vcs import CodeState, GitError  # for a script in a work tree

            try:
                self._state = CodeState(tree)
            except (GitError, OSError):  # no git: the script alone says something
                pass

    def result(self, git: GitState | None = None) -> dict[str, Any] | None:
        """The record; ``git``, the state ``ExParser(git=...)`` took, wins
        over the one started here."""
        pending, self._state = self._state, None
        if pending is not None:
            if git is None:
                from .vcs import GitError

                try:
                    git = pending.result()
                except (GitError, OSError):
                    git = None
            else:
                pending.discard()
        return _record(git, self.script)

    def discard(self) -> None:
        """The record is not wanted after all (a failed parse, a resumed run)."""
        pending, self._state = self._state, None
        if pending is not None:
            pending.discard()


def _record(git: GitState | None, script: str | None) -> dict[str, Any] | None:
    if git is not None and git.top:
        return {"fingerprint": git_fingerprint(git), "source": git.top}
    if script:
        try:
            return {"fingerprint": file_fingerprint(script), "source": script}
        except OSError:
            return None
    return None


class CodeCheck:
    """Whether runs' code differs from the code in their source now.

    The current fingerprint of each source (a work tree, a script) is
    computed once, the first time a run of it is asked about.
    """

    def __init__(self) -> None:
        self._now: dict[str, str | None] = {}

    def current(self, source: str, *, git: bool) -> str | None:
        """The fingerprint of ``source`` now, a git work tree or a script;
        None if it is gone or unreadable."""
        key = ("git:" if git else "file:") + source
        if key not in self._now:
            self._now[key] = self._compute(source, git)
        return self._now[key]

    @staticmethod
    def _compute(source: str, git: bool) -> str | None:
        from .vcs import GitError, git_code_state

        try:
            if git:
                return git_fingerprint(git_code_state(source))
            return file_fingerprint(source)
        except (GitError, OSError):
            return None

    def stale(self, code: object, source: object) -> bool | None:
        """True when the code recorded as ``code`` from ``source`` changed
        since; None when unknown (no record, a source that is gone)."""
        if not isinstance(code, str) or not isinstance(source, str) or not source:
            return None
        now = self.current(source, git=code.startswith("git:"))
        if now is None:
            return None
        return now != code
