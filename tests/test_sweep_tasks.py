"""What a sweep's task is: only the process the sweep started, not its children."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from _sweep_helpers import PYTHON, all_runs, write_spec

from exman.sweep import sweep

#: an evaluation step: another ExParser script (it could take the task's values)
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
    subprocess.run([sys.executable, "evaluate.py"], check=True)
"""


def test_a_script_run_by_a_task_is_not_the_task(
    make_script: Callable[..., Path], root: Path
) -> None:
    script = make_script(TRAIN)
    (script.parent / "evaluate.py").write_text(EVALUATE)
    spec = write_spec(
        script.parent, command=f"{PYTHON} main.py", grid={"lr": [0.1, 0.2]}
    )
    summary = sweep(spec, jobs=2)
    assert summary.exit_code == 0, summary.text()
    runs = all_runs(root)
    assert len(runs) == 4, runs  # two tasks, each with its evaluation
    tasks = [r for r in runs if r["command"]["argv"][0] == "main.py"]
    evaluations = [r for r in runs if r["command"]["argv"][0] == "evaluate.py"]
    assert len(tasks) == 2 and len(evaluations) == 2
    # the evaluations are runs of their own, in no sweep
    assert all("sweep" not in r for r in evaluations)
    assert all(r["status"] == "completed" for r in runs)
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
