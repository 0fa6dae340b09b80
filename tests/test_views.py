"""The one aggregation behind Index.table, Index.plot and Index.plot_metrics,
on a root made by a real ExParser script."""

from __future__ import annotations

import math
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from _views_runs import SEED_STEP, STEPS, grid, loss, make_root

from exman import ExmanError, Index
from exman.look.stats import T_975, describe, t_quantile

mpl = pytest.importorskip("matplotlib")


@pytest.fixture(autouse=True)
def _close_pyplot_figures() -> Iterator[None]:
    """Where another test imported pyplot, plots go to pyplot figures."""
    yield
    if "matplotlib.pyplot" in sys.modules:
        sys.modules["matplotlib.pyplot"].close("all")


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """mlp/cnn x x/yy x seeds 0-2, lr 0.1: 12 runs."""
    return make_root(tmp_path_factory.mktemp("views"), grid())


# -- the statistics ------------------------------------------------------------
def t_cdf(t: float, dof: float) -> float:
    """Student's t CDF by integrating its density (Simpson), no scipy."""
    xs = np.linspace(0.0, t, 200_001)
    log_c = (
        math.lgamma((dof + 1) / 2)
        - math.lgamma(dof / 2)
        - 0.5 * math.log(dof * math.pi)
    )
    pdf = np.exp(log_c - (dof + 1) / 2 * np.log1p(xs**2 / dof))
    h = xs[1] - xs[0]
    simpson = h / 3 * (pdf[0] + pdf[-1] + 4 * pdf[1:-1:2].sum() + 2 * pdf[2:-1:2].sum())
    return 0.5 + float(simpson)


@pytest.mark.parametrize("dof", [1, 2, 3, 5, 10, 20, 30, 31, 40, 60, 120, 1000])
def test_t_quantile_is_the_975_quantile(dof: int) -> None:
    q = t_quantile(dof)
    if dof <= len(T_975):
        assert q == T_975[dof - 1]
    # the density falls slowly for 1 degree of freedom: integrate with care
    assert t_cdf(q, dof) == pytest.approx(0.975, abs=2e-6 if dof > 1 else 2e-5)


def test_t_quantile_is_continuous_past_the_table_and_nan_below_one() -> None:
    assert t_quantile(31) < t_quantile(30)
    assert t_quantile(30) - t_quantile(31) < t_quantile(29) - t_quantile(30)
    assert t_quantile(10**9) == pytest.approx(1.959964, abs=1e-6)
    assert math.isnan(t_quantile(0))


def test_describe_matches_pandas_and_the_t_interval() -> None:
    values = np.array([1.0, 2.0, 3.0, 10.0, np.nan, 7.0, np.nan])
    codes = np.array([0, 0, 0, 1, 1, 2, 3])
    got = describe(values, codes, 4)
    assert got["count"].tolist() == [3, 1, 1, 0]
    assert got["mean"].tolist()[:3] == [2.0, 10.0, 7.0]
    assert math.isnan(got["mean"][3])
    assert got["std"][0] == pytest.approx(1.0)
    assert got["ci"][0] == pytest.approx(4.3026527 / math.sqrt(3))
    assert got[["std", "ci"]].iloc[1:].isna().all().all()  # one value: no spread
    by_pandas = pd.Series(values).groupby(codes).std()
    assert got["std"][0] == pytest.approx(by_pandas[0])


