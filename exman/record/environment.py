"""What a run ran on: Python, platform, SLURM job, GPUs and packages.

Recorded as ``env`` in the run's ``run.json``. :func:`at_start` is what
costs nothing (the interpreter, ``os.uname()``, environment variables, a
folder that lists the node's NVIDIA GPUs); :func:`at_end` adds the
distributions the process imported by the time it ends, when the run ends.

What :func:`at_end` records depends on ``EXMAN_PACKAGES``:

``auto`` (the default)
    the distribution and version of every top-level module imported,
    looked up with :mod:`importlib.metadata` when the run lasted at least
    :data:`LOOKUP_AFTER` seconds (the look-up takes tens of milliseconds,
    which would double the time of a run that parses and exits); a
    shorter run records each module's ``__version__`` instead;
``imports``
    the same look-up, whatever the run's length;
``freeze``
    every installed distribution, as ``pip freeze`` lists them;
``none``
    no packages.
"""

from __future__ import annotations

import os
import sys
import time

# not typing's: importing typing would slow every run's start
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

__all__ = ["LOOKUP_AFTER", "MODES", "PACKAGES_ENV", "at_end", "at_start", "mode"]

PACKAGES_ENV = "EXMAN_PACKAGES"
MODES = ("auto", "imports", "freeze", "none")
#: seconds a run lasts before ``auto`` looks its packages up
LOOKUP_AFTER = 2.0
#: SLURM's variables and the names they are recorded under
SLURM_VARIABLES = {
    "job_id": "SLURM_JOB_ID",
    "array_job_id": "SLURM_ARRAY_JOB_ID",
    "array_task_id": "SLURM_ARRAY_TASK_ID",
    "node": "SLURMD_NODENAME",
    "nodelist": "SLURM_JOB_NODELIST",
    "partition": "SLURM_JOB_PARTITION",
    "cluster": "SLURM_CLUSTER_NAME",
    "step_id": "SLURM_STEP_ID",
    "procid": "SLURM_PROCID",
}
NVIDIA_GPUS = "/proc/driver/nvidia/gpus"

_began = time.monotonic()


def mode() -> str:
    """The ``EXMAN_PACKAGES`` mode; an unknown value is ``auto``."""
    value = os.environ.get(PACKAGES_ENV, "").strip().lower() or "auto"
    return value if value in MODES else "auto"


def _nvidia_gpus() -> list[str]:
    """The model of each NVIDIA GPU of this node, from the driver's files."""
    try:
        names = sorted(os.listdir(NVIDIA_GPUS))
    except OSError:
        return []
    models = []
    for name in names:
        try:
            with open(os.path.join(NVIDIA_GPUS, name, "information")) as f:
                for line in f:
                    key, _, value = line.partition(":")
                    if key.strip() == "Model":
                        models.append(value.strip())
                        break
        except OSError:
            continue
    return models


def at_start() -> dict[str, Any]:
    """The environment that costs nothing to read: no import, no process."""
    platform = sys.platform
    if hasattr(os, "uname"):
        uname = os.uname()
        platform = f"{uname.sysname}-{uname.release}-{uname.machine}"
    env: dict[str, Any] = {
        "python": sys.version.split()[0],
        "implementation": sys.implementation.name,
        "prefix": sys.prefix,
        "platform": platform,
    }
    slurm = {
        key: os.environ[var]
        for key, var in SLURM_VARIABLES.items()
        if var in os.environ
    }
    if "job_id" in slurm:
        env["slurm"] = slurm
    if "CUDA_VISIBLE_DEVICES" in os.environ:
        env["cuda_visible_devices"] = os.environ["CUDA_VISIBLE_DEVICES"]
    gpus = _nvidia_gpus()
    if gpus:
        env["gpus"] = gpus
    return env


def _top_modules() -> list[str]:
    """The top-level modules imported that are neither the standard
    library's nor private."""
    stdlib: frozenset[str] = getattr(sys, "stdlib_module_names", frozenset())
    builtin = set(sys.builtin_module_names)
    names = {name.partition(".")[0] for name in list(sys.modules)}
    return sorted(
        n
        for n in names
        if n
        and not n.startswith("_")
        and n not in stdlib
        and n not in builtin
        and n != "__main__"
    )


def _module_versions(names: list[str]) -> dict[str, str | None]:
    """``__version__`` of each module (None where it has none): no I/O."""
    out: dict[str, str | None] = {}
    for name in names:
        version = getattr(sys.modules.get(name), "__version__", None)
        out[name] = version if isinstance(version, str) else None
    return out


def _lookup(names: list[str]) -> dict[str, str]:
    """``{distribution: version}`` of the distributions holding ``names``.

    A module whose distribution is not found keeps its ``__version__``,
    under its own name.
    """
    import importlib.metadata as metadata

    found: dict[str, str] = {}
    missing = []
    for name in names:
        try:
            dist = metadata.distribution(name)
        except (metadata.PackageNotFoundError, ValueError):
            missing.append(name)
            continue
        found[dist.metadata["Name"] or name] = dist.version
    if missing:
        # modules named otherwise than their distribution (yaml: PyYAML)
        owners: dict[str, Any] = {}
        for dist in metadata.distributions():
            try:
                top = dist.read_text("top_level.txt") or ""
            except OSError:
                continue
            for line in top.split():
                owners.setdefault(line.strip(), dist)
        for name in missing:
            owner = owners.get(name)
            if owner is not None:
                found[owner.metadata["Name"] or name] = owner.version
                continue
            version = _module_versions([name])[name]
            if version is not None:
                found[name] = version
    return dict(sorted(found.items(), key=lambda kv: kv[0].lower()))


def _freeze() -> dict[str, str]:
    import importlib.metadata as metadata

    found: dict[str, str] = {}
    for dist in metadata.distributions():
        name = dist.metadata["Name"]
        if name:
            found.setdefault(name, dist.version)
    return dict(sorted(found.items(), key=lambda kv: kv[0].lower()))


def _torch_gpus() -> list[str] | None:
    """The CUDA devices torch uses, when the script imported torch and
    started CUDA (never started here: that would cost seconds)."""
    torch = sys.modules.get("torch")
    cuda = getattr(torch, "cuda", None)
    try:
        if cuda is None or not cuda.is_initialized():
            return None
        return [str(cuda.get_device_name(i)) for i in range(cuda.device_count())]
    except Exception:  # whatever torch raises, the run's end must go on
        return None


def at_end(*, lookup: bool = True) -> dict[str, Any]:
    """What the run imported, by the time it ends.

    :param lookup: allow :mod:`importlib.metadata` (False in a signal
        handler, where the process must end quickly).
    """
    chosen = mode()
    env: dict[str, Any] = {}
    devices = _torch_gpus()
    if devices:
        env["cuda_devices"] = devices
    if chosen == "none":
        return env
    names = _top_modules()
    try:
        if chosen == "freeze" and lookup:
            env["packages"] = _freeze()
            env["packages_from"] = "freeze"
            return env
        long_enough = time.monotonic() - _began >= LOOKUP_AFTER
        if lookup and (chosen == "imports" or long_enough):
            env["packages"] = _lookup(names)
            env["packages_from"] = "metadata"
            return env
    except Exception:  # a broken distribution's metadata: fall back
        pass
    versions = _module_versions(names)
    env["packages"] = {k: v for k, v in versions.items() if v is not None}
    env["packages_from"] = "__version__"
    return env
