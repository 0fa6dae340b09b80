"""Copying what a run prints to its log file, and still to the terminal.

Two ways, chosen by :func:`start`:

* :class:`FdCapture` — in a script, file descriptors 1 and 2 are pointed at
  a pipe (a pseudo-terminal where they were a terminal, so that programs
  still see a terminal: colours, progress bars) and a process of its own
  copies what comes out of it to the log file and to where 1 and 2 pointed
  before, so that it outlives a crash of the run.
  Whatever writes to the descriptors is caught: ``print``, ``logging``
  handlers made earlier, C extensions, subprocesses.
* :class:`TeeCapture` — where ``sys.stdout`` is not the process's fd 1 (a
  Jupyter kernel, a test runner capturing output), ``sys.stdout`` and
  ``sys.stderr`` are replaced by streams that write to both.
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Sequence

from .files import group_bits, share

__all__ = ["FdCapture", "Tee", "TeeCapture", "start", "stop_all"]

#: how long stopping waits for output still in the pipe: a bound, not a pause
DRAIN_SECONDS = 5.0


# not typing's: importing typing would slow every run's start
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import IO, Any, Protocol

    class Capture(Protocol):
        """Output being copied to a log file until :meth:`stop`."""

        def stop(self) -> None:
            """Stop copying; everything written before is in the log."""


_active: list[Capture] = []
_active_lock = threading.Lock()


def start(log_path: str | os.PathLike[str]) -> Capture:
    """Copy this process's stdout and stderr to ``log_path`` (appended)."""
    capture: Capture
    if _has_real_descriptors():
        try:
            capture = FdCapture(os.fspath(log_path))
        except OSError:  # no pipe, no pty, descriptors closed: copy in Python
            capture = TeeCapture(os.fspath(log_path))
    else:
        capture = TeeCapture(os.fspath(log_path))
    with _active_lock:
        _active.append(capture)
    return capture


def stop_all() -> None:
    """Stop every capture of this process (at exit, on SIGTERM), newest first."""
    with _active_lock:
        captures = _active[::-1]
        _active.clear()
    for capture in captures:
        try:
            capture.stop()
        except (OSError, ValueError):
            pass


def _forget(capture: Capture) -> None:
    with _active_lock:
        if capture in _active:
            _active.remove(capture)


def _writes_to(stream: Any, fd: int) -> bool:
    try:
        return stream is not None and stream.fileno() == fd
    except (AttributeError, OSError, ValueError):
        return False


def _has_real_descriptors() -> bool:
    """Whether ``print`` ends up in fds 1 and 2 (a script, not a notebook)."""
    return (
        sys.stdout is sys.__stdout__
        and sys.stderr is sys.__stderr__
        and _writes_to(sys.stdout, 1)
        and _writes_to(sys.stderr, 2)
    )


def _flush_python() -> None:
    for stream in (sys.stdout, sys.stderr):
        try:
            if stream is not None:
                stream.flush()
        except (OSError, ValueError):
            pass


def _flush_c() -> None:
    """Flush C's stdio buffers: a C extension's ``printf`` into a pipe is
    block-buffered and would otherwise reach the terminal only at exit."""
    try:
        import ctypes

        ctypes.CDLL(None).fflush(None)
    except (ImportError, OSError, AttributeError):
        pass


class _Channel:
    """One captured descriptor: where it pointed before, and our pipe."""

    def __init__(self, fd: int, also: Sequence[int] = ()) -> None:
        self.fds = (fd, *also)
        self.saved = os.dup(fd)
        self.pty = os.isatty(self.saved)
        try:
            self.read, self.write = _pipe_like(self.saved)
        except OSError:
            os.close(self.saved)
            raise

    def redirect(self) -> None:
        for fd in self.fds:
            os.dup2(self.write, fd)

    def restore(self) -> None:
        for fd in self.fds:
            os.dup2(self.saved, fd)
        os.close(self.write)

    def close(self) -> None:
        for fd in (self.read, self.saved):
            try:
                os.close(fd)
            except OSError:
                pass


def _pipe_like(original: int) -> tuple[int, int]:
    """A pipe, or a pseudo-terminal (sized as the terminal) where
    ``original`` is a terminal, so that isatty() stays true."""
    if not os.isatty(original):
        return os.pipe()
    import termios

    master, slave = os.openpty()
    try:
        attrs = termios.tcgetattr(slave)
        attrs[1] &= ~termios.OPOST  # no "\n" -> "\r\n": the log gets the bytes
        termios.tcsetattr(slave, termios.TCSANOW, attrs)
    except termios.error:
        pass
    _copy_size(original, slave)
    os.set_inheritable(slave, False)
    return master, slave


def _copy_size(terminal: int, pty: int) -> None:
    import fcntl
    import termios

    try:
        size = fcntl.ioctl(terminal, termios.TIOCGWINSZ, b"\0" * 8)
        fcntl.ioctl(pty, termios.TIOCSWINSZ, size)
    except OSError:
        pass


