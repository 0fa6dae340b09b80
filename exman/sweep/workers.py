"""A search on a scheduler: jobs that each run the search loop of this machine.

A search asks its study for each trial once an earlier one has taught the
sampler, so it cannot be handed to SLURM as one job array of tasks fixed in
advance. ``exman sweep search.yaml --backend slurm`` submits workers
instead: ``parallel`` (or ``-j``) jobs, each running ``exman sweep
search.yaml --backend local -j 1 --worker N`` on its node. A worker is the
local search, one trial at a time: it asks the study (its journal file on
the shared root) for a trial under the search's lock, runs it as an
ordinary run, tells the outcome and prunes as a local search does, and
ends once the study holds its budget of trials. Workers share the study,
the claims and the runs as launchers on one machine do.

The jobs are listed in ``root/.exman/sweeps/<name>/workers.json``: running
the sweep command again counts the workers SLURM still holds and submits
only as many more as the trials left need.
"""

from __future__ import annotations

import dataclasses
import json
import os
import pathlib
import signal
import sys
import threading
from typing import Any

from ..record.files import make_dir
from ..record.resume import ATTEMPT_ENV, JOB_ENV
from ..record.run import SWEEP_ENV, Run
from ..record.store import ExmanError, Root, atomic_write
from .claims import Claims
from .launchers.base import LaunchTask
from .options import Options, make_launcher, sweep_dir
from .runs import scan_runs
from .spec import Spec
from .summary import SweepSummary

__all__ = [
    "WORKERS",
    "become_worker",
    "live_workers",
    "release_dead",
    "stop_asked",
    "submit_workers",
]

#: a worker's sampler draws from its own stream: its seed is moved by this
#: much per worker number (besides the trials the study held when it began)
SEED_STRIDE = 1_000_003
#: in the search's folder: the worker jobs submitted so far
WORKERS = "workers.json"


def _book(root: Root, name: str) -> pathlib.Path:
    return sweep_dir(root, name) / WORKERS


