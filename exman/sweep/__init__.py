"""``exman sweep``: grids, random search and repetitions of an ExParser script.

A spec file names the command and the values; :func:`sweep` expands it into
numbered tasks, skips the ones the root already holds a completed run of,
and runs the rest with a launcher (``local``: worker processes here).
``exman sweep SPEC`` is a thin wrapper around it.
"""

from __future__ import annotations

import os
import sys
import types
from collections.abc import Mapping, Sequence
from typing import Any, Union

from ..record.store import ExmanError
from .launchers.slurm_options import check_options as _slurm_options
from .plan import parse_shard
from .progress import make_progress
from .runner import Options, execute
from .spec import Spec, SpecError, Task, load_spec
from .summary import SweepSummary, TaskResult

__all__ = [
    "Spec",
    "SpecError",
    "SweepSummary",
    "Task",
    "TaskResult",
    "load_spec",
    "sweep",
]

SpecLike = Union[Spec, Mapping[str, Any], str, "os.PathLike[str]"]


def sweep(
    spec_or_path: SpecLike,
    *,
    jobs: int | None = None,
    dry_run: bool = False,
    index: int | Sequence[int] | None = None,
    shard: str | tuple[int, int] | None = None,
    force: bool = False,
    retry_failed: bool = False,
    rerun_stale: bool = False,
    fail_fast: bool = False,
    max_failures: int | None = None,
    timeout: float | None = None,
    gpus: str | Sequence[int | str] | None = None,
    per_gpu: int = 1,
    status: bool = False,
    backend: str = "local",
    grace: float = 5.0,
    progress: bool = False,
    address: str | None = None,
    slurm: Mapping[str, Any] | None = None,
    wait: bool = False,
    worker: int | None = None,
) -> SweepSummary:
    """Run the tasks of a sweep that are not done yet.

    Once tasks it ran have ended, the runs are read into the index's cache
    (:func:`exman.look.gather.warm`): the next ``Index(root).info()`` or
    ``exman ls`` finds them read.

    :param spec_or_path: a spec file (YAML or JSON), a mapping with the same
        keys (relative paths then start from the current folder), or a
        :class:`Spec`.
    :param jobs: tasks run at once (default: 1, or one per GPU slot).
    :param dry_run: run nothing; :attr:`SweepSummary.commands` holds a shell
        line per task that would run.
    :param index: run only this task number (or these).
    :param shard: ``"K/N"`` or ``(K, N)``: only the tasks whose number is K
        modulo N (shards are numbered from 0).
    :param force: run completed and failed tasks again (never a task that
        is running).
    :param retry_failed: run failed tasks again.
    :param rerun_stale: run completed tasks again whose code changed since:
        their run's code fingerprint differs from the one of its git work
        tree (commit and uncommitted changes) or script now.
    :param fail_fast: start no new task after the first failure.
    :param max_failures: start no new task after this many failures.
    :param timeout: seconds a task may run; then its process group is
        stopped and the task recorded as failed.
    :param gpus: GPU ids (``"0,1"`` or ``[0, 1]``): each task gets one slot
        in ``CUDA_VISIBLE_DEVICES``.
    :param per_gpu: tasks that share one GPU.
    :param status: run nothing; the summary's ``states`` hold every task's
        state.
    :param backend: the launcher (``"local"``, ``"ray"``, ``"slurm"``).
    :param grace: seconds a stopped task gets before SIGKILL.
    :param progress: show the progress (live on a terminal, else lines).
    :param address: the Ray cluster for ``backend="ray"`` (``"auto"``,
        ``"host:port"``); it overrides ``address`` in the spec's ``ray:``.
    :param slurm: options for ``backend="slurm"``, with the keys of the
        spec's ``slurm:`` section (``partition``, ``time``…), over which they
        take precedence.
    :param wait: with ``backend="slurm"``, wait for the tasks (and show the
        progress) instead of returning once they are submitted.
    :returns: what ran and how it ended; ``exit_code`` is what the command
        line returns.
    :raises SpecError: the spec is wrong (the message names file and key).
    :raises ExmanError: an option is wrong.
    """
    spec = _spec(spec_or_path)
    options = Options(
        jobs=jobs,
        dry_run=dry_run,
        index=index,
        shard=parse_shard(shard) if isinstance(shard, str) else shard,
        force=force,
        retry_failed=retry_failed,
        rerun_stale=rerun_stale,
        fail_fast=fail_fast,
        max_failures=max_failures,
        timeout=timeout,
        gpus=_gpus(gpus),
        per_gpu=per_gpu,
        status=status,
        backend=backend,
        grace=grace,
        launcher_options={} if address is None else {"address": address},
        wait=wait,
        worker=worker,
    )
    if slurm:
        if backend != "slurm":
            raise ExmanError(
                "slurm options are for the slurm backend: add --backend slurm"
            )
        options.launcher_options.update(_slurm_options(slurm, _option_error))
    _check(options)
    show = progress and not (status or dry_run)
    summary = execute(spec, options, make_progress(show))
    if summary.mode == "run" and summary.results and worker is None:
        _warm(summary, show)
    return summary


