"""The copies of a run's parameters and results that its ``run.json`` carries.

``params.yaml`` is the truth, but parsing YAML is most of what reading a
run costs. So when a run is created, the values its params.yaml holds are
also written into its ``run.json`` as JSON (which Python parses in C), with
the identity of the params.yaml they were written with: its inode, size,
modification and change times. A reader uses the copy only while params.yaml
still has exactly that identity: an edit, a replacement or a copy from
elsewhere changes at least one of them (the change time cannot be set by
hand), and the reader then parses params.yaml as before.

A copy is made only of values that JSON holds exactly as YAML reads them
back: None, bools, ints, floats, strings, and lists and string-keyed
mappings of those (mappings sorted by key, as params.yaml writes them).
Anything else (dates, bytes, values written by a converter registered with
:func:`~exman.record.params.register_str_converter`) leaves the run without
a copy.

When a run ends, its ``results.json`` (what :func:`exman.result` wrote) is
copied the same way into the ``run.json`` that records the end
(:data:`RESULTS_FIELD`), and so is the last value of each metric of its
``metrics.jsonl`` (:data:`METRICS_FIELD`; what :func:`exman.log` wrote, read
from the end of the file as every reader reads it: see
:mod:`exman.record.tail`), each with the identity of its file: a reader
that finds the identity unchanged takes the copy after one ``stat``, where
it would open, read and parse the file. Both are JSON, so the copy is
exact; a results.json that is not a JSON object, or larger than
:data:`MAX_RESULTS` bytes, is not copied, and the reader reads the file. A
record appended to metrics.jsonl after the end (another rank of the run)
changes its size: the file is read again.
"""

from __future__ import annotations

import os

from .params import written_as_is

# not typing's: importing typing would slow every run's start
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

__all__ = [
    "FIELD",
    "MAX_RESULTS",
    "METRICS_FIELD",
    "RESULTS_FIELD",
    "copied",
    "copy_metrics",
    "copy_results",
    "identity",
    "make",
    "values",
]

#: the field of run.json that holds the copy
FIELD = "params"
#: the field of run.json that holds the copy of results.json, once it ended
RESULTS_FIELD = "results"
#: the field of run.json that holds the last value of each metric, once it ended
METRICS_FIELD = "metrics"
#: a larger results.json is not copied (run.json would grow with it)
MAX_RESULTS = 16384
_SCALARS = (type(None), bool, int, float, str)
_MAX_DEPTH = 50


class _NotExact(Exception):
    """A value that JSON would not give back as YAML does."""


def identity(st: os.stat_result) -> list[int]:
    """What must not change in params.yaml for its copy to hold."""
    return [st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns]


def _exact(value: Any, depth: int, kinds: frozenset[type]) -> Any:
    kind = type(value)
    if kind not in kinds or depth > _MAX_DEPTH:
        raise _NotExact
    if kind is list:
        return [_exact(v, depth + 1, kinds) for v in value]
    if kind is dict:
        if not all(type(k) is str for k in value):
            raise _NotExact
        return {k: _exact(value[k], depth + 1, kinds) for k in sorted(value)}
    return value


def make(
    params: dict[str, Any], time: str, id: int, path: str
) -> dict[str, Any] | None:
    """The copy of a params.yaml just written at ``path`` from ``params``
    (as :func:`~exman.record.params.dump_params` wrote it, with ``time``
    and ``id``), or None when its values cannot be copied exactly."""
    kinds = frozenset(k for k in (*_SCALARS, list, dict) if written_as_is(k))
    if "time" in params or "id" in params or not all(type(k) is str for k in params):
        return None  # written twice, or keys YAML reads back as other types
    try:
        copied = {k: _exact(params[k], 1, kinds) for k in sorted(params)}
        st = os.stat(path)
    except (_NotExact, RecursionError, OSError):
        return None
    copied["time"] = time
    copied["id"] = int(id)
    return {"file": identity(st), "values": copied}


def values(record: Any, st: os.stat_result) -> dict[str, Any] | None:
    """The parameters copied in ``record`` (a parsed run.json) if they still
    stand for the params.yaml whose ``stat`` is ``st``, else None."""
    if not isinstance(record, dict):
        return None
    return copied(record.get(FIELD), st)


def _open_stat(path: str) -> tuple[int, os.stat_result] | None:
    """A descriptor of the file ``path`` and its identity as it is read."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    except OSError:
        return None
    try:
        return fd, os.fstat(fd)
    except OSError:
        os.close(fd)
        return None


def copy_results(path: str) -> dict[str, Any] | None:
    """The copy of the results.json at ``path`` as it is now (None when it
    is missing, unreadable, too large or not a JSON object)."""
    if (opened := _open_stat(path)) is None:
        return None
    fd, st = opened
    try:
        if st.st_size > MAX_RESULTS:
            return None
        data = os.read(fd, MAX_RESULTS + 1)
    except OSError:
        return None
    finally:
        os.close(fd)
    import json  # imported already by every process that records a run

    try:
        parsed = json.loads(data)
    except ValueError:
        return None
    if type(parsed) is not dict or len(data) != st.st_size:
        return None
    return {"file": identity(st), "values": parsed}


def copy_metrics(path: str) -> dict[str, Any] | None:
    """The copy of the last value of each metric of the metrics.jsonl at
    ``path`` as it is now (None when it is missing or unreadable)."""
    if (opened := _open_stat(path)) is None:
        return None
    fd, st = opened
    try:
        from .tail import tail_values  # only for a run that logged metrics

        values = tail_values(fd, st.st_size)
    except OSError:
        return None
    finally:
        os.close(fd)
    return {"file": identity(st), "values": values}


def copied(copy: Any, st: os.stat_result) -> dict[str, Any] | None:
    """The values in ``copy`` (the :data:`RESULTS_FIELD` or
    :data:`METRICS_FIELD` of a parsed run.json) if they still stand for the
    file whose ``stat`` is ``st``, else None."""
    if (
        type(copy) is dict
        and copy.get("file") == identity(st)
        and type(values := copy.get("values")) is dict
    ):
        return values
    return None
