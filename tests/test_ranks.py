"""All processes of one distributed launch share one run: a real torchrun
with torch.distributed (gloo, CPU), a real srun, and a launcher that only
sets RANK and WORLD_SIZE."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from _requires import IN_CI, need_torch
from _run_helpers import record, the_run

import exman
from exman.record.launch import detect_launch

#: a training script; rank from the launcher's environment
SCRIPT = """\
import os, subprocess, sys
import exman

parser = exman.ExParser(root=exman.simpleroot(__file__))
parser.add_argument("--lr", type=float, default=0.1)
parser.add_argument("--fail_rank", type=int, default=-1)
args = parser.parse_args()
rank = int(os.environ.get("RANK", os.environ.get("SLURM_PROCID", "0")))
open(os.path.join(os.path.dirname(__file__), f"pid.{{rank}}"), "w").write(
    f"{{os.getpid()}} {{args.root}}"
)
{setup}
with args.safe_experiment:
    print(f"hello from rank {{rank}}, lr {{args.lr}}")
    subprocess.run(["echo", f"child of rank {{rank}}"])
{body}
    exman.log(loss=rank + args.lr, who=rank)
    exman.result(final=rank)
    if rank == args.fail_rank:
        raise ValueError(f"rank {{rank}} fails")
{teardown}
"""

TORCH = dict(
    setup='import torch, torch.distributed as dist\ndist.init_process_group("gloo")',
    body=textwrap.indent(
        't = torch.tensor([rank + 1.0])\ndist.all_reduce(t)\nprint(f"sum {t.item()}")',
        "    ",
    ),
    teardown="dist.destroy_process_group()",
)
PLAIN = dict(setup="", body="", teardown="")

#: a launcher that gives its ranks nothing but RANK, WORLD_SIZE, MASTER_*
#: (rank 0 last, after RANK0_DELAY seconds: the others look first)
LAUNCHER = """\
import os, subprocess, sys, time
n = int(sys.argv[1])
procs = []
for r in reversed(range(n)):
    if r == 0:
        time.sleep(float(os.environ.get("RANK0_DELAY", "0")))
    procs.append(subprocess.Popen(
        [sys.executable, *sys.argv[2:]],
        env={**os.environ, "RANK": str(r), "WORLD_SIZE": str(n),
             "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": "29999"},
    ))
sys.exit(max(p.wait() for p in procs))
"""


def env_without_launchers() -> dict[str, str]:
    """This environment, less what would make a test process a rank."""
    drop = ("EXMAN_ROOT", "RANK", "WORLD_SIZE", "LOCAL_RANK", "TORCHELASTIC_RUN_ID")
    return {
        k: v
        for k, v in os.environ.items()
        if k not in drop and not k.startswith("SLURM_")
    }


@pytest.fixture
def script(tmp_path: Path) -> Callable[..., Path]:
    def write(parts: dict[str, str]) -> Path:
        path = tmp_path / "main.py"
        path.write_text(SCRIPT.format(**parts))
        return path

    return write


def launch(argv: list[str], cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        argv,
        cwd=cwd,
        env={**env_without_launchers(), **env},
        capture_output=True,
        text=True,
        timeout=300,
    )
    return proc


def pids(folder: Path) -> dict[int, tuple[int, str]]:
    out = {}
    for file in folder.glob("pid.*"):
        pid, root = file.read_text().split(" ", 1)
        out[int(file.name.split(".")[1])] = (int(pid), root)
    return out


def metrics(folder: Path) -> list[dict[str, Any]]:
    lines = (folder / "metrics.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines]


def check_one_run_for_both_ranks(tmp_path: Path, lr: float, launcher: str) -> Path:
    """The launch made one run, owned by rank 0, with each rank's log."""
    run = the_run(tmp_path / "exman")
    assert run.parent.name == "runs"
    seen = pids(tmp_path)
    assert set(seen) == {0, 1}
    assert seen[0][1] == seen[1][1] == str(run)  # args.root on both ranks
    assert exman.Run(run).params["lr"] == lr
    rec = record(run)
    assert rec["status"] == "completed"
    assert rec["pid"] == seen[0][0]
    assert rec["launch"]["world_size"] == 2
    assert rec["launch"]["launcher"] == launcher
    log = (run / "log.txt").read_text()
    assert f"hello from rank 0, lr {lr}\n" in log and "child of rank 0\n" in log
    assert "rank 1" not in log
    log1 = (run / "log.rank1.txt").read_text()
    assert f"hello from rank 1, lr {lr}\n" in log1 and "child of rank 1\n" in log1
    assert "rank 0" not in log1
    assert json.loads((run / "results.json").read_text()) == {"final": 0}
    return run


