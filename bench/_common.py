"""Shared helpers of the benchmarks: timing, reports, roots built by hand.

The benchmarks compare variants measured in the same run and report ratios:
absolute times on a shared machine mean little, ratios measured side by side
mean more. Variants are interleaved (every round runs each of them once, in
a rotated order) so that a burst of noise hits all of them alike.

Nothing here imports exman: the same helpers drive this work tree's exman and
the original one, installed in its own virtual environment.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import hashlib
import json
import os
import pathlib
import platform
import random
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Callable

BENCH = pathlib.Path(__file__).resolve().parent
REPO = BENCH.parent
#: the interpreter running the benchmark (its real binary, not a shim)
PYTHON = sys.executable
ORIG_VERSION = "0.1.9"
#: the folder-name time format of a run (``<id>-<this>[-<name>]``)
DIR_TIME_FORMAT = "%Y-%m-%d-%H-%M-%S"


# -- environment ----------------------------------------------------------------
def child_env() -> dict[str, str]:
    """The environment for measured processes.

    ``EXMAN_ROOT`` would override the root the scripts pass. Without
    ``PYTHONDONTWRITEBYTECODE`` the first (warm-up) run caches the bytecode
    of this tree's modules as an installed package has it; otherwise each
    run would compile them again while the installed packages (exman 0.1.9
    among them) load theirs from ``__pycache__``.
    """
    env = dict(os.environ)
    for name in ("EXMAN_ROOT", "PYTHONDONTWRITEBYTECODE", "PYTHONPROFILEIMPORTTIME"):
        env.pop(name, None)
    return env


def venv_python(
    name: str,
    install: Sequence[str],
    probe: str,
    expect: str,
    tag: str = "",
    folder: pathlib.Path = BENCH,
) -> str:
    """The interpreter of ``<folder>/.venv-<name>`` (``folder``: ``bench/``),
    created on first use.

    The environment is made with ``python -m venv`` and ``pip install
    <install>`` (which needs PyPI), and made again when ``install``,
    ``expect`` or ``tag`` changed since. ``probe`` is Python code whose output must be
    ``expect`` (it runs outside the work tree, so that the tree's own
    ``exman`` folder cannot answer in place of the installed one).

    :raises SystemExit: the environment cannot be made or fails its probe;
        the message says what to do.
    """
    folder.mkdir(parents=True, exist_ok=True)
    venv = folder / f".venv-{name}"
    python = venv / "bin" / "python"
    stamp = venv / "bench-stamp.json"
    key = json.dumps({"install": list(install), "expect": expect, "tag": tag})

    def probe_ok() -> bool:
        found = subprocess.run(
            [str(python), "-c", probe],
            cwd=venv,
            capture_output=True,
            text=True,
            env=child_env(),
        )
        return found.returncode == 0 and found.stdout.strip() == expect

    if python.exists() and stamp.exists() and stamp.read_text() == key and probe_ok():
        return str(python)
    if venv.exists():
        print(f"{venv} is out of date: making it again")
        shutil.rmtree(venv)
    print(f"creating {venv}: pip install {shlex.join(install)} (once)", flush=True)
    try:
        subprocess.run([PYTHON, "-m", "venv", str(venv)], check=True)
        subprocess.run(
            [str(python), "-m", "pip", "install", "-q", *install],
            check=True,
            cwd=venv,
        )
    except (OSError, subprocess.CalledProcessError) as e:
        raise SystemExit(
            f"cannot make {venv}: {e}. Check the access to PyPI, or see "
            "--help for running without it."
        ) from None
    if not probe_ok():
        raise SystemExit(
            f"{venv} was made but {probe!r} does not print {expect!r} "
            "(a PYTHONPATH naming another exman would do that: unset it)"
        )
    stamp.write_text(key)
    return str(python)


def orig_python(version: str = ORIG_VERSION) -> str:
    """An interpreter whose ``exman`` is the original ``exman==version``."""
    return venv_python(
        f"exman-{version}",
        [f"exman=={version}"],
        "import exman; print(exman.__version__)",
        version,
    )


def dev_python() -> str:
    """An interpreter whose ``exman`` is this work tree's (an editable install).

    A fresh virtual environment, made like the one of :func:`orig_python`:
    the interpreter running the benchmarks may load ``.pth`` files of its
    own at startup, which would count against one side only. It is made
    again when the package metadata (and so the dependencies) change.
    """
    meta = "".join(
        (REPO / f).read_text()
        for f in ("setup.cfg", "pyproject.toml")
        if (REPO / f).exists()
    )
    return venv_python(
        "exman-dev",
        ["-e", str(REPO)],
        "import os, exman; print(os.path.dirname(exman.__file__))",
        str(REPO / "exman"),
        tag=hashlib.sha256(meta.encode()).hexdigest(),
    )


# -- timing ---------------------------------------------------------------------
def run_wall(cmd: Sequence[str], *, cwd: str | os.PathLike[str] | None = None) -> float:
    """The wall time of a process, in seconds; its stdout is discarded.

    :raises RuntimeError: the process failed; the message holds its stderr.
    """
    return run_timed(cmd, cwd=cwd)[0]


def run_timed(
    cmd: Sequence[str], *, cwd: str | os.PathLike[str] | None = None
) -> tuple[float, float]:
    """The wall time and the CPU time (user + system) of a process, in
    seconds; its stdout is discarded.

    The CPU time is what the process itself spent, whatever else the
    machine does meanwhile: on a loaded machine it varies less than the
    wall time.

    :raises RuntimeError: the process failed; the message holds its stderr.
    """
    with tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        proc = subprocess.Popen(
            list(cmd), cwd=cwd, env=child_env(), stdout=subprocess.DEVNULL, stderr=err
        )
        _, status, usage = os.wait4(proc.pid, 0)
        elapsed = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode != 0:
            err.seek(0)
            raise RuntimeError(
                f"{shlex.join(cmd)} failed with exit code {proc.returncode}:\n"
                + err.read().decode(errors="replace")
            )
    return elapsed, usage.ru_utime + usage.ru_stime


def interleaved(
    variants: dict[str, Callable[[], float]], reps: int, warmup: int = 1
) -> dict[str, list[float]]:
    """Time every variant ``reps`` times, one of each per round.

    The order is rotated each round so that no variant always runs first
    (after an idle pause) or last. The first ``warmup`` rounds fill the
    caches and are thrown away.
    """
    names = list(variants)
    times: dict[str, list[float]] = {name: [] for name in names}
    for rnd in range(warmup + reps):
        shift = rnd % len(names)
        for name in names[shift:] + names[:shift]:
            elapsed = variants[name]()
            if rnd >= warmup:
                times[name].append(elapsed)
    return times


@dataclass(frozen=True)
class Summary:
    """The median and the minimum of repeated timings, in seconds (and the
    timings, one per round of :func:`interleaved`)."""

    median: float
    min: float
    n: int
    times: tuple[float, ...] = ()

    @classmethod
    def of(cls, times: Sequence[float]) -> Summary:
        return cls(statistics.median(times), min(times), len(times), tuple(times))

    def __str__(self) -> str:
        return f"median {ms(self.median)}  min {ms(self.min)}  (n={self.n})"


def ratio_span(
    num: Sequence[float],
    den: Sequence[float],
    *,
    level: float = 0.9,
    resamples: int = 2000,
) -> tuple[float, float] | None:
    """Where the ratio of the medians of ``num`` and ``den`` lies in ``level``
    of the bootstrap resamples of their rounds: how far the machine's noise
    can move it. Round ``i`` of both is drawn together (they ran side by
    side). None for fewer than 5 rounds, or series of different lengths.
    """
    n = len(num)
    if n < 5 or len(den) != n:
        return None
    draw = random.Random(0).randrange  # the same span for the same timings
    median = statistics.median
    ratios = []
    for _ in range(resamples):
        rounds = [draw(n) for _ in range(n)]
        top, bottom = [num[i] for i in rounds], [den[i] for i in rounds]
        ratios.append(median(top) / median(bottom))
    ratios.sort()
    cut = int(resamples * (1 - level) / 2)
    return ratios[cut], ratios[resamples - 1 - cut]


def ms(seconds: float) -> str:
    return f"{seconds * 1000:8.2f} ms"


# -- reporting --------------------------------------------------------------------
def add_system(parser: argparse.ArgumentParser) -> None:
    """``--system``: run exman with this interpreter rather than the dev venv."""
    parser.add_argument(
        "--system",
        action="store_true",
        help="run exman with this interpreter (and its PYTHONPATH), no venv",
    )


def start(
    parser: argparse.ArgumentParser,
    argv: Sequence[str] | None,
    title: str,
    script: str,
) -> argparse.Namespace:
    """Parse ``argv`` (``--reps`` at least 1), then print the :func:`header`."""
    args = parser.parse_args(argv)
    if getattr(args, "reps", 1) < 1:
        parser.error(f"--reps must be at least 1, not {args.reps}")
    header(title, script, list(argv if argv is not None else sys.argv[1:]))
    return args


def header(title: str, script: str, argv: Sequence[str]) -> None:
    """Print what is measured, where, and the command that reproduces it."""
    cores = os.cpu_count() or 0
    print(f"== {title}")
    print(f"reproduce: python {script} {shlex.join(argv)}".rstrip())
    print(
        f"date {datetime.date.today().isoformat()}, {cores}-core machine, "
        f"Python {platform.python_version()} ({PYTHON}), {platform.platform()}"
    )
    print("times vary from machine to machine; the ratios are the result\n")


class Targets:
    """Collects PASS/FAIL lines; :attr:`failed` tells whether any target missed."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.failed = False

    def check(
        self, label: str, num: Summary, den: Summary, limit: float, *, at_most: bool
    ) -> None:
        """Print and remember whether ``num / den`` (medians) is within ``limit``.

        The ratio of the minimums is printed beside it, for judging the
        noise, and the span of the ratio over resampled rounds
        (:func:`ratio_span`); a target inside that span is one the machine's
        noise decides, and the line says so.

        :param at_most: True when the target is ``ratio <= limit``, False when
            it is ``ratio >= limit``.
        """
        value = num.median / den.median
        ok = value <= limit if at_most else value >= limit
        self.failed |= not ok
        sign = "<=" if at_most else ">="
        verdict = "PASS" if ok else "FAIL"
        span = ratio_span(num.times, den.times)
        spread = ""
        if span is not None:
            lo, hi = span
            inside = ", the target inside: noise decides" if lo <= limit <= hi else ""
            spread = f"; 90 % of resampled rounds {lo:.2f} to {hi:.2f}{inside}"
        line = (
            f"{verdict}  {label}: {value:.2f} (target {sign} {limit:g}; "
            f"ratio of the minimums {num.min / den.min:.2f}{spread})"
        )
        self.lines.append(line)
        print(line)

    def require(self, label: str, ok: bool) -> None:
        """Print and remember a check that holds or not (no ratio)."""
        self.failed |= not ok
        line = f"{'PASS' if ok else 'FAIL'}  {label}"
        self.lines.append(line)
        print(line)

    def note(self, line: str) -> None:
        """A result without a target, repeated in the summary."""
        self.lines.append(f"      {line}")
        print(line)

    def summary(self) -> None:
        print("\n== targets")
        for line in self.lines:
            print(line)


