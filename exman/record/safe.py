"""The life of a run inside its process.

* :class:`SafeExperiment` — ``with args.safe_experiment:`` copies stdout and
  stderr to ``log.txt``; an exception moves the run to ``fails/`` with its
  traceback; Ctrl-C leaves it in place with ``traceback.txt``.
* :func:`track` — every run is tracked from ``parse_args()`` on, with or
  without ``safe_experiment``: an uncaught exception, a ``sys.exit(n)``, a
  SIGTERM or a normal exit end up in the run's ``run.json``.
"""

from __future__ import annotations

import atexit
import os
import pathlib
import signal
import sys
import threading
import traceback
from collections.abc import Sequence
from types import TracebackType
from typing import IO, Any, Callable

from .files import group_bits, share
from .run import FINAL_STATUSES, LOG_FILE, TRACEBACK_FILE, Run
from .store import ExmanError, Root, atomic_write

__all__ = ["SafeExperiment", "Tee", "track"]


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


# -- tracking runs in this process -------------------------------------------
_lock = threading.Lock()
_active: dict[pathlib.Path, Run] = {}
_installed = False
_exit_code: list[int] = []
_owner = [os.getpid()]  # the process whose runs these are (not a forked child)
_original_exit: Callable[..., Any] = sys.exit
_original_excepthook = sys.excepthook


def _exit_status(code: object) -> tuple[str, int]:
    if code is None:
        return "completed", 0
    if isinstance(code, int):
        return ("completed" if code == 0 else "failed"), code
    return "failed", 1  # sys.exit("message") prints it and exits with 1


def _finish_active(status: str, exit_code: int, reason: str | None) -> None:
    if os.getpid() != _owner[0]:
        return  # a forked child ending: the runs belong to its parent
    with _lock:
        runs = list(_active.values())
        _active.clear()
    for run in runs:
        try:
            if run.record().get("status") not in FINAL_STATUSES:
                run.finish(status, exit_code=exit_code, reason=reason)
        except OSError:  # the run folder is gone (deleted, a test's tmp dir)
            pass


def _at_exit() -> None:
    status, code = _exit_status(_exit_code[-1] if _exit_code else 0)
    _finish_active(status, code, None if code == 0 else f"exit code {code}")


def _recording_exit(code: object = None) -> None:
    """``sys.exit`` that remembers the code for the runs of this process."""
    _exit_code.append(_exit_status(code)[1])
    _original_exit(code)


def _excepthook(
    etype: type[BaseException], value: BaseException, tb: TracebackType | None
) -> None:
    interrupted = issubclass(etype, KeyboardInterrupt)
    text = _format(etype, value, tb)
    with _lock:
        runs = list(_active.values())
    for run in runs:
        try:
            atomic_write(run.path / TRACEBACK_FILE, text)
        except OSError:
            pass
    _finish_active(
        "interrupted" if interrupted else "failed",
        130 if interrupted else 1,
        _last_line(text),
    )
    _original_excepthook(etype, value, tb)


def _on_sigterm(signum: int, frame: object) -> None:
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    metrics = sys.modules.get("exman.record.metrics")
    if metrics is not None:
        metrics.flush_all()
    _finish_active("interrupted", 128 + signum, "SIGTERM")
    # die of the signal as if we had never handled it: the parent sees -15
    signal.signal(signum, signal.SIG_DFL)
    os.kill(os.getpid(), signum)


def track(run: Run) -> None:
    """Follow ``run`` until this process ends and record how it ended."""
    global _installed
    with _lock:
        _active[run.path] = run
        _owner[0] = os.getpid()
        if _installed:
            return
        _installed = True
    atexit.register(_at_exit)
    sys.excepthook = _excepthook
    sys.exit = _recording_exit  # type: ignore[assignment]
    # only where nobody (a framework, the user) has set a handler already
    if (
        threading.current_thread() is threading.main_thread()
        and signal.getsignal(signal.SIGTERM) == signal.SIG_DFL
    ):
        signal.signal(signal.SIGTERM, _on_sigterm)


def untrack(run: Run) -> None:
    with _lock:
        _active.pop(run.path, None)


def moved(run: Run, new: Run) -> None:
    with _lock:
        if _active.pop(run.path, None) is not None:
            _active[new.path] = new


# traceback is imported with this module on purpose: importing it while an
# uncaught Ctrl-C is being reported makes Python exit with 1, not die of SIGINT
def _format(
    etype: type[BaseException], value: BaseException, tb: TracebackType | None
) -> str:
    return "".join(traceback.format_exception(etype, value, tb))


def _why(error: BaseException) -> str:
    if isinstance(error, OSError) and error.strerror:
        return f"{error.strerror}" + (f" ({error.filename})" if error.filename else "")
    return str(error)


def _last_line(text: str) -> str | None:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1].strip() if lines else None