def test_torchrun_ranks_share_one_run(
    script: Callable[..., Path], tmp_path: Path
) -> None:
    need_torch()
    main = script(TORCH)
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone"]
    argv = [*torchrun, "--nproc_per_node", "2", str(main)]
    proc = launch([*argv, "--lr", "0.5"], tmp_path)
    assert proc.returncode == 0, proc.stderr
    run = check_one_run_for_both_ranks(tmp_path, 0.5, "torchrun")
    assert "sum 3.0\n" in (run / "log.txt").read_text()  # the ranks did talk
    assert "sum 3.0\n" in (run / "log.rank1.txt").read_text()
    # exman.log: rank 0 only, by default
    assert [(m["who"], m["loss"]) for m in metrics(run)] == [(0, 0.5)]

    # a second launch is a second run; every rank logs when asked to
    proc = launch([*argv, "--lr", "0.25"], tmp_path, EXMAN_LOG_RANKS="all")
    assert proc.returncode == 0, proc.stderr
    runs = sorted(exman.Root(tmp_path / "exman").iter_runs())
    assert [exman.Run(r).params["lr"] for r in runs] == [0.5, 0.25]
    second = runs[1]
    assert "lr 0.25" in (second / "log.rank1.txt").read_text()
    assert "lr 0.25" not in (runs[0] / "log.rank1.txt").read_text()
    logged = sorted((m["rank"], m["who"], m["loss"]) for m in metrics(second))
    assert logged == [(0, 0, 0.25), (1, 1, 1.25)]
    info = exman.Index(tmp_path / "exman").info()
    assert list(info["id"]) == [1, 2]


def test_srun_tasks_share_one_run(script: Callable[..., Path], tmp_path: Path) -> None:
    problem = None
    if shutil.which("srun") is None:
        problem = "srun is not on PATH"
    else:
        try:
            # without a controller scontrol retries for its whole message timeout
            ping = subprocess.run(
                ["scontrol", "ping"], capture_output=True, text=True, timeout=5
            )
            if " UP" not in ping.stdout:
                problem = f"no SLURM answers: {ping.stdout.strip()}"
        except subprocess.TimeoutExpired:
            problem = "no SLURM answers within 5 s"
    if problem is not None:
        if IN_CI:
            pytest.fail(f"CI=true but {problem}", pytrace=False)
        pytest.skip(f"{problem}; .ci/setup_slurm.sh starts one")
    main = script(PLAIN)
    argv = ["srun", "--ntasks", "2", "--time", "5", sys.executable, str(main)]
    proc = launch([*argv, "--lr", "0.75"], tmp_path)
    assert proc.returncode == 0, proc.stderr
    check_one_run_for_both_ranks(tmp_path, 0.75, "srun")


