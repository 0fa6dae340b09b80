"""A run's log or metrics as they grow: ``exman tail [-f] ID``.

:class:`Tail` yields the end of the run's ``log.txt`` (or its metric
records as table rows) and, when following, what is added until the run
ends; then :attr:`Tail.status` is the status it ended with. The run may
move to ``fails/`` meanwhile: the file already open is read on, and the
run's record is looked for where the run is now.

After a run's record says it ended, its output may still be on its way to
the log (exman's copier writes what the process printed last after it
exits): the file is read on until it has been quiet for
:data:`QUIET_AFTER_END` seconds (at most :data:`DRAIN_LIMIT`).
"""

from __future__ import annotations

import codecs
import json
import math
import os
import stat
import time
from collections.abc import Iterator
from typing import Any

from ..record.metrics import METRICS_FILE
from ..record.run import LOG_FILE, Run
from ..record.store import Root, RunNotFound, StrPath
from .changes import as_root
from .selection import select

__all__ = ["DRAIN_LIMIT", "QUIET_AFTER_END", "Tail", "tail"]

QUIET_AFTER_END = 0.5
DRAIN_LIMIT = 5.0
#: the width of a metrics table column
WIDTH = 12
_CHUNK = 1 << 16


class Tail:
    """The end of run ``id``'s log (or metrics), and with ``follow`` what
    comes next until the run ends; iterate to get the text, piece by piece.

    :param lines: how many lines (or metric records) of the end to start with.
    :param follow: go on until the run ends (see :attr:`status`).
    :param metrics: the metric records of ``metrics.jsonl`` as table rows,
        instead of ``log.txt``.
    :param poll: seconds between looks at a file that does not grow.
    :raises RunNotFound: no run has this id.
    :raises ExmanError: ``id`` is not a run id.
    """

    def __init__(
        self,
        root: StrPath | Root,
        id: int | str,
        *,
        lines: int = 20,
        follow: bool = False,
        metrics: bool = False,
        poll: float = 0.2,
    ) -> None:
        self.root = as_root(root)
        sel = select(self.root, [id])
        if sel.missing:
            raise RunNotFound(f"run {sel.missing[0]} not found in {self.root.path}")
        self.id, self.path = next(iter(sel.found.items()))
        self.lines = lines
        self.follow = follow
        self.metrics = metrics
        self.poll = poll
        #: the run's status when the iteration ended
        self.status: str | None = None
        self._columns: list[str] = []
        self._partial = b""

    # -- where the run is ---------------------------------------------------------
    def _run(self) -> Run:
        if not self.path.is_dir():  # moved to fails/ (or deleted) meanwhile
            try:
                self.path = self.root.find(self.id)
            except RunNotFound:
                pass
        return Run(self.path)

    def _ended(self) -> bool:
        run = self._run()
        if not run.path.is_dir():
            self.status = "deleted"
            return True
        status = run.status
        if status == "unknown" and run.being_created():
            return False  # between its folder and its run.json
        self.status = status
        return status != "running"

    def _open(self) -> int | None:
        name = METRICS_FILE if self.metrics else LOG_FILE
        flags = os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOFOLLOW", 0)
        try:
            fd = os.open(self._run().path / name, flags)
        except OSError:  # none yet, or a link
            return None
        if not stat.S_ISREG(os.fstat(fd).st_mode):  # a FIFO would never end
            os.close(fd)
            return None
        return fd

    # -- the text -----------------------------------------------------------------
    def __iter__(self) -> Iterator[str]:
        fd = self._open()
        try:
            decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
            if fd is not None:
                start = self._start(fd)
                if start:
                    yield start
            if not self.follow:
                self.status = self._run().status
                return
            ended_at: float | None = None
            quiet_since = time.monotonic()
            while True:
                if fd is None:
                    fd = self._open()
                data = _read_all(fd) if fd is not None else b""
                now = time.monotonic()
                if data:
                    quiet_since = now
                    text = self._text(decoder, data)
                    if text:
                        yield text
                    continue
                if ended_at is None and self._ended():
                    ended_at = now
                if ended_at is not None and (
                    now - quiet_since >= QUIET_AFTER_END
                    or now - ended_at >= DRAIN_LIMIT
                ):
                    break
                time.sleep(self.poll if ended_at is None else self.poll / 4)
            rest = decoder.decode(b"", final=True)
            if rest and not self.metrics:
                yield rest
        finally:
            if fd is not None:
                os.close(fd)

    def _start(self, fd: int) -> str:
        """The last lines of the file, the file read to its end."""
        data = _read_all(fd)
        if self.metrics:
            lines = data.split(b"\n")
            self._partial = lines.pop()
            records = [r for r in map(_record, lines) if r is not None]
            return self._rows(records[-self.lines :] if self.lines > 0 else [])
        if self.lines <= 0:
            return ""
        text = data.decode("utf-8", errors="replace")
        kept = text.splitlines(keepends=True)[-self.lines :]
        return "".join(kept)

    def _text(self, decoder: codecs.IncrementalDecoder, data: bytes) -> str:
        if not self.metrics:
            return decoder.decode(data)
        lines = (self._partial + data).split(b"\n")
        self._partial = lines.pop()  # a line being written: wait for its end
        return self._rows([r for r in map(_record, lines) if r is not None])

    def _rows(self, records: list[dict[str, Any]]) -> str:
        """Metric records as table rows; a header whenever a metric is new."""
        out = []
        for record in records:
            new = [k for k in record if k not in ("step", "time")]
            new = [k for k in new if k not in self._columns]
            if new or not self._columns:
                self._columns += new
                out.append(_row(["step", *self._columns]))
            step = record.get("step")
            cells = ["" if step is None else _cell(step)]
            cells += [_cell(record[k]) if k in record else "" for k in self._columns]
            out.append(_row(cells))
        return "".join(out)


def tail(
    root: StrPath | Root,
    id: int | str,
    *,
    lines: int = 20,
    follow: bool = False,
    metrics: bool = False,
) -> Tail:
    """The end of run ``id``'s log (or metrics) and, with ``follow``, what it
    adds until it ends: a :class:`Tail` to iterate over.

    :raises RunNotFound: no run has this id.
    """
    return Tail(root, id, lines=lines, follow=follow, metrics=metrics)


def _read_all(fd: int) -> bytes:
    chunks: list[bytes] = []
    while True:
        data = os.read(fd, _CHUNK)
        if not data:
            return b"".join(chunks)
        chunks.append(data)


def _record(line: bytes) -> dict[str, Any] | None:
    try:
        value = json.loads(line)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def _cell(value: Any) -> str:
    if isinstance(value, bool) or value is None:
        return json.dumps(value)
    if isinstance(value, float):
        return "nan" if math.isnan(value) else f"{value:.6g}"
    if isinstance(value, (int, str)):
        return str(value)
    return json.dumps(value, ensure_ascii=False, default=str)


def _row(cells: list[str]) -> str:
    text = "  ".join(c.rjust(WIDTH if i else 6) for i, c in enumerate(cells))
    return text + "\n"
