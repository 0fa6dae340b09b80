"""What a sweep's tasks are: the process it started (not its children), and a
huge grid that is planned task by task, never held whole."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from _sweep_helpers import PYTHON, all_runs, write_spec

from exman.sweep import SpecError, sweep

#: an evaluation step: another ExParser script (it could take the task's values)
#: with a root of its own, next to it
EVALUATE = """\
import exman
parser = exman.ExParser(root=exman.simpleroot(__file__))
parser.add_argument("--split", default="test")
parser.add_argument("--lr", type=float, default=0.0)
args = parser.parse_args()
print("evaluated", args.split)
"""

TRAIN = """\
import subprocess, sys
with args.safe_experiment:
    subprocess.run([sys.executable, "evaluation/evaluate.py"], check=True)
"""


@pytest.mark.parametrize("caller_root", [None, "elsewhere"])
def test_a_script_run_by_a_task_is_not_the_task(
    make_script: Callable[..., Path],
    root: Path,
    monkeypatch: pytest.MonkeyPatch,
    caller_root: str | None,
) -> None:
    script = make_script(TRAIN)
    (script.parent / "evaluation").mkdir()
    (script.parent / "evaluation" / "evaluate.py").write_text(EVALUATE)
    # where the evaluations go: their own root, or the EXMAN_ROOT the sweep
    # was started with (never the sweep's root, which the sweep set)
    if caller_root is None:
        monkeypatch.delenv("EXMAN_ROOT", raising=False)
        their_root = script.parent / "evaluation" / "exman"
    else:
        their_root = script.parent / caller_root
        monkeypatch.setenv("EXMAN_ROOT", str(their_root))
    spec = write_spec(
        script.parent, command=f"{PYTHON} main.py", grid={"lr": [0.1, 0.2]}
    )
    summary = sweep(spec, jobs=2)
    assert summary.exit_code == 0, summary.text()
    tasks = all_runs(root)
    evaluations = all_runs(their_root)
    assert len(tasks) == 2 and len(evaluations) == 2, (tasks, evaluations)
    assert all(r["command"]["argv"][0] == "main.py" for r in tasks)
    assert all(r["command"]["argv"][0].endswith("evaluate.py") for r in evaluations)
    # the evaluations are runs of their own, in no sweep
    assert all("sweep" not in r for r in evaluations)
    assert all(r["status"] == "completed" for r in tasks + evaluations)
    # the sweep knows each task by the run of the script it started
    ids = {int(r["path"].name[:6]) for r in tasks}
    assert {s.run.id for s in summary.states if s.run is not None} == ids
    status = sweep(spec, status=True)
    assert {s.run.id for s in status.states if s.run is not None} == ids
    assert len({r["sweep"]["key"] for r in tasks}) == 2
    # nor do they get the task's values
    assert all(
        "lr: 0.0\n" in (r["path"] / "params.yaml").read_text() for r in evaluations
    )


# -- a huge grid is never held whole ---------------------------------------------------
LAZY = """\
import json, re, sys, time
from exman.sweep import sweep

def peak_mb():
    # this process's own peak (ru_maxrss would count the parent's before exec)
    with open("/proc/self/status") as f:
        return int(re.search(r"VmHWM:\\s+(\\d+)", f.read()).group(1)) / 1024

