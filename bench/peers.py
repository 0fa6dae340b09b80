"""exman against the tools users pick for the same job: MLflow and Aim.

The same work on every side, each variant a new process, interleaved,
``--reps`` rounds (medians compared as ratios):

(a) record: a script that parses three parameters, records one run and
    one result (``acc``), whole process. exman: an ``ExParser`` script and
    ``exman.result``; MLflow: ``mlflow.start_run``, ``log_params``,
    ``log_metric`` into its default SQLite store; Aim: ``aim.Run`` with
    the parameters and ``run["acc"]``, system tracking off.
(b) load: ``--runs`` runs (parameters and result) into a pandas DataFrame
    in a new process. exman: ``Index(root).info()``, first load (no
    ``.exman/cache``: runs that no load has seen), after ``exman sweep``
    (which reads the runs it made into the cache as it ends: that read
    is timed apart, as the sweep's) and warm; MLflow:
    ``mlflow.search_runs``; Aim: ``Run.dataframe()`` of every run of
    ``Repo.iter_runs()``, concatenated. The peers keep no cache of their
    own, so each of their loads is the same.
(c) log: ``--points`` metric values logged one call at a time from one
    run, whole process. exman: ``exman.log``; MLflow: ``mlflow.log_metric``
    with its asynchronous logging on (one SQLite transaction per call
    otherwise: minutes); Aim: ``run.track``.
(d) list: the runs of (b) listed from the shell, output to a pipe, by
    each tool's installed command: ``exman ls``, ``mlflow runs list``,
    ``aim runs ls``.

Each peer is installed into a virtual environment of its own, made on first
use under ``--peers-dir`` (default ``~/.cache/exman-bench/peers``, or
``$EXMAN_BENCH_PEERS``); the stores of (b) and (d) are built there once
through the peer's own client (MLflow takes tens of milliseconds a run,
Aim more, and Aim's store is then indexed, as its readers need: building
10,000 runs takes many minutes, once) and reused. Nothing of theirs is a
dependency of exman. Guild AI installs here too (0.9.0) but
runs every experiment as a ``guild run`` subprocess of its own and has no
in-process logger to time against ``exman.log``; Aim is the tool users
compare with MLflow for logging and browsing runs.

Target: exman at least 10x faster than every peer on every row (for (b),
exman's first load against the peer's load). ``--no-peers`` measures the
exman side only (a quick check that the benchmark still runs).
"""

from __future__ import annotations

import argparse
import os
import pathlib
import shutil
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Sequence

from _common import (
    PYTHON,
    REPO,
    Summary,
    Targets,
    add_system,
    child_env,
    dev_python,
    interleaved,
    run_wall,
    scratch,
    start,
    venv_python,
)

TARGET = 10.0
#: the peers, pinned (Aim's DataFrames need pandas, which it does not require)
PEERS = {"mlflow": ["mlflow==3.17.2"], "aim": ["aim==3.29.1", "pandas==3.1.1"]}
_AIM_RUN = (
    "system_tracking_interval=None, capture_terminal_logs=False, "
    "log_system_params=False"
)

# -- (a) one run -----------------------------------------------------------------
RECORD = {
    "exman": """
import exman
p = exman.ExParser(root=ROOT)
p.add_argument("--lr", type=float, default=0.1)
p.add_argument("--model", default="mlp")
p.add_argument("--seed", type=int, default=0)
args = p.parse_args()
exman.result(acc=0.5)
""",
    "mlflow": """
import argparse, mlflow
p = argparse.ArgumentParser()
p.add_argument("--lr", type=float, default=0.1)
p.add_argument("--model", default="mlp")
p.add_argument("--seed", type=int, default=0)
args = p.parse_args()
mlflow.set_tracking_uri("sqlite:///" + ROOT + "/mlflow.db")
with mlflow.start_run():
    mlflow.log_params(vars(args))
    mlflow.log_metric("acc", 0.5)
""",
    "aim": f"""
import argparse
from aim import Run
p = argparse.ArgumentParser()
p.add_argument("--lr", type=float, default=0.1)
p.add_argument("--model", default="mlp")
p.add_argument("--seed", type=int, default=0)
args = p.parse_args()
run = Run(repo=ROOT, {_AIM_RUN})
run["hparams"] = vars(args)
run["acc"] = 0.5
run.close()
""",
}

