"""An aggregate drawn with matplotlib: a mean line and a band around it.

:meth:`exman.Index.plot` and :meth:`exman.Index.plot_metrics` draw what
:func:`exman.look.aggregate.summarize` and
:func:`exman.look.aggregate.curves` compute. matplotlib (the ``plots``
extra) is imported inside the functions. A figure goes on the given Axes;
else, where pyplot is in use (a notebook, a script that imported it), on
a new pyplot figure, so that ``plt.show()`` and notebooks show it; else on
a Figure of its own with an Agg canvas, which needs no display and
changes no global state of matplotlib.
"""

from __future__ import annotations

import math
import re
import sys
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

from ..record.store import ExmanError
from .aggregate import STATS

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["parse_formula", "plot_curves", "plot_summary"]

#: the most runs a legend names one by one
LEGEND = 10
_FORMULA = re.compile(r"^\s*([^~\s][^~]*?)\s*~\s*([^~\s][^~]*?)\s*$")


def parse_formula(formula: str) -> tuple[str, str]:
    """``"loss ~ lr"`` as ``("loss", "lr")``: what is drawn, against what.

    :raises ExmanError: not one ``~`` between two names.
    """
    match = _FORMULA.match(formula) if isinstance(formula, str) else None
    if match is None:
        raise ExmanError(
            f"formula {formula!r}: write 'y ~ x', a result against a parameter, "
            "like 'loss ~ lr'"
        )
    return match.group(1), match.group(2)


def _axes(ax: Axes | None) -> Axes:
    """``ax``, or the Axes of a new figure (see the module's docstring)."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise ExmanError(
            "plotting needs matplotlib: pip install 'exman[plots]'"
        ) from None
    if ax is not None:
        return ax
    if "matplotlib.pyplot" in sys.modules:
        import matplotlib.pyplot as plt

        return plt.figure().add_subplot()
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure()
    FigureCanvasAgg(figure)
    return figure.add_subplot()


def _check_band(band: str | None) -> None:
    if band is not None and band not in STATS:
        raise ExmanError(f"band={band!r}: use one of {', '.join(STATS)} or None")


def _key(value: Any) -> Any:
    if isinstance(value, list):
        return tuple(_key(v) for v in value)
    if isinstance(value, dict):
        return repr(sorted(value.items()))
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return value


def _split(data: pd.DataFrame, by: Sequence[str]) -> Iterator[tuple[str, pd.DataFrame]]:
    """The rows of each value of ``by``, in the order first met, with a label."""
    if not by:
        yield "", data
        return
    keys = [tuple(_key(v) for v in row) for row in data[list(by)].itertuples(False)]
    order: dict[Any, list[int]] = {}
    for i, key in enumerate(keys):
        order.setdefault(key, []).append(i)
    for rows in order.values():
        part = data.iloc[rows]
        first = part.iloc[0]
        yield ", ".join(f"{b}={first[b]}" for b in by), part


def _counts(part: pd.DataFrame) -> str:
    low, high = int(part["count"].min()), int(part["count"].max())
    return f"n={low}" if low == high else f"n={low}–{high}"


def _finish(ax: Axes, *, logx: bool, logy: bool, title: str) -> Figure:
    if logx:
        ax.set_xscale("log")
    if logy:
        ax.set_yscale("log")
    if ax.get_legend_handles_labels()[0]:
        ax.legend(title=title or None, fontsize="small")
    return ax.get_figure(root=True)  # type: ignore[return-value]


def _band(ax: Axes, x: Any, part: pd.DataFrame, band: str | None, color: Any) -> None:
    if band is None:
        return
    mean, spread = part["mean"].to_numpy(), part[band].to_numpy()
    ax.fill_between(x, mean - spread, mean + spread, color=color, alpha=0.2, lw=0)


def plot_summary(
    summary: pd.DataFrame,
    *,
    x: str,
    y: str,
    by: Sequence[str] = (),
    band: str | None = "std",
    logx: bool = False,
    logy: bool = False,
    ax: Axes | None = None,
) -> Figure:
    """The mean of ``y`` against ``x``, a line per value of ``by``.

    :param summary: from :func:`exman.look.aggregate.summarize` with the
        keys ``[x, *by]``.
    :param band: the spread drawn around the mean: ``std``, ``ci`` or None.
    :raises ExmanError: an unknown band, or no matplotlib.
    """
    import pandas as pd

    _check_band(band)
    ax = _axes(ax)
    numeric = pd.api.types.is_numeric_dtype(summary[x].dtype)
    for label, part in _split(summary, by):
        if numeric:
            part = part.sort_values(x, kind="stable")
        xs = part[x].to_numpy() if numeric else part[x].astype(str).to_numpy()
        name = f"{label} ({_counts(part)})" if label else f"{y} ({_counts(part)})"
        (line,) = ax.plot(xs, part["mean"].to_numpy(), marker="o", label=name)
        _band(ax, xs, part, band, line.get_color())
    spread = {"std": " ± std", "ci": " ± 95% CI", None: ""}[band]
    ax.set_xlabel(x)
    ax.set_ylabel(f"{y} (mean{spread})")
    return _finish(ax, logx=logx, logy=logy, title=", ".join(by))


def plot_curves(
    data: pd.DataFrame,
    *,
    value: str,
    by: Sequence[str] = (),
    per_run: bool = True,
    band: str | None = "std",
    logx: bool = False,
    logy: bool = False,
    ax: Axes | None = None,
) -> Figure:
    """A metric against ``step``: a curve per run, or per group with a band.

    :param data: from :func:`exman.look.aggregate.curves` (``over=None``
        when ``per_run``).
    :param by: the parameters that colour the curves and name them; the
        runs of one value of ``by`` share a colour.
    :raises ExmanError: an unknown band, or no matplotlib.
    """
    _check_band(band)
    ax = _axes(ax)
    if per_run:
        # without by, each run its colour and, up to a legend's worth, a label
        few = data["id"].nunique() <= LEGEND
        for i, (label, part) in enumerate(_split(data, by)):
            color = f"C{i % 10}"
            for j, (num, run) in enumerate(part.groupby("id", sort=False)):
                name = label if j == 0 else "_nolegend_"
                if not by:
                    color = f"C{j % 10}"
                    name = f"run {num}" if few else "_nolegend_"
                ax.plot(run["step"], run[value], color=color, label=name)
        ax.set_ylabel(value)
    else:
        for label, part in _split(data, by):
            part = part.sort_values("step", kind="stable")
            steps = part["step"].to_numpy()
            name = (
                f"{label} ({_counts(part)})" if label else f"{value} ({_counts(part)})"
            )
            (line,) = ax.plot(steps, part["mean"].to_numpy(), label=name)
            _band(ax, steps, part, band, line.get_color())
        spread = {"std": " ± std", "ci": " ± 95% CI", None: ""}[band]
        ax.set_ylabel(f"{value} (mean{spread})")
    ax.set_xlabel("step")
    return _finish(ax, logx=logx, logy=logy, title=", ".join(by))
