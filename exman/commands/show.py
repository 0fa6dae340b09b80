"""Everything about one run: ``exman show ID``.

:func:`show` gathers it into a :class:`RunDetails`; :func:`format_details`
writes it as text for a terminal.
"""

from __future__ import annotations

import json
import os
import pathlib
import shlex
import time
from dataclasses import asdict, dataclass, field
from typing import Any

from ..look.files import list_files, tail
from ..look.outcome import read_outcome
from ..record.annotations import read_annotations
from ..record.fingerprint import CodeCheck
from ..record.params import ParamsError
from ..record.run import DIFF_FILE, LOG_FILE, TRACEBACK_FILE, Run
from ..record.store import ExmanError, Root, RunNotFound, StrPath
from .rerun import rerun
from .selection import find_root, select
from .terminal import printable

__all__ = ["RunDetails", "format_details", "show", "tail"]

#: traceback lines printed at most (a RecursionError has thousands)
MAX_TRACEBACK = 60
#: params that describe the run rather than parametrise it
META_PARAMS = ("root", "time", "id", "commit", "dirty")


@dataclass
class RunDetails:
    """One run, as ``exman show`` prints it."""

    id: int
    name: str
    path: pathlib.Path
    #: ``runs``, ``tmp`` or ``fails``
    place: str
    status: str
    indexed: bool
    params: dict[str, Any]
    #: run.json (``{}`` for a run made by exman 0.1.9)
    record: dict[str, Any]
    #: results.json, then the last value of each metric without a result
    outcome: dict[str, Any] = field(default_factory=dict)
    #: mark keys that link to the run
    marks: list[str] = field(default_factory=list)
    #: tags and note given after the fact (``exman tag``, ``exman note``)
    tags: list[str] = field(default_factory=list)
    note: str | None = None
    #: (path relative to the run folder, size in bytes)
    files: list[tuple[str, int]] = field(default_factory=list)
    more_files: int = 0
    log_tail: list[str] = field(default_factory=list)
    traceback: str | None = None
    #: what could not be read, with the reason
    problems: list[str] = field(default_factory=list)
    #: seconds since a running (or crashed) run's last heartbeat
    silent_for: float | None = None
    #: the folder has its params.yaml (False: being created, or crash debris)
    complete: bool = True
    #: a shell line that runs it again: its script with ``--config`` of
    #: its params.yaml (see :func:`exman.commands.rerun.rerun`)
    reproduce: str | None = None
    #: whether its code differs from the code in its work tree or script
    #: now (None: unknown)
    stale: bool | None = None

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict (paths as strings)."""
        data = asdict(self)
        data["path"] = str(self.path)
        data["files"] = [{"path": p, "size": s} for p, s in self.files]
        return data


def show(root: StrPath | Root, id: int | str, *, lines: int = 20) -> RunDetails:
    """Gather the parameters, status, files and log of run ``id``.

    :param lines: how many lines of ``log.txt`` to keep.
    :raises RunNotFound: no run has this id.
    :raises ExmanError: ``id`` is not a run id.
    """
    root = root if isinstance(root, Root) else find_root(root)
    sel = select(root, [id])
    if sel.missing:
        raise RunNotFound(f"run {sel.missing[0]} not found in {root.path}")
    num, path = next(iter(sel.found.items()))
    run = Run(path)
    problems: list[str] = []
    try:
        params = run.params
    except (OSError, ParamsError) as e:
        params = {}
        problems.append(str(e))
    marks = sorted(
        os.path.relpath(link.parent, root.marked).replace(os.sep, "/")
        for link in root.mark_links()
        if link.name == path.name
    )
    files, more = list_files(path)
    tags, note = read_annotations(path)
    outcome, problem = read_outcome(str(path))
    if problem:
        problems.append(problem)
    details = RunDetails(
        id=num,
        name=path.name,
        path=path,
        place=sel.place(num),
        status=run.status,
        indexed=os.path.lexists(root.index_link(path.name)),
        params=params,
        record=run.record(),
        outcome=outcome,
        marks=marks,
        tags=tags,
        note=note,
        files=files,
        more_files=more,
        problems=problems,
        complete=run.params_file.exists(),
    )
    code = details.record.get("code")
    if isinstance(code, dict):
        details.stale = CodeCheck().stale(code.get("fingerprint"), code.get("source"))
    if isinstance(details.record.get("command"), dict) and details.complete:
        try:
            details.reproduce = rerun(root, num, dry_run=True).shell()
        except ExmanError as e:
            problems.append(f"cannot be run again: {e}")
    beat = run.beat()
    if details.status in ("running", "crashed") and beat is not None:
        details.silent_for = max(0.0, time.time() - beat)
    try:
        details.log_tail = tail(path / LOG_FILE, lines)
    except FileNotFoundError:
        pass
    except OSError as e:
        problems.append(f"{path / LOG_FILE}: {e.strerror}")
    try:
        details.traceback = (path / TRACEBACK_FILE).read_text(errors="replace")
    except FileNotFoundError:
        pass
    except OSError as e:
        problems.append(f"{path / TRACEBACK_FILE}: {e.strerror}")
    return details


def _size(n: int) -> str:
    if n < 0:
        return "?"
    size = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"  # pragma: no cover - the loop always returns


def _value(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, default=str, ensure_ascii=False)


def _attempt(a: dict[str, Any]) -> str:
    """One attempt of a resumed run: ``1: interrupted (SIGTERM), 2.5 s on vm``."""
    line = f"    {a.get('attempt')}: {a.get('status')}"
    if a.get("reason"):
        line += f" ({a['reason']})"
    if isinstance(a.get("duration"), (int, float)):
        line += f", {a['duration']} s"
    if a.get("host"):
        line += f" on {a['host']}"
    if a.get("started"):
        line += f", from {a['started']}"
    return line


def _mapping(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _environment(rec: dict[str, Any], stale: bool | None) -> list[str]:
    """The lines of what the run ran on, and of its code."""
    out = []
    env = _mapping(rec.get("env"))
    if env.get("python"):
        where = f" on {env['platform']}" if env.get("platform") else ""
        prefix = f" ({env['prefix']})" if env.get("prefix") else ""
        out.append(f"  python    {env['python']}{prefix}{where}")
    slurm = env.get("slurm")
    if isinstance(slurm, dict) and slurm.get("job_id"):
        job = str(slurm["job_id"])
        if slurm.get("array_job_id") and slurm.get("array_task_id") is not None:
            job += f" (array {slurm['array_job_id']}_{slurm['array_task_id']})"
        node = f" on {slurm['node']}" if slurm.get("node") else ""
        part = f", partition {slurm['partition']}" if slurm.get("partition") else ""
        out.append(f"  slurm     job {job}{node}{part}")
    gpus = env.get("cuda_devices") or env.get("gpus")
    visible = env.get("cuda_visible_devices")
    if gpus or visible is not None:
        names = ", ".join(map(str, gpus)) if isinstance(gpus, list) else ""
        seen = f"CUDA_VISIBLE_DEVICES={visible}" if visible is not None else ""
        out.append(f"  gpus      {'; '.join(x for x in (names, seen) if x)}")
    code = rec.get("code")
    if isinstance(code, dict) and code.get("fingerprint"):
        state = "" if stale is None else (", changed since" if stale else ", unchanged")
        out.append(f"  code      {code['fingerprint']} ({code.get('source')}{state})")
    return out


def format_details(d: RunDetails) -> str:
    """``exman show`` as text: a header, parameters, command, files, log."""
    rec = d.record
    out = [f"run {d.id}  {d.place}/{d.name}"]
    status = d.status
    if rec.get("reason"):
        status += f" ({rec['reason']})"
    elif rec.get("exit_code") not in (None, 0):
        status += f" (exit code {rec['exit_code']})"
    where = "in the index" if d.indexed else "not in the index"
    out.append(f"  status    {status}, {where}")
    if not rec and not d.complete:
        out.append(
            "  record    none: an incomplete run folder (no params.yaml, no "
            "run.json): being created, or left by a process that died "
            "(exman gc removes it)"
        )
    elif not rec:
        out.append("  record    none: made by exman 0.1.9 (no run.json)")
    for key in ("started", "finished"):
        if rec.get(key):
            out.append(f"  {key:<9} {rec[key]}")
    if rec.get("duration") is not None:
        out.append(f"  duration  {rec['duration']} s")
    if rec.get("host"):
        out.append(f"  host      {rec['host']} (pid {rec.get('pid')})")
    attempts = rec.get("attempts")
    if isinstance(attempts, list) and len(attempts) > 1:
        out.append(f"  attempts  {len(attempts)}")
        out += [_attempt(a) for a in attempts if isinstance(a, dict)]
    if d.silent_for is not None and isinstance(rec.get("heartbeat"), (int, float)):
        out.append(
            f"  heartbeat every {rec['heartbeat']:g} s, last {d.silent_for:.0f} s ago"
        )
    if d.params.get("commit"):
        dirty = d.params.get("dirty")
        note = f" (dirty: see {DIFF_FILE})" if dirty else ""
        out.append(f"  git       {d.params['commit']}{note}")
    if d.marks:
        out.append(f"  marked    {', '.join(d.marks)}")
    if d.tags:
        out.append(f"  tags      {', '.join(d.tags)}")
    out.append(f"  path      {d.path}")
    command = rec.get("command")
    if isinstance(command, dict):
        argv = command.get("orig_argv") or command.get("argv") or []
        note = ""
        if isinstance(rec.get("sweep"), dict):
            note = "  (the sweep's: its values came from the sweep, see rerun)"
        out.append(f"  command   {shlex.join(str(a) for a in argv)}{note}")
        out.append(f"  in        {command.get('cwd')}")
    if d.reproduce is not None:
        root = d.path.parent.parent
        out.append(f"  rerun     exman rerun {d.id} --root {shlex.quote(str(root))}")
        out.append(f"  or        {d.reproduce}")
    out += _environment(rec, d.stale)
    out.append("")
    params = {k: v for k, v in d.params.items() if k not in META_PARAMS}
    out.append("parameters:" if params else "parameters: none")
    width = max((len(str(k)) for k in params), default=0)
    out += [f"  {k!s:<{width}}  {_value(v)}" for k, v in params.items()]
    env = _mapping(rec.get("env"))
    packages = env.get("packages")
    if isinstance(packages, dict) and packages:
        source = env.get("packages_from")
        how = {"__version__": " (each module's __version__)"}.get(str(source), "")
        out += ["", f"packages{how}:"]
        width = max(len(str(k)) for k in packages)
        out += [f"  {k!s:<{width}}  {_value(v)}" for k, v in packages.items()]
    if d.note:
        out += ["", "note:"]
        out += ["  " + line for line in d.note.splitlines()]
    if d.outcome:
        out += ["", "results:"]
        width = max(len(str(k)) for k in d.outcome)
        out += [f"  {k!s:<{width}}  {_value(v)}" for k, v in d.outcome.items()]
    out.append("")
    out.append(f"files ({len(d.files) + d.more_files}):")
    width = max((len(p) for p, _ in d.files), default=0)
    out += [f"  {p:<{width}}  {_size(s):>8}" for p, s in d.files]
    if d.more_files:
        out.append(f"  … and {d.more_files} more")
    if d.traceback:
        lines = d.traceback.splitlines()
        cut = lines[-MAX_TRACEBACK:]
        out += ["", f"{TRACEBACK_FILE}:"]
        if len(cut) < len(lines):
            out.append(f"  … {len(lines) - len(cut)} lines before")
        out += ["  " + x for x in cut]
    elif d.log_tail:
        last = "line" if len(d.log_tail) == 1 else f"{len(d.log_tail)} lines"
        out += ["", f"{LOG_FILE} (last {last}):"]
        out += ["  " + x for x in d.log_tail]
    for problem in d.problems:
        out.append(f"warning: {problem}")
    # every value comes from a file anyone may have written: no raw escapes
    return "\n".join(printable(line) for line in out)
