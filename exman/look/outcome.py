"""What came out of a run, as the Index reads it back.

A run's ``results.json`` (a JSON object of final values, written by
:func:`exman.result`) and its ``metrics.jsonl`` (one JSON object per line,
appended by :func:`exman.log`): see :mod:`exman.record.metrics` for the writing
side. Nothing here imports pandas.

The outcome of a run, one value per name, is its results, and for each
metric that has no result of the same name, the last value logged. Only the
end of ``metrics.jsonl`` is read for that (:data:`TAIL_BYTES`), so a load
costs the same for a run that logged ten lines or ten million: a metric
whose last record is further from the end than that is not found there
(``Index.metrics()`` reads every line).
"""

from __future__ import annotations

import json
import os

from ..record import snapshot
from ..record.run import METRICS_FILE, RESULTS_FILE

# not typing's: importing typing would slow every command's start
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

__all__ = [
    "MAX_FILE",
    "TAIL_BYTES",
    "DamagedMetricsWarning",
    "FileTooLarge",
    "Records",
    "last_values",
    "parse_json",
    "read_file",
    "read_outcome",
    "read_records",
]

#: how much of the end of metrics.jsonl gives the last value of each metric
TAIL_BYTES = 8192
#: a file of a run that a load reads whole (run.json, params.yaml,
#: results.json...) larger than this is refused, not read
MAX_FILE = 16 << 20
#: the fields of every record that are no metric
RECORD_KEYS = ("step", "time")
_BLOCK = 1 << 16
_decode = json.JSONDecoder().raw_decode
_JSON_SPACE = " \t\n\r"
# O_NONBLOCK: a FIFO planted in a run folder must not hang the load
_OPEN_FLAGS = os.O_RDONLY | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NONBLOCK", 0)


class DamagedMetricsWarning(UserWarning):
    """Lines of a run's metrics.jsonl that are not JSON objects were skipped."""


class FileTooLarge(OSError):
    """A file of a run is larger than :data:`MAX_FILE`: not read."""


def read_file(path: str, dir_fd: int | None, flags: int = 0) -> bytes:
    """The bytes of the file ``path`` of a run (relative to ``dir_fd`` when
    given; ``flags`` added to those of the open).

    :raises FileTooLarge: it is larger than :data:`MAX_FILE`.
    :raises OSError: it cannot be read (a FIFO raises at once).
    """
    fd = os.open(path, _OPEN_FLAGS | flags, dir_fd=dir_fd)
    try:
        # a read shorter than asked is the end of a regular file: the usual
        # file takes one read, not a second one to find its end
        chunks = [chunk := os.read(fd, _BLOCK)]
        size = len(chunk)
        while len(chunk) == _BLOCK:
            chunks.append(chunk := os.read(fd, _BLOCK))
            size += len(chunk)
            if size > MAX_FILE:
                raise FileTooLarge(f"larger than {MAX_FILE >> 20} MiB")
        return chunk if len(chunks) == 1 else b"".join(chunks)
    finally:
        os.close(fd)


def parse_json(data: bytes) -> Any:
    """``json.loads(data)``, with less around the parse for the small files
    of a run (as much as a tenth of a first load): no look for UTF-16 and
    UTF-32 unless the text is not UTF-8 (exman writes ASCII), and no regular
    expression for the white space around the value.

    :raises ValueError: ``data`` is not one JSON value.
    """
    try:
        text = data.decode()
        value, end = _decode(text)
    except ValueError:  # another encoding, a byte-order mark, a leading space...
        return json.loads(data)  # ...or invalid: its own message
    if end != len(text) and text[end:].strip(_JSON_SPACE):
        return json.loads(data)  # "Extra data", where
    return value


def _open(path: str, dir_fd: int | None) -> int:
    return os.open(path, _OPEN_FLAGS, dir_fd=dir_fd)


def read_outcome(
    folder: str, dir_fd: int | None = None, copy: Any = None
) -> tuple[dict[str, Any], str | None]:
    """The results of the run in ``folder`` and the last value of its metrics.

    :param folder: the run folder (relative to ``dir_fd`` when given).
    :param copy: the copy of results.json that the run's run.json holds
        (see :mod:`exman.record.snapshot`), taken while the file is the one
        it was made of.
    :returns: ``(values, problem)``: a result wins over a metric of the same
        name; ``problem`` says what is wrong with a damaged results.json
        (its values are then missing), else None.
    """
    values = _last_metrics(f"{folder}/{METRICS_FILE}", dir_fd)
    results, problem = _results(f"{folder}/{RESULTS_FILE}", dir_fd, copy)
    if results:
        values.update(results)
    return values, problem


def _results(
    path: str, dir_fd: int | None, copy: Any = None
) -> tuple[dict[str, Any], str | None]:
    if copy is not None:
        try:
            st = os.stat(path, dir_fd=dir_fd)
        except FileNotFoundError:
            return {}, None  # removed since the run ended
        except OSError:
            pass  # reading it says what is wrong
        else:
            copied = snapshot.results(copy, st)
            if copied is not None:
                return copied, None
    try:
        text = read_file(path, dir_fd)
    except FileNotFoundError:
        return {}, None  # the usual case: one failed open, nothing more
    except FileTooLarge:
        return {}, f"{RESULTS_FILE} is larger than {MAX_FILE >> 20} MiB"
    except OSError as e:
        return {}, f"cannot read {RESULTS_FILE}: {e.strerror or e}"
    try:
        data = parse_json(text)
    except ValueError as e:
        return {}, f"unreadable {RESULTS_FILE} ({e})"
    if not isinstance(data, dict):
        return {}, f"{RESULTS_FILE} is not a JSON object"
    return data, None


def _last_metrics(path: str, dir_fd: int | None) -> dict[str, Any]:
    try:
        fd = _open(path, dir_fd)
    except OSError:
        return {}
    try:
        size = os.fstat(fd).st_size
        start = max(0, size - TAIL_BYTES)
        data = os.pread(fd, size - start, start)
    except OSError:  # not a regular file (a FIFO), or gone
        return {}
    finally:
        os.close(fd)
    return last_values(data, whole=start == 0)


def last_values(data: bytes, *, whole: bool = True) -> dict[str, Any]:
    """The last value of each metric in the lines of ``data``.

    :param whole: ``data`` starts at the start of the file; otherwise its
        first line is a part of one and is skipped.
    """
    if not whole:
        data = data[data.find(b"\n") + 1 :] if b"\n" in data else b""
    values: dict[str, Any] = {}
    for record in _parse(data)[0]:
        values.update(record)
    for key in RECORD_KEYS:
        values.pop(key, None)
    return values


def _parse(data: bytes) -> tuple[list[dict[str, Any]], list[int]]:
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
            try:
                record = json.loads(line)
            except ValueError:
                record = None
            if type(record) is dict:
                records.append(record)
            else:
                bad.append(number)
    if last.strip():
        try:
            record = json.loads(last)
        except ValueError:
            record = None
        if type(record) is dict:
            records.append(record)
    return records, bad


class Records:
    """Every record of one ``metrics.jsonl``.

    ``records``: the JSON objects, in the order of the file; ``bad``: the
    line numbers (from 1) that were not JSON objects and were skipped.
    """

    def __init__(self, records: list[dict[str, Any]], bad: list[int]) -> None:
        self.records = records
        self.bad = bad


def read_records(path: str | os.PathLike[str]) -> Records:
    """Every record of the metrics file ``path``; none when it is missing.

    :raises OSError: it exists but cannot be read.
    """
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        return Records([], [])
    records, bad = _parse(data)
    return Records(records, [n + 1 for n in bad])
