"""The life of a run inside its process.

* :class:`SafeExperiment` — ``with args.safe_experiment:`` copies what the
  process prints to ``log.txt`` (:mod:`exman.record.capture`); an exception
  moves the run to ``fails/`` with its traceback; Ctrl-C leaves it in place
  with ``traceback.txt`` and lets the script go on after the block.
* :func:`track` — every run is tracked from ``parse_args()`` on, with or
  without ``safe_experiment``: an uncaught exception, a ``sys.exit(n)``, a
  SIGTERM or a normal exit end up in the run's ``run.json``.
"""

from __future__ import annotations

import _thread
import atexit
import os
import pathlib
import sys
from collections.abc import Sequence
from types import TracebackType

from . import current, environment
from .run import FINAL_STATUSES, LOG_FILE, TRACEBACK_FILE, Run
from .store import ExmanError, Root, atomic_write

# not typing's: importing typing would slow every run's start
TYPE_CHECKING = False
if TYPE_CHECKING:
    import signal
    from typing import Any, Callable

    from .capture import Capture
else:
    # the C module that ``signal`` wraps: importing ``signal`` itself makes
    # three enum classes, 1.5 % of the instructions of the floor of a run's
    # start, for the two calls below
    try:
        import _signal as signal
    except ImportError:  # an interpreter without it
        import signal

__all__ = ["SafeExperiment", "track"]


# -- tracking runs in this process -------------------------------------------
_lock = _thread.allocate_lock()
_active: dict[pathlib.Path, Run] = {}
_installed = False
_exit_code: list[int] = []
#: the SIGTERM being recorded (a second one waits for it)
_terminating: list[int] = []
_owner = [os.getpid()]  # the process whose runs these are (not a forked child)
_original_exit: Callable[..., Any] = sys.exit
_original_excepthook = sys.excepthook


def _exit_status(code: object) -> tuple[str, int]:
    if code is None:
        return "completed", 0
    if isinstance(code, int):
        return ("completed" if code == 0 else "failed"), code
    return "failed", 1  # sys.exit("message") prints it and exits with 1


def _env_at_end(*, lookup: bool = True) -> dict[str, Any] | None:
    """What the process imported, for the runs' records; None on trouble:
    the run's end is recorded all the same."""
    try:
        return environment.at_end(lookup=lookup)
    except Exception:
        return None


def _finish_active(
    status: str, exit_code: int, reason: str | None, *, lookup: bool = True
) -> None:
    if os.getpid() != _owner[0]:
        return  # a forked child ending: the runs belong to its parent
    with _lock:
        runs = list(_active.values())
        _active.clear()
    env = _env_at_end(lookup=lookup) if runs else None
    for run in runs:
        try:
            record = run.last_record()  # finish() would read it again
            if record.get("status") not in FINAL_STATUSES:
                run.finish(
                    status, exit_code=exit_code, reason=reason, record=record, env=env
                )
        except OSError:  # the run folder is gone (deleted, a test's tmp dir)
            pass


def _stop_captures() -> None:
    # capture is imported by the first safe_experiment block, not by every
    # run's start: without it there is nothing to stop
    capture = sys.modules.get(f"{__package__}.capture")
    if capture is not None:
        capture.stop_all()


def _at_exit() -> None:
    if os.getpid() == _owner[0]:
        _stop_captures()  # a block never left (a generator never closed)
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
    text = _format_in_hook(etype, value, tb)
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
    # the first SIGTERM is the one recorded: a second one (SLURM signals
    # every process of a job, and the job's runner passes it on as well)
    # runs this handler again inside this one, which would find the runs
    # already taken and end the process before they are written
    if _terminating:
        return
    _terminating.append(signum)
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    _stop_captures()  # what is still in the log's pipe reaches the log
    metrics = sys.modules.get("exman.record.metrics")
    if metrics is not None:
        metrics.flush_all()
    # no look-up of packages: the process was asked to end now
    _finish_active("interrupted", 128 + signum, "SIGTERM", lookup=False)
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
    if signal.getsignal(signal.SIGTERM) == signal.SIG_DFL:
        try:
            signal.signal(signal.SIGTERM, _on_sigterm)
        except ValueError:  # not the main thread: only that one may
            pass


def untrack(run: Run) -> None:
    with _lock:
        _active.pop(run.path, None)


def moved(run: Run, new: Run) -> None:
    with _lock:
        if _active.pop(run.path, None) is not None:
            _active[new.path] = new


def _format(
    etype: type[BaseException], value: BaseException, tb: TracebackType | None
) -> str:
    """The text of a traceback, as Python prints it.

    The ``traceback`` module (with ``linecache`` and ``tokenize``, 2 ms of
    every run's start) is imported only by a failure. Not inside the
    excepthook: importing it while an uncaught Ctrl-C is being reported
    makes Python exit with 1 instead of dying of SIGINT. There, unless the
    script imported it already, the interpreter's own printer writes the
    text (:func:`sys.__excepthook__`, with ``sys.stderr`` pointed at a
    buffer meanwhile).
    """
    import traceback

    return "".join(traceback.format_exception(etype, value, tb))