# -- (b) many runs: building the stores, loading them ----------------------------
BUILD = {
    "mlflow": """
import sys, time
from mlflow.entities import Metric, Param
from mlflow.tracking import MlflowClient
root, n = sys.argv[1], int(sys.argv[2])
client = MlflowClient(tracking_uri="sqlite:///" + root + "/mlflow.db")
for i in range(n):
    run = client.create_run("0")
    params = [Param("lr", str(0.001 * (i % 100 + 1))), Param("model", "mlp"),
              Param("seed", str(i % 5))]
    metric = Metric("acc", i / n, int(time.time() * 1000), 0)
    client.log_batch(run.info.run_id, metrics=[metric], params=params)
    client.set_terminated(run.info.run_id)
""",
    "aim": f"""
import sys
from aim import Run
root, n = sys.argv[1], int(sys.argv[2])
with open(root + "/made", "a") as made:
    for i in range(int(sys.argv[3]), n):
        run = Run(repo=root, {_AIM_RUN})
        run["hparams"] = {{"lr": 0.001 * (i % 100 + 1), "model": "mlp", "seed": i % 5}}
        run["acc"] = i / n
        run.close()
        print(i, file=made, flush=True)
""",
}
#: seconds without a new run after which Aim's builder is restarted: its
#: Run.close() can wait forever for its status reporter's thread
AIM_STALL = 60
LOAD = {
    "exman": "import exman; exman.Index(ROOT).info()",
    "mlflow": (
        "import mlflow; mlflow.set_tracking_uri('sqlite:///' + ROOT + '/mlflow.db');"
        " mlflow.search_runs(experiment_ids=['0'], max_results=1_000_000)"
    ),
    "aim": (
        "import pandas as pd; from aim import Repo;"
        " pd.concat([r.dataframe() for r in Repo(ROOT).iter_runs()])"
    ),
}

# -- (c) many points from one run ------------------------------------------------
LOG = {
    "exman": """
import exman
args = exman.ExParser(root=ROOT).parse_args([])
log = exman.log
for i in range(N):
    log(step=i, loss=1.0 / (i + 1))
""",
    "mlflow": """
import mlflow
mlflow.set_tracking_uri("sqlite:///" + ROOT + "/mlflow.db")
mlflow.config.enable_async_logging(True)
with mlflow.start_run():
    for i in range(N):
        mlflow.log_metric("loss", 1.0 / (i + 1), step=i, synchronous=False)
""",
    "aim": f"""
from aim import Run
run = Run(repo=ROOT, {_AIM_RUN})
for i in range(N):
    run.track(1.0 / (i + 1), name="loss", step=i)
run.close()
""",
}


def _script(code: str, **values: object) -> str:
    head = "".join(f"{k} = {v!r}\n" for k, v in values.items())
    return head + textwrap.dedent(code)


def peers_dir(given: str | None) -> pathlib.Path:
    if given:
        return pathlib.Path(given).expanduser()
    env = os.environ.get("EXMAN_BENCH_PEERS")
    if env:
        return pathlib.Path(env).expanduser()
    return pathlib.Path.home() / ".cache" / "exman-bench" / "peers"


def peer_python(name: str, where: pathlib.Path) -> str:
    """The interpreter of the peer's own virtual environment (made once)."""
    package, version = PEERS[name][0].split("==")
    return venv_python(
        name,
        PEERS[name],
        f"from importlib.metadata import version; print(version({package!r}))",
        version,
        folder=where,
    )


