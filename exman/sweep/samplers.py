"""The samplers and pruners a search may name, and the settings each takes.

.. code-block:: yaml

    search:
      sampler: {name: tpe, n_startup_trials: 5, seed: 1}
      pruner: {name: median, n_warmup_steps: 3}

``sampler`` and ``pruner`` are a name or a mapping of ``name`` and settings;
each setting is a keyword argument of Optuna's class of that name, checked
here against a table of the ones exman passes on (no optimiser imported), so
that a misspelled setting is an error of the spec that names it, before
anything runs.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from .values import Errors

__all__ = ["PRUNERS", "SAMPLERS", "Choice", "choice"]

#: what a setting's value must be: a check, and its words for the error
Check = tuple[Callable[[Any], bool], str]


def _int(low: int) -> Check:
    return (
        lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= low,
        f"a whole number >= {low}",
    )


def _positive() -> Check:
    return (
        lambda v: isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0,
        "a number > 0",
    )


_BOOL: Check = (lambda v: isinstance(v, bool), "true or false")
_INT_OR_AUTO: Check = (
    lambda v: (
        v == "auto" or (isinstance(v, int) and not isinstance(v, bool) and v >= 1)
    ),
    "auto or a whole number >= 1",
)
_SEED = {"seed": _int(0)}

#: sampler name -> its settings (Optuna's TPESampler, CmaEsSampler, ...)
SAMPLERS: dict[str, dict[str, Check]] = {
    "tpe": {
        **_SEED,
        "n_startup_trials": _int(0),
        "n_ei_candidates": _int(1),
        "multivariate": _BOOL,
        "group": _BOOL,
        "constant_liar": _BOOL,
        "consider_endpoints": _BOOL,
        "consider_magic_clip": _BOOL,
        "prior_weight": _positive(),
    },
    "cmaes": {
        **_SEED,
        "n_startup_trials": _int(0),
        "sigma0": _positive(),
        "popsize": _int(1),
        "consider_pruned_trials": _BOOL,
        "use_separable_cma": _BOOL,
        "with_margin": _BOOL,
        "lr_adapt": _BOOL,
    },
    "random": dict(_SEED),
    "grid": dict(_SEED),
}

#: pruner name -> its settings (Optuna's MedianPruner, ...); ``asha`` is
#: another name of ``successive_halving``
PRUNERS: dict[str, dict[str, Check]] = {
    "none": {},
    "median": {
        "n_startup_trials": _int(0),
        "n_warmup_steps": _int(0),
        "interval_steps": _int(1),
        "n_min_trials": _int(1),
    },
    "successive_halving": {
        "min_resource": _INT_OR_AUTO,
        "reduction_factor": _int(2),
        "min_early_stopping_rate": _int(0),
        "bootstrap_count": _int(0),
    },
    "hyperband": {
        "min_resource": _int(1),
        "max_resource": _INT_OR_AUTO,
        "reduction_factor": _int(2),
        "bootstrap_count": _int(0),
    },
}
ALIASES = {"asha": "successive_halving"}

#: a checked choice: the name, and the settings given with it
Choice = tuple[str, dict[str, Any]]


def choice(
    value: Any,
    key: str,
    table: Mapping[str, Mapping[str, Check]],
    err: Errors,
    *,
    default: str | None = None,
) -> Choice:
    """``value`` (a name, or ``{name: ..., setting: ...}``) checked against
    ``table``.

    :param key: the spec's key of it (``search.sampler``), for the errors.
    :param default: the name when a mapping gives none (None: required).
    :raises SpecError: an unknown name or setting, or a wrong value; the
        message names the key.
    """
    names = ", ".join([*table, *(a for a in ALIASES if ALIASES[a] in table)])
    if isinstance(value, Mapping):
        settings = {str(k): v for k, v in value.items() if k != "name"}
        name = value.get("name", default)
        if name is None:
            raise err(f"{key}.name", f"is required: one of {names}")
        where = f"{key}.name"
    else:
        name, settings, where = value, {}, key
    name = ALIASES.get(name, name) if isinstance(name, str) else name
    if name not in table:
        raise err(where, f"{name!r} is not one of {names}")
    allowed = table[name]
    for setting, given in settings.items():
        if setting not in allowed:
            valid = ", ".join(allowed) if allowed else "none"
            raise err(
                f"{key}.{setting}",
                f"is not a setting of {key.rsplit('.', 1)[-1]} {name}; valid: {valid}",
            )
        check, words = allowed[setting]
        if not check(given):
            raise err(f"{key}.{setting}", f"must be {words}, not {given!r}")
    return str(name), settings
