"""The ``search:`` section of a spec: an adaptive search, read and checked.

.. code-block:: yaml

    search:
      method: tpe          # tpe, cmaes, random, grid
      trials: 50           # the budget: trials in the study, whatever their end
      objective: loss      # a result (or the last value of a metric) of each run
      direction: minimize  # or maximize
      parallel: 4          # trials at once (-j overrides it)
      pruner: median       # none, median, successive_halving (asha), hyperband
      seed: 0
      # or, with Optuna's settings of each (see .samplers):
      # sampler: {name: tpe, n_startup_trials: 5, seed: 1}
      # pruner: {name: median, n_warmup_steps: 3}
      space:
        lr: {low: 1.0e-5, high: 1, log: true}
        dropout: {low: 0, high: 0.5}
        layers: {low: 1, high: 4, type: int}
        act: {choices: [relu, tanh]}

Nothing here imports the optimiser: a spec is checked (``--dry-run``,
``--status`` of another sweep) without it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .samplers import PRUNERS as PRUNER_SETTINGS
from .samplers import SAMPLERS, choice
from .values import Errors

__all__ = [
    "DIRECTIONS",
    "METHODS",
    "PARAM_KEYS",
    "PRUNERS",
    "SEARCH_KEYS",
    "Param",
    "Search",
    "search_section",
]

METHODS = tuple(SAMPLERS)
#: ``asha`` is another name of ``successive_halving``
PRUNERS = (*PRUNER_SETTINGS, "asha")
DIRECTIONS = ("minimize", "maximize")
SEARCH_KEYS = (
    "method",
    "sampler",
    "trials",
    "objective",
    "direction",
    "parallel",
    "pruner",
    "seed",
    "grace",
    "space",
)
PARAM_KEYS = ("low", "high", "log", "step", "type", "choices")
#: the keys of the spec that a search excludes: it makes its own tasks
NOT_WITH_SEARCH = ("grid", "configs", "random", "repeat", "seed_param")


@dataclass(frozen=True)
class Param:
    """One parameter of the space: a range (``float``, ``int``) or ``choice``."""

    name: str
    kind: str
    low: float | int | None = None
    high: float | int | None = None
    log: bool = False
    step: float | int | None = None
    choices: tuple[Any, ...] = ()


@dataclass(frozen=True)
class Search:
    """A checked ``search:`` section."""

    method: str
    trials: int
    objective: str
    direction: str
    parallel: int
    pruner: str
    seed: int
    #: seconds a pruned trial gets to stop by itself before it is signalled
    grace: float
    space: tuple[Param, ...] = field(default_factory=tuple)
    #: the sampler's settings besides its seed, and the pruner's (Optuna's
    #: keyword arguments, checked by :mod:`.samplers`)
    sampler_settings: dict[str, Any] = field(default_factory=dict)
    pruner_settings: dict[str, Any] = field(default_factory=dict)

    @property
    def names(self) -> list[str]:
        return [p.name for p in self.space]


def search_section(value: Any, err: Errors) -> Search | None:
    """The ``search:`` section checked, None when the spec has none.

    :raises SpecError: a key or value is wrong; the message names it.
    """
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise err(
            "search", f"must be a mapping (method, trials, space…), not {value!r}"
        )
    unknown = [str(k) for k in value if k not in SEARCH_KEYS]
    if unknown:
        raise err(
            f"search.{unknown[0]}",
            "is not a key of search; valid keys: " + ", ".join(SEARCH_KEYS),
        )
    if "sampler" in value and "method" in value:
        raise err(
            "search.sampler",
            "names the method too: give search.sampler or search.method, not both",
        )
    key = "search.sampler" if "sampler" in value else "search.method"
    given = value.get("sampler", value.get("method", "tpe"))
    method, sampler_settings = choice(given, key, SAMPLERS, err, default="tpe")
    pruner, pruner_settings = choice(
        value.get("pruner", "none"), "search.pruner", PRUNER_SETTINGS, err
    )
    direction = _one_of(
        value.get("direction", "minimize"), DIRECTIONS, "search.direction", err
    )
    trials = _count(value.get("trials"), "search.trials", err, required=True)
    parallel = _count(value.get("parallel", 1), "search.parallel", err)
    if "seed" in sampler_settings and "seed" in value:
        raise err(
            "search.sampler.seed",
            "the seed is given twice: keep search.seed or search.sampler.seed",
        )
    seed = sampler_settings.pop("seed", value.get("seed", 0))
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise err("search.seed", f"must be a whole number, not {seed!r}")
    grace = value.get("grace", 5)
    if isinstance(grace, bool) or not isinstance(grace, (int, float)) or grace < 0:
        raise err("search.grace", f"must be a number of seconds >= 0, not {grace!r}")
    objective = value.get("objective")
    if not isinstance(objective, str) or not objective.strip():
        raise err(
            "search.objective",
            "is required: the name of a result (exman.result) or metric "
            "(exman.log) of each run, e.g. objective: loss",
        )
    space = value.get("space")
    if not isinstance(space, Mapping) or not space:
        raise err(
            "search.space",
            "is required: a mapping of parameters to ranges or choices, e.g. "
            "lr: {low: 1.0e-5, high: 1, log: true}",
        )
    params = tuple(_param(str(k), v, err) for k, v in space.items())
    if method == "grid":
        for p in params:
            if p.kind == "float" and p.step is None:
                raise err(
                    f"search.space.{p.name}",
                    "method grid needs choices, an int range or a step: a "
                    "continuous range has no grid",
                )
    return Search(
        method=method,
        trials=trials,
        objective=objective,
        direction=direction,
        parallel=parallel,
        pruner=pruner,
        seed=seed,
        grace=float(grace),
        space=params,
        sampler_settings=sampler_settings,
        pruner_settings=pruner_settings,
    )


def _one_of(value: Any, valid: tuple[str, ...], key: str, err: Errors) -> str:
    if value not in valid:
        raise err(key, f"{value!r} is not one of {', '.join(valid)}")
    return str(value)


def _count(value: Any, key: str, err: Errors, *, required: bool = False) -> int:
    if value is None and required:
        raise err(key, "is required: how many trials the study runs, e.g. 50")
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise err(key, f"must be a whole number >= 1, not {value!r}")
    return value


def _number(value: Any) -> bool:
    return (
        isinstance(value, (int, float))
        and not isinstance(value, bool)
        and math.isfinite(value)
    )


def _param(name: str, value: Any, err: Errors) -> Param:
    key = f"search.space.{name}"
    if isinstance(value, list):  # a plain list: the choices
        value = {"choices": value}
    if not isinstance(value, Mapping):
        raise err(
            key,
            f"must be a range {{low: 0, high: 1}} or {{choices: [...]}}, not {value!r}",
        )
    unknown = [str(k) for k in value if k not in PARAM_KEYS]
    if unknown:
        raise err(
            key, f"unknown key {unknown[0]!r}; valid keys: " + ", ".join(PARAM_KEYS)
        )
    if "choices" in value:
        choices = value["choices"]
        others = [k for k in value if k != "choices"]
        if others:
            raise err(key, f"choices exclude {others[0]!r}: give one or the other")
        if not isinstance(choices, list) or not choices:
            raise err(key, f"choices must be a non-empty list, not {choices!r}")
        for c in choices:
            if c is not None and not isinstance(c, (bool, int, float, str)):
                raise err(
                    key, f"a choice must be a number, string, bool or null: {c!r}"
                )
        return Param(name, "choice", choices=tuple(choices))
    low: Any = value.get("low")
    high: Any = value.get("high")
    if not (_number(low) and _number(high)):
        raise err(
            key, f"needs numbers low and high (or choices), found {dict(value)!r}"
        )
    if low >= high:
        raise err(key, f"low ({low}) must be below high ({high})")
    kind = value.get("type", "float")
    if kind not in ("float", "int"):
        raise err(key, f"type {kind!r} is not one of float, int")
    log = value.get("log", False)
    if not isinstance(log, bool):
        raise err(key, f"log must be true or false, not {log!r}")
    if log and low <= 0:
        raise err(key, f"a log range needs low > 0, not {low}")
    step: Any = value.get("step")
    if step is not None:
        if not _number(step) or step <= 0:
            raise err(key, f"step must be a number > 0, not {step!r}")
        if log:
            raise err(key, "step and log exclude each other")
    if kind == "int":
        for what, number in (("low", low), ("high", high), ("step", step)):
            if number is not None and number != int(number):
                raise err(key, f"an int range needs whole numbers: {what} is {number}")
        return Param(
            name,
            "int",
            int(low),
            int(high),
            log,
            None if step is None else int(step),
        )
    return Param(name, "float", float(low), float(high), log, step)
