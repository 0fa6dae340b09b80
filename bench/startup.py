"""How fast a run starts, and whether creating one slows down as a root grows.

1. Startup: the wall time of ``python main.py --lr 0.1`` for a script that
   builds an ExParser, adds a few arguments and parses, against the same
   script with plain argparse, with configargparse and PyYAML (the floor:
   what any configargparse + PyYAML script pays, exman's two dependencies
   on this path), with the floor and ``import pathlib`` (exman hands the
   script its run folder as a Path, and on Python 3.11 pathlib imports
   urllib.parse and ipaddress: about 7 % of the floor's instructions,
   which exman leaves out, see exman.record.lazyurl), and with exman
   0.1.9. Targets: exman <= 1.2x the floor; exman >= 5x faster than 0.1.9
   (wall times). Each process's CPU time
   (user + system) is printed beside: on a loaded machine it moves less
   than the wall time. The exman script is also timed inside a
   git work tree, where its run records the commit and the uncommitted
   changes (two git commands): no target, the price is printed.
2. Run creation: ``ExParser(root=...).parse_args([...])`` timed in one
   process, in an empty root and in a root of 100,000 runs (built by hand).
   Target: the ratio stays below 1.2. The same creation with ``os.fsync``
   made a no-op shows what durability costs (params.yaml and the counter
   reach the disk before parse_args returns). exman 0.1.9 is measured the same way
   at 0 and 10,000 runs, and the one-time scan that a root made by 0.1.9
   (no id counter yet) costs exman is shown.

Run ``python bench/startup.py`` (``--quick`` for a 10,000-run root and fewer
repetitions); the exit code is 1 when a target is missed.
"""

from __future__ import annotations

import argparse
import functools
import json
import pathlib
import re
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence

from _common import (
    PYTHON,
    Summary,
    Targets,
    child_env,
    dev_python,
    header,
    interleaved,
    make_root,
    ms,
    orig_python,
    run_timed,
    scratch,
)

ARGUMENTS = """\
parser.add_argument("--lr", type=float, default=0.01)
parser.add_argument("--epochs", type=int, default=10)
parser.add_argument("--model", default="mlp")
parser.add_argument("--seed", type=int, default=0)
args = parser.parse_args()
"""

#: the measured scripts; ``{root}`` is filled in for the exman ones
SCRIPTS = {
    "argparse": "import argparse\n\nparser = argparse.ArgumentParser()\n",
    # a configargparse parser, and the PyYAML a params file needs; not
    # filelock, which exman does not import on this path
    "floor": (
        "import argparse  # noqa: F401\n\nimport configargparse\n"
        "import yaml  # noqa: F401\n\n"
        "parser = configargparse.ArgumentParser()\n"
    ),
    # the floor and pathlib: exman's interface hands the script its run
    # folder as a pathlib.Path (``args.root``, ``exman.simpleroot``), and on
    # Python 3.11 pathlib imports urllib.parse and ipaddress
    "floor + pathlib": (
        "import argparse  # noqa: F401\nimport pathlib  # noqa: F401\n\n"
        "import configargparse\nimport yaml  # noqa: F401\n\n"
        "parser = configargparse.ArgumentParser()\n"
    ),
    "exman": "import exman\n\nparser = exman.ExParser(root={root!r})\n",
}

