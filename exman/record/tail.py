"""``metrics.jsonl`` read back: its lines, and the last value of each metric
from the end of the file.

The last value of each metric is taken from the last :data:`TAIL_BYTES` of
the file alone, so that it costs the same for a run that logged ten lines
or ten million: a metric whose last record is further from the end than
that is not found there (``Index.metrics()`` reads every line). The index
reads it this way (:mod:`exman.look.outcome`), and so does the end of a
run, for the copy that its run.json keeps (:mod:`exman.record.snapshot`):
one function, so that the copy and the file give the same values.
"""

from __future__ import annotations

import json
import os

# not typing's: importing typing would slow every run's start
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

__all__ = ["RECORD_KEYS", "TAIL_BYTES", "last_values", "parse_lines", "tail_values"]

#: how much of the end of metrics.jsonl gives the last value of each metric
TAIL_BYTES = 8192
#: the fields of every record that are no metric
RECORD_KEYS = ("step", "time")


def tail_values(fd: int, size: int) -> dict[str, Any]:
    """The last value of each metric of the open metrics file ``fd`` of
    ``size`` bytes.

    :raises OSError: it cannot be read (not a regular file, gone).
    """
    start = max(0, size - TAIL_BYTES)
    return last_values(os.pread(fd, size - start, start), whole=start == 0)


def last_values(data: bytes, *, whole: bool = True) -> dict[str, Any]:
    """The last value of each metric in the lines of ``data``.

    :param whole: ``data`` starts at the start of the file; otherwise its
        first line is a part of one and is skipped.
    """
    if not whole:
        data = data[data.find(b"\n") + 1 :] if b"\n" in data else b""
    values: dict[str, Any] = {}
    for record in parse_lines(data)[0]:
        values.update(record)
    for key in RECORD_KEYS:
        values.pop(key, None)
    return values


def parse_lines(data: bytes) -> tuple[list[dict[str, Any]], list[int]]:
    """The records of the lines of ``data`` and the numbers (from 0) of the
    lines that are no JSON object.

    What follows the last newline is an incomplete record when a process
    stopped in the middle of a write: it is used when it parses and left
    out silently when it does not.
    """
    end = data.rfind(b"\n") + 1
    data, last = data[:end], data[end:]
    body = data.rstrip(b"\n")
    try:
        # one call of the C parser for the whole text: the common case
        records = json.loads(b"[" + body.replace(b"\n", b",") + b"]")
        bad: list[int] = []
        if not all(type(r) is dict for r in records):
            raise ValueError("a line is not a JSON object")
    except ValueError:  # an empty line, a damaged one: one line at a time
        records = []
        bad = []
        for number, line in enumerate(data.split(b"\n")[:-1]):
            if not line.strip():
                continue
            if (record := _record(line)) is not None:
                records.append(record)
            else:
                bad.append(number)
    if last.strip() and (record := _record(last)) is not None:
        records.append(record)
    return records, bad


def _record(line: bytes) -> dict[str, Any] | None:
    """The JSON object of one line, or None."""
    try:
        record = json.loads(line)
    except ValueError:
        return None
    return record if type(record) is dict else None
