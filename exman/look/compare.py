"""Runs side by side: what :meth:`exman.Index.diff` and ``exman diff`` show.

Every run is compared with the first one given. :func:`compare` returns a
:class:`RunDiff` of DataFrames, one column per run (its id), one row per
name: the parameters that differ (and those only some runs have), every
result and last metric with its change from the first run, the run's
status, times, duration and commit, and the environment where it differs;
and, for each run whose code differs from the first's, the diff of the code.

The code: when the commits differ, ``git diff`` between them in the
repository the runs were made from, when it is at hand (the folder of the
script, or the folder the run was started in); otherwise, and for changes
that were not committed, the ``changes.diff`` files the runs saved.
"""

from __future__ import annotations

import datetime
import difflib
import json
import math
import os
import pathlib
import stat
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from ..record.errors import ExmanError, RunNotFound
from ..record.params import ParamsError, plain
from ..record.run import DIFF_FILE, Run
from ..record.store import Root
from ..record.vcs import commit_diff
from .frame import Columns, build_frame
from .gather import Load

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["MISSING", "CodeDiff", "RunDiff", "compare", "compare_runs"]

#: the most read of a run's changes.diff
MAX_FILE = 16 << 20
#: the cell of a name a run does not have (a parameter added later…)
MISSING = "(none)"
#: what the run table holds, in this order (the frame's names)
RUN_FIELDS = (
    "status",
    "error",
    "started",
    "finished",
    "duration",
    "host",
    "commit",
    "dirty",
    "tags",
    "note",
)
#: params.yaml keys that are the run's identity or its code, not parameters
_NOT_PARAMS = frozenset({"commit", "dirty", "time", "root", "id"})


@dataclass
class CodeDiff:
    """How the code of run ``other`` differs from that of run ``first``.

    ``how`` says where the text comes from; ``text`` is a unified diff
    (empty when the code is the same, or unknown: see ``how``).
    """

    first: int
    other: int
    how: str
    text: str = ""