#: after the parse, what recording a run costs any script at the least: its
#: folder made, its parameters written to a new file that reaches the disk
#: before it is renamed into place (no YAML emitter: one line per value),
#: the folders flushed, a link in index/, and the folder handed back as a
#: pathlib.Path (the floor + pathlib's imports)
RECORD = """\
name = os.urandom(8).hex()
folder = os.path.join({root!r}, "runs", name)
os.makedirs(folder)
os.makedirs(os.path.join({root!r}, "index"), exist_ok=True)
with open(os.path.join(folder, "params.yaml.tmp"), "w") as f:
    f.write("".join(f"{{key}}: {{value!r}}\\n" for key, value in vars(args).items()))
    f.flush()
    os.fsync(f.fileno())
os.replace(os.path.join(folder, "params.yaml.tmp"), os.path.join(folder, "params.yaml"))
for flushed in (folder, os.path.dirname(folder)):
    fd = os.open(flushed, os.O_RDONLY)
    os.fsync(fd)
    os.close(fd)
os.symlink(
    f"../runs/{{name}}/params.yaml", os.path.join({root!r}, "index", name + ".yaml")
)
args.root = pathlib.Path(folder)
"""
#: the package of empty modules that "floor + record + modules" imports, as
#: many as exman's own on the parse path: what the import of that many
#: modules costs, whatever they hold
EMPTY_PACKAGE = "emptymods"

#: times run creation inside one process; works with every exman version
CREATE_WORKER = """\
import contextlib
import json
import os
import sys
import time

import exman

with open(sys.argv[1]) as f:
    spec = json.load(f)


def create(root):
    parser = exman.ExParser(root=root)
    parser.add_argument("--lr", type=float, default=0.01)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--model", default="mlp")
    parser.add_argument("--seed", type=int, default=0)
    parser.parse_args(["--lr", "0.1"])


steps = spec["steps"]
times = {step["label"]: [] for step in steps}
real_fsync = os.fsync
# exman 0.1.9 prints the params of every run
with open(os.devnull, "w") as sink, contextlib.redirect_stdout(sink):
    for rnd in range(spec["warmup"] + spec["reps"]):
        shift = rnd % len(steps) if spec["rotate"] else 0
        for step in steps[shift:] + steps[:shift]:
            if step["drop_counter"]:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(os.path.join(step["root"], ".exman", "counter"))
            # the price of durability: the same creation, fsync made a no-op
            os.fsync = (lambda fd: None) if step.get("no_fsync") else real_fsync
            start = time.perf_counter()
            create(step["root"])
            elapsed = time.perf_counter() - start
            if rnd >= spec["warmup"]:
                times[step["label"]].append(elapsed)
with open(spec["out"], "w") as f:
    json.dump(times, f)
"""

IMPORT_LINE = re.compile(r"^import time:\s+(\d+)\s+\|\s+(\d+)\s+\|( *)(\S+)\s*$")


# -- 1. startup ------------------------------------------------------------------
def write_scripts(work: pathlib.Path, python: str) -> dict[str, pathlib.Path]:
    """The measured main.py files, one folder each."""
    texts = {
        "argparse": SCRIPTS["argparse"],
        "floor": SCRIPTS["floor"],
        "floor + pathlib": SCRIPTS["floor + pathlib"],
        "exman": SCRIPTS["exman"].format(root=str(work / "root-exman")),
        "exman 0.1.9": SCRIPTS["exman"].format(root=str(work / "root-0.1.9")),
        "exman in git": SCRIPTS["exman"].format(root=str(work / "root-git")),
    }
    paths = {}
    for i, (name, text) in enumerate(texts.items()):
        folder = work / f"script{i}"
        folder.mkdir()
        paths[name] = folder / "main.py"
        paths[name].write_text(text + ARGUMENTS)
    git_work_tree(paths["exman in git"].parent)
    recorded = "import os\n" + SCRIPTS["floor + pathlib"] + ARGUMENTS
    folder = work / "script-record"
    folder.mkdir()
    paths["floor + record"] = folder / "main.py"
    paths["floor + record"].write_text(
        recorded + RECORD.format(root=str(work / "root-record"))
    )
    count = len(exman_modules(python, paths["exman"]))
    folder = work / "script-modules"
    (folder / EMPTY_PACKAGE).mkdir(parents=True)
    (folder / EMPTY_PACKAGE / "__init__.py").write_text("")
    lines = []
    for k in range(1, count):  # the package is the first of them
        (folder / EMPTY_PACKAGE / f"m{k}.py").write_text("")
        lines.append(f"import {EMPTY_PACKAGE}.m{k}  # noqa: F401\n")
    paths["floor + record + modules"] = folder / "main.py"
    paths["floor + record + modules"].write_text(
        "".join(lines) + recorded + RECORD.format(root=str(work / "root-modules"))
    )
    return paths