# -- files ------------------------------------------------------------------------
@contextlib.contextmanager
def scratch(prefix: str) -> Iterator[pathlib.Path]:
    """A temporary folder, removed afterwards even when the benchmark fails."""
    path = pathlib.Path(tempfile.mkdtemp(prefix=prefix))
    try:
        yield path
    finally:
        shutil.rmtree(path)


def make_root(
    path: str | os.PathLike[str],
    n: int,
    *,
    counter: bool = True,
    records: bool = False,
    copies: bool = True,
    first_id: int = 1,
    sweep: tuple[str, Sequence[str]] | None = None,
) -> pathlib.Path:
    """Build a root of ``n`` finished runs by hand, fast (no exman involved).

    Each run gets ``runs/<id>-<time>/params.yaml`` in exman's format and its
    ``index/<name>.yaml`` link; ids start at ``first_id``, one second apart.

    :param counter: write ``.exman/counter`` as exman does; without it the
        root looks like one made by exman 0.1.9.
    :param records: also write each run's ``run.json`` (status completed).
    :param copies: with ``records``, put the copy of the parameters in
        run.json that exman writes there (see ``exman.record.snapshot``);
        without it the runs look like those of an exman that wrote none.
    :param sweep: with ``records``, ``(name, keys)``: the first
        ``len(keys)`` runs are those of the tasks of sweep ``name``, task
        ``i`` with key ``keys[i]``, as a sweep's task records it.
    """
    root = pathlib.Path(path)
    for sub in ("runs", "index", "marked", "fails", "tmp", ".exman"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    runs, index = os.fspath(root / "runs"), os.fspath(root / "index")
    start = datetime.datetime(2026, 1, 1)
    last = first_id - 1
    for num in range(first_id, first_id + n):
        when = start + datetime.timedelta(seconds=num)
        name = f"{num:06d}-{when.strftime(DIR_TIME_FORMAT)}"
        folder = f"{runs}/{name}"
        os.mkdir(folder)
        values = {
            "config_file": None,
            "epochs": 10,
            "git_dirty": False,
            "lr": float(f"{0.001 * (num % 100 + 1):g}"),
            "model": "mlp",
            "name": None,
            "root": f"runs/{name}",
            "seed": num % 5,
            "tmp": False,
            "time": when.isoformat(),
            "id": num,
        }
        with open(f"{folder}/params.yaml", "w") as f:
            f.write(
                "config_file: null\nepochs: 10\ngit_dirty: false\n"
                f"lr: {values['lr']!r}\nmodel: mlp\nname: null\n"
                f"root: runs/{name}\nseed: {num % 5}\ntmp: false\n"
                f"time: '{when.isoformat()}'\nid: {num}\n"
            )
        if records:
            record = _record(num, when)
            task = num - first_id
            if sweep is not None and task < len(sweep[1]):
                key = sweep[1][task]
                record["sweep"] = {"name": sweep[0], "task": task, "key": key}
            if copies:
                st = os.stat(f"{folder}/params.yaml")
                file = [st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns]
                record["params"] = {"file": file, "values": values}
            with open(f"{folder}/run.json", "w") as f:
                json.dump(record, f)
        os.symlink(f"../runs/{name}/params.yaml", f"{index}/{name}.yaml")
        last = num
    if counter:
        (root / ".exman" / "counter").write_text(f"{last}\n")
    return root


def _record(num: int, when: datetime.datetime) -> dict[str, object]:
    started = when.astimezone().isoformat(timespec="milliseconds")
    finished = (when + datetime.timedelta(seconds=60)).astimezone()
    return {
        "id": num,
        "status": "completed",
        "started": started,
        "finished": finished.isoformat(timespec="milliseconds"),
        "duration": 60.0,
        "host": "bench",
        "pid": 1000 + num,
        "pid_start": None,
        "exit_code": 0,
        "reason": None,
        "command": {"executable": "python", "argv": ["main.py"], "cwd": "/"},
    }