# -- Index.table ---------------------------------------------------------------
def test_table_holds_mean_std_count_and_ids_per_cell(root: Path) -> None:
    index = Index(root)
    table = index.table("model", "dataset", value="loss", over="seed")
    assert table.index.name == "model"
    assert table.index.tolist() == ["mlp", "cnn"]  # the order of the first runs
    assert table.columns.names == ["dataset", None]
    assert list(table.columns) == [
        (d, f) for d in ("x", "yy") for f in ("mean", "std", "count", "ids")
    ]
    runs = index.info()
    seeds = np.array([0, 1, 2])
    for model in ("mlp", "cnn"):
        for dataset in ("x", "yy"):
            expected = [loss(model, dataset, 0.1, s) for s in seeds]
            assert table.loc[model, (dataset, "mean")] == pytest.approx(
                np.mean(expected)
            )
            assert table.loc[model, (dataset, "std")] == pytest.approx(SEED_STEP)
            assert table.loc[model, (dataset, "count")] == 3
            mine = runs[(runs.model == model) & (runs.dataset == dataset)]
            assert table.loc[model, (dataset, "ids")] == sorted(mine.id.tolist())
    ci = index.table("model", "dataset", value="loss", stat="ci")
    assert ci.loc["mlp", ("x", "ci")] == pytest.approx(
        4.3026527 * SEED_STEP / math.sqrt(3)
    )
    means = table.xs("mean", axis=1, level=-1)
    assert means.shape == (2, 2)


def test_table_without_cols_and_with_a_query(root: Path) -> None:
    table = Index(root).table("model", value="loss", query="dataset == 'yy'")
    assert list(table.columns) == [
        ("loss", "mean"), ("loss", "std"), ("loss", "count"), ("loss", "ids")
    ]  # fmt: skip
    assert table.loc["cnn", ("loss", "mean")] == pytest.approx(
        loss("cnn", "yy", 0.1, 1)
    )


def test_a_parameter_that_varies_within_a_cell_is_named(root: Path) -> None:
    index = Index(root)
    with pytest.raises(ExmanError, match=r"differ in dataset='x' or 'yy'") as info:
        index.table("model", value="loss")
    ids = index.info().query("model == 'mlp'").id.tolist()
    assert all(str(i) in str(info.value) for i in ids)
    assert "rows or cols" in str(info.value)
    pooled = index.table("model", value="loss", over=["seed", "dataset"])
    assert pooled[("loss", "count")].tolist() == [6, 6]


def test_table_refuses_what_it_cannot_do(root: Path) -> None:
    index = Index(root)
    with pytest.raises(ExmanError, match=r"value: no column 'los'.*'loss'"):
        index.table("model", "dataset", value="los")
    with pytest.raises(ExmanError, match=r"'model' is not a number"):
        index.table("dataset", value="model", over=["seed", "model"])
    with pytest.raises(ExmanError, match=r"stat='sd': use one of std, ci"):
        index.table("model", "dataset", value="loss", stat="sd")
    with pytest.raises(ExmanError, match=r"'seed' is both a key"):
        index.table("seed", ["model", "dataset"], value="loss")
    with pytest.raises(ExmanError, match=r"query 'model ==': SyntaxError"):
        index.table("model", "dataset", value="loss", query="model ==")


def test_a_table_of_no_runs_is_empty_and_not_written(root: Path) -> None:
    from exman.look.tables import render_table

    empty = Index(root).table("model", "dataset", value="loss", query="lr > 5")
    assert len(empty) == 0
    with pytest.raises(ExmanError, match="the table has no runs"):
        render_table(empty, "latex")


def test_table_of_list_and_missing_values_in_several_rows(tmp_path: Path) -> None:
    from _index_runs import make_run
    from test_index_results import write_outcome

    from exman.look.tables import render_table

    root = tmp_path / "exman"
    for data in ("x", "y"):  # two columns: each missing wd must be one row
        for seed in range(2):
            for wd in (None, 0.1):
                for layers in ([1, 2], [3]):
                    params = {"wd": wd, "layers": layers, "data": data, "seed": seed}
                    write_outcome(make_run(root, params), loss=seed + (wd or 0))
            params = {"layers": [3], "data": data, "seed": seed}
            write_outcome(make_run(root, params), loss=5.0)
    table = Index(root).table(["wd", "layers"], "data", value="loss")
    # a run without wd and one with wd null are one configuration
    wd = table.index.get_level_values("wd")
    assert wd.isna().tolist() == [True, True, False, False]
    assert wd[2:].tolist() == [0.1, 0.1]
    assert table.index.get_level_values("layers").tolist() == [(1, 2), (3,)] * 2
    assert len(table) == 4
    for data in ("x", "y"):
        assert table[(data, "count")].tolist() == [2, 4, 2, 2]
        assert table[(data, "mean")].tolist() == pytest.approx([0.5, 2.75, 0.6, 0.6])
    text = render_table(table, "latex")
    assert "wd & layers & x & y \\\\" in text
    # no wd: an empty label; the lowest mean in bold
    assert "\n & [1, 2] & $\\mathbf{0.50 \\pm 0.71}$ (2) & " in text
    assert "\n & [3] & $2.8 \\pm 2.6$ (4) & " in text  # counts differ