def exman_modules(python: str, script: pathlib.Path) -> list[str]:
    """exman's own modules that ``script`` imports (one ``-X importtime`` run)."""
    names = [name for name, *_ in imports(python, script, runs=1)]
    return [n for n in names if n == "exman" or n.startswith("exman.")]


def git_work_tree(folder: pathlib.Path) -> None:
    """Make ``folder`` a git work tree with its files committed."""
    env = {**child_env(), "GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": "/dev/null"}
    who = ["-c", "user.name=bench", "-c", "user.email=bench@localhost"]
    for args in (["init", "-q"], ["add", "."], [*who, "commit", "-q", "-m", "bench"]):
        subprocess.run(["git", "-C", str(folder), *args], env=env, check=True)


def imports(
    python: str, script: pathlib.Path, runs: int = 5
) -> list[tuple[str, int, int, int]]:
    """(module, self us, cumulative us, depth) of each import of the script.

    Each time is the least of ``runs`` runs of ``python -X importtime``: one
    run alone is at the mercy of whatever else the machine does.
    """
    best: dict[str, list[int]] = {}
    for _ in range(runs):
        done = subprocess.run(
            [python, "-X", "importtime", str(script), "--lr", "0.1"],
            cwd=script.parent,
            env=child_env(),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            check=True,
        )
        for line in done.stderr.splitlines():
            m = IMPORT_LINE.match(line)
            if not m:
                continue
            own, total = int(m.group(1)), int(m.group(2))
            depth = (len(m.group(3)) - 1) // 2
            seen = best.setdefault(m.group(4), [own, total, depth])
            seen[0], seen[1] = min(seen[0], own), min(seen[1], total)
    return [(name, own, total, depth) for name, (own, total, depth) in best.items()]


def report_imports(python: str, scripts: dict[str, pathlib.Path]) -> None:
    """The biggest imports of exman's parse path, and what it adds to the floor."""
    ours = imports(python, scripts["exman"])
    floor = {name for name, *_ in imports(python, scripts["floor"])}
    print(
        "\nbiggest imports of the exman script (python -X importtime, least of 5 runs):"
    )
    print(f"  {'cumulative':>10}  {'self':>8}  module")
    for name, own, total, depth in sorted(ours, key=lambda r: -r[2])[:10]:
        print(f"  {total / 1000:7.2f} ms  {own / 1000:5.2f} ms  {'  ' * depth}{name}")
    extra = [r for r in ours if r[0] not in floor]
    extra_self = sum(r[1] for r in extra)
    print(
        f"modules the floor does not import: {len(extra)}, "
        f"{extra_self / 1000:.2f} ms of their own import time; largest:"
    )
    for name, own, _total, _depth in sorted(extra, key=lambda r: -r[1])[:10]:
        print(f"  {own / 1000:5.2f} ms  {name}")


INSTRUCTIONS = re.compile(r"I\s+refs:\s+([\d,]+)")


def instructions(python: str, script: pathlib.Path, runs: int = 3) -> int | None:
    """The median count of instructions one run of ``script`` executes in user
    space (valgrind's cachegrind), or None without valgrind.

    The count hardly moves with the load of the machine, which the times
    do; what the kernel does for the process (files, flushes, page faults)
    is not in it.
    """
    valgrind = shutil.which("valgrind")
    if valgrind is None:
        return None
    command = [valgrind, "--tool=cachegrind", "--cache-sim=no"]
    command += ["--cachegrind-out-file=/dev/null", python, str(script), "--lr", "0.1"]
    counts = []
    for _ in range(runs):
        done = subprocess.run(
            command,
            cwd=script.parent,
            env=child_env(),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            check=True,
        )
        found = INSTRUCTIONS.search(done.stderr)
        if found is None:
            raise RuntimeError(f"no instruction count from valgrind:\n{done.stderr}")
        counts.append(int(found.group(1).replace(",", "")))
    return int(statistics.median(counts))


