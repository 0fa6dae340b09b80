"""The values of a spec, each checked: errors name the file and the key."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from .expand import SpecError

__all__ = [
    "DISTRIBUTIONS",
    "RANDOM_KEYS",
    "Errors",
    "check_value",
    "command_flags",
    "config_list",
    "grid_values",
    "ignore_list",
    "norm_name",
    "param_name",
    "random_section",
]

RANDOM_KEYS = ("samples", "seed", "space")
#: the distributions of ``random.space``, with the form of their argument
DISTRIBUTIONS = {
    "uniform": "[low, high]",
    "loguniform": "[low, high] with 0 < low",
    "randint": "[low, high], both included",
    "normal": "[mean, std]",
    "choice": "[value, value, ...]",
}


class Errors:
    """Makes :class:`SpecError` messages that name the file and the key."""

    def __init__(self, where: str) -> None:
        self.where = where

    def __call__(self, key: str, problem: str) -> SpecError:
        return SpecError(f"{self.where}: {key}: {problem}")


def norm_name(name: str) -> str:
    return name.replace("-", "_")


def command_flags(argv: Sequence[str]) -> list[str]:
    """The long options given in the command (``--lr 0.1``, ``--lr=0.1``)."""
    flags = []
    for word in argv[1:]:
        if word.startswith("--") and len(word) > 2:
            flags.append(word[2:].split("=", 1)[0])
    return flags


def ignore_list(value: Any, err: Errors) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(
        isinstance(v, str) and v.strip("-") for v in value
    ):
        raise err("ignore", f"must be a list of flags of command, not {value!r}")
    return [v.lstrip("-") for v in value]


def check_value(value: Any, err: Errors, key: str) -> Any:
    """A value the script can take: a scalar, or a list of scalars (``nargs``)."""
    scalar = (str, int, float, bool, type(None))
    if isinstance(value, scalar):
        return value
    if isinstance(value, list) and all(isinstance(v, scalar) for v in value):
        return value
    if isinstance(value, (list, dict)):
        raise err(
            key,
            f"{value!r}: values must be numbers, strings, booleans, null or "
            "lists of those (for nargs arguments)",
        )
    raise err(
        key,
        f"{value!r} is a {type(value).__name__}; quote it to pass it as a string",
    )


def param_name(name: Any, err: Errors, where: str) -> str:
    if not isinstance(name, str) or not name or name.startswith("-"):
        raise err(
            where,
            f"{name!r} is not a parameter name: use the argument's name "
            "without dashes, as in params.yaml (lr, not --lr)",
        )
    return name


def grid_values(value: Any, err: Errors) -> dict[str, list[Any]]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise err("grid", "must map parameter names to lists of values")
    grid: dict[str, list[Any]] = {}
    for name, values in value.items():
        name = param_name(name, err, "grid")
        if not isinstance(values, list):
            values = [values]  # a single value: fixed for every task
        if not values:
            raise err(f"grid.{name}", "is an empty list: the sweep would have no tasks")
        grid[name] = [check_value(v, err, f"grid.{name}") for v in values]
    return grid


def config_list(value: Any, err: Errors) -> list[dict[str, Any]]:
    if value is None:
        return []
    if not isinstance(value, list) or not value:
        raise err("configs", "must be a non-empty list of mappings")
    configs = []
    for i, config in enumerate(value):
        if not isinstance(config, Mapping):
            raise err(f"configs[{i}]", f"must be a mapping, not {config!r}")
        configs.append(
            {
                param_name(k, err, f"configs[{i}]"): check_value(
                    v, err, f"configs[{i}].{k}"
                )
                for k, v in config.items()
            }
        )
    return configs


def number(value: Any, err: Errors, key: str) -> float:
    # YAML 1.1 reads 1e-5 (no dot) as a string: accept it as the number it means
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            pass
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise err(key, f"{value!r} is not a number")
    if not math.isfinite(value):
        raise err(key, f"{value!r} is not a finite number")
    return value


def random_section(value: Any, err: Errors) -> dict[str, Any] | None:
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise err("random", "must be a mapping with samples, seed and space")
    unknown = [str(k) for k in value if k not in RANDOM_KEYS]
    if unknown:
        raise err(
            f"random.{unknown[0]}", "unknown key; valid: " + ", ".join(RANDOM_KEYS)
        )
    samples = value.get("samples")
    if isinstance(samples, bool) or not isinstance(samples, int) or samples < 1:
        raise err("random.samples", f"must be a whole number >= 1, not {samples!r}")
    seed = value.get("seed", 0)
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise err("random.seed", f"must be a whole number, not {seed!r}")
    space = value.get("space")
    if not isinstance(space, Mapping) or not space:
        raise err("random.space", "must map parameter names to distributions")
    parsed: dict[str, tuple[str, Any]] = {}
    for name, dist in space.items():
        name = param_name(name, err, "random.space")
        key = f"random.space.{name}"
        if not isinstance(dist, Mapping) or len(dist) != 1:
            raise err(
                key,
                "must be one distribution, e.g. {uniform: [0.0, 1.0]}; "
                "known: " + ", ".join(DISTRIBUTIONS),
            )
        ((kind, args),) = dist.items()
        if kind not in DISTRIBUTIONS:
            raise err(
                key,
                f"unknown distribution {kind!r}; known: " + ", ".join(DISTRIBUTIONS),
            )
        parsed[name] = (kind, dist_args(kind, args, err, f"{key}.{kind}"))
    return {"samples": samples, "seed": seed, "space": parsed}


def dist_args(kind: str, args: Any, err: Errors, key: str) -> Any:
    if kind == "choice":
        if not isinstance(args, list) or not args:
            raise err(key, "must be a non-empty list of values")
        return [check_value(v, err, key) for v in args]
    if not isinstance(args, list) or len(args) != 2:
        raise err(key, f"must be {DISTRIBUTIONS[kind]}, not {args!r}")
    low, high = (number(v, err, key) for v in args)
    if kind == "randint":
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in args):
            raise err(key, f"bounds must be whole numbers: {args!r}")
        low, high = int(low), int(high)
    if kind == "normal":
        if high <= 0:
            raise err(key, f"the standard deviation must be > 0: {args!r}")
    elif low > high or (kind != "randint" and low == high):
        raise err(key, f"needs low < high: {args!r}")
    if kind == "loguniform" and low <= 0:
        raise err(key, f"needs 0 < low: {args!r}")
    return (low, high)
