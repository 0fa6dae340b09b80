"""Which distributed launch (torchrun, srun…) this process is part of.

Read from the launcher's environment alone, at the cost of a few lookups:
``RANK``/``WORLD_SIZE`` (torchrun and every launcher of torch.distributed;
``LOCAL_RANK`` where ``RANK`` is missing), ``SLURM_PROCID``/``SLURM_NTASKS``
(srun). See :mod:`exman.record.ranks` for how the ranks share one run.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

# not typing's: importing typing would slow every run's start
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

__all__ = ["LOG_RANKS_ENV", "Launch", "detect_launch"]

#: ``all``: exman.log records of every rank, each tagged with its rank
LOG_RANKS_ENV = "EXMAN_LOG_RANKS"


class Launch:
    """This process's place in a distributed launch."""

    __slots__ = ("key", "launcher", "rank", "unique", "world_size")

    def __init__(
        self, rank: int, world_size: int, key: str, unique: bool, launcher: str
    ) -> None:
        self.rank = rank
        self.world_size = world_size
        #: the same string in every process of the launch
        self.key = key
        #: the launcher gives this launch an id no other launch has
        self.unique = unique
        self.launcher = launcher

    def __repr__(self) -> str:
        return (
            f"Launch(rank={self.rank}, world_size={self.world_size}, "
            f"key={self.key!r}, unique={self.unique}, launcher={self.launcher!r})"
        )

    def record(self) -> dict[str, Any]:
        """What run.json keeps about the launch."""
        return {
            "launcher": self.launcher,
            "world_size": self.world_size,
            "key": self.key,
        }


def _int(env: Mapping[str, str], name: str) -> int | None:
    try:
        return int(env[name])
    except (KeyError, ValueError):
        return None


def detect_launch(env: Mapping[str, str] | None = None) -> Launch | None:
    """This process's launch, from the launcher's environment; None when it
    is the only process of its run."""
    env = os.environ if env is None else env
    rank = _int(env, "RANK")
    if rank is None:
        rank = _int(env, "LOCAL_RANK")
    world = _int(env, "WORLD_SIZE")
    if rank is not None and world is not None and world > 1:
        run_id = env.get("TORCHELASTIC_RUN_ID")
        if run_id and run_id != "none":
            restart = env.get("TORCHELASTIC_RESTART_COUNT", "0")
            return Launch(rank, world, f"torchrun:{run_id}:{restart}", True, "torchrun")
        slurm = _slurm_step(env)
        if slurm is not None:
            return Launch(rank, world, f"slurm:{slurm}", True, "srun")
        where = f"{env.get('MASTER_ADDR', '')}:{env.get('MASTER_PORT', '')}"
        return Launch(rank, world, f"env:{where}:{world}", False, "env")
    rank, world = _int(env, "SLURM_PROCID"), _int(env, "SLURM_NTASKS")
    slurm = _slurm_step(env)
    if rank is not None and world is not None and world > 1 and slurm is not None:
        return Launch(rank, world, f"slurm:{slurm}", True, "srun")
    return None


def _slurm_step(env: Mapping[str, str]) -> str | None:
    """``<job>.<step>`` inside an ``srun`` step (not a batch script's own)."""
    job, step = env.get("SLURM_JOB_ID"), env.get("SLURM_STEP_ID")
    return f"{job}.{step}" if job and step else None