def _read(root: Root, name: str) -> list[dict[str, Any]]:
    try:
        data = json.loads(_book(root, name).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    if not isinstance(data, list):
        return []
    return [
        w
        for w in data
        if isinstance(w, dict)
        and isinstance(w.get("job"), str)
        and isinstance(w.get("log"), str)
    ]


def live_workers(spec: Spec, root: Root, options: Options) -> list[str] | None:
    """The jobs of the search's workers that SLURM still holds (queued or
    running); None when it never had workers.

    :raises ExmanError: SLURM cannot be asked.
    """
    workers = _read(root, spec.name)
    if not workers:
        return None
    launcher = make_launcher(spec, dataclasses.replace(options, backend="slurm"))
    states = launcher.query({w["job"]: pathlib.Path(w["log"]) for w in workers})
    return [j for j, s in states.items() if s.state in ("queued", "running")]


def release_dead(spec: Spec, root: Root, options: Options) -> int:
    """End the claims of the trials whose worker job SLURM no longer holds.

    A worker's claim names its host, and a host cannot see another's
    processes: without this, the trial of a worker that died on another
    node would look taken for ever. Its job's end says that nothing runs it
    any more: a run it left ``running`` (killed without a word, a node
    down) is recorded as interrupted, and the trial runs again.

    :returns: how many claims were ended.
    :raises ExmanError: SLURM cannot be asked.
    """
    workers = _read(root, spec.name)
    alive = live_workers(spec, root, options)
    if not workers or alive is None:
        return 0
    dead = {w.get("worker") for w in workers if w["job"] not in alive}
    claims = Claims(root)
    ended = 0
    for path in sorted(claims.dir.glob("*.json")):
        key = path.name[: -len(".json")]
        record = claims.record(key)
        if record is None or record.get("sweep") != spec.name:
            continue
        if record.get("worker") not in dead or record.get("state") != "running":
            continue
        after = record.get("after")
        found = scan_runs(root, {key}, after=after if isinstance(after, int) else 0)
        for run in found.get(key, []):
            if run.status == "running":
                Run(run.path).finish("interrupted", reason="its SLURM worker ended")
        claims.end(key, "interrupted")
        ended += 1
    return ended


def worker_argv(spec: Spec, options: Options, number: int) -> list[str]:
    """The command a worker job runs: this search here, one trial at a time."""
    assert spec.path is not None
    argv = [sys.executable, "-m", "exman.sweep", str(spec.path)]
    argv += ["--backend", "local", "-j", "1", "--worker", str(number), "--quiet"]
    argv += ["--grace", f"{options.grace:g}"]
    if options.timeout is not None:
        argv += ["--timeout", f"{options.timeout:g}"]
    if options.max_failures is not None:
        argv += ["--max-failures", str(options.max_failures)]
    if options.fail_fast:
        argv.append("--fail-fast")
    return argv


def submit_workers(
    spec: Spec, root: Root, options: Options, summary: SweepSummary, left: int
) -> SweepSummary:
    """Submit worker jobs for the ``left`` trials that no run holds yet.

    At most ``options.jobs`` (else the search's ``parallel``) workers are
    queued or running at once, counting those of an earlier submission that
    SLURM still holds.

    :raises ExmanError: the spec is not a file (a worker reads it), GPU
        slots are asked for, or SLURM refuses the jobs.
    """
    assert spec.search is not None
    if spec.path is None:
        raise ExmanError(
            "search: on slurm each worker job reads the spec: give a spec file, "
            "not a mapping"
        )
    if options.gpus:
        raise ExmanError(
            "slurm assigns the GPUs itself: ask for them in the spec's slurm: "
            "section, not with --gpus"
        )
    summary.mode = "submit"
    parallel = options.jobs if options.jobs is not None else spec.search.parallel
    alive = live_workers(spec, root, options) or []
    count = max(0, min(parallel, left) - len(alive))
    if alive:
        summary.skipped["worker running"] = len(alive)
    if not count:
        return summary
    folder = sweep_dir(root, spec.name)
    logs = folder / "logs"
    make_dir(logs, exist_ok=True)
    workers = _read(root, spec.name)
    first = max((int(w.get("worker", -1)) for w in workers), default=-1) + 1
    tasks = [
        LaunchTask(
            index=n,
            key=f"worker-{n}",
            argv=worker_argv(spec, options, n),
            cwd=spec.cwd,
            env={SWEEP_ENV["name"]: spec.name},
            log=logs / f"worker-{n:03d}.log",
        )
        for n in range(first, first + count)
    ]
    launcher = make_launcher(spec, options)
    queued = launcher.submit(tasks, jobs=None, timeout=None)
    for q in queued:
        if q.job is None:
            continue
        workers.append({"worker": q.task.index, "job": q.job, "log": str(q.task.log)})
        summary.submitted[q.task.index] = q.job
    atomic_write(_book(root, spec.name), json.dumps(workers, indent=1) + "\n")
    summary.notes.append(
        f"search: {len(summary.submitted)} worker job"
        f"{'s' if len(summary.submitted) != 1 else ''} for {left} trial"
        f"{'s' if left != 1 else ''} (each runs one trial at a time; logs in {logs})"
    )
    return summary


#: the SIGTERMs this worker got outside its launcher's watch
_asked: list[int] = []


def become_worker(number: int) -> int:
    """Start worker ``number`` here: what its seed offset is.

    The job that runs it set the variables that make a command an attempt
    at a task; the worker's trials are tasks of their own, so they go.
    SLURM's SIGTERM reaches every process of the job, and the job's runner
    passes it on as well: the worker gets it twice. While trials run the
    launcher's own handler stops them; outside, the signal is only noted
    (:func:`stop_asked`), so that a late copy does not cut the worker's
    last words (the summary, the sweep's record) short.
    """
    for name in (JOB_ENV, ATTEMPT_ENV):
        os.environ.pop(name, None)
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _note)
    return SEED_STRIDE * number


def _note(signum: int, frame: object) -> None:
    _asked.append(signum)


def stop_asked() -> bool:
    """Whether the worker was asked to stop before it started its trials."""
    return bool(_asked)
