"""The options of the Ray launcher: the spec's ``ray:`` section and flags.

:func:`check_options` validates a mapping of options (from the spec, the
command line or Python) and returns it normalised. Nothing here imports
ray: a spec is checked on any machine.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["RAY_KEYS", "check_options"]

#: the keys of a spec's ``ray:`` section
RAY_KEYS = ("address", "cpus", "gpus", "memory", "resources", "max_retries")
_UNITS = {"": 1, "k": 2**10, "m": 2**20, "g": 2**30, "t": 2**40}
_SIZE = re.compile(r"(\d+(?:\.\d*)?)\s*([kmgt]?)(?:i?b)?", re.IGNORECASE)

Err = Callable[[str, str], Exception]


def check_options(data: Any, err: Err, where: str = "ray") -> dict[str, Any]:
    """Validate a ``ray:`` section; returns it with ``memory`` in bytes.

    :param err: makes the exception for a key (``"ray.cpus"``) and a problem.
    :raises Exception: what ``err`` makes, for the first wrong key or value.
    """
    if data is None:
        return {}
    if not isinstance(data, Mapping):
        raise err(where, "must be a mapping, e.g. {cpus: 2, gpus: 1}")
    unknown = [str(k) for k in data if k not in RAY_KEYS]
    if unknown:
        raise err(f"{where}.{unknown[0]}", "unknown key; valid: " + ", ".join(RAY_KEYS))
    out: dict[str, Any] = {}
    address = data.get("address")
    if address is not None:
        if not isinstance(address, str) or not address.strip():
            raise err(f"{where}.address", f"must be auto or host:port, not {address!r}")
        out["address"] = address.strip()
    for key in ("cpus", "gpus"):
        if data.get(key) is not None:
            out[key] = _quantity(data[key], err, f"{where}.{key}")
    if data.get("memory") is not None:
        out["memory"] = _memory(data["memory"], err, f"{where}.memory")
    resources = data.get("resources")
    if resources is not None:
        if not isinstance(resources, Mapping):
            raise err(f"{where}.resources", "must map resource names to amounts")
        out["resources"] = {
            str(name): _quantity(amount, err, f"{where}.resources.{name}")
            for name, amount in resources.items()
        }
        for name, key in (("CPU", "cpus"), ("GPU", "gpus"), ("memory", "memory")):
            if name in out["resources"]:
                raise err(f"{where}.resources.{name}", f"set it with {where}.{key}")
    retries = data.get("max_retries")
    if retries is not None:
        if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
            raise err(
                f"{where}.max_retries", f"must be a whole number >= 0, not {retries!r}"
            )
        out["max_retries"] = retries
    return out


def _quantity(value: Any, err: Err, key: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise err(key, f"must be a number, not {value!r}")
    if not math.isfinite(value) or value < 0:
        raise err(key, f"must be a number >= 0, not {value!r}")
    if value > 1 and value != int(value):
        raise err(key, f"Ray takes fractions only below 1: {value!r}")
    return int(value) if value == int(value) else float(value)


def _memory(value: Any, err: Err, key: str) -> int:
    if isinstance(value, bool):
        value = None
    if isinstance(value, int) and value > 0:
        return value
    if isinstance(value, str):
        match = _SIZE.fullmatch(value.strip())
        if match:
            size = int(float(match[1]) * _UNITS[match[2].lower()])
            if size > 0:
                return size
    raise err(key, f"must be bytes or a size such as 512M or 4G, not {value!r}")
