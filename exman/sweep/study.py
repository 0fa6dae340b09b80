"""A search's study: Optuna's, in a journal file under the root.

The study of sweep ``<name>`` is ``root/.exman/sweeps/<name>/study.journal``
(Optuna's ``JournalStorage`` with a file backend): every ask, report and
tell is one appended record, so a launcher killed at any instant leaves a
study that the next one reads whole. Optuna is imported here only, when a
search runs or shows its status; it is the ``search`` extra.
"""

from __future__ import annotations

import pathlib
from typing import TYPE_CHECKING, Any

from ..record.store import ExmanError, Root
from .options import sweep_dir
from .space import Param, Search

if TYPE_CHECKING:
    import optuna

__all__ = [
    "JOURNAL",
    "distributions",
    "grid_size",
    "import_optuna",
    "open_study",
]

JOURNAL = "study.journal"


def import_optuna() -> Any:
    """The optuna module, or an error that says how to install it."""
    try:
        import optuna
    except ImportError:
        raise ExmanError(
            "search: needs Optuna: pip install 'exman[search]' (or optuna)"
        ) from None
    # its log line per trial would run through the progress display
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna


def journal_path(root: Root, name: str) -> pathlib.Path:
    return sweep_dir(root, name) / JOURNAL


def open_study(
    root: Root, name: str, search: Search, *, seed_offset: int = 0, create: bool = True
) -> optuna.Study | None:
    """The study of sweep ``name``, with the sampler and pruner of ``search``.

    :param seed_offset: added to the spec's seed (the number of trials the
        study holds already), so that a resumed search does not draw the
        first trials' values again.
    :param create: make the study when it does not exist (else None).
    """
    optuna = import_optuna()
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    path = journal_path(root, name)
    if not create and not path.exists():
        return None
    path.parent.mkdir(parents=True, exist_ok=True)
    storage = JournalStorage(JournalFileBackend(str(path)))
    study = optuna.create_study(
        storage=storage,
        study_name=name,
        direction=search.direction,
        sampler=_sampler(optuna, search, search.seed + seed_offset),
        pruner=_pruner(optuna, search.pruner, search.pruner_settings),
        load_if_exists=True,
    )
    held = study.direction.name.lower()
    if held != search.direction:
        raise ExmanError(
            f"search.direction: the study of sweep {name!r} is to {held} its "
            f"objective, not to {search.direction} it: restore the direction, "
            f"or give the search another name (the study is {path})"
        )
    return study


def distributions(search: Search) -> dict[str, Any]:
    """Optuna's distribution of each parameter of the space."""
    from optuna.distributions import (
        CategoricalDistribution,
        FloatDistribution,
        IntDistribution,
    )

    out: dict[str, Any] = {}
    for p in search.space:
        if p.kind == "choice":
            out[p.name] = CategoricalDistribution(list(p.choices))
        elif p.kind == "int":
            step = p.step if p.step is not None else 1
            out[p.name] = IntDistribution(int(p.low), int(p.high), log=p.log, step=step)  # type: ignore[arg-type]
        else:
            out[p.name] = FloatDistribution(
                float(p.low),  # type: ignore[arg-type]
                float(p.high),  # type: ignore[arg-type]
                log=p.log,
                step=p.step,
            )
    return out


def _grid_values(p: Param) -> list[Any]:
    if p.kind == "choice":
        return list(p.choices)
    low, high, step = p.low, p.high, p.step if p.step is not None else 1
    assert low is not None and high is not None  # checked by the spec
    count = int((high - low) / step + 1e-9) + 1
    values = [low + i * step for i in range(count)]
    return [int(v) if p.kind == "int" else round(float(v), 12) for v in values]


def grid_size(search: Search) -> int:
    """How many points the grid of ``search`` holds."""
    size = 1
    for p in search.space:
        size *= len(_grid_values(p))
    return size


def _sampler(optuna: Any, search: Search, seed: int) -> Any:
    samplers = optuna.samplers
    settings = search.sampler_settings
    if search.method == "tpe":
        return samplers.TPESampler(seed=seed, **settings)
    if search.method == "random":
        return samplers.RandomSampler(seed=seed)
    if search.method == "grid":
        space = {p.name: _grid_values(p) for p in search.space}
        return samplers.GridSampler(space, seed=seed)
    try:
        import cmaes  # noqa: F401 - what CmaEsSampler needs
    except ImportError:
        raise ExmanError(
            "search: method cmaes needs the cmaes package: pip install "
            "'exman[search]' (or cmaes)"
        ) from None
    return samplers.CmaEsSampler(seed=seed, **settings)


def _pruner(optuna: Any, name: str, settings: dict[str, Any]) -> Any:
    pruners = optuna.pruners
    if name == "median":
        return pruners.MedianPruner(**settings)
    if name == "successive_halving":
        return pruners.SuccessiveHalvingPruner(**settings)
    if name == "hyperband":
        return pruners.HyperbandPruner(**settings)
    return pruners.NopPruner()