def report_instructions(
    scripts: dict[str, pathlib.Path], pythons: dict[str, str]
) -> None:
    """The instructions of each variant, and their ratio to the floor's."""
    print("\ninstructions executed in user space (valgrind's cachegrind, median of 3):")
    counts = {name: instructions(pythons[name], path) for name, path in scripts.items()}
    floor = counts["floor"]
    if floor is None:
        print("  valgrind is not installed: skipped")
        return
    width = max(map(len, counts))
    for name, count in counts.items():
        assert count is not None
        print(f"  {name:{width}}  {count / 1e6:8.1f} M  x floor {count / floor:5.3f}")
    # under valgrind a run lasts longer: one that reached LOOKUP_AFTER would
    # have looked its packages up, which a run at full speed does not do
    for folder in (scripts["exman"].parent.parent / "root-exman" / "runs").iterdir():
        with open(folder / "run.json") as f:
            if json.load(f).get("env", {}).get("packages_from") == "metadata":
                print(f"  note: {folder.name} looked its packages up (it lasted 2 s)")


def startup(
    work: pathlib.Path,
    reps: int,
    dev: str,
    orig: str | None,
    targets: Targets,
    *,
    count: bool = False,
) -> None:
    print(f"== 1. startup: python main.py --lr 0.1, {reps} interleaved runs each")
    work.mkdir()
    scripts = write_scripts(work, dev)
    pythons = {name: dev for name in scripts}
    if orig is None:
        del scripts["exman 0.1.9"]
    else:
        pythons["exman 0.1.9"] = orig

    cpu: dict[str, list[float]] = {name: [] for name in scripts}

    def runner(name: str) -> float:
        script = scripts[name]
        wall, used = run_timed(
            [pythons[name], str(script), "--lr", "0.1"], cwd=script.parent
        )
        cpu[name].append(used)
        return wall

    times = interleaved(
        {name: functools.partial(runner, name) for name in scripts}, reps
    )
    stats = {name: Summary.of(t) for name, t in times.items()}
    # the CPU time (user + system) of each process: less at the mercy of
    # whatever else the machine does than the wall time, which is the target
    cpus = {name: Summary.of(t[-reps:]) for name, t in cpu.items()}
    floor, floor_cpu = stats["floor"], cpus["floor"]
    width = max(map(len, stats))
    print(
        f"  {'':{width}}  {'median':>11}  {'min':>11}  x floor (median / min)"
        "   cpu median  x floor"
    )
    for name, s in stats.items():
        c = cpus[name]
        print(
            f"  {name:{width}}  {ms(s.median)}  {ms(s.min)}  "
            f"{s.median / floor.median:5.2f} / {s.min / floor.min:5.2f}"
            f"    {ms(c.median)}  {c.median / floor_cpu.median:5.2f}"
        )
    ours = stats["exman"]
    targets.check(
        "startup: exman / floor (configargparse parse + import yaml)",
        ours,
        floor,
        1.2,
        at_most=True,
    )
    with_path = stats["floor + pathlib"]
    print(
        f"  exman / (floor + pathlib): {ours.median / with_path.median:.2f} "
        f"(minimums {ours.min / with_path.min:.2f}): args.root is a pathlib.Path"
    )
    recorded, modules = stats["floor + record"], stats["floor + record + modules"]
    count = len(
        list((scripts["floor + record + modules"].parent / EMPTY_PACKAGE).iterdir())
    )
    print(
        f"  (floor + record) / floor: {recorded.median / floor.median:.2f} (minimums "
        f"{recorded.min / floor.min:.2f}): a run's folder, its parameters flushed "
        "to the disk, its link and a pathlib.Path, the least any script pays to "
        "record a run"
    )
    print(
        f"  (floor + record + modules) / floor: {modules.median / floor.median:.2f} "
        f"(minimums {modules.min / floor.min:.2f}): the same, importing {count} "
        "empty modules, as many as exman's own on this path"
    )
    print(
        f"  exman / (floor + record + modules): {ours.median / modules.median:.2f} "
        f"(minimums {ours.min / modules.min:.2f}): what exman records beyond "
        "them (run.json, the id, the heartbeat, the code's fingerprint)"
    )
    in_git = stats["exman in git"]
    print(
        f"  exman in a git work tree / exman: {in_git.median / ours.median:.2f} "
        f"(minimums {in_git.min / ours.min:.2f}): the code fingerprint's git"
    )
    if "exman 0.1.9" in stats:
        targets.check(
            "startup: exman 0.1.9 / exman",
            stats["exman 0.1.9"],
            ours,
            5,
            at_most=False,
        )
    report_imports(dev, scripts)
    if count:
        report_instructions(scripts, pythons)


