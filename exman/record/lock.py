"""The root's file lock, cheap to import.

On POSIX this is ``fcntl.flock`` on ``root/lock``: the same lock the
``filelock`` package takes there (so exman 0.1.9 and other filelock users
are still excluded), without its import, which costs more than a third of
a run's start-up (it pulls in logging, secrets, decimal and platform).
Elsewhere ``filelock.FileLock`` is used as it is.
"""

from __future__ import annotations

import os
import time
from types import TracebackType

from .errors import ExmanError
from .files import group_bits, share

# not typing's: importing typing would slow every run's start
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

__all__ = ["FileLock", "LockTimeout"]

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]


class LockTimeout(ExmanError, TimeoutError):
    """The root stayed locked by another process for longer than the timeout."""


def _open(path: str) -> int:
    """The lock file, opened for flock (which needs no write access)."""
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except PermissionError:  # made by another member of a shared root's group
        return os.open(path, os.O_RDONLY)
    # filelock (exman 0.1.9) opens it for writing: keep it so for the group
    share(fd, group_bits(os.path.dirname(path) or "."))
    return fd


class FileLock:
    """An exclusive, re-entrant-per-object lock on a file.

    :param path: the lock file (created if missing, never deleted).
    :param timeout: seconds to wait; negative waits forever.
    """

    def __init__(self, path: str, timeout: float = -1) -> None:
        self.path = path
        self.timeout = timeout
        self._fd: int | None = None
        self._depth = 0
        self._fallback: Any = None

    def acquire(self) -> FileLock:
        """Take the lock, waiting at most ``timeout`` seconds.

        :raises LockTimeout: another process held it for the whole timeout.
        """
        if self._depth:
            self._depth += 1
            return self
        if fcntl is None:  # pragma: no cover - Windows
            from filelock import FileLock as _Lock
            from filelock import Timeout

            self._fallback = _Lock(self.path, timeout=self.timeout)
            try:
                self._fallback.acquire()
            except Timeout:
                raise self._timeout() from None
            self._depth = 1
            return self
        try:
            fd = _open(self.path)
        except OSError as e:  # a folder, a read-only root, no permission
            raise ExmanError(
                f"cannot take the lock {self.path}: {e.strerror}"
            ) from None
        try:
            if self.timeout < 0:
                fcntl.flock(fd, fcntl.LOCK_EX)
            else:
                deadline = time.monotonic() + self.timeout
                while True:
                    try:
                        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                        break
                    except BlockingIOError:
                        if time.monotonic() >= deadline:
                            raise self._timeout() from None
                        time.sleep(0.01)
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd
        self._depth = 1
        return self

    def release(self) -> None:
        if not self._depth:
            return
        self._depth -= 1
        if self._depth:
            return
        if self._fallback is not None:  # pragma: no cover - Windows
            self._fallback.release()
            self._fallback = None
        elif self._fd is not None:
            fd, self._fd = self._fd, None
            try:
                fcntl.flock(fd, fcntl.LOCK_UN)
            finally:
                os.close(fd)

    @property
    def is_locked(self) -> bool:
        return self._depth > 0

    def _timeout(self) -> LockTimeout:
        return LockTimeout(
            f"{self.path} is locked by another process (waited {self.timeout:g} s)"
        )

    def __enter__(self) -> FileLock:
        return self.acquire()

    def __exit__(
        self,
        etype: type[BaseException] | None,
        value: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()
