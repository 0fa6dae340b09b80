"""How long does ``exman report`` take, how big is the file, how fast does it show?

    python bench/report.py [--sizes 1000,10000] [--steps 100] [--reps 3]
                           [--system] [--no-paint]

For each size, a root of N finished runs, each with ``--steps`` records of
two metrics in ``metrics.jsonl`` and a ``results.json``:

1. Writing: ``exman report`` against the floor of loading what it shows,
   ``Index(root).info()`` plus ``Index(root).metrics()`` in one process
   (both in fresh processes, interleaved, the index cache warm). Target: at
   most 2x the floor.
   The payload that ``exman ui`` rebuilds (without the runs' details), as
   JSON, in a fresh process too: reported as a ratio to the same floor.
2. Size of the report. Target: at most 10 MB at 1,000 runs.
3. First paint: headless Chromium (Debian's ``chromium``, driven by
   Playwright) opens the report from disk with the network refused; the
   time from the start of the load until the runs table is on the screen,
   the median of ``--reps`` fresh pages. Target: at most 2 s at 10,000
   runs (the one absolute target here: it is what a user waits).

exman runs from ``bench/.venv-exman-dev-ui`` (this tree with the ``ui``
extra), or with ``--system`` from this interpreter. The exit code is 1 when a
target is missed.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import statistics
import sys
from collections.abc import Sequence
from pathlib import Path

from _common import (
    PYTHON,
    REPO,
    Summary,
    Targets,
    add_system,
    interleaved,
    make_root,
    run_wall,
    scratch,
    start,
    venv_python,
)

WRITE_TARGET = 2.0
SIZE_TARGET_MB = 10.0
SIZE_AT = 1000
PAINT_TARGET_S = 2.0
PAINT_AT = 10000


def dev_ui_python() -> str:
    """This tree's exman with the ``ui`` extra, in a virtual environment."""
    meta = "".join(
        (REPO / f).read_text()
        for f in ("setup.cfg", "pyproject.toml")
        if (REPO / f).exists()
    )
    return venv_python(
        "exman-dev-ui",
        ["-e", f"{REPO}[ui]"],
        "import os, exman, plotly; print(os.path.dirname(exman.__file__))",
        str(REPO / "exman"),
        tag=hashlib.sha256(meta.encode()).hexdigest(),
    )


def add_outcome(root: Path, steps: int) -> None:
    """A ``metrics.jsonl`` of ``steps`` records and a ``results.json`` per run."""
    for i, folder in enumerate(sorted((root / "runs").iterdir())):
        lr = 0.001 * (i % 100 + 1)
        lines = [
            json.dumps(
                {
                    "step": s,
                    "time": 1.7e9 + s,
                    "loss": 1 / (1 + s * lr),
                    "acc": 1 - 1 / (2 + s * lr),
                }
            )
            for s in range(steps)
        ]
        (folder / "metrics.jsonl").write_text("\n".join(lines) + "\n")
        (folder / "results.json").write_text(json.dumps({"best": 1 - lr}))


def first_paint(path: Path, reps: int) -> list[float] | str:
    """Seconds from the start of the load until the table is drawn, per page;
    or why it cannot be measured here."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        return "playwright is not installed (pip install playwright)"
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        return "no chromium here (apt-get install chromium)"
    times = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium)
        try:
            for _ in range(reps + 1):  # the first one warms the disk cache
                page = browser.new_page(viewport={"width": 1280, "height": 860})
                page.route(
                    "**/*",
                    lambda r: (
                        r.continue_()
                        if r.request.url.startswith("file:")
                        else r.abort()
                    ),
                )
                page.goto(path.as_uri(), timeout=120000)
                page.wait_for_function("window.exmanDrawnMs", timeout=120000)
                times.append(page.evaluate("window.exmanDrawnMs") / 1000)
                page.close()
        finally:
            browser.close()
    return times[1:]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,10000", help="runs per root")
    parser.add_argument("--steps", type=int, default=100, help="records per run")
    parser.add_argument("--reps", type=int, default=3, help="timed rounds per size")
    add_system(parser)
    parser.add_argument(
        "--no-paint", action="store_true", help="do not open the reports in Chromium"
    )
    args = start(
        parser,
        argv,
        "exman report vs Index.info() + Index.metrics(); size; first paint",
        "bench/report.py",
    )
    python = PYTHON if args.system else dev_ui_python()
    targets = Targets()
    with scratch("exman-bench-report-") as work:
        for n in (int(s) for s in args.sizes.split(",")):
            root = make_root(work / f"root-{n}", n, records=True)
            add_outcome(root, args.steps)
            out = work / f"report-{n}.html"
            floor = [
                python,
                "-c",
                f"import exman; i = exman.Index({str(root)!r}); i.info(); i.metrics()",
            ]
            report = [python, "-m", "exman", "--root", str(root), "report"]
            report += ["-o", str(out)]
            # what exman ui rebuilds while a page polls: the payload as JSON
            live = [
                python,
                "-c",
                "import json, exman; from exman.views.data import payload; "
                f"data = payload(exman.Index({str(root)!r}), details=False); "
                "json.dumps(data, ensure_ascii=False, allow_nan=False)",
            ]
            variants = {
                "info+metrics": lambda cmd=floor: run_wall(cmd),
                "report": lambda cmd=report: run_wall(cmd),
                "ui payload": lambda cmd=live: run_wall(cmd),
            }
            times = interleaved(variants, reps=args.reps)
            summaries = {name: Summary.of(t) for name, t in times.items()}
            print(f"\n== {n:,} runs, {args.steps} records each")
            for name, summary in summaries.items():
                print(f"{name:<13} {summary}")
            targets.check(
                f"{n:,} runs: exman report / (Index.info() + Index.metrics())",
                summaries["report"],
                summaries["info+metrics"],
                WRITE_TARGET,
                at_most=True,
            )
            ratio = summaries["ui payload"].median / summaries["info+metrics"].median
            targets.note(
                f"{n:,} runs: exman ui's payload / (Index.info() + "
                f"Index.metrics()) {ratio:.2f}"
            )
            size = os.path.getsize(out) / 1e6
            if n == SIZE_AT:
                targets.require(
                    f"{n:,} runs: report size {size:.1f} MB "
                    f"(target <= {SIZE_TARGET_MB:g} MB)",
                    size <= SIZE_TARGET_MB,
                )
            else:
                targets.note(f"{n:,} runs: report size {size:.1f} MB")
            if args.no_paint:
                continue
            paint = first_paint(out, args.reps)
            if isinstance(paint, str):
                targets.note(f"{n:,} runs: first paint not measured: {paint}")
                continue
            median = statistics.median(paint)
            label = f"{n:,} runs: first paint {median:.2f} s (n={len(paint)})"
            if n == PAINT_AT:
                targets.require(
                    f"{label} (target <= {PAINT_TARGET_S:g} s)",
                    median <= PAINT_TARGET_S,
                )
            else:
                targets.note(label)
    targets.summary()
    return 1 if targets.failed else 0


if __name__ == "__main__":
    sys.exit(main())
