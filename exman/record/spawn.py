"""A command started now and its output read later, without ``subprocess``.

The code fingerprint of a script in a git work tree takes two ``git``
commands at every run's start. ``subprocess`` (with ``threading``,
``selectors`` and ``locale``) would cost that start more than the commands
themselves, and running them one after the other would add their times:
:class:`Spawned` starts a command with ``os.posix_spawnp``, its standard
output into a pipe and its standard error to ``/dev/null``, and reads the
output when :meth:`~Spawned.output` is asked for, so that the command runs
while the caller does something else. Where ``posix_spawnp`` is missing
(Windows), ``subprocess`` does the same.
"""

from __future__ import annotations

import os

# not typing's: importing typing would slow every run's start
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence
    from typing import Any

__all__ = ["Spawned"]


class Spawned:
    """A running command whose standard output this process reads.

    :param argv: the command and its arguments; the command is looked for
        on ``PATH``.
    :raises FileNotFoundError: the command is not installed.
    """

    def __init__(self, argv: Sequence[str]) -> None:
        self.argv = list(argv)
        self._proc: Any = None
        self._done: tuple[int, str] | None = None
        if not hasattr(os, "posix_spawnp"):  # pragma: no cover - not POSIX
            import subprocess

            self._proc = subprocess.Popen(
                self.argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
            )
            return
        import signal  # imported by every run already (exman.record.safe)

        read, write = os.pipe()  # neither is inherited: only the dup2 is
        try:
            self.pid = os.posix_spawnp(
                self.argv[0],
                self.argv,
                os.environ,
                file_actions=[
                    (os.POSIX_SPAWN_DUP2, write, 1),
                    (os.POSIX_SPAWN_OPEN, 2, os.devnull, os.O_WRONLY, 0),
                ],
                # Python ignores SIGPIPE; the command should not (as subprocess)
                setsigdef=(signal.SIGPIPE,),
            )
        except BaseException:
            os.close(read)
            raise
        finally:
            os.close(write)
        self._read = read

    def output(self) -> tuple[int, str]:
        """Wait for the command: its exit code and its standard output
        (undecodable bytes replaced)."""
        if self._done is not None:
            return self._done
        if self._proc is not None:  # pragma: no cover - not POSIX
            out, _ = self._proc.communicate()
            code = self._proc.returncode
        else:
            chunks = []
            try:
                while chunk := os.read(self._read, 1 << 16):
                    chunks.append(chunk)
            finally:
                self._close()
            code, out = _wait(self.pid), b"".join(chunks)
        self._done = code, out.decode("utf-8", "replace")
        return self._done

    def discard(self) -> None:
        """Let the command end without reading the rest of its output.

        Its end is waited for: a command killed outright could leave its
        work half done (a ``git`` its ``index.lock``); closing the pipe
        makes one that still writes end at its next write.
        """
        if self._done is not None:
            return
        if self._proc is not None:  # pragma: no cover - not POSIX
            self._proc.stdout.close()
            self._proc.wait()
        else:
            self._close()
            _wait(self.pid)
        self._done = -1, ""

    def _close(self) -> None:
        if self._read >= 0:
            read, self._read = self._read, -1
            os.close(read)


def _wait(pid: int) -> int:
    """The exit code of child ``pid``, once it ended."""
    try:
        _, status = os.waitpid(pid, 0)
    except ChildProcessError:
        # SIGCHLD ignored (by the script): the system reaped it, its status
        # is gone; its output is what there is to judge (as subprocess does)
        return 0
    return os.waitstatus_to_exitcode(status)
