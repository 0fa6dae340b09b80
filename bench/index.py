"""How fast ``Index(root).info()`` loads a root, against exman 0.1.9 and the floor.

For roots of 1,000 / 10,000 / 100,000 runs made by exman (params.yaml and
run.json written by exman's own code, index and automark links), each of
these runs in a new process, interleaved, ``--reps`` times (the median is
reported):

* floor: libyaml's parse of every ``index/*.yaml`` into nodes
  (``yaml.compose`` with ``CSafeLoader``) and nothing else: what a load
  from the params.yaml files cannot avoid (a cold load from the copies in
  run.json parses no YAML: the ratio of a cold load from params.yaml to
  the floor is printed too, like for like);
* C load: the same with PyYAML's Python constructor (``yaml.load`` with
  ``CSafeLoader``), which exman replaced: shown, not a target;
* exman 0.1.9: its own ``Index(root).info()`` (its ``import exman`` is not
  counted, which favours it), up to 10,000 runs;
* cold: ``import exman`` + ``Index(root).info()`` with ``.exman/cache`` deleted;
* warm: ``import exman`` + ``Index(root).info()`` with the cache in place;
* cold, YAML (10,000 runs): the cold load of a root whose run.json files
  hold no copy of the parameters (runs made before exman kept one), so
  that every params.yaml is parsed;
* cold, metrics (10,000 runs): the cold load of runs that each logged
  100 lines of metrics and a result, their last values taken from the
  copies in run.json (copies) or, for runs made before exman kept them,
  from the end of each metrics.jsonl (files): shown, not a target.

The pandas import is counted in none of them. Then the peak memory of a
load (the most memory Python held during ``info()``, by tracemalloc, and
the growth of the process's resident set) against the size of the
DataFrame (``memory_usage(deep=True)``), and whether the rows and values
equal exman 0.1.9's, on these roots and on a root written by 0.1.9 itself
(with automark and command-line marks): a difference fails the benchmark.

Targets (at 10,000 runs): warm >= 25x faster than 0.1.9; cold <= 1.2x the
floor; cold at most 1 s (the goal as it was set, on this machine: 2.5 s
then); the ratio of a cold load from params.yaml to one from the copies
is shown (what the copies save), not a target; the
warm load of 100,000 runs at most 12x that of 10,000 (when both are
measured); peak memory <= 2x the DataFrame; the same rows and values as
0.1.9. The exit code is 1 when a target is missed.

Run ``python bench/index.py`` (``--sizes 1000,10000`` and ``--reps 3`` for a
shorter run; ``--no-orig`` without exman 0.1.9, which needs PyPI once;
``--system`` with the interpreter running the benchmark rather than
``bench/.venv-exman-dev``).
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import pathlib
import subprocess
import sys
import time
from collections.abc import Sequence
from typing import Any

from _common import (
    PYTHON,
    REPO,
    Summary,
    Targets,
    add_system,
    child_env,
    dev_python,
    header,
    interleaved,
    orig_python,
    scratch,
)

sys.path.insert(0, str(REPO))

#: seconds: the goal for a first load of 10,000 runs, the files in the page
#: cache (2.5 s on the 2-core machine of docs/performance.rst when it was set)
FIRST_LOAD_GOAL = 1.0

#: prints {"seconds": <load time>, "cpu": <its CPU time>, "rows": n};
#: argv: root, mode
OURS = """\
import json, os, shutil, sys, time
import pandas  # not counted
root, mode = sys.argv[1], sys.argv[2]
if mode == "cold":
    shutil.rmtree(os.path.join(root, ".exman", "cache"), ignore_errors=True)
start, cpu = time.perf_counter(), time.process_time()
import exman
df = exman.Index(root).info()
print(json.dumps({"seconds": time.perf_counter() - start,
                  "cpu": time.process_time() - cpu, "rows": len(df)}))
"""

ORIG = """\
import json, sys, time, warnings
warnings.simplefilter("ignore")
import pandas
import exman  # 0.1.9 imports pandas, joblib, git...: not counted
start = time.perf_counter()
df = exman.Index(sys.argv[1]).info()
print(json.dumps({"seconds": time.perf_counter() - start, "rows": len(df)}))
if len(sys.argv) > 2:
    df.to_pickle(sys.argv[2])
