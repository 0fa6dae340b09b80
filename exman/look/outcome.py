"""What came out of a run, as the Index reads it back.

A run's ``results.json`` (a JSON object of final values, written by
:func:`exman.result`) and its ``metrics.jsonl`` (one JSON object per line,
appended by :func:`exman.log`): see :mod:`exman.record.metrics` for the writing
side. Nothing here imports pandas.

The outcome of a run, one value per name, is its results, and for each
metric that has no result of the same name, the last value logged. Only the
end of ``metrics.jsonl`` is read for that (see :mod:`exman.record.tail`).
A run that ended carries a copy of both in its run.json (see
:mod:`exman.record.snapshot`), taken while each file is the one it was
made of.
"""

from __future__ import annotations

import json
import os

from ..record import snapshot
from ..record.run import METRICS_FILE, RESULTS_FILE
from ..record.tail import TAIL_BYTES, last_values, parse_lines, tail_values

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

#: a file of a run that a load reads whole (run.json, params.yaml,
#: results.json...) larger than this is refused, not read
MAX_FILE = 16 << 20
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
    folder: str, dir_fd: int | None = None, record: Any = None
) -> tuple[dict[str, Any], str | None]:
    """The results of the run in ``folder`` and the last value of its metrics.

    :param folder: the run folder (relative to ``dir_fd`` when given).
    :param record: the run's parsed run.json: the copies of results.json
        and of the last metrics that it holds (see
        :mod:`exman.record.snapshot`) are taken while each file is the one
        it was made of.
    :returns: ``(values, problem)``: a result wins over a metric of the same
        name; ``problem`` says what is wrong with a damaged results.json
        (its values are then missing), else None.
    """
    copies = record if type(record) is dict else {}
    metrics = f"{folder}/{METRICS_FILE}"
    copied = _copied(copies.get(snapshot.METRICS_FIELD), metrics, dir_fd)
    values = _last_metrics(metrics, dir_fd) if copied is None else dict(copied)
    path = f"{folder}/{RESULTS_FILE}"
    results = _copied(copies.get(snapshot.RESULTS_FIELD), path, dir_fd)
    problem = None
    if results is None:
        results, problem = _results(path, dir_fd)
    if results:
        values.update(results)
    return values, problem


def _copied(copy: Any, path: str, dir_fd: int | None) -> dict[str, Any] | None:
    """The values of ``copy`` (a copy of the file ``path``) if it stands for
    the file as it is, {} if the file is gone, else None: read the file."""
    if copy is None:
        return None
    try:
        st = os.stat(path, dir_fd=dir_fd)
    except FileNotFoundError:
        return {}  # removed since the run ended
    except OSError:
        return None  # reading it says what is wrong
    return snapshot.copied(copy, st)


def _results(path: str, dir_fd: int | None) -> tuple[dict[str, Any], str | None]:
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
    # many runs log no metrics: a look at the name (no exception to raise)
    # costs half as much as a failed open
    if not os.access(path, os.F_OK, dir_fd=dir_fd):
        return {}
    try:
        fd = _open(path, dir_fd)
    except OSError:
        return {}
    try:
        return tail_values(fd, os.fstat(fd).st_size)
    except OSError:  # not a regular file (a FIFO), or gone
        return {}
    finally:
        os.close(fd)


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
    records, bad = parse_lines(data)
    return Records(records, [n + 1 for n in bad])