# -- 2. run creation ---------------------------------------------------------------
def create_times(
    python: str,
    work: pathlib.Path,
    steps: list[dict[str, object]],
    reps: int,
    *,
    warmup: int = 1,
    rotate: bool = True,
) -> dict[str, Summary]:
    """Run the creation worker with ``python`` and summarise its timings."""
    worker = work / "create_runs.py"
    if not worker.exists():
        worker.write_text(CREATE_WORKER)
    spec_file, out = work / "spec.json", work / "times.json"
    spec = {
        "steps": steps,
        "reps": reps,
        "warmup": warmup,
        "rotate": rotate,
        "out": str(out),
    }
    spec_file.write_text(json.dumps(spec))
    subprocess.run(
        [python, str(worker), str(spec_file)], cwd=work, env=child_env(), check=True
    )
    with open(out) as f:
        times: dict[str, list[float]] = json.load(f)
    return {label: Summary.of(t) for label, t in times.items()}


def step(
    label: str, root: pathlib.Path, drop_counter: bool = False, no_fsync: bool = False
) -> dict[str, object]:
    return {
        "label": label,
        "root": str(root),
        "drop_counter": drop_counter,
        "no_fsync": no_fsync,
    }


def build(path: pathlib.Path, n: int, *, counter: bool) -> None:
    start = time.perf_counter()
    make_root(path, n, counter=counter)
    kind = "with" if counter else "without"
    took = time.perf_counter() - start
    print(f"  built a root of {n:,} runs {kind} id counter in {took:.1f} s")