def _open_log(path: str) -> int:
    """The log, opened to append, shared as its folder is (a team's root)."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        share(fd, group_bits(os.path.dirname(path) or "."))
    except OSError:
        os.close(fd)
        raise
    return fd


def _same_target(a: int, b: int) -> bool:
    """Whether two descriptors write to the same file, pipe or terminal."""
    try:
        sa, sb = os.fstat(a), os.fstat(b)
    except OSError:
        return False
    return (sa.st_dev, sa.st_ino, sa.st_rdev) == (sb.st_dev, sb.st_ino, sb.st_rdev)


class FdCapture:
    """Descriptors 1 and 2 into a pipe; a process of its own
    (:mod:`exman.record.pump`) copies it to the log and on.

    :param log_path: the log file, appended to.
    :raises OSError: the descriptors cannot be duplicated, no pipe made or
        the copying process not started.
    """

    def __init__(self, log_path: str) -> None:
        _flush_python()
        _flush_c()
        self._channels: list[_Channel] = []
        mine: list[int] = []  # what only the copying process keeps
        try:
            if _same_target(1, 2):
                # one channel keeps stdout and stderr in order in the log
                self._channels.append(_Channel(1, also=(2,)))
            else:
                self._channels += [_Channel(1), _Channel(2)]
            mine.append(_open_log(log_path))
            ctl_r, self._ctl = os.pipe()
            mine.append(ctl_r)
            self._ack, ack_w = os.pipe()
            mine.append(ack_w)
            self._pid = _spawn_pump(mine, self._channels)
        except BaseException:
            for fd in mine:
                os.close(fd)
            for channel in self._channels:
                os.close(channel.write)
                channel.close()
            raise
        for fd in mine:
            os.close(fd)
        for channel in self._channels:
            os.close(channel.read)
            channel.redirect()
        self._stopped = False
        self._owner = os.getpid()
        self._resizing = False
        if any(c.pty for c in self._channels):
            self._follow_resizes()

    def _follow_resizes(self) -> None:
        """A resized terminal resizes the pseudo-terminal (progress bars
        ask for the width), where nobody else handles SIGWINCH yet."""
        import signal

        if (
            threading.current_thread() is threading.main_thread()
            and signal.getsignal(signal.SIGWINCH) == signal.SIG_DFL
        ):
            signal.signal(signal.SIGWINCH, self._on_resize)
            self._resizing = True

    def _on_resize(self, signum: int, frame: object) -> None:
        for channel in self._channels:
            if channel.pty and not self._stopped:
                _copy_size(channel.saved, channel.write)

    def stop(self) -> None:
        """Point 1 and 2 back, and wait until the pipe is empty.

        A child process that still holds the pipe keeps being copied (to
        the log and on) until it closes it.
        """
        if self._stopped:
            return
        if os.getpid() != self._owner:
            # a forked child (a DataLoader worker on SIGTERM): the pipe and
            # its copying are the parent's; the child just writes into it
            return
        self._stopped = True
        _forget(self)
        if self._resizing:
            import signal

            if signal.getsignal(signal.SIGWINCH) == self._on_resize:
                signal.signal(signal.SIGWINCH, signal.SIG_DFL)
        _flush_python()
        _flush_c()
        for channel in self._channels:
            channel.restore()
        try:
            os.write(self._ctl, b"s")
            import select

            # "k", or the end of the pipe when the copying process is done
            if select.select([self._ack], [], [], DRAIN_SECONDS)[0]:
                os.read(self._ack, 64)
        except OSError:
            pass
        for fd in (self._ctl, self._ack):
            os.close(fd)
        for channel in self._channels:
            os.close(channel.saved)
        try:
            os.waitpid(self._pid, os.WNOHANG)  # reaped now if it is done
        except ChildProcessError:
            pass


def _spawn_pump(fds: list[int], channels: Sequence[_Channel]) -> int:
    """Start the copying process with ``fds`` (log, control, answer) and the
    channels' pipes and old descriptors; its pid."""
    if not sys.executable:
        raise OSError("no Python executable to run the log's copying process")
    sources = [*fds]
    for channel in channels:
        sources += [channel.read, channel.saved]
    # the child's numbers are past every source, so no dup2 overwrites one
    first = max(max(sources), 2) + 1
    targets = list(range(first, first + len(sources)))
    actions: list[tuple[Any, ...]] = [
        (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0)
    ]
    actions += [(os.POSIX_SPAWN_DUP2, s, t) for s, t in zip(sources, targets)]
    script = os.path.join(os.path.dirname(os.path.abspath(__file__)), "pump.py")
    argv = [sys.executable, "-I", "-S", script, *map(str, targets)]
    # its own session: the terminal's Ctrl-C is for the run, not for it
    return os.posix_spawn(
        sys.executable, argv, os.environ, file_actions=actions, setsid=True
    )


class Tee:
    """A text stream that writes to ``stream`` and to a log file.

    Everything else (``isatty``, ``fileno``, ``encoding``…) is the stream's,
    so progress bars and colour detection behave as without the tee.
    """

    def __init__(self, stream: IO[str], log: IO[str]) -> None:
        self._stream = stream
        self._log = log

    def write(self, text: str) -> int:
        try:
            self._log.write(text)
        except (ValueError, OSError):  # the log was closed under us, a full disk
            pass
        return self._stream.write(text)

    def writelines(self, lines: Sequence[str]) -> None:
        for line in lines:
            self.write(line)

    def flush(self) -> None:
        try:
            self._log.flush()
        except (ValueError, OSError):
            pass
        self._stream.flush()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


class TeeCapture:
    """``sys.stdout`` and ``sys.stderr`` replaced by :class:`Tee` streams.

    Only what Python code writes through ``sys.stdout``/``sys.stderr`` is
    copied: where the process has no descriptors of its own to redirect.
    """

    def __init__(self, log_path: str) -> None:
        # open until stop(), which closes it
        self._log: IO[str] | None = open(  # noqa: SIM115
            _open_log(log_path), "a", encoding="utf-8", buffering=1
        )
        self._saved = (sys.stdout, sys.stderr)
        sys.stdout = Tee(sys.stdout, self._log)
        sys.stderr = Tee(sys.stderr, self._log)

    def stop(self) -> None:
        _forget(self)
        if self._log is None:
            return
        sys.stdout, sys.stderr = self._saved
        log, self._log = self._log, None
        try:
            log.close()
        except OSError:  # a full disk: the script's own outcome matters more
            pass