"""

#: argv: root, "compose" (the floor: libyaml's parse) or "load" (and
#: PyYAML's constructor)
FLOOR = """\
import json, os, sys, time
import yaml
index = os.path.join(sys.argv[1], "index")
read = yaml.compose if sys.argv[2] == "compose" else yaml.load
start = time.perf_counter()
n = 0
for name in os.listdir(index):
    with open(os.path.join(index, name), "rb") as f:
        read(f, Loader=yaml.CSafeLoader)
    n += 1
print(json.dumps({"seconds": time.perf_counter() - start, "rows": n}))
"""

#: prints the memory of one load; argv: root, mode, "trace" or "rss"
MEMORY = """\
import json, os, resource, shutil, sys, tracemalloc
import numpy, pandas
import exman.index
root, mode, how = sys.argv[1:4]
if mode == "cold":
    shutil.rmtree(os.path.join(root, ".exman", "cache"), ignore_errors=True)
def rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
before = rss()
if how == "trace":
    tracemalloc.start()
df = exman.index.Index(root).info()
peak = tracemalloc.get_traced_memory()[1] if how == "trace" else (
    resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - before)
print(json.dumps({"peak": peak, "df": int(df.memory_usage(deep=True).sum())}))
"""

#: makes a root with exman 0.1.9's own ExParser; argv: root, n
ORIG_MAKER = """\
import contextlib, os, sys
import exman
root, n = sys.argv[1], int(sys.argv[2])

def parser(later):
    p = exman.ExParser(root=root, automark=["model"])
    p.add_argument("--lr", type=float, default=0.01)
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--model", default="mlp")
    p.add_argument("--layers", type=int, nargs="+", default=[64, 64])
    p.add_argument("--wd", type=exman.optional(float), default=None)
    p.add_argument("--flag", action="store_true")
    p.add_argument("--code", default="007")
    p.add_argument("--tag", default="")
    if later:
        p.add_argument("--warmup", type=int, default=5)
    return p

