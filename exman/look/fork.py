"""Work shared with a forked copy of this process: the second core reads
half of a first load, and stats half of the run folders of a warm listing.

A first load spends its time reading run folders, one system call after
another, while the process's other cores idle; so does the ``import pandas``
that follows it. :func:`share` forks the process once: both copies take
numbered pieces of the work from one queue (a pipe filled before the fork,
so that whichever is free takes the next piece), and the child sends what
it made back through a second pipe. The parent first does what it is given
to do ``meanwhile`` (import pandas), then takes pieces too; when none is
left it makes what it hands over of its own before it waits for the
child's, so that both finish at once.

Nothing is lost when the child fails: the pieces it took are done again by
the parent. The child never returns into the caller's code, never writes to
the terminal and never runs exit handlers: it ends with :func:`os._exit`.

The fork is made only where it is safe and pays (:func:`can_fork`): on
Linux, from a process with no other Python thread (a thread holding a lock
at the fork would leave the child stuck; Jupyter's kernel has such threads,
so a notebook reads on one core), with a second core to run on. Setting the
environment variable ``EXMAN_FORK=0`` turns it off.
"""

from __future__ import annotations

import _signal
import _thread
import array
import os
import pickle
import sys
from collections.abc import Callable

# not typing's: importing typing would slow every command's start
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

__all__ = ["MAX_PIECES", "can_fork", "pieces_of", "share"]

#: pieces a queue holds at most: two bytes each, all written before the fork
#: into a pipe (which holds 64 KiB without blocking)
MAX_PIECES = 4096
#: the signals that end the child as they would end a program without
#: handlers (Ctrl-C, a kill, a closed terminal): the parent has its own
_SIGNALS = {_signal.SIGINT, _signal.SIGTERM, _signal.SIGHUP}


def can_fork() -> bool:
    """Whether :func:`share` would fork: see the module's docstring."""
    if sys.platform != "linux" or os.environ.get("EXMAN_FORK", "1") == "0":
        return False
    if _threads():
        return False  # another thread may hold a lock the child would need
    try:
        return len(os.sched_getaffinity(0)) > 1
    except OSError:
        return False


def pieces_of(items: int, least: int) -> tuple[int, int]:
    """``(size, count)``: ``items`` cut in pieces of ``least`` items or more,
    and no more than :data:`MAX_PIECES` pieces."""
    size = max(least, -(-items // MAX_PIECES))
    return size, -(-items // size)


def _threads() -> int:
    """The Python threads of this process besides the main one."""
    count: int = _thread._count()
    return count


def share(
    pieces: int,
    do: Callable[[int], None],
    done: Callable[[], Any],
    meanwhile: Callable[[], None] | None = None,
) -> list[tuple[list[int], Any]]:
    """Call ``do(i)`` for each ``i`` in ``range(pieces)``, in this process and
    a forked copy of it (when :func:`can_fork`), each piece once.

    :param do: does piece ``i``, keeping what it made in the process.
    :param done: hands over what the process made since it was last
        called (picklable), once it has no piece left. This process calls
        it before it waits for the copy's, so that both finish at once;
        and again if the copy failed, after doing the copy's pieces.
    :param meanwhile: called in this process while the copy starts alone.
    :returns: per process, the pieces it did (in the order it did them) and
        what ``done()`` handed over for them; this process's first (twice
        when the copy failed: its own pieces, then the copy's).
    """
    if not 0 < pieces <= MAX_PIECES:
        raise ValueError(f"between 1 and {MAX_PIECES} pieces, not {pieces}")
    if not can_fork():
        if meanwhile is not None:
            meanwhile()
        for i in range(pieces):
            do(i)
        return [(list(range(pieces)), done())]
    queue, fill = os.pipe()
    try:
        os.write(fill, array.array("H", range(pieces)).tobytes())
    finally:
        os.close(fill)
    try:
        back, out = os.pipe()
    except OSError:
        os.close(queue)
        raise
    # no signal between the fork and the child's own handlers: the parent's
    # (a KeyboardInterrupt) would run the caller's code on in the child
    blocked = _signal.pthread_sigmask(_signal.SIG_BLOCK, _SIGNALS)
    try:
        pid = os.fork()
    except OSError:
        pid = -1  # no fork: this process does every piece
    if pid == 0:  # the child
        _child(queue, back, out, do, done, blocked)
    _signal.pthread_sigmask(_signal.SIG_SETMASK, blocked)
    os.close(out)
    mine: list[int] = []
    made: Any = None
    theirs: tuple[list[int], Any] | None = None
    try:
        if meanwhile is not None:
            meanwhile()
        mine = _take(queue, do)
        made = done()  # while the copy finishes and sends its own
        if pid > 0:
            theirs = _receive(back)
    finally:
        os.close(queue)
        os.close(back)
        if pid > 0:
            if theirs is None:  # this process was interrupted: stop the copy
                _kill(pid)
            _reap(pid)
    if theirs is None:  # no child, or it failed: what it took is done here
        taken = set(mine)
        rest = [i for i in range(pieces) if i not in taken]
        for i in rest:
            do(i)
        return [(mine, made), (rest, done())]
    return [(mine, made), theirs]


def _take(queue: int, do: Callable[[int], None]) -> list[int]:
    """Do pieces from ``queue`` until it is empty; the pieces done.

    Every piece is two bytes and every read asks for two, so that two
    processes reading at once never split one.
    """
    taken = []
    while len(token := os.read(queue, 2)) == 2:
        i = int.from_bytes(token, sys.byteorder)
        do(i)
        taken.append(i)
    return taken


def _child(
    queue: int,
    back: int,
    out: int,
    do: Callable[[int], None],
    done: Callable[[], Any],
    blocked: set[int],
) -> None:
    """The forked copy: do pieces, send them back, end. Never returns."""
    status = 1
    try:
        os.close(back)
        # the parent's handlers (a run's SIGTERM handler) are not the child's
        for signum in _SIGNALS:
            _signal.signal(signum, _signal.SIG_DFL)
        _signal.pthread_sigmask(_signal.SIG_SETMASK, blocked)
        taken = _take(queue, do)
        data = pickle.dumps((taken, done()), pickle.HIGHEST_PROTOCOL)
        with open(out, "wb", closefd=False) as f:
            f.write(len(data).to_bytes(8, "little"))
            f.write(data)
        status = 0
    except BaseException:  # anything: the parent does the pieces again
        pass
    finally:
        os._exit(status)


def _receive(back: int) -> tuple[list[int], Any] | None:
    """What the child sent, or None if it ended without sending it whole."""
    with open(back, "rb", closefd=False) as f:
        head = f.read(8)
        data = f.read()
    if len(head) != 8 or int.from_bytes(head, "little") != len(data):
        return None
    try:
        taken, made = pickle.loads(data)
    except Exception:
        return None
    return taken, made


def _kill(pid: int) -> None:
    try:
        os.kill(pid, 9)
    except OSError:
        pass


def _reap(pid: int) -> None:
    try:
        os.waitpid(pid, 0)
    except ChildProcessError:  # reaped already (SIGCHLD ignored)
        pass