# -- Index.plot ------------------------------------------------------------------
@pytest.fixture
def lr_root(tmp_path: Path) -> Path:
    """mlp/cnn at three learning rates, two seeds each, dataset x."""
    configs = [
        ["--lr", lr, "--model", m, "--seed", s]
        for m in ("mlp", "cnn")
        for lr in ("0.3", "0.01", "0.1")
        for s in ("0", "1")
    ]
    return make_root(tmp_path, configs)


def test_plot_draws_the_mean_per_line_sorted_by_x(lr_root: Path) -> None:
    fig = Index(lr_root).plot("loss ~ lr", by="model", over="seed", logx=True)
    ax = fig.axes[0]
    lines = ax.get_lines()
    assert [line.get_label() for line in lines] == [
        "model=mlp (n=2)",
        "model=cnn (n=2)",
    ]
    for line, model in zip(lines, ("mlp", "cnn")):
        xs = [0.01, 0.1, 0.3]
        assert line.get_xdata().tolist() == xs
        want = [np.mean([loss(model, "x", lr, s) for s in (0, 1)]) for lr in xs]
        assert line.get_ydata() == pytest.approx(want)
    assert len(ax.collections) == 2  # one band per line
    band = ax.collections[1].get_paths()[0].vertices  # cnn's, the last
    assert band[:, 1].max() == pytest.approx(max(want) + SEED_STEP / math.sqrt(2))
    assert band[:, 1].min() == pytest.approx(min(want) - SEED_STEP / math.sqrt(2))
    assert ax.get_xscale() == "log" and ax.get_yscale() == "linear"
    assert ax.get_xlabel() == "lr" and ax.get_ylabel() == "loss (mean ± std)"


def test_plot_bands(lr_root: Path) -> None:
    index = Index(lr_root)
    none = index.plot("loss ~ lr", by="model", band=None).axes[0]
    assert len(none.collections) == 0 and len(none.get_lines()) == 2
    ci = index.plot("loss ~ lr", by="model", band="ci").axes[0]
    top = ci.collections[0].get_paths()[0].vertices[:, 1].max()
    std = index.plot("loss ~ lr", by="model", band="std").axes[0]
    assert top > std.collections[0].get_paths()[0].vertices[:, 1].max()
    with pytest.raises(ExmanError, match="band='sem'"):
        index.plot("loss ~ lr", by="model", band="sem")
    with pytest.raises(ExmanError, match="formula 'loss, lr': write 'y ~ x'"):
        index.plot("loss, lr", by="model")
    with pytest.raises(ExmanError, match=r"differ in model=.* add 'model' to by"):
        index.plot("loss ~ lr")


def test_plot_on_given_axes(lr_root: Path) -> None:
    from matplotlib.figure import Figure

    fig = Figure()
    ax = fig.add_subplot()
    got = Index(lr_root).plot("loss ~ lr", by="model", ax=ax, logy=True)
    assert got is fig and ax.get_yscale() == "log"