with open(os.devnull, "w") as sink, contextlib.redirect_stdout(sink):
    for i in range(n):
        argv = ["--lr", str(0.001 * (i % 7 + 1)), "--model", ["mlp", "cnn"][i % 2],
                "--layers", *[str(8 * (k + 1)) for k in range(i % 3 + 1)],
                "--tag", ["a", "b c", "1e3"][i % 3]]
        if i % 4 == 0:
            argv += ["--wd", "0.1", "--flag"]
        parser(later=i >= n // 2).parse_args(argv)
"""

MODELS = ("mlp", "cnn", "resnet", "vit")
#: the lines of metrics.jsonl of each run of the roots with metrics
METRIC_LINES = 100


# -- roots ------------------------------------------------------------------------
def build_root(
    path: pathlib.Path,
    n: int,
    *,
    copies: bool = True,
    metrics: int = 0,
    outcome_copies: bool = True,
) -> pathlib.Path:
    """``n`` finished runs as exman writes them (without the id lock, for speed).

    :param copies: False: without the copy of the parameters in run.json,
        as exman wrote runs before it kept one (each is read from YAML).
    :param metrics: each run logs this many lines to metrics.jsonl (four
        values each) and writes a results.json, before it ends.
    :param outcome_copies: False: run.json without the copies of those two
        that the end of a run makes, as exman wrote runs before it did.
    """
    from exman.record import snapshot
    from exman.record.params import PARAMS_FILE, TIME_FORMAT, dump_params
    from exman.record.run import METRICS_FILE, RESULTS_FILE, Run
    from exman.record.store import DIR_TIME_FORMAT, Root, atomic_write

    root = Root(path).ensure()
    start = datetime.datetime(2026, 1, 1)
    for num in range(1, n + 1):
        when = start + datetime.timedelta(seconds=num)
        name = f"{num:06d}-{when.strftime(DIR_TIME_FORMAT)}"
        folder = root.runs / name
        folder.mkdir()
        model = MODELS[num % len(MODELS)]
        params = {
            "config_file": None,
            "data": f"/data/set{num % 3}",
            "dropout": 0.1 * (num % 5),
            "epochs": 10 + num % 7,
            "flag": num % 2 == 0,
            "git_dirty": False,
            "layers": [64, 32 + num % 4],
            "lr": 0.001 * (num % 100 + 1),
            "model": model,
            "name": None,
            "root": f"runs/{name}",
            "seed": num % 5,
            "tmp": False,
            "wd": None if num % 3 else 1e-4,
        }
        atomic_write(folder / PARAMS_FILE, dump_params(params, time=when, id=num))
        copy = snapshot.make(
            params, when.strftime(TIME_FORMAT), num, str(folder / PARAMS_FILE)
        )
        run = Run(folder)
        fields = {"params": copy} if copies else {}
        record = run.start(command={"argv": ["main.py"], "cwd": "/"}, **fields)
        if metrics:
            lines = (
                json.dumps(
                    {
                        "step": s,
                        "time": 1.7e9 + s,
                        "loss": 1 / (s + 1),
                        "acc": s / metrics,
                        "lr": params["lr"],
                    }
                )
                for s in range(metrics)
            )
            (folder / METRICS_FILE).write_text("\n".join(lines) + "\n")
            (folder / RESULTS_FILE).write_text(json.dumps({"best": num / n}))
        record = run.finish("completed", exit_code=0, record=record)
        if metrics and not outcome_copies:
            for field in (snapshot.METRICS_FIELD, snapshot.RESULTS_FIELD):
                record.pop(field, None)
            run.write_record(record)
        root.link_index(name)
        root.link_mark(f"model/{model}", name)
    (root.state / "counter").write_text(f"{n}\n")
    return root.path


def orig_root(python: str, path: pathlib.Path, n: int, cwd: pathlib.Path) -> None:
    """A root written by exman 0.1.9 itself, with a command-line mark."""
    subprocess.run(
        [python, "-c", ORIG_MAKER, str(path), str(n)],
        check=True,
        cwd=cwd,
        env=child_env(),
    )
    script = pathlib.Path(python).parent / "exman"
    subprocess.run(
        [python, str(script), "mark", "best", "1", "2", "5"],
        check=True,
        cwd=path,
        env=child_env(),
        stdout=subprocess.DEVNULL,
    )


# -- measuring --------------------------------------------------------------------
def child(
    python: str, code: str, args: Sequence[str], cwd: pathlib.Path
) -> dict[str, Any]:
    done = subprocess.run(
        [python, "-c", code, *args],
        cwd=cwd,
        env=child_env(),
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        raise RuntimeError(f"{code.splitlines()[0]}... failed:\n{done.stderr}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def compare(orig: Any, ours: Any) -> tuple[list[str], list[str]]:
    """How exman 0.1.9's DataFrame and ours differ in rows and values.

    :returns: the differences, and the columns where 0.1.9 made a number or
        a bool of a string value (``'007'`` -> 7, ``'1e3'`` -> 1000.0): it
        turned every value into a string and guessed types back, while here
        the value stays what YAML read. A dict, kept as a dict here, is the
        same as its ``str()``, which 0.1.9 kept; a column that 0.1.9 dropped
        (None in every run) is not compared.
    """
    if orig["id"].tolist() != ours["id"].tolist():
        ids = f"{orig['id'].tolist()[:5]}... / {ours['id'].tolist()[:5]}..."
        return [f"rows differ: {ids}"], []
    problems, guessed = [], []
    for column in orig.columns:
        if column not in ours.columns:
            problems.append(f"column {column!r} missing")
            continue
        for i, (a, b) in enumerate(zip(orig[column].tolist(), ours[column].tolist())):
            if _same(a, b):
                continue
            if _guessed(a, b):
                if column not in guessed:
                    guessed.append(column)
                continue
            problems.append(f"{column}[{i}]: 0.1.9 {a!r}, exman {b!r}")
            break
    return problems, guessed


def _missing(v: Any) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v)) or str(v) == "NaT"


def _same(a: Any, b: Any) -> bool:
    if _missing(a) or _missing(b):
        return _missing(a) and _missing(b)
    if isinstance(a, str) and isinstance(b, dict):
        return a == str(b)
    if isinstance(a, pathlib.Path):
        return a.resolve() == pathlib.Path(b).resolve()
    if isinstance(a, str) != isinstance(b, str):
        return False
    return bool(a == b)


def _guessed(a: Any, b: Any) -> bool:
    """0.1.9 holds a number or bool that it parsed from our string ``b``."""
    if not isinstance(b, str) or isinstance(a, str):
        return False
    if isinstance(a, bool):
        return b.lower() in (
            ("true", "yes", "y", "t", "on", "1")
            if a
            else ("false", "no", "n", "f", "off", "0")
        )
    try:
        return float(b) == float(a)
    except (TypeError, ValueError):
        return False


def measure_size(
    n: int, work: pathlib.Path, pythons: dict[str, str], reps: int, targets: Targets
) -> Summary:
    """Time, measure and compare the loads of a root of ``n`` runs.

    :returns: the warm load's timings.
    """
    root = work / f"root-{n}"
    started = time.perf_counter()
    build_root(root, n)
    print(
        f"\n== {n:,} runs (made in {time.perf_counter() - started:.0f} s)", flush=True
    )
    ours, orig = pythons["exman"], pythons.get("exman 0.1.9")
    if n > 10_000:
        orig = None  # minutes per load, and no target rests on it
    variants = {
        "floor (C parse)": lambda: child(ours, FLOOR, [str(root), "compose"], work),
        "C load (+ PyYAML)": lambda: child(ours, FLOOR, [str(root), "load"], work),
        "exman cold (no cache)": lambda: child(ours, OURS, [str(root), "cold"], work),
        "exman warm (cache)": lambda: child(ours, OURS, [str(root), "warm"], work),
    }
    if orig:
        variants["exman 0.1.9"] = lambda: child(orig, ORIG, [str(root)], work)
    if n == 10_000:
        plain = build_root(work / f"root-{n}-yaml", n, copies=False)
        variants["exman cold, YAML"] = lambda: child(
            ours, OURS, [str(plain), "cold"], work
        )
        # runs that logged metrics: their last values come from the copy in
        # run.json, or from the end of each metrics.jsonl
        for name, made in (("copies", True), ("files", False)):
            logged = build_root(
                work / f"root-{n}-{name}", n, metrics=METRIC_LINES, outcome_copies=made
            )
            variants[f"exman cold, metrics {name}"] = lambda r=logged: child(
                ours, OURS, [str(r), "cold"], work
            )
    rows: dict[str, set[int]] = {}

    def timed(run: Any, name: str) -> Any:
        def go() -> float:
            out = run()
            rows.setdefault(name, set()).add(out["rows"])
            return float(out["seconds"])

        return go

    times = interleaved(
        {name: timed(run, name) for name, run in variants.items()}, reps=reps
    )
    summaries = {name: Summary.of(t) for name, t in times.items()}
    for name, summary in summaries.items():
        print(f"{name:24s} {summary}   rows {sorted(rows[name])}")
    floor, cold = summaries["floor (C parse)"], summaries["exman cold (no cache)"]
    warm, load = summaries["exman warm (cache)"], summaries["C load (+ PyYAML)"]
    label = f"{n:,} runs"
    if rows["exman cold (no cache)"] != {n} or rows["exman warm (cache)"] != {n}:
        targets.require(f"{label}: exman returns every run", False)
    targets.note(
        f"{label}: cold / floor (C parse) {cold.median / floor.median:.2f}, "
        f"cold / C load {cold.median / load.median:.2f}"
    )
    if orig:
        old = summaries["exman 0.1.9"]
        targets.note(
            f"{label}: 0.1.9 / cold {old.median / cold.median:.1f}x, "
            f"0.1.9 / warm {old.median / warm.median:.1f}x (0.1.9's imports "
            "not counted, exman's are)"
        )
    if n == 10_000:
        # like for like: the floor parses params.yaml, which a cold load
        # from the copies in run.json does not
        targets.note(
            f"{label}: cold from params.yaml / floor (C parse) "
            f"{summaries['exman cold, YAML'].median / floor.median:.2f}"
        )
        from_files = summaries["exman cold, metrics files"].median
        targets.note(
            f"{label} with {METRIC_LINES} lines of metrics each: cold from the "
            f"files / cold from the copies "
            f"{from_files / summaries['exman cold, metrics copies'].median:.2f}"
        )
        # what the copies in run.json save: shown, not a target. It stood
        # for "2.5x faster than the first load of that time", until the
        # load from params.yaml got faster too (it parses in two processes)
        targets.note(
            f"{label}: cold from params.yaml / cold from the copies "
            f"{summaries['exman cold, YAML'].median / cold.median:.2f}"
        )
        targets.check(f"{label}: cold / floor", cold, floor, 1.2, at_most=True)
        # the goal as it was set: a first load of 10,000 runs in 1 s at most
        # (2.5 s then), the files in the page cache
        targets.check(
            f"{label}: cold / {FIRST_LOAD_GOAL:g} s",
            cold,
            Summary.of([FIRST_LOAD_GOAL]),
            1.0,
            at_most=True,
        )
        if orig:
            targets.check(f"{label}: 0.1.9 / warm", old, warm, 25, at_most=False)
    for mode in ("warm", "cold"):
        trace = child(ours, MEMORY, [str(root), mode, "trace"], work)
        rss = child(ours, MEMORY, [str(root), mode, "rss"], work)
        df = trace["df"]
        print(
            f"memory, {mode}: DataFrame {df / 1e6:.1f} MB; peak traced "
            f"{trace['peak'] / 1e6:.1f} MB ({trace['peak'] / df:.2f}x); resident "
            f"set +{rss['peak'] / 1e6:.1f} MB ({rss['peak'] / df:.2f}x)"
        )
        if n >= 10_000:
            targets.check(
                f"{n:,} runs: peak memory of a {mode} load / DataFrame",
                Summary.of([trace["peak"]]),
                Summary.of([df]),
                2.0,
                at_most=True,
            )
    if orig and n <= 10_000:
        same_values(orig, root, work, label, [None, "model/cnn"], targets)
    return warm


def same_values(
    orig: str,
    root: pathlib.Path,
    work: pathlib.Path,
    label: str,
    keys: Sequence[Any],
    targets: Targets,
) -> None:
    """Check that our rows and values equal exman 0.1.9's for each source."""
    import pandas as pd

    from exman.index import Index

    out = work / "orig.pickle"
    for key in keys:
        call = "info()" if key is None else f"info({key!r})"
        child(orig, ORIG.replace("info()", call), [str(root), str(out)], work)
        theirs = pd.read_pickle(out)
        ours = Index(root).info(key)
        problems, guessed = compare(theirs, ours)
        extra = [c for c in ours.columns if c not in theirs.columns]
        verdict = (
            "same rows and values"
            if not problems
            else "DIFFERENT: " + "; ".join(problems[:5])
        )
        targets.require(
            f"{label}, {call} vs 0.1.9: {verdict} ({len(theirs)} rows, "
            f"{len(theirs.columns)} columns; only here: {', '.join(extra)})",
            not problems,
        )
        if guessed:
            print(
                f"    kept as the strings they are (0.1.9 guessed numbers): "
                f"{', '.join(guessed)}"
            )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,10000,100000")
    parser.add_argument(
        "--reps", type=int, default=5, help="timed rounds per size (at least 3)"
    )
    parser.add_argument("--no-orig", action="store_true", help="skip exman 0.1.9")
    add_system(parser)
    args = parser.parse_args(argv)
    if args.reps < 3:
        parser.error(f"--reps must be at least 3 for a median, not {args.reps}")
    header(
        "Index(root).info(): exman vs exman 0.1.9 vs the floor",
        "bench/index.py",
        list(argv if argv is not None else sys.argv[1:]),
    )
    pythons = {"exman": PYTHON if args.system else dev_python()}
    if not args.no_orig:
        pythons["exman 0.1.9"] = orig_python()
    targets = Targets()
    with scratch("exman-bench-index-") as work:
        if not args.no_orig:
            old = work / "root-0.1.9"
            orig_root(pythons["exman 0.1.9"], old, 300, work)
            print("\n== a root of 300 runs written by exman 0.1.9")
            keys = [None, "model", "model/cnn", "best"]
            same_values(pythons["exman 0.1.9"], old, work, "0.1.9 root", keys, targets)
        warm: dict[int, Summary] = {}
        for n in (int(s) for s in args.sizes.split(",")):
            warm[n] = measure_size(n, work, pythons, args.reps, targets)
        if 10_000 in warm and 100_000 in warm:
            print(f"\nwarm load of 100,000 runs: {warm[100_000]}")
            targets.check(
                "warm load: 100,000 runs / 10,000 runs",
                warm[100_000],
                warm[10_000],
                12,
                at_most=True,
            )
    targets.summary()
    return 1 if targets.failed else 0


if __name__ == "__main__":
    sys.exit(main())
