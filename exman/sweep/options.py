"""How a sweep was asked to run: its options, its launcher, its folder."""

from __future__ import annotations

import pathlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from ..record.store import Root
from .launchers.base import Launcher, get_launcher
from .spec import SWEEPS_DIR, Spec

__all__ = ["SWEEPS_DIR", "WORKER_COPIES", "Options", "make_launcher", "sweep_dir"]

#: seconds within which a search worker takes a signal again as a copy of
#: the first: SLURM signals every process of the job, and the job's runner
#: passes the signal on to the worker too; a later one means "now"
WORKER_COPIES = 1.0


def sweep_dir(root: Root, name: str) -> pathlib.Path:
    """``root/.exman/sweeps/<name>``: the sweep's record and its task logs."""
    return root.state / SWEEPS_DIR / name


@dataclass
class Options:
    """The keyword arguments of :func:`exman.sweep`, checked."""

    jobs: int | None = None
    dry_run: bool = False
    index: int | Sequence[int] | None = None
    shard: tuple[int, int] | None = None
    force: bool = False
    retry_failed: bool = False
    rerun_stale: bool = False
    fail_fast: bool = False
    max_failures: int | None = None
    timeout: float | None = None
    gpus: list[str] | None = None
    per_gpu: int = 1
    status: bool = False
    backend: str = "local"
    grace: float = 5.0
    launcher_options: dict[str, Any] = field(default_factory=dict)
    #: with a launcher that detaches (slurm): wait for the tasks all the same
    wait: bool = False
    #: this process is worker N of a search on a scheduler (:mod:`.workers`)
    worker: int | None = None

    @property
    def failure_limit(self) -> int | None:
        if self.fail_fast:
            return 1
        return self.max_failures

    @property
    def workers(self) -> int:
        if self.jobs is not None:
            return self.jobs
        return len(self.gpus) * self.per_gpu if self.gpus else 1


def make_launcher(spec: Spec, options: Options) -> Launcher:
    """The launcher of ``options.backend``, with the spec's section for it."""
    launcher_options = dict(options.launcher_options)
    if options.backend == "local":
        launcher_options.setdefault("grace", options.grace)
        if spec.resume:
            launcher_options.setdefault("resume", True)
            launcher_options.setdefault("max_attempts", spec.max_attempts)
        if options.worker is not None:
            launcher_options.setdefault("copies_within", WORKER_COPIES)
    elif options.backend == "ray":
        launcher_options = {"grace": options.grace, **spec.ray}
        if spec.resume:
            launcher_options.update(resume=True, max_attempts=spec.max_attempts)
        launcher_options.update(options.launcher_options)
    elif options.backend == "slurm":
        launcher_options = {"grace": options.grace, **spec.slurm}
        launcher_options.update(options.launcher_options)
    return get_launcher(options.backend, **launcher_options)