# -- Index.plot_metrics ------------------------------------------------------------
def test_plot_metrics_one_curve_per_run(root: Path) -> None:
    index = Index(root)
    fig = index.plot_metrics("loss", by="model", query="dataset == 'x'")
    lines = fig.axes[0].get_lines()
    assert len(lines) == 6
    labels = [line.get_label() for line in lines]
    assert labels.count("model=mlp") == 1 and labels.count("model=cnn") == 1
    colors = {line.get_label(): line.get_color() for line in lines}
    assert colors["model=mlp"] != colors["model=cnn"]
    runs = index.info().set_index("id")
    curves = index.metrics("loss")
    first = curves[curves.id == curves.id.iloc[0]]
    assert lines[0].get_xdata().tolist() == list(range(STEPS))
    assert lines[0].get_ydata().tolist() == pytest.approx(first.loss.tolist())
    run = runs.loc[curves.id.iloc[0]]
    assert lines[0].get_ydata()[-1] == pytest.approx(
        loss(run.model, run.dataset, run.lr, run.seed) + 1 / STEPS
    )


def test_plot_metrics_aggregated_over_seeds(root: Path) -> None:
    index = Index(root)
    fig = index.plot_metrics(
        "loss", by=["model", "dataset"], over="seed", status="completed"
    )
    lines = fig.axes[0].get_lines()
    assert len(lines) == 4
    assert lines[0].get_label() == "model=mlp, dataset=x (n=3)"
    want = [loss("mlp", "x", 0.1, 1) + 1 / (1 + s) for s in range(STEPS)]
    assert lines[0].get_xdata().tolist() == list(range(STEPS))
    assert lines[0].get_ydata() == pytest.approx(want)
    assert len(fig.axes[0].collections) == 4
    smooth = index.plot_metrics("loss", by=["model", "dataset"], over="seed", smooth=2)
    y = smooth.axes[0].get_lines()[0].get_ydata()
    assert y[0] == pytest.approx(want[0])
    assert y[1] == pytest.approx((want[0] + want[1]) / 2)
    with pytest.raises(ExmanError, match="smooth=0"):
        index.plot_metrics("loss", over="seed", smooth=0)
    with pytest.raises(ExmanError, match="no run logged the metric"):
        index.plot_metrics("acc")


# -- what is imported -------------------------------------------------------------
def python(code: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=cwd
    )


def test_tables_need_no_matplotlib_and_plots_no_pyplot(root: Path) -> None:
    code = (
        "import sys, exman\n"
        "index = exman.Index('exman')\n"
        "index.table('model', 'dataset', value='loss')\n"
        "assert 'matplotlib' not in sys.modules, 'table imported matplotlib'\n"
        "fig = index.plot('loss ~ dataset', by='model')\n"
        "assert 'matplotlib.pyplot' not in sys.modules\n"
        "fig.savefig('plot.png')\n"
        "print(type(fig.canvas).__name__)\n"
    )
    proc = python(code, root.parent)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "FigureCanvasAgg"
    assert (root.parent / "plot.png").read_bytes().startswith(b"\x89PNG")


def test_plots_go_to_pyplot_where_it_is_in_use(root: Path) -> None:
    code = (
        "import matplotlib.pyplot as plt, exman\n"
        "fig = exman.Index('exman').plot('loss ~ dataset', by='model')\n"
        "print(plt.get_fignums(), fig is plt.gcf())\n"
    )
    proc = python(code, root.parent)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[1] True"


def test_plot_without_matplotlib_says_what_to_install(root: Path) -> None:
    code = (
        "import sys; sys.modules['matplotlib'] = None\n"
        "import exman\n"
        "try:\n"
        "    exman.Index('exman').plot('loss ~ dataset', by='model')\n"
        "except exman.ExmanError as e:\n"
        "    print(e)\n"
    )
    proc = python(code, root.parent)
    assert proc.returncode == 0, proc.stderr
    assert "pip install 'exman[plots]'" in proc.stdout


def test_the_benchmark_runs() -> None:
    bench = Path(__file__).resolve().parent.parent / "bench" / "aggregate.py"
    proc = subprocess.run(
        [sys.executable, str(bench), "--runs", "2000", "--reps", "1"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode in (0, 1), proc.stderr  # 1: a target missed
    assert "summarize / floor" in proc.stdout