def peer_store(name: str, python: str, where: pathlib.Path, n: int) -> str:
    """A store of ``n`` runs made through the peer's client, built once."""
    version = PEERS[name][0].split("==")[1]
    store = where / "stores" / f"{name}-{version}-{n}"
    done = store / "complete"
    if done.exists():
        return str(store)
    shutil.rmtree(store, ignore_errors=True)
    store.mkdir(parents=True)
    print(f"building {store}: {n:,} runs through {name}'s client (once)", flush=True)
    _init(name, python, store)
    if name == "aim":
        _build_aim(python, store, n)
        # Aim's readers see a run once its repository's index holds it,
        # which `aim up` does in the background: not counted in a load here
        aim = pathlib.Path(python).parent / "aim"
        subprocess.run(
            [str(aim), "storage", "--repo", str(store), "reindex", "--yes"],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
    else:
        subprocess.run(
            [python, "-c", BUILD[name], str(store), str(n)],
            check=True,
            env=child_env(),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
    done.write_text("")
    return str(store)


def _build_aim(python: str, store: pathlib.Path, n: int) -> None:
    """Aim's runs, in a process restarted whenever it stalls."""
    made = store / "made"

    def count() -> int:
        return len(made.read_text().split()) if made.exists() else 0

    while count() < n:
        start = count()
        proc = subprocess.Popen(
            [python, "-c", BUILD["aim"], str(store), str(n), str(start)],
            env=child_env(),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        last, seen = time.monotonic(), start
        while proc.poll() is None:
            time.sleep(1)
            if count() != seen:
                last, seen = time.monotonic(), count()
            elif time.monotonic() - last > AIM_STALL:
                proc.kill()
                proc.wait()
        if proc.returncode not in (0, -9) or (proc.returncode == 0 and count() < n):
            raise RuntimeError(f"building the Aim store {store} failed")


def _init(name: str, python: str, place: pathlib.Path) -> None:
    """Make ``place`` a store of the peer where it needs one made first."""
    if name == "aim":
        aim = pathlib.Path(python).parent / "aim"
        subprocess.run(
            [str(aim), "init", "--repo", str(place)],
            check=True,
            stdout=subprocess.DEVNULL,
        )


def exman_root(path: pathlib.Path, n: int) -> str:
    """``n`` finished runs with the parameters and result of (b), made by
    exman's own code (without a process per run, for speed)."""
    sys.path.insert(0, str(REPO))
    import datetime
    import json

    from exman.record import snapshot
    from exman.record.metrics import RESULTS_FILE
    from exman.record.params import PARAMS_FILE, TIME_FORMAT, dump_params
    from exman.record.run import Run
    from exman.record.store import DIR_TIME_FORMAT, Root, atomic_write

    root = Root(path).ensure()
    start = datetime.datetime(2026, 1, 1)
    for num in range(1, n + 1):
        when = start + datetime.timedelta(seconds=num)
        name = f"{num:06d}-{when.strftime(DIR_TIME_FORMAT)}"
        folder = root.runs / name
        folder.mkdir()
        params = {
            "config_file": None,
            "git_dirty": False,
            "lr": 0.001 * (num % 100 + 1),
            "model": "mlp",
            "name": None,
            "root": f"runs/{name}",
            "seed": num % 5,
            "tmp": False,
        }
        atomic_write(folder / PARAMS_FILE, dump_params(params, time=when, id=num))
        copy = snapshot.make(
            params, when.strftime(TIME_FORMAT), num, str(folder / PARAMS_FILE)
        )
        run = Run(folder)
        record = run.start(command={"argv": ["main.py"], "cwd": "/"}, params=copy)
        atomic_write(folder / RESULTS_FILE, json.dumps({"acc": num / n}))
        run.finish("completed", exit_code=0, record=record)
        root.link_index(name)
    (root.state / "counter").write_text(f"{n}\n")
    return str(root.path)


#: (b)'s floor: a new process that imports pandas and does nothing else
FLOOR = "import pandas"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10_000, help="runs for (b), (d)")
    parser.add_argument("--points", type=int, default=100_000, help="values for (c)")
    parser.add_argument("--reps", type=int, default=3, help="timed rounds")
    parser.add_argument("--peers-dir", help="where the peers' environments live")
    parser.add_argument(
        "--no-peers", action="store_true", help="measure exman only (no install)"
    )
    parser.add_argument(
        "--only", default="", help="comma-separated peers to measure (mlflow,aim)"
    )
    parser.add_argument("--rows", default="abcd", help="the rows to measure: abcd")
    add_system(parser)
    args = start(parser, argv, "exman vs MLflow and Aim", "bench/peers.py")
    pythons = {"exman": PYTHON if args.system else dev_python()}
    names = (
        [] if args.no_peers else [p for p in PEERS if p in args.only or not args.only]
    )
    where = peers_dir(args.peers_dir)
    for name in names:
        pythons[name] = peer_python(name, where)
    targets = Targets()
    with scratch("exman-bench-peers-") as work:
        rows = {}
        if "a" in args.rows:
            rows["(a) record one run"] = _record(pythons, work, args.reps)
        if "b" in args.rows or "d" in args.rows:
            rows.update(_load(pythons, work, where, args.runs, args.reps))
        if "c" in args.rows:
            rows["(c) log points"] = _log(pythons, work, args.points, args.reps)
    print("\n== ratios: peer / exman (medians)")
    for row, times in rows.items():
        ours = times.get("exman first load", times.get("exman"))
        for name, summary in times.items():
            if name.startswith("exman") or name == FLOOR:
                continue
            assert ours is not None
            targets.check(
                f"{row}: {name} / exman", summary, ours, TARGET, at_most=False
            )
    targets.summary()
    return 1 if targets.failed else 0


def _show(title: str, times: dict[str, list[float]]) -> dict[str, Summary]:
    summaries = {name: Summary.of(t) for name, t in times.items()}
    print(f"\n== {title}")
    for name, summary in summaries.items():
        print(f"{name:<18} {summary}")
    return summaries


def _record(
    pythons: dict[str, str], work: pathlib.Path, reps: int
) -> dict[str, Summary]:
    variants: dict[str, Callable[[], float]] = {}
    for name, python in pythons.items():
        place = work / f"record-{name}"
        place.mkdir()
        _init(name, python, place)
        script = place / "main.py"
        script.write_text(_script(RECORD[name], ROOT=str(place)))
        cmd = [python, str(script), "--lr", "0.01", "--seed", "3"]
        variants[name] = lambda cmd=cmd, cwd=place: run_wall(cmd, cwd=cwd)
    return _show(
        "(a) a script that records one run and a result", interleaved(variants, reps)
    )


def _load(
    pythons: dict[str, str], work: pathlib.Path, where: pathlib.Path, n: int, reps: int
) -> dict[str, dict[str, Summary]]:
    root = exman_root(work / "root", n)
    cache = os.path.join(root, ".exman", "cache")
    stores = {"exman": root}
    for name in pythons:
        if name != "exman":
            stores[name] = peer_store(name, pythons[name], where, n)
    cmd = {
        name: [python, "-c", _script(LOAD[name], ROOT=stores[name])]
        for name, python in pythons.items()
    }

    def first() -> float:
        shutil.rmtree(cache, ignore_errors=True)
        return run_wall(cmd["exman"])

    # exman sweep reads the runs it made into the cache as it ends (here: a
    # sweep that made them all): timed on its own (it is the sweep's time,
    # once), then the user's load after it
    warm_up = [
        pythons["exman"],
        "-c",
        "import os; from exman.look.gather import warm; "
        "from exman.record.store import Root; "
        f"runs = os.path.join({os.fspath(root)!r}, 'runs'); "
        f"warm(Root({os.fspath(root)!r}), "
        "[os.path.join(runs, name) for name in os.listdir(runs)])",
    ]
    sweep_ends: list[float] = []

    def after_sweep() -> float:
        shutil.rmtree(cache, ignore_errors=True)
        sweep_ends.append(run_wall(warm_up))
        return run_wall(cmd["exman"])

    # what any tool that hands back a DataFrame pays before reading a run
    pandas_only = [pythons["exman"], "-c", "import pandas"]
    loads: dict[str, Callable[[], float]] = {
        "exman first load": first,
        "exman after sweep": after_sweep,
        "exman warm": lambda: run_wall(cmd["exman"]),
        FLOOR: lambda: run_wall(pandas_only),
    }
    # each tool's own command, as a user types it (not python -m: runpy)
    command = pathlib.Path(pythons["exman"]).parent / "exman"
    exman_ls = [str(command)] if command.exists() else [pythons["exman"], "-m", "exman"]
    listing = {"exman": [*exman_ls, "--root", root, "ls"]}
    for name in pythons:
        if name != "exman":
            loads[name] = lambda c=cmd[name]: run_wall(c)
    if "mlflow" in pythons:
        bin_ = pathlib.Path(pythons["mlflow"]).parent
        listing["mlflow"] = [
            str(bin_ / "mlflow"),
            "runs",
            "list",
            "--experiment-id",
            "0",
        ]
        os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{stores['mlflow']}/mlflow.db"
    if "aim" in pythons:
        bin_ = pathlib.Path(pythons["aim"]).parent
        listing["aim"] = [str(bin_ / "aim"), "runs", "--repo", stores["aim"], "ls"]
    load = _show(
        f"(b) {n:,} runs into a DataFrame, new process", interleaved(loads, reps)
    )
    lists = _show(
        f"(d) listing {n:,} runs from the shell",
        interleaved({k: lambda c=c: run_wall(c) for k, c in listing.items()}, reps),
    )
    ratio = load["exman first load"].median / load["exman warm"].median
    print(f"exman first load / warm: {ratio:.2f}")
    ends = Summary.of(sweep_ends)
    print(f"the read at the end of exman sweep (the sweep's time, once): {ends}")
    for name in pythons:
        if name != "exman":  # the load a user makes after exman sweep
            after = load[name].median / load["exman after sweep"].median
            print(f"{name} / exman after sweep: {after:.2f}")
    floor = load[FLOOR].median
    print(f"exman first load / {FLOOR}: {load['exman first load'].median / floor:.2f}")
    for name in pythons:
        if name != "exman":  # the most a DataFrame of pandas lets anyone gain
            print(f"{name} / {FLOOR}: {load[name].median / floor:.2f}")
    return {"(b) load into a DataFrame": load, "(d) list from the shell": lists}


def _log(
    pythons: dict[str, str], work: pathlib.Path, n: int, reps: int
) -> dict[str, Summary]:
    variants: dict[str, Callable[[], float]] = {}
    for name, python in pythons.items():
        place = work / f"log-{name}"
        place.mkdir()
        _init(name, python, place)
        script = place / "main.py"
        script.write_text(_script(LOG[name], ROOT=str(place), N=n))
        variants[name] = lambda c=[python, str(script)], cwd=place: run_wall(c, cwd=cwd)
    return _show(f"(c) {n:,} values logged from one run", interleaved(variants, reps))


if __name__ == "__main__":
    sys.exit(main())