def _format_in_hook(
    etype: type[BaseException], value: BaseException, tb: TracebackType | None
) -> str:
    if "traceback" in sys.modules:
        return _format(etype, value, tb)
    import io

    buffer, stderr = io.StringIO(), sys.stderr
    sys.stderr = buffer
    try:
        sys.__excepthook__(etype, value, tb)
    finally:
        sys.stderr = stderr
    return buffer.getvalue()


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

    * what the process prints is copied to ``log.txt`` in the run folder
      (see :mod:`exman.record.capture`): stdout and stderr, subprocesses,
      C extensions, ``logging`` handlers, and the traceback of a failure;
    * an exception (or ``sys.exit`` with a non-zero code) prints its
      traceback to stdout, records the run as failed, writes
      ``traceback.txt``, moves the run to ``fails/`` (its index link is
      removed, its marks follow it) and lets the exception go on;
    * ``KeyboardInterrupt`` (Ctrl-C) prints its traceback, records the run
      as interrupted, writes ``traceback.txt``, leaves the run where it is
      and is *swallowed*, as in exman 0.1.9: the code after the block runs
      (to evaluate and save what was trained so far); the run stays
      ``interrupted`` however the process ends. ``reraise=True`` lets it go
      on instead. With ``prompt=True`` on a terminal it asks whether to move
      the run to ``fails/``; then it goes on as a failure does;
    * leaving the block normally records the run as completed.

    In a launch of several processes (torchrun, srun), rank 0 owns the run
    as above; another rank copies its output to ``log.rank<N>.txt``, writes
    a failure's traceback to ``traceback.rank<N>.txt`` and leaves the run's
    status and place to rank 0.

    Call it to change the options: ``with args.safe_experiment(reraise=True):``.
    """

    def __init__(
        self,
        root: Root,
        run: Run,
        links: Sequence[pathlib.Path] = (),
        *,
        prompt: bool = False,
        default: bool = True,
        reraise: bool = False,
        rank: int = 0,
    ) -> None:
        self.root = root
        self.run = run
        self.links = list(links)
        self.prompt = prompt
        self.default = default
        self.reraise = reraise
        self.rank = rank
        self._capture: Capture | None = None

    def __call__(
        self,
        *,
        prompt: bool | None = None,
        default: bool | None = None,
        reraise: bool | None = None,
    ) -> SafeExperiment:
        """Change the options: ask on Ctrl-C (``prompt``, its ``default``
        answer), or let Ctrl-C go on after it is recorded (``reraise``)."""
        if prompt is not None:
            self.prompt = prompt
        if default is not None:
            self.default = default
        if reraise is not None:
            self.reraise = reraise
        return self

    def _file(self, name: str) -> pathlib.Path:
        """A file of this rank: ``log.txt`` on rank 0, ``log.rank1.txt``…"""
        if self.rank == 0:
            return self.run.path / name
        stem, dot, ext = name.rpartition(".")
        return self.run.path / f"{stem}.rank{self.rank}{dot}{ext}"

    def __enter__(self) -> SafeExperiment:
        if self.rank != 0 and not self.run.path.is_dir():
            moved = self.root.fails / self.run.name
            if moved.is_dir():  # rank 0 failed already and moved the run
                self.run = Run(moved)
        from . import capture

        self._capture = capture.start(self._file(LOG_FILE))
        return self

    def _stop_capture(self) -> None:
        if self._capture is not None:
            self._capture.stop()
            self._capture = None

    def __exit__(
        self,
        etype: type[BaseException] | None,
        value: BaseException | None,
        tb: TracebackType | None,
    ) -> bool:
        exit_code = value.code if isinstance(value, SystemExit) else None
        if value is None or (
            isinstance(value, SystemExit) and _exit_status(exit_code)[1] == 0
        ):
            self._stop_capture()
            if self.rank == 0:
                self.run.finish("completed", exit_code=0, env=_env_at_end())
                untrack(self.run)
            return False
        text = _format(type(value), value, tb)
        if not isinstance(value, SystemExit):
            # to stdout, as exman 0.1.9 did: so the log has it too
            try:
                sys.stdout.write(text)
                sys.stdout.flush()
            except (OSError, ValueError, AttributeError):
                pass
        self._stop_capture()
        interrupted = isinstance(value, KeyboardInterrupt)
        if self.rank != 0:
            if not interrupted:
                _write_quietly(self._file(TRACEBACK_FILE), text)
            return interrupted and not self.reraise
        reason = _last_line(text)
        if interrupted:
            if not (self.prompt and self._ask("\nmove to fails? ")):
                atomic_write(self.run.path / TRACEBACK_FILE, text)
                self.run.finish(
                    "interrupted", exit_code=130, reason=reason, env=_env_at_end()
                )
                untrack(self.run)
                return not self.reraise
            status, code = "interrupted", 130
        elif isinstance(value, SystemExit):
            status, code = "failed", _exit_status(exit_code)[1]
            reason = (
                f"exit code {code}" if isinstance(exit_code, int) else str(exit_code)
            )
        else:
            status, code = "failed", 1
        self.move_to_fails(text, status, code, reason)
        return False

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
            self.run.finish(status, exit_code=code, reason=reason, env=_env_at_end())
        except OSError as e:
            problems.append(f"could not record the failure in run.json: {_why(e)}")
        untrack(self.run)
        try:
            target = self.root.move_to_fails(self.run.path)
        except (OSError, ExmanError) as e:
            problems.append(f"could not move the run to fails/: {_why(e)}")
        else:
            current.moved(self.run.path, target)
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


def _write_quietly(path: pathlib.Path, text: str) -> None:
    """Write a file of another rank into a run folder rank 0 may have moved."""
    try:
        atomic_write(path, text)
    except OSError:
        pass
