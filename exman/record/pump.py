"""The process that copies a run's output to its log and on to the terminal.

Started by :class:`exman.record.capture.FdCapture` as
``python -I -S pump.py LOG CTL ACK IN OUT [IN OUT]`` (descriptor numbers):
it copies each ``IN`` (the pipe the run's fds 1 and 2 point at) to ``LOG``
and to its ``OUT`` (where they pointed before) until every ``IN`` is
closed. A byte on ``CTL`` asks it to copy what is in the pipes now and say
``k`` on ``ACK``. A process of its own, not a thread, so that what the run
printed last still arrives when the run dies of a crash, SIGKILL or
``os._exit``. It imports nothing of exman: it starts in milliseconds.
"""

from __future__ import annotations

import os
import select
import signal
import sys

#: how long a pipe that looks empty is watched before the run is told so
SETTLE_SECONDS = 0.005


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def pump(log: int, ctl: int, ack: int, pairs: dict[int, int]) -> None:
    """Copy each input of ``pairs`` to ``log`` and to its output until all
    inputs are closed; answer each request on ``ctl`` once the inputs are
    empty."""
    terminal_ok = dict.fromkeys(pairs, True)
    inputs = set(pairs)

    def copy(fd: int) -> None:
        try:
            data = os.read(fd, 65536)
        except OSError:  # EIO: a pseudo-terminal's last writer closed
            data = b""
        if not data:
            inputs.discard(fd)
            return
        try:
            _write_all(log, data)
        except OSError:  # a full disk must not stop the output reaching the user
            pass
        if terminal_ok[fd]:
            try:
                _write_all(pairs[fd], data)
            except OSError:  # the reader went away (``| head``): keep the log
                terminal_ok[fd] = False

    listening = True
    while inputs:
        ready, _, _ = select.select([*inputs, ctl] if listening else [*inputs], [], [])
        for fd in ready:
            if fd != ctl:
                copy(fd)
            elif not os.read(ctl, 64):  # the run is gone: copy until the end
                listening = False
            else:
                # the run wrote all it had before asking: copy what is there
                while inputs:
                    # a pseudo-terminal hands on what was written a moment later
                    more = select.select([*inputs], [], [], SETTLE_SECONDS)[0]
                    if not more:
                        break
                    for other in more:
                        copy(other)
                _say_done(ack)
    _say_done(ack)


def _say_done(ack: int) -> None:
    try:
        os.write(ack, b"k")
    except OSError:
        pass


def main(argv: list[str]) -> None:
    # Ctrl-C, a hang-up or a scheduler's SIGTERM to every process stop the
    # run; this process ends when the run's output ends, after copying it
    for name in ("SIGINT", "SIGTERM", "SIGHUP", "SIGPIPE"):
        signal.signal(getattr(signal, name), signal.SIG_IGN)
    log, ctl, ack, *rest = (int(arg) for arg in argv)
    pump(log, ctl, ack, dict(zip(rest[0::2], rest[1::2])))


if __name__ == "__main__":
    main(sys.argv[1:])