spec = sys.argv[1]
start = time.monotonic()
status = sweep(spec, status=True)
shard = sweep(spec, shard="3/100000", dry_run=True)
one = sweep(spec, index=999_999, jobs=1)
again = sweep(spec, status=True)
print(json.dumps({
    "tasks": len(status.states),
    "pending": status.counts()["pending"],
    "shard": list(shard.commands),
    "planned": [s.task.index for s in shard.planned],
    "one": [r.status for r in one.results],
    "params": one.results[0].task.params,
    "after": again.counts(),
    "seconds": time.monotonic() - start,
    "peak_mb": peak_mb(),
}))
"""


@pytest.mark.skipif(
    not Path("/proc/self/status").exists(), reason="reads its peak memory in /proc"
)
def test_a_grid_of_a_million_tasks_is_planned_without_holding_it(
    make_script: Callable[..., Path], root: Path
) -> None:
    script = make_script()
    spec = write_spec(
        script.parent,
        command=f"{PYTHON} main.py",
        grid={"lr": list(range(1000)), "epochs": list(range(1000))},
    )
    (script.parent / "lazy.py").write_text(LAZY)
    out = subprocess.run(
        [sys.executable, "lazy.py", str(spec)],
        cwd=script.parent,
        capture_output=True,
        text=True,
        timeout=100,
    )
    assert out.returncode == 0, out.stderr
    found = json.loads(out.stdout.splitlines()[-1])
    assert found["tasks"] == found["pending"] == 1_000_000
    assert found["planned"] == list(range(3, 1_000_000, 100_000))
    assert len(found["shard"]) == 10
    assert "EXMAN_SWEEP_TASK=100003 " in found["shard"][1]
    assert found["one"] == ["completed"]
    assert found["params"] == {"lr": 999, "epochs": 999}
    assert found["after"]["completed"] == 1
    assert found["after"]["pending"] == 999_999
    # the whole expansion took 1.1 GB; the plan holds what the root holds
    assert found["peak_mb"] < 150, found


def test_an_absurd_sweep_is_refused_before_any_work(tmp_path: Path) -> None:
    spec = write_spec(
        tmp_path,
        command=f"{PYTHON} main.py",
        grid={"a": list(range(1000)), "b": list(range(1000)), "c": list(range(100))},
        repeat=3,
    )
    start = time.monotonic()
    with pytest.raises(SpecError) as refused:
        sweep(spec, dry_run=True)
    assert time.monotonic() - start < 5
    message = str(refused.value)
    assert str(spec) in message
    assert "300,000,000 tasks (1000 a × 1000 b × 100 c × repeat 3)" in message
    assert "10,000,000" in message
    assert not (tmp_path / "exman").exists()


# -- task keys that forgive harmless edits ---------------------------------------------
def test_an_ignored_flag_of_the_command_changes_no_key(
    make_script: Callable[..., Path], root: Path
) -> None:
    script = make_script()
    grid = {"lr": [0.1, 0.2]}
    spec = write_spec(
        script.parent,
        command=f"{PYTHON} main.py --epochs 2 --flag",
        grid=grid,
        ignore=["epochs", "--flag"],
    )
    first = sweep(spec)
    assert first.counts()["completed"] == 2
    write_spec(
        script.parent,
        command=f"{PYTHON} main.py --epochs 8",
        grid=grid,
        ignore=["epochs"],
    )
    again = sweep(spec)
    assert again.results == [] and again.counts()["completed"] == 2
    assert again.notes == []
    assert len(all_runs(root)) == 2


def test_dry_run_says_which_change_of_the_command_runs_tasks_again(
    make_script: Callable[..., Path],
) -> None:
    script = make_script()
    grid = {"lr": [0.1, 0.2, 0.3]}
    spec = write_spec(script.parent, command=f"{PYTHON} main.py --epochs 2", grid=grid)
    assert sweep(spec).counts()["completed"] == 3
    write_spec(script.parent, command=f"{PYTHON} main.py --epochs 3", grid=grid)
    dry = sweep(spec, dry_run=True)
    assert len(dry.planned) == 3
    assert dry.notes == [
        "3 tasks completed before will run again because --epochs changed "
        "(2 -> 3) in command (list harmless flags under ignore: to keep them "
        "out of the task keys)"
    ]


@pytest.mark.parametrize(
    ("ignore", "problem"),
    [
        (["lr"], "'lr' is swept"),
        (["num-workers"], "'--num-workers' is not a flag of command"),
        ([3], "must be a list of flags"),
    ],
)
def test_ignore_names_flags_of_the_command_only(
    tmp_path: Path, ignore: list[object], problem: str
) -> None:
    spec = write_spec(
        tmp_path,
        command=f"{PYTHON} main.py --epochs 2",
        grid={"lr": [1]},
        ignore=ignore,
    )
    with pytest.raises(SpecError, match="ignore: " + problem):
        sweep(spec, dry_run=True)


def test_a_volatile_argument_of_the_script_changes_no_key(
    make_script: Callable[..., Path], root: Path
) -> None:
    script = make_script(
        extra='parser.add_argument("--workers", type=int, default=1, volatile=True)'
    )
    grid = {"lr": [0.1, 0.2]}
    for workers in (2, 8, 16):
        write_spec(
            script.parent, command=f"{PYTHON} main.py --workers {workers}", grid=grid
        )
        summary = sweep(script.parent / "sweep.yaml")
        assert summary.counts()["completed"] == 2, summary.text()
        assert summary.notes == []
    assert len(all_runs(root)) == 2  # the first sweep's, found under every edit
    # the script's own arguments still count
    write_spec(script.parent, command=f"{PYTHON} main.py --epochs 5", grid=grid)
    assert len(sweep(script.parent / "sweep.yaml", dry_run=True).planned) == 2
