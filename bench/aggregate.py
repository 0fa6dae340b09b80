"""What does the aggregation behind ``Index.table`` and ``Index.plot`` cost?

    python bench/aggregate.py [--runs 100000] [--reps 5]

On a frame of ``--runs`` runs like the one ``Index.info()`` gives (model x
dataset x lr configurations, 50 seeds each, one result), interleaved,
``--reps`` rounds (medians). It is computation on a frame, no files: it
runs in this process, with the exman of this tree:

- the floor: pandas' own ``groupby(...).agg(count, mean, std)`` and the
  list of ids per group, the least a table with its run ids costs;
- ``summarize``: exman's aggregation (grouping by every parameter but the
  seed, checking that the keys tell the groups apart, count, mean, std,
  95 % CI and ids);
- ``table``: ``summarize``, the table frame and its LaTeX.

Only the ratios count (target: ``summarize`` at most 3 times the floor);
loading the runs is measured by ``bench/index.py``. The exit code is 1 when
the target is missed.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np
import pandas as pd
from _common import Summary, Targets, header, interleaved

from exman.look.aggregate import summarize
from exman.look.frame import Columns
from exman.look.tables import render_table, table_frame

TARGET = 3.0
KEYS = ["model", "dataset", "lr"]


def frame(runs: int) -> tuple[pd.DataFrame, Columns]:
    seeds = 50
    configs = max(runs // seeds, 1)
    models = [f"m{i}" for i in range(max(configs // 100, 1))]
    grid = [
        (m, f"d{d}", lr)
        for m in models
        for d in range(10)
        for lr in (0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0, 30.0)
    ][:configs]
    rows = [(m, d, lr, s) for m, d, lr in grid for s in range(seeds)]
    rng = np.random.default_rng(0)
    df = pd.DataFrame(rows, columns=[*KEYS, "seed"])
    df.insert(0, "id", np.arange(1, len(df) + 1))
    df["model"] = df["model"].astype("str")
    df["dataset"] = df["dataset"].astype("str")
    df["loss"] = rng.random(len(df))
    df["status"] = "completed"
    return df, Columns([*KEYS, "seed"], ["loss"], "status")


def floor(df: pd.DataFrame) -> object:
    grouped = df.groupby(KEYS, sort=False)
    stats = grouped["loss"].agg(["count", "mean", "std"])
    stats["ids"] = grouped["id"].agg(list)
    return stats


def timed(func: Callable[[], object]) -> Callable[[], float]:
    def run() -> float:
        start = time.perf_counter()
        func()
        return time.perf_counter() - start

    return run


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=100_000)
    parser.add_argument("--reps", type=int, default=5)
    args = parser.parse_args()
    header("the aggregation of tables and plots", "bench/aggregate.py", sys.argv[1:])
    df, columns = frame(args.runs)

    def ours() -> object:
        return summarize(df, columns, value="loss", keys=KEYS, over="seed")

    def table() -> object:
        summary = ours()
        wide = table_frame(
            summary, rows=["model", "lr"], cols=["dataset"], value="loss"
        )
        return render_table(wide, "latex")

    times = interleaved(
        {
            "floor": timed(lambda: floor(df)),
            "summarize": timed(ours),
            "table": timed(table),
        },
        args.reps,
    )
    got = {name: Summary.of(t) for name, t in times.items()}
    print(f"{len(df):,} runs in {len(ours()):,} groups")  # type: ignore[arg-type]
    for name, summary in got.items():
        print(f"  {name:<10} {summary}")
    targets = Targets()
    targets.check(
        "summarize / floor", got["summarize"], got["floor"], TARGET, at_most=True
    )
    print(f"  (table / floor: {got['table'].median / got['floor'].median:.2f})")
    return 1 if targets.failed else 0


if __name__ == "__main__":
    sys.exit(main())
