"""Showing a sweep as it runs: a live display on a terminal, lines elsewhere.

:class:`LiveProgress` (rich) redraws counts, elapsed time, ETA, the running
tasks and the last failures in place. :class:`PlainProgress` writes one line
per finished task, for CI logs and files. :class:`Progress` shows nothing.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections import deque
from collections.abc import Sequence
from typing import IO, Any

from .plan import TaskState
from .spec import Task
from .summary import SweepSummary, TaskResult

__all__ = ["LiveProgress", "PlainProgress", "Progress", "make_progress"]

#: failures kept on screen
SHOWN_FAILURES = 5


def _clock(seconds: float) -> str:
    seconds = round(seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def _params(task: Task, width: int = 60) -> str:
    text = " ".join(f"{k}={v}" for k, v in task.params.items())
    return text if len(text) <= width else text[: width - 1] + "…"


class Progress:
    """Receives the events of a sweep; this base class shows nothing."""

    def __init__(self) -> None:
        self.name = ""
        self.planned = 0
        self.jobs = 1
        self.skipped: dict[str, int] = {}
        self.done = 0
        self.failed = 0
        self.interrupted = 0
        self.pruned = 0
        self.running: dict[int, tuple[Task, float]] = {}
        self.failures: deque[TaskResult] = deque(maxlen=SHOWN_FAILURES)
        self.start = time.monotonic()
        self._lock = threading.Lock()

    # -- events --------------------------------------------------------------------
    def begin(
        self,
        *,
        name: str,
        total: int,
        planned: Sequence[TaskState],
        skipped: dict[str, int],
        jobs: int,
    ) -> None:
        self.name, self.total, self.planned, self.jobs = name, total, len(planned), jobs
        self.skipped = dict(skipped)
        self.start = time.monotonic()

    def started(self, task: Task, gpu: str | None) -> None:
        with self._lock:
            self.running[task.index] = (task, time.monotonic())

    def finished(self, result: TaskResult) -> None:
        with self._lock:
            self.running.pop(result.task.index, None)
            if result.status == "completed":
                self.done += 1
            elif result.status == "failed":
                self.failed += 1
                self.failures.append(result)
            elif result.status == "pruned":
                self.pruned += 1
            else:
                self.interrupted += 1

    def refused(self, task: Task, why: str) -> None:
        """A planned task was not started: another launcher has it (``why``)."""
        with self._lock:
            self.planned -= 1
            self.skipped[why] = self.skipped.get(why, 0) + 1

    def note(self, text: str) -> None:
        pass

    def end(self, summary: SweepSummary) -> None:
        pass

    # -- figures -------------------------------------------------------------------
    @property
    def finished_count(self) -> int:
        return self.done + self.failed + self.interrupted + self.pruned

    @property
    def pending(self) -> int:
        return max(0, self.planned - self.finished_count - len(self.running))

    def elapsed(self) -> float:
        return time.monotonic() - self.start

    def eta(self) -> float | None:
        """Seconds left, from the pace so far; None before the first end."""
        ended = self.finished_count
        if not ended:
            return None
        left = self.planned - ended
        return self.elapsed() / ended * left


class PlainProgress(Progress):
    """One line per event, for logs: no cursor movement, no colours."""

    def __init__(self, stream: IO[str] | None = None) -> None:
        super().__init__()
        self.stream = stream if stream is not None else sys.stdout
        #: the reader closed the stream (``exman sweep | head``)
        self.closed = False

    def _print(self, text: str) -> None:
        if self.closed:
            return
        try:
            print(text, file=self.stream, flush=True)
        except BrokenPipeError:
            # the reader has read what it wanted; the tasks still matter
            self.closed = True
            _discard(self.stream)

    def begin(self, **kwargs: Any) -> None:
        super().begin(**kwargs)
        if not self.planned:
            return  # the summary says it all
        skipped = ", ".join(f"{n} {why}" for why, n in self.skipped.items() if n)
        self._print(
            f"sweep {self.name}: {self.total} tasks, {self.planned} to run "
            f"with {self.jobs} job{'s' if self.jobs != 1 else ''}"
            + (f" (skipped: {skipped})" if skipped else "")
        )

    def finished(self, result: TaskResult) -> None:
        super().finished(result)
        run = f" (run {result.run.id})" if result.run is not None else ""
        line = (
            f"[{self.finished_count}/{self.planned}] task {result.task.index} "
            f"{result.status} in {result.duration:.1f} s{run}"
        )
        if result.status != "completed":
            line += f": {result.reason or 'exit code ' + str(result.exit_code)}"
            if result.run is None and result.log is not None:
                line += f" (log: {result.log})"
        eta = self.eta()
        if eta is not None and self.finished_count < self.planned:
            line += f"  eta {_clock(eta)}"
        self._print(line)

    def refused(self, task: Task, why: str) -> None:
        super().refused(task, why)
        self._print(f"task {task.index} skipped: {why} by another launcher")

    def note(self, text: str) -> None:
        self._print(text)

    def end(self, summary: SweepSummary) -> None:
        self._print(summary.text())


class LiveProgress(Progress):
    """A rich display redrawn in place, for a terminal."""

    def __init__(self) -> None:
        super().__init__()
        from rich.console import Console

        self.console = Console()
        self._live: Any = None

    def begin(self, **kwargs: Any) -> None:
        super().begin(**kwargs)
        from rich.live import Live

        self._live = Live(
            get_renderable=self._render,
            console=self.console,
            refresh_per_second=4,
            transient=False,
        )
        self._live.start()

    def note(self, text: str) -> None:
        self.console.print(text, markup=False, highlight=False)

    def end(self, summary: SweepSummary) -> None:
        if self._live is not None:
            self._live.stop()
            self._live = None
        self.console.print(summary.text(), markup=False, highlight=False)

    def _render(self) -> Any:
        from rich.console import Group
        from rich.progress_bar import ProgressBar
        from rich.table import Table
        from rich.text import Text

        with self._lock:
            running = sorted(self.running.values(), key=lambda r: r[0].index)
            failures = list(self.failures)
        now = time.monotonic()
        counts = Text()
        counts.append(f"sweep {self.name}  ", style="bold")
        counts.append(f"{self.done} done", style="green")
        counts.append("  ")
        if self.pruned:
            counts.append(f"{self.pruned} pruned  ", style="magenta")
        counts.append(f"{self.failed} failed", style="red" if self.failed else "")
        counts.append(f"  {len(running)} running  {self.pending} pending")
        skipped = sum(self.skipped.values())
        if skipped:
            counts.append(f"  {skipped} skipped", style="dim")
        eta = self.eta()
        clock = Text(
            f"elapsed {_clock(self.elapsed())}"
            + (f"  eta {_clock(eta)}" if eta is not None else ""),
            style="dim",
        )
        bar = ProgressBar(
            total=max(self.planned, 1), completed=self.finished_count, width=40
        )
        top = Table.grid(padding=(0, 1))
        top.add_row(bar, Text(f"{self.finished_count}/{self.planned}"), clock)
        parts: list[Any] = [counts, top]
        if running:
            table = Table.grid(padding=(0, 2))
            for task, since in running:
                table.add_row(
                    Text(f"task {task.index}", style="cyan"),
                    Text(_clock(now - since), style="dim"),
                    Text(_params(task)),
                )
            parts.append(table)
        for result in failures:
            parts.append(Text("failed " + result.describe(), style="red"))
        return Group(*parts)


def _discard(stream: IO[str]) -> None:
    """Send what is still buffered for ``stream``, and all it gets later, nowhere."""
    try:
        fd = stream.fileno()
    except (AttributeError, OSError, ValueError):
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, fd)
    finally:
        os.close(devnull)


def make_progress(show: bool, stream: IO[str] | None = None) -> Progress:
    """A live display on a terminal, plain lines otherwise; nothing if not ``show``."""
    if not show:
        return Progress()
    out = stream if stream is not None else sys.stdout
    if out is sys.stdout and out.isatty():
        return LiveProgress()
    return PlainProgress(out)