def test_a_launcher_that_sets_only_rank_and_world_size(
    script: Callable[..., Path], tmp_path: Path
) -> None:
    main = script(PLAIN)
    launcher = tmp_path / "launch.py"
    launcher.write_text(LAUNCHER)
    argv = [sys.executable, str(launcher), "2", str(main)]
    proc = launch([*argv, "--lr", "0.5"], tmp_path)
    assert proc.returncode == 0, proc.stderr
    first = check_one_run_for_both_ranks(tmp_path, 0.5, "env")

    # the same MASTER_ADDR:MASTER_PORT again at once, rank 1 reading the
    # first launch's record before rank 0 writes its own: a new run all the same
    for file in tmp_path.glob("pid.*"):
        file.unlink()
    again = [*argv, "--lr", "0.25", "--fail_rank", "1"]
    proc = launch(again, tmp_path, RANK0_DELAY="0.5")
    assert proc.returncode == 1
    runs = sorted(exman.Root(tmp_path / "exman").iter_runs())
    assert runs[0] == first and len(runs) == 2
    second = runs[1]
    assert {root for _, root in pids(tmp_path).values()} == {str(second)}
    assert "lr 0.25" in (second / "log.rank1.txt").read_text()
    # rank 1 failed: its traceback is kept; rank 0 owns the status
    assert "ValueError: rank 1 fails" in (second / "traceback.rank1.txt").read_text()
    assert "ValueError: rank 1 fails" in (second / "log.rank1.txt").read_text()
    assert record(second)["status"] == "completed"
    assert not (second / "traceback.txt").exists()


def test_a_rank_without_rank_0_stops_with_a_clear_error(tmp_path: Path) -> None:
    main = tmp_path / "main.py"
    main.write_text(SCRIPT.format(**PLAIN))
    env = {"RANK": "1", "WORLD_SIZE": "2", "EXMAN_RANK_TIMEOUT": "0.5"}
    proc = launch([sys.executable, str(main)], tmp_path, **env)
    assert proc.returncode == 2  # reported by the parser, as argparse does
    assert "rank 1 of 2 waited 0.5 s for rank 0" in proc.stderr
    assert "EXMAN_RANK_TIMEOUT" in proc.stderr
    assert list(exman.Root(tmp_path / "exman").iter_runs()) == []

    env["EXMAN_RANK_TIMEOUT"] = "soon"
    proc = launch([sys.executable, str(main)], tmp_path, **env)
    assert proc.returncode == 2
    assert "EXMAN_RANK_TIMEOUT='soon' is not a number of seconds" in proc.stderr


@pytest.mark.parametrize(
    "env,expected",
    [
        ({}, None),
        ({"RANK": "0", "WORLD_SIZE": "1"}, None),
        ({"SLURM_PROCID": "0", "SLURM_NTASKS": "1", "SLURM_JOB_ID": "7"}, None),
        # a batch script of a job with several tasks is not a step of them
        ({"SLURM_PROCID": "0", "SLURM_NTASKS": "4", "SLURM_JOB_ID": "7"}, None),
        (
            {"SLURM_PROCID": "3", "SLURM_NTASKS": "4", "SLURM_JOB_ID": "7"}
            | {"SLURM_STEP_ID": "2"},
            (3, 4, "slurm:7.2", True),
        ),
        (
            {"RANK": "1", "WORLD_SIZE": "2", "TORCHELASTIC_RUN_ID": "abc"}
            | {"TORCHELASTIC_RESTART_COUNT": "1", "SLURM_PROCID": "0"},
            (1, 2, "torchrun:abc:1", True),
        ),
        (
            {"RANK": "1", "WORLD_SIZE": "2", "TORCHELASTIC_RUN_ID": "none"}
            | {"MASTER_ADDR": "n1", "MASTER_PORT": "29500"},
            (1, 2, "env:n1:29500:2", False),
        ),
        ({"LOCAL_RANK": "1", "WORLD_SIZE": "2"}, (1, 2, "env::", False)),
    ],
)
def test_the_launch_is_read_from_the_launchers_environment(
    env: dict[str, str], expected: tuple[Any, ...] | None
) -> None:
    launch = detect_launch(env)
    if expected is None:
        assert launch is None
    else:
        assert launch is not None
        got = (launch.rank, launch.world_size, launch.key, launch.unique)
        assert got[:2] == expected[:2] and got[3] == expected[3]
        assert got[2].startswith(expected[2])