@dataclass
class RunDiff:
    """Runs compared with the first of them (see :func:`compare`).

    Each frame has one column per run, named by its id, and one row per
    name (its index); ``results`` and ``run`` add a ``Δ<id>`` column for each
    later run where a value is a number: its value minus the first run's.
    A name a run does not have reads :data:`MISSING`.
    """

    ids: list[int]
    params: pd.DataFrame
    results: pd.DataFrame
    run: pd.DataFrame
    environment: pd.DataFrame
    code: list[CodeDiff] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict, as ``exman diff --format json`` prints it.

        ``ids``; ``params``, ``results``, ``run`` and ``environment`` as
        ``{name: {"<id>": value, "Δ<id>": change}}``: a run that does not
        have the name has no key under it, a change is there only where
        both values are numbers, and a value that is not a number (NaN)
        is null; ``code`` as a list of ``{"first", "other", "how", "text"}``.
        """
        data: dict[str, Any] = {"ids": list(self.ids)}
        for section in ("params", "results", "run", "environment"):
            frame: pd.DataFrame = getattr(self, section)
            data[section] = {
                str(name): {
                    str(column): _json(value)
                    for column, value in cells.items()
                    if not _absent(column, value)
                }
                for name, cells in frame.iterrows()
            }
        data["code"] = [asdict(code) for code in self.code]
        return data


def _absent(column: Any, value: Any) -> bool:
    """A run that lacks the name, or a change that cannot be computed."""
    if isinstance(column, str):  # Δ<id>
        return _missing(value)
    return isinstance(value, str) and value == MISSING


def _json(value: Any) -> Any:
    """A cell as a JSON value: no NaN or infinity (null), times in ISO 8601."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, (datetime.date, datetime.datetime)):
        return value.isoformat()
    if isinstance(value, list):
        return [_json(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _json(v) for k, v in value.items()}
    value = plain(value)  # numpy scalars, paths…
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _key(value: Any) -> str:
    """Values compared as JSON: lists and dicts are not hashable."""
    return json.dumps(value, sort_keys=True, default=str)


def _cell(row: Any, name: str) -> Any:
    value = row.get(name) if name in row.index else MISSING
    if type(value).__name__ in ("NaTType", "NAType"):
        return MISSING
    if isinstance(value, float) and math.isnan(value):
        return MISSING
    if hasattr(value, "item") and type(value).__module__ == "numpy":
        value = value.item()
    return value


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def _frame(
    ids: list[int],
    names: list[str],
    values: list[dict[str, Any]],
    *,
    only_different: bool,
    deltas: bool,
) -> pd.DataFrame:
    import pandas as pd

    rows: dict[str, list[Any]] = {}
    for name in names:
        cells = [v.get(name, MISSING) for v in values]
        if only_different and len({_key(c) for c in cells}) < 2:
            continue
        rows[name] = cells
    columns: list[Any] = list(ids)
    data: dict[Any, list[Any]] = {
        num: [cells[i] for cells in rows.values()] for i, num in enumerate(ids)
    }
    if deltas:
        for i, num in enumerate(ids[1:], 1):
            change = []
            for cells in rows.values():
                a, b = _number(cells[0]), _number(cells[i])
                change.append(b - a if a is not None and b is not None else None)
            if any(c is not None for c in change):
                data[f"Δ{num}"] = change
                columns.append(f"Δ{num}")
    frame = pd.DataFrame(data, index=pd.Index(list(rows), name="name"), dtype=object)
    return frame.reindex(columns=columns)


def _flat(prefix: str, value: Any, out: dict[str, Any]) -> None:
    if isinstance(value, dict):
        for k, v in value.items():
            _flat(f"{prefix}.{k}" if prefix else str(k), v, out)
    else:
        out[prefix] = value


def environment(folder: pathlib.Path) -> dict[str, Any]:
    """What a run ran in: host, Python, folder, script, and what it recorded
    of its environment (``env`` in run.json: versions, platform, SLURM, GPUs,
    packages)."""
    record = Run(folder).record()
    out: dict[str, Any] = {}
    command = record.get("command")
    if isinstance(command, dict):
        for key, name in (
            ("executable", "executable"),
            ("script", "script"),
            ("cwd", "cwd"),
        ):
            if command.get(key) is not None:
                out[name] = command[key]
    if record.get("host"):
        out["host"] = record["host"]
    if isinstance(record.get("env"), dict):
        _flat("", record["env"], out)
    return out


def _read(path: pathlib.Path) -> str:
    """A regular file of a run as text ("" for none, a link or a FIFO), at
    most :data:`MAX_FILE` bytes of it."""
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOFOLLOW", 0)
    try:
        fd = os.open(path, flags)
    except OSError:
        return ""
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return ""
        with os.fdopen(fd, "rb", closefd=False) as f:
            return f.read(MAX_FILE).decode("utf-8", errors="replace")
    finally:
        os.close(fd)


def _read_diff(folder: pathlib.Path) -> str:
    return _read(folder / DIFF_FILE)


def _repos(folders: list[pathlib.Path]) -> list[str]:
    """Where the runs' repository may be: the scripts' folders, then the
    folders the runs were started in."""
    found: dict[str, None] = {}
    records = [Run(f).record().get("command") for f in folders]
    for key in ("script", "cwd"):
        for command in records:
            value = command.get(key) if isinstance(command, dict) else None
            if isinstance(value, str) and value:
                found[os.path.dirname(value) if key == "script" else value] = None
    return list(found)


def code_diff(
    first: tuple[int, pathlib.Path, dict[str, Any]],
    other: tuple[int, pathlib.Path, dict[str, Any]],
) -> CodeDiff | None:
    """How the code of ``other`` differs from ``first`` (id, folder, params);
    None when both ran the same commit with the same uncommitted changes."""
    (a, folder_a, params_a), (b, folder_b, params_b) = first, other
    commit_a, commit_b = params_a.get("commit"), params_b.get("commit")
    diff_a, diff_b = _read_diff(folder_a), _read_diff(folder_b)
    if commit_a == commit_b:
        if diff_a == diff_b:
            return None
        text = "".join(
            difflib.unified_diff(
                diff_a.splitlines(keepends=True),
                diff_b.splitlines(keepends=True),
                f"run {a}/{DIFF_FILE}",
                f"run {b}/{DIFF_FILE}",
            )
        )
        same = f"commit {commit_a}" if commit_a else "no commit recorded"
        return CodeDiff(a, b, f"the same {same}; their uncommitted changes", text)
    if not isinstance(commit_a, str) or not isinstance(commit_b, str):
        return CodeDiff(a, b, f"commits {commit_a} and {commit_b}: one is unknown")
    for repo in _repos([folder_a, folder_b]):
        found = commit_diff(repo, commit_a, commit_b)
        if found is not None:
            text = found
            how = f"git diff {commit_a[:12]} {commit_b[:12]} in {repo}"
            for num, saved in ((a, diff_a), (b, diff_b)):
                if saved:
                    how += f"; run {num} also had uncommitted changes ({DIFF_FILE})"
                    text += f"\n# uncommitted changes of run {num}:\n{saved}"
            return CodeDiff(a, b, how, text)
    how = (
        f"commits {commit_a[:12]} and {commit_b[:12]}: their repository is not "
        f"at hand; the runs' saved {DIFF_FILE}"
    )
    text = "".join(
        f"# uncommitted changes of run {num}:\n{saved or '(none)'}\n"
        for num, saved in ((a, diff_a), (b, diff_b))
    )
    return CodeDiff(a, b, how, text)


def compare(
    frame: pd.DataFrame,
    columns: Columns,
    params: list[dict[str, Any]],
    *,
    code: bool = True,
) -> RunDiff:
    """Compare the runs of ``frame`` (one row each, in the order to show,
    the first the reference) with the first of them.

    :param columns: what the columns of ``frame`` are (from its load).
    :param params: each run's ``params.yaml``, in the same order.
    :param code: also compare their code (git, ``changes.diff``).
    """
    ids = [int(i) for i in frame["id"].tolist()]
    rows = [frame.iloc[i] for i in range(len(frame))]
    folders = [pathlib.Path(p) for p in frame["root"].tolist()]
    names = [c for c in columns.params if c not in _NOT_PARAMS]
    values = [
        {n: _cell(r, n) for n in names if _cell(r, n) is not MISSING} for r in rows
    ]
    for v, p in zip(values, params):  # a key with a null value is not missing
        v.update({n: None for n in names if n in p and p[n] is None})
    params_frame = _frame(ids, names, values, only_different=True, deltas=False)
    outcome = [{n: _cell(r, n) for n in columns.results} for r in rows]
    results = _frame(ids, columns.results, outcome, only_different=False, deltas=True)
    run_values = []
    for r, p in zip(rows, params):
        cells = {n: _cell(r, n) for n in RUN_FIELDS if n in frame.columns}
        cells["status"] = _cell(r, columns.status)
        cells["commit"] = p.get("commit", MISSING)
        cells["dirty"] = p.get("dirty", MISSING)
        for when in ("started", "finished"):
            value: Any = cells.get(when)
            if hasattr(value, "isoformat"):
                cells[when] = value.isoformat(sep=" ", timespec="seconds")
        run_values.append(cells)
    present = [
        n
        for n in RUN_FIELDS
        if any(v.get(n, MISSING) not in (MISSING, None, []) for v in run_values)
    ]
    run = _frame(ids, present, run_values, only_different=False, deltas=True)
    env = [environment(folder) for folder in folders]
    env_names = list(dict.fromkeys(k for e in env for k in e))
    env_frame = _frame(ids, env_names, env, only_different=True, deltas=False)
    diffs: list[CodeDiff] = []
    if code:
        first = (ids[0], folders[0], params[0])
        for other in zip(ids[1:], folders[1:], params[1:]):
            found = code_diff(first, other)
            if found is not None:
                diffs.append(found)
    return RunDiff(ids, params_frame, results, run, env_frame, diffs)


def compare_runs(
    root: Root, ids: list[int], *, cache: bool = True, code: bool = True
) -> RunDiff:
    """Load runs ``ids`` of ``root`` wherever they are and :func:`compare` them.

    :raises RunNotFound: a run is not in the root or cannot be read.
    :raises ExmanError: fewer than two runs, or one given twice.
    """
    ids = [int(num) for num in ids]
    if len(ids) < 2 or len(set(ids)) < len(ids):
        raise ExmanError(
            f"diff needs two or more different runs, not {', '.join(map(str, ids))}"
        )
    folders = [root.find(num) for num in ids]
    load = Load(root, cache)
    for folder in folders:
        load.add(folder.parent.name, folder.name, str(folder))
    frame, columns = build_frame(load.run())
    found = frame["id"].tolist()
    for num, folder in zip(ids, folders):
        if num not in found:
            raise RunNotFound(f"run {num} in {folder} cannot be read")
    frame = frame.set_index("id", drop=False).loc[ids].reset_index(drop=True)
    params = []
    for folder in folders:
        try:
            params.append(Run(folder).params)
        except (OSError, ParamsError) as e:
            raise RunNotFound(f"run in {folder} cannot be read: {e}") from None
    return compare(frame, columns, params, code=code)