# -- the context manager -------------------------------------------------------
class SafeExperiment:
    """``with args.safe_experiment:`` around the body of an experiment.

    * stdout and stderr are copied to ``log.txt`` in the run folder;
    * an exception (or ``sys.exit`` with a non-zero code) records the run as
      failed, writes ``traceback.txt``, moves the run to ``fails/`` (its
      index link is removed, its marks follow it) and lets the exception go
      on;
    * ``KeyboardInterrupt`` records the run as interrupted, writes
      ``traceback.txt``, and leaves it where it is (with ``prompt=True`` on a
      terminal it asks whether to move it to ``fails/`` instead);
    * leaving the block normally records the run as completed.

    Call it to change the options: ``with args.safe_experiment(prompt=True):``.
    """

    def __init__(
        self,
        root: Root,
        run: Run,
        links: Sequence[pathlib.Path] = (),
        *,
        prompt: bool = False,
        default: bool = True,
    ) -> None:
        self.root = root
        self.run = run
        self.links = list(links)
        self.prompt = prompt
        self.default = default
        self._saved: tuple[Any, Any] | None = None
        self._log: IO[str] | None = None

    def __call__(
        self, *, prompt: bool | None = None, default: bool | None = None
    ) -> SafeExperiment:
        if prompt is not None:
            self.prompt = prompt
        if default is not None:
            self.default = default
        return self

    def __enter__(self) -> SafeExperiment:
        self._log = open(self.run.path / LOG_FILE, "a", encoding="utf-8", buffering=1)
        share(self._log.fileno(), group_bits(self.run.path))
        self._saved = (sys.stdout, sys.stderr)
        sys.stdout = Tee(sys.stdout, self._log)
        sys.stderr = Tee(sys.stderr, self._log)
        return self

    def _restore(self) -> None:
        if self._saved is not None:
            sys.stdout, sys.stderr = self._saved
            self._saved = None
        if self._log is not None:
            log, self._log = self._log, None
            try:
                log.close()
            except OSError:  # a full disk: the script's own outcome matters more
                pass

    def __exit__(
        self,
        etype: type[BaseException] | None,
        value: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._restore()
        exit_code = value.code if isinstance(value, SystemExit) else None
        if value is None or (
            isinstance(value, SystemExit) and _exit_status(exit_code)[1] == 0
        ):
            self.run.finish("completed", exit_code=0)
            untrack(self.run)
            return
        text = _format(type(value), value, tb)
        reason = _last_line(text)
        if isinstance(value, KeyboardInterrupt):
            if not (self.prompt and self._ask("\nmove to fails? ")):
                atomic_write(self.run.path / TRACEBACK_FILE, text)
                self.run.finish("interrupted", exit_code=130, reason=reason)
                untrack(self.run)
                return
            status, code = "interrupted", 130
        elif isinstance(value, SystemExit):
            status, code = "failed", _exit_status(exit_code)[1]
            reason = (
                f"exit code {code}" if isinstance(exit_code, int) else str(exit_code)
            )
        else:
            status, code = "failed", 1
        self.move_to_fails(text, status, code, reason)

    def move_to_fails(
        self, text: str, status: str, code: int, reason: str | None
    ) -> None:
        """Record the failure and move the run folder to ``fails/``.

        Each step is tried even when one before failed, and none raises:
        the script's exception, on its way out, must not be replaced by
        exman's own trouble (a full disk, a read-only root), which is
        printed on stderr beside it.
        """
        problems: list[str] = []
        try:
            atomic_write(self.run.path / TRACEBACK_FILE, text)
        except OSError as e:
            problems.append(f"could not write {TRACEBACK_FILE}: {_why(e)}")
        try:
            self.run.finish(status, exit_code=code, reason=reason)
        except OSError as e:
            problems.append(f"could not record the failure in run.json: {_why(e)}")
        untrack(self.run)
        try:
            target = self.root.move_to_fails(self.run.path)
        except (OSError, ExmanError) as e:
            problems.append(f"could not move the run to fails/: {_why(e)}")
        else:
            metrics = sys.modules.get("exman.record.metrics")
            if metrics is not None:
                metrics.moved(self.run.path, target)
            self.run = Run(target)
        for problem in problems:
            print(f"exman: run {self.run.path}: {problem}", file=sys.stderr)

    def _ask(self, question: str) -> bool:
        """Ask yes/no on a terminal, 10 s at most; the default otherwise."""
        from .config import str2bool

        stream = sys.stdin
        if stream is None or not stream.isatty():
            return self.default
        import select

        sys.stderr.write(f"{question}({'yes' if self.default else 'no'}): ")
        sys.stderr.flush()
        try:
            ready, _, _ = select.select([stream], [], [], 10)
        except (OSError, ValueError, KeyboardInterrupt):
            return self.default
        if not ready:
            return self.default
        return str2bool(stream.readline().strip(), default=self.default)