def creation(
    work: pathlib.Path,
    dev: str,
    runs: int,
    orig_runs: int,
    reps: int,
    orig_reps: int,
    orig: str | None,
    targets: Targets,
) -> None:
    print("\n== 2. run creation in one process: ExParser(root=...).parse_args([...])")
    big = work / "big"
    build(big, runs, counter=True)
    full = f"{runs:,}-run root"
    stats = create_times(
        dev,
        work,
        [
            step("empty root", work / "empty"),
            step(full, big),
            step("no fsync", work / "no-fsync", no_fsync=True),
        ],
        reps,
    )
    for label, s in stats.items():
        print(f"  exman,       {label:16}  {s}")
    durable, fast = stats["empty root"], stats["no fsync"]
    print(
        "  durability (fsync of params.yaml, the counter and their folders): "
        f"{ms(durable.median - fast.median).strip()} a run; creation with / "
        f"without fsync: {durable.median / fast.median:.2f}x"
    )
    targets.check(
        f"creation: exman in a {full} / in an empty root",
        stats[full],
        stats["empty root"],
        1.2,
        at_most=True,
    )

    # a root made by 0.1.9 has no counter: the first run scans the folders once
    scan = create_times(
        dev,
        work,
        [step("first run", big, drop_counter=True), step("next run", big)],
        3,
        warmup=0,
        rotate=False,
    )
    first, after = scan["first run"], scan["next run"]
    print(
        f"  exman, {full} without counter (made by 0.1.9): first run "
        f"{ms(first.median).strip()} (one-time scan), next run "
        f"{ms(after.median).strip()}; {first.median / after.median:.1f}x"
    )

    if orig is None:
        return
    old = work / "old"
    build(old, orig_runs, counter=False)
    label = f"{orig_runs:,}-run root"
    orig_stats = create_times(
        orig,
        work,
        [step("empty root", work / "old-empty"), step(label, old)],
        orig_reps,
    )
    for name, s in orig_stats.items():
        print(f"  exman 0.1.9, {name:16}  {s}")
    ratio = orig_stats[label].median / orig_stats["empty root"].median
    print(
        f"  exman 0.1.9: {label} / empty root = {ratio:.1f}x (it scans every run "
        "folder for the next id)"
    )
    print(
        f"  exman 0.1.9 in a {label} / exman in a {full}: "
        f"{orig_stats[label].median / stats[full].median:.1f}x"
    )


# -- command line -------------------------------------------------------------------
def parse(argv: Sequence[str]) -> argparse.Namespace:
    cli = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    cli.add_argument(
        "--quick",
        action="store_true",
        help="a 10,000-run root and fewer repetitions (about a minute)",
    )
    cli.add_argument(
        "--runs", type=int, help="runs in the big root (default 100,000; quick 10,000)"
    )
    cli.add_argument(
        "--orig-runs",
        type=int,
        default=10_000,
        help="runs in the root exman 0.1.9 is timed in (default 10,000)",
    )
    cli.add_argument("--reps", type=int, help="startup runs per variant (30; quick 10)")
    cli.add_argument(
        "--no-orig",
        action="store_true",
        help="skip exman 0.1.9 (it is installed from PyPI on first use)",
    )
    cli.add_argument(
        "--system",
        action="store_true",
        help="time this tree's exman with the running interpreter, not in "
        "bench/.venv-exman-dev (whatever its site-packages load at startup "
        "then counts for exman, not for 0.1.9)",
    )
    cli.add_argument(
        "--instructions",
        action="store_true",
        help="also count the instructions of each startup variant with valgrind "
        "(user space only; steady on a busy machine, where times are not)",
    )
    cli.add_argument(
        "--only",
        choices=("startup", "creation"),
        help="run one of the two benchmarks",
    )
    args = cli.parse_args(argv)
    for flag in ("runs", "orig_runs", "reps"):
        value = getattr(args, flag)
        if value is not None and value < 1:
            cli.error(f"--{flag.replace('_', '-')} must be at least 1, not {value}")
    if args.runs is None:
        args.runs = 10_000 if args.quick else 100_000
    if args.reps is None:
        args.reps = 10 if args.quick else 30
    return args


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parse(argv)
    header("exman startup and run creation", "bench/startup.py", argv)
    dev = PYTHON if args.system else dev_python()
    orig = None if args.no_orig else orig_python()
    targets = Targets()
    with scratch("exman-bench-") as work:
        if args.only in (None, "startup"):
            startup(
                work / "startup",
                args.reps,
                dev,
                orig,
                targets,
                count=args.instructions,
            )
        if args.only in (None, "creation"):
            create_reps = 50 if args.quick else 200
            orig_reps = 15 if args.quick else 40
            (work / "creation").mkdir()
            creation(
                work / "creation",
                dev,
                args.runs,
                args.orig_runs,
                create_reps,
                orig_reps,
                orig,
                targets,
            )
    targets.summary()
    return 1 if targets.failed else 0


if __name__ == "__main__":
    sys.exit(main())
