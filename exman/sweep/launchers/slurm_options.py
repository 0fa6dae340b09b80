"""The options of the SLURM launcher: the spec's ``slurm:`` section and flags.

:func:`check_options` validates a mapping of options (from the spec, the
command line or Python) and returns it normalised; :class:`SlurmOptions`
holds the result. Nothing here imports submitit: a spec is checked on any
machine.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["SLURM_KEYS", "SlurmOptions", "check_options", "parse_time"]

#: the keys of a spec's ``slurm:`` section (and of ``exman.sweep(slurm=...)``)
SLURM_KEYS = (
    "partition",
    "time",
    "cpus",
    "mem",
    "gpus_per_task",
    "array_parallelism",
    "max_array_size",
    "requeue",
    "max_requeue",
    "sbatch",
    "setup",
)
#: sbatch options that exman sets itself, or that have a key of their own
_MANAGED = {
    "array": "exman sets it from the tasks",
    "output": "each task's output goes to its log",
    "error": "each task's output goes to its log",
    "open-mode": "each task's output goes to its log",
    "signal": "set by submitit for requeueing",
    "wrap": "the command is the spec's",
    "partition": "set it with slurm.partition",
    "p": "set it with slurm.partition",
    "time": "set it with slurm.time",
    "t": "set it with slurm.time",
    "cpus-per-task": "set it with slurm.cpus",
    "c": "set it with slurm.cpus",
    "mem": "set it with slurm.mem",
    "gpus-per-node": "set it with slurm.gpus_per_task",
    "requeue": "set it with slurm.requeue",
}
_TIME = re.compile(r"(?:(\d+)-)?(\d+)(?::(\d+))?(?::(\d+))?")
_MEM = re.compile(r"(\d+)\s*([KMGT]?)(?:I?B)?", re.IGNORECASE)

Err = Callable[[str, str], Exception]


@dataclass(frozen=True)
class SlurmOptions:
    """What each array element asks of SLURM, normalised (see :func:`check_options`)."""

    partition: str | None = None
    #: minutes
    time: int | None = None
    cpus: int | None = None
    #: as sbatch takes it: ``"4G"``, ``"500M"``
    mem: str | None = None
    gpus_per_task: int | None = None
    array_parallelism: int | None = None
    max_array_size: int | None = None
    requeue: bool = False
    max_requeue: int = 3
    sbatch: dict[str, Any] = field(default_factory=dict)
    setup: list[str] = field(default_factory=list)

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], err: Err) -> SlurmOptions:
        return cls(**check_options(data, err))


def check_options(data: Any, err: Err, where: str = "slurm") -> dict[str, Any]:
    """Validate a ``slurm:`` section; returns it normalised (``time`` in minutes).

    :param err: makes the exception for a key (``"slurm.time"``) and a problem.
    :raises Exception: what ``err`` makes, for the first wrong key or value;
        an unknown key lists the valid ones.
    """
    if data is None:
        return {}
    if not isinstance(data, Mapping):
        raise err(where, "must be a mapping, e.g. {partition: gpu, time: 60}")
    unknown = [str(k) for k in data if k not in SLURM_KEYS]
    if unknown:
        raise err(
            f"{where}.{unknown[0]}", "unknown option; valid: " + ", ".join(SLURM_KEYS)
        )
    out: dict[str, Any] = {}
    for key, value in data.items():
        if value is None:
            continue
        name = f"{where}.{key}"
        if key == "partition":
            if not isinstance(value, str) or not value.strip():
                raise err(name, f"must be a partition name, not {value!r}")
            out[key] = value.strip()
        elif key == "time":
            out[key] = parse_time(value, err, name)
        elif key in ("cpus", "array_parallelism", "max_array_size"):
            out[key] = _whole(value, err, name, least=1)
        elif key in ("gpus_per_task", "max_requeue"):
            out[key] = _whole(value, err, name, least=0)
        elif key == "mem":
            out[key] = _mem(value, err, name)
        elif key == "requeue":
            if not isinstance(value, bool):
                raise err(name, f"must be true or false, not {value!r}")
            out[key] = value
        elif key == "sbatch":
            out[key] = _sbatch(value, err, name)
        else:  # setup
            if not isinstance(value, list) or not all(
                isinstance(v, str) for v in value
            ):
                raise err(
                    name, "must be a list of shell lines, e.g. [module load cuda]"
                )
            out[key] = list(value)
    return out


def parse_time(value: Any, err: Err, name: str = "time") -> int:
    """A time limit in whole minutes: ``90``, ``"90"``, ``"1:30:00"``, ``"2-00:00:00"``.

    The forms are sbatch's: ``M``, ``M:S``, ``H:M:S``, ``D-H``, ``D-H:M``,
    ``D-H:M:S``; seconds are rounded up to the minute (SLURM counts minutes).
    """
    if isinstance(value, bool):
        raise err(name, f"must be minutes or [D-]HH:MM:SS, not {value!r}")
    if isinstance(value, int):
        minutes = value
    elif isinstance(value, str) and (match := _TIME.fullmatch(value.strip())):
        days, hours_or_minutes, second, third = match.groups()
        first = int(hours_or_minutes)
        if days is not None:  # D-H, D-H:M, D-H:M:S
            seconds = int(days) * 86400 + first * 3600
            seconds += int(second or 0) * 60 + int(third or 0)
        elif third is not None:  # H:M:S
            seconds = first * 3600 + int(second or 0) * 60 + int(third)
        elif second is not None:  # M:S
            seconds = first * 60 + int(second)
        else:
            seconds = first * 60
        minutes = math.ceil(seconds / 60)
    else:
        raise err(
            name,
            f"{value!r} is not a time: give minutes (90) or [D-]HH:MM:SS (1:30:00)",
        )
    if minutes < 1:
        raise err(name, f"must be at least 1 minute, not {value!r}")
    return minutes


def _whole(value: Any, err: Err, name: str, *, least: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < least:
        raise err(name, f"must be a whole number >= {least}, not {value!r}")
    return value


def _mem(value: Any, err: Err, name: str) -> str:
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return f"{value}M"
    if isinstance(value, str) and (match := _MEM.fullmatch(value.strip())):
        number, unit = match.groups()
        if int(number) > 0:
            return f"{number}{unit.upper() or 'M'}"
    raise err(name, f"{value!r} is not a memory size: give e.g. 4G, 500M or 2048 (MB)")


def _sbatch(value: Any, err: Err, name: str) -> dict[str, Any]:
    if not isinstance(value, Mapping):
        raise err(name, "must map sbatch options to values, e.g. {qos: high}")
    out: dict[str, Any] = {}
    for key, item in value.items():
        if not isinstance(key, str) or not key.strip("-"):
            raise err(name, f"{key!r} is not an sbatch option")
        flag = key.strip().lstrip("-").replace("_", "-")
        if flag in _MANAGED:
            raise err(f"{name}.{key}", _MANAGED[flag])
        if not isinstance(item, (str, int, float, bool)):
            raise err(
                f"{name}.{key}", f"must be a string, number or true, not {item!r}"
            )
        if item is False:
            continue  # a flag left off
        out[flag] = item
    return out