#: from this many runs made, the sweep says that it reads them as it ends
_WARM_NOTE = 1000


def _warm(summary: SweepSummary, show: bool) -> None:
    """Read the runs just made into the index's cache: the user's next load
    (``Index(root).info()``, ``exman ls``) then finds them read. It saves
    time only: whatever goes wrong is left to that load, and Ctrl-C skips
    it."""
    from ..look.gather import warm
    from ..record.store import Root

    made = len(summary.results)
    if show and made >= _WARM_NOTE:  # about a second per 10,000 runs
        print(
            f"exman sweep: reading the {made:,} runs into the index's cache "
            "for the next load (Ctrl-C skips it)",
            file=sys.stderr,
        )
    folders = [r.run.folder for r in summary.results if r.run is not None]
    try:
        warm(Root(summary.root), folders)
    except (Exception, KeyboardInterrupt):  # the sweep has ended: nothing is lost
        pass


def _option_error(key: str, problem: str) -> ExmanError:
    return ExmanError(f"{key}: {problem}")


def _spec(value: SpecLike) -> Spec:
    if isinstance(value, Spec):
        return value
    if isinstance(value, Mapping):
        return Spec.from_mapping(value)
    if isinstance(value, (str, os.PathLike)):
        return load_spec(value)
    raise ExmanError(
        f"expected a spec file, a mapping or a Spec, not {type(value).__name__}"
    )


def _gpus(value: str | Sequence[int | str] | None) -> list[str] | None:
    if value is None:
        return None
    items = value.split(",") if isinstance(value, str) else [str(v) for v in value]
    gpus = [g.strip() for g in items if g.strip()]
    if not gpus:
        raise ExmanError(f"gpus {value!r} names no GPU: give ids like 0,1")
    return gpus


def _check(options: Options) -> None:
    if options.status and options.dry_run:
        raise ExmanError("status and dry_run exclude each other: choose one")
    if options.jobs is not None and options.jobs < 1:
        raise ExmanError(f"jobs must be >= 1, not {options.jobs}")
    if options.worker is not None and options.worker < 0:
        raise ExmanError(f"worker must be >= 0, not {options.worker}")
    if options.per_gpu < 1:
        raise ExmanError(f"per_gpu must be >= 1, not {options.per_gpu}")
    if options.max_failures is not None and options.max_failures < 1:
        raise ExmanError(f"max_failures must be >= 1, not {options.max_failures}")
    if options.timeout is not None and options.timeout <= 0:
        raise ExmanError(f"timeout must be > 0 seconds, not {options.timeout}")
    if options.grace < 0:
        raise ExmanError(f"grace must be >= 0 seconds, not {options.grace}")
    if "address" in options.launcher_options and options.backend != "ray":
        raise ExmanError("an address is for the ray backend: add --backend ray")


class _CallableModule(types.ModuleType):
    """``exman.sweep`` names this package, and calling it runs :func:`sweep`.

    The package and the function share their name, and Python binds the
    package to ``exman.sweep`` as soon as anything imports it: calling the
    package keeps ``exman.sweep(...)`` working whichever it names.
    """

    def __call__(self, *args: Any, **kwargs: Any) -> SweepSummary:
        return sweep(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