def test_the_ddp_example_of_the_docs(tmp_path: Path) -> None:
    need_torch()
    example = tmp_path / "ddp.py"
    shutil.copy(Path(__file__).resolve().parent.parent / "examples" / "ddp.py", example)
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone"]
    proc = launch([*torchrun, "--nproc_per_node", "2", str(example)], tmp_path)
    assert proc.returncode == 0, proc.stderr
    run = the_run(tmp_path / "exman")
    assert record(run)["status"] == "completed"
    assert (run / "w.pt").is_file()
    assert [m["step"] for m in metrics(run)] == [0, 1, 2, 3, 4]
    losses = [m["loss"] for m in metrics(run)]
    assert losses == sorted(losses, reverse=True)  # it learns
    assert "rank 0 epoch 4" in (run / "log.txt").read_text()
    assert "rank 1 epoch 4" in (run / "log.rank1.txt").read_text()
    assert set(json.loads((run / "results.json").read_text())) == {"loss"}


def test_ranks_share_a_tmp_run_and_follow_it_to_fails(
    script: Callable[..., Path], tmp_path: Path
) -> None:
    """Rank 0 fails after rank 1 joined, before rank 1 enters its block:
    rank 1's log goes where the run went."""
    main = script(
        dict(
            setup=(
                "import time\n"
                "if rank == 0:  # once rank 1 has joined\n"
                "    here = os.path.dirname(__file__)\n"
                "    while not os.path.exists(os.path.join(here, 'pid.1')):\n"
                "        time.sleep(0.01)\n"
                "    with args.safe_experiment:\n"
                "        raise SystemExit('rank 0 gives up')\n"
                "time.sleep(1)"
            ),
            body="",
            teardown="",
        )
    )
    launcher = tmp_path / "launch.py"
    launcher.write_text(LAUNCHER)
    proc = launch([sys.executable, str(launcher), "2", str(main), "--tmp"], tmp_path)
    assert proc.returncode == 1, proc.stderr
    run = the_run(tmp_path / "exman")
    assert run.parent.name == "fails"
    assert record(run)["reason"] == "rank 0 gives up"
    assert "hello from rank 1" in (run / "log.rank1.txt").read_text()
    assert list((tmp_path / "exman" / "tmp").iterdir()) == []


def test_a_record_of_an_earlier_launch_with_the_same_id_is_not_joined(
    script: Callable[..., Path], tmp_path: Path
) -> None:
    from exman.record.launch import Launch
    from exman.record.ranks import publish_launch

    main = script(PLAIN)
    root = exman.Root(tmp_path / "exman").ensure()
    place = root.allocate()
    launch_ = Launch(0, 2, "torchrun:same-id:0", True, "torchrun")
    publish_launch(root, launch_, place.relpath)
    (file,) = (root.state / "launches").iterdir()
    # as rank 0 of a launch that started now, and of one an hour ago
    fresh = dict(json.loads(file.read_text()), started=time.time())
    stale = dict(fresh, started=time.time() - 3600)
    file.write_text(json.dumps(stale))
    env = {"RANK": "1", "WORLD_SIZE": "2", "TORCHELASTIC_RUN_ID": "same-id"}
    proc = launch([sys.executable, str(main)], tmp_path, EXMAN_RANK_TIMEOUT="1", **env)
    assert proc.returncode == 2
    assert "waited 1 s for rank 0" in proc.stderr
    assert not (tmp_path / "pid.1").exists()

    file.write_text(json.dumps(fresh))
    proc = launch([sys.executable, str(main)], tmp_path, **env)
    assert proc.returncode == 0, proc.stderr
    assert pids(tmp_path)[1][1] == str(place.path)
    assert (place.path / "log.rank1.txt").is_file()
