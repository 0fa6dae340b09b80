"""exman sweep, local launcher: real processes running a real ExParser script."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

import pytest
from _launcher_suite import LauncherSuite
from _sweep_helpers import EXTRA, PYTHON, alive, all_runs, wait_for, write_spec

import exman
from exman.record.run import Run
from exman.record.store import ExmanError, Root
from exman.sweep import SpecError, sweep
from exman.sweep.claims import Claims
from exman.sweep.cli import main as sweep_main
from exman.sweep.launchers import get_launcher

BODY = """\
import json, os, pathlib, signal, subprocess, time
with args.safe_experiment:
    if args.ignore_int:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    mine = [os.getpid()]
    if args.child:
        mine.append(subprocess.Popen(["sleep", "60"]).pid)
    pids = os.environ.get("SWEEP_TEST_PIDS")
    if pids:
        pathlib.Path(pids, str(os.getpid())).write_text(json.dumps(mine))
    seen = {"lr": args.lr, "model": args.model, "layers": args.layers,
            "wd": args.wd, "flag": args.flag, "seed": args.seed,
            "gpu": os.environ.get("CUDA_VISIBLE_DEVICES")}
    (args.root / "seen.json").write_text(json.dumps(seen))
    print("task output", args.lr)
    time.sleep(args.sleep * float(os.environ.get("SWEEP_TEST_SCALE", "1")))
    if args.fail == "raise":
        raise ValueError("asked to fail")
    if args.fail == "exit":
        sys.exit(3)
"""


@pytest.fixture
def script(make_script: Callable[..., Path]) -> Path:
    return make_script(BODY, extra=EXTRA)


@pytest.fixture
def pids(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A folder where every task writes the pids of its processes."""
    folder = tmp_path / "pids"
    folder.mkdir()
    monkeypatch.setenv("SWEEP_TEST_PIDS", str(folder))
    return folder


def task_pids(folder: Path) -> list[int]:
    return [p for f in folder.iterdir() for p in json.loads(f.read_text())]


# -- the basics ------------------------------------------------------------------------
def test_grid_times_repeat_runs_every_task_once(script: Path, root: Path) -> None:
    spec = write_spec(
        script.parent,
        grid={"lr": [0.1, 0.01], "model": ["resnet", "vit"]},
        repeat=2,
    )
    summary = sweep(spec, jobs=2)
    assert summary.exit_code == 0, summary.text()
    assert summary.result_counts() == {
        "completed": 8,
        "pruned": 0,
        "failed": 0,
        "interrupted": 0,
    }
    runs = all_runs(root)
    assert len(runs) == 8 and all(r["status"] == "completed" for r in runs)
    assert sorted(r["sweep"]["task"] for r in runs) == list(range(8))
    assert {r["sweep"]["name"] for r in runs} == {"sweep"}
    by_task = {r["sweep"]["task"]: r for r in runs}
    for state in summary.states:
        record = by_task[state.task.index]
        assert record["sweep"]["key"] == state.task.key
        seen = json.loads((record["path"] / "seen.json").read_text())
        assert {k: seen[k] for k in state.task.params} == state.task.params
        params = exman.Run(record["path"]).params
        assert params["epochs"] == 2  # from the command
    # each task's output is in its log and, through safe_experiment, in log.txt
    logs = sorted((root / ".exman" / "sweeps" / "sweep" / "logs").iterdir())
    assert len(logs) == 8 and "task output" in logs[0].read_text()
    assert "task output" in (runs[0]["path"] / "log.txt").read_text()


def test_values_reach_the_script_with_config_typing(script: Path, root: Path) -> None:
    spec = write_spec(
        script.parent,
        configs=[
            {"flag": True, "layers": [3, 4], "wd": None},
            {"flag": False, "layers": [5], "wd": 0.5},
        ],
    )
    summary = sweep(spec, jobs=2)
    assert summary.exit_code == 0, summary.text()
    seen = sorted(
        (json.loads((r["path"] / "seen.json").read_text()) for r in all_runs(root)),
        key=lambda s: s["layers"],
    )
    assert [(s["flag"], s["layers"], s["wd"]) for s in seen] == [
        (True, [3, 4], None),
        (False, [5], 0.5),
    ]


def test_done_tasks_are_skipped_and_new_ones_run(script: Path, root: Path) -> None:
    spec = write_spec(script.parent, grid={"lr": [0.1, 0.2]}, repeat=2)
    assert sweep(spec, jobs=2).exit_code == 0
    again = sweep(spec, jobs=2)
    assert again.results == [] and again.exit_code == 0
    assert again.skipped == {"completed": 4}
    assert "nothing to run" in again.text()
    write_spec(script.parent, grid={"lr": [0.1, 0.2, 0.3]}, repeat=2)
    grown = sweep(spec, jobs=2)
    assert sorted(r.task.params["lr"] for r in grown.results) == [0.3, 0.3]
    assert grown.skipped == {"completed": 4}
    forced = sweep(spec, jobs=2, force=True)
    assert len(forced.results) == 6
    keys = Counter(r["sweep"]["key"] for r in all_runs(root))
    assert sorted(keys.values()) == [2] * 6


def test_failing_tasks_land_in_fails_and_wait_for_retry(
    script: Path, root: Path
) -> None:
    spec = write_spec(script.parent, grid={"fail": ["", "raise", "exit"]})
    summary = sweep(spec, jobs=2)
    assert summary.exit_code == 1
    assert summary.result_counts() == {
        "completed": 1,
        "pruned": 0,
        "failed": 2,
        "interrupted": 0,
    }
    failed = {r.task.params["fail"]: r for r in summary.failures}
    assert failed["raise"].reason == "ValueError: asked to fail"
    assert failed["exit"].reason == "exit code 3"
    for result in failed.values():
        assert result.run is not None and result.run.path.parent == root / "fails"
        assert (result.run.path / "traceback.txt").exists()
        assert Run(result.run.path).status == "failed"
    assert len(list((root / "index").iterdir())) == 1
    assert "failed task 1 (run" in summary.text()

    again = sweep(spec, jobs=2)
    assert again.results == [] and again.skipped == {"completed": 1, "failed": 2}
    assert again.exit_code == 1  # the selection still holds failed tasks
    assert "--retry-failed" in again.text()
    retried = sweep(spec, jobs=2, retry_failed=True)
    assert sorted(r.task.index for r in retried.results) == [1, 2]


def _run_reads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The names of the run folders the index's cache reads from now on."""
    import exman.look.cache

    reads: list[str] = []
    real = exman.look.cache.read_run

    def counting(folder: str, *rest: Any) -> Any:
        reads.append(Path(folder).name)
        return real(folder, *rest)

    monkeypatch.setattr(exman.look.cache, "read_run", counting)
    return reads


def test_the_load_after_a_sweep_finds_its_runs_read(
    script: Path, root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Once its tasks have ended, a sweep reads the runs into the index's
    cache: the first load after it reads no run folder, in index/ or fails/.
    (A run changed less than RACY_NS before that read is read again by the
    load, as the cache does for any run; these runs are that young, so the
    test trusts them all.)"""
    import exman.look.cache

    monkeypatch.setattr(exman.look.cache, "RACY_NS", -(10**12))
    spec = write_spec(
        script.parent, grid={"lr": [0.1, 0.01, 0.001], "fail": ["", "raise"]}
    )
    summary = sweep(spec, jobs=2)
    assert summary.result_counts()["failed"] == 3
    reads = _run_reads(monkeypatch)
    frame = exman.Index(root).info(failed=True)
    assert len(frame) == 6 and reads == []
    assert sorted(frame["status"]) == ["completed"] * 3 + ["failed"] * 3
    sweep(spec, jobs=2)  # nothing to run: nothing read either
    assert reads == []
    # the same cache as any load's: a run changed after the sweep's read is
    # read again, a deleted one is gone, a marked one shows its mark
    time.sleep(0.05)  # past the file system clock's tick (a few ms at most)
    from exman.commands import manage

    first, second, third = sorted((root / "runs").iterdir())
    lr = {folder: Run(folder).params["lr"] for folder in (first, second, third)}
    params = first / "params.yaml"
    edited = params.with_suffix(".new")
    edited.write_text(params.read_text().replace(f"lr: {lr[first]}\n", "lr: 0.5\n"))
    edited.replace(params)
    manage.delete(Root(root), [int(second.name[:6])])
    manage.mark(Root(root), "best", [int(third.name[:6])])
    frame = exman.Index(root).info()
    assert sorted(frame["lr"]) == sorted([0.5, lr[third]])
    assert [Path(r).name for r in reads] == [first.name]
    assert exman.Index(root).info("best")["id"].tolist() == [int(third.name[:6])]


def test_the_sweep_reads_the_runs_it_made_and_no_other(
    script: Path, root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The sweep's read at its end costs its own runs, not the root's: the
    other runs are read once, by its planning (which reads every run it
    has not seen through the same cache), and the next load reads none."""
    import exman.look.cache
    import exman.look.gather

    monkeypatch.setattr(exman.look.cache, "RACY_NS", -(10**12))
    sweep(write_spec(script.parent, "first.yaml", grid={"lr": [0.1]}), jobs=1)
    subprocess.run(
        [sys.executable, str(script), "--lr", "0.7"], cwd=script.parent, check=True
    )
    outside = sorted((root / "runs").iterdir())[-1]
    reads = _run_reads(monkeypatch)
    looked_at = []  # the run folders each read of the cache stats
    real_runs = exman.look.gather.read_runs

    def listing(place: str, names: Any, *rest: Any, **options: Any) -> Any:
        looked_at.append(sorted(names))
        return real_runs(place, names, *rest, **options)

    monkeypatch.setattr(exman.look.gather, "read_runs", listing)
    summary = sweep(write_spec(script.parent, grid={"lr": [0.2, 0.3]}), jobs=2)
    made = sorted(r.run.path.name for r in summary.results if r.run is not None)
    assert len(made) == 2 and [reads[0], *sorted(reads[1:])] == [outside.name, *made]
    assert looked_at[-1] == made  # the sweep's last read: its runs alone
    reads.clear()
    assert len(exman.Index(root).info()) == 4
    assert reads == []


def test_the_sweeps_read_of_its_runs_is_announced_and_ctrl_c_skips_it(
    script: Path, root: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    """A sweep that made many runs says that it reads them as it ends (it
    takes about a second per 10,000); Ctrl-C then skips the read, and the
    sweep returns its summary as if it had not been asked."""
    import exman.look.gather
    import exman.sweep

    def interrupted(root: Root) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(exman.sweep, "_WARM_NOTE", 2)
    monkeypatch.setattr(exman.look.gather, "warm", interrupted)
    spec = write_spec(script.parent, grid={"lr": [0.1, 0.01]})
    summary = sweep(spec, jobs=2, progress=True)
    assert summary.exit_code == 0
    assert "reading the 2 runs into the index's cache" in capsys.readouterr().err
    assert not (root / ".exman" / "cache" / "runs.pickle").exists()


def test_fail_fast_starts_nothing_after_a_failure(script: Path, root: Path) -> None:
    spec = write_spec(script.parent, grid={"fail": ["raise"], "lr": [1, 2, 3, 4]})
    summary = sweep(spec, jobs=1, fail_fast=True)
    assert len(summary.results) == 1 and summary.not_started == 3
    assert summary.exit_code == 1
    limited = sweep(spec, jobs=1, max_failures=2, retry_failed=True)
    assert len(limited.results) == 2


def test_an_unknown_parameter_fails_with_the_scripts_message(
    script: Path, root: Path
) -> None:
    spec = write_spec(script.parent, grid={"lrr": [0.1]})
    summary = sweep(spec)
    assert summary.exit_code == 1
    (result,) = summary.results
    assert result.run is None
    assert result.reason is not None and "'lrr'" in result.reason
    assert "not an argument" in result.reason


def test_a_command_that_cannot_start_fails(tmp_path: Path) -> None:
    spec = write_spec(tmp_path, command="./no-such-program", grid={"a": [1]})
    summary = sweep(spec)
    assert summary.exit_code == 1
    assert "cannot start" in (summary.results[0].reason or "")


def test_a_script_that_records_no_run_is_not_done(tmp_path: Path) -> None:
    (tmp_path / "plain.py").write_text("pass\n")
    spec = write_spec(tmp_path, command=f"{PYTHON} plain.py", grid={"a": [1]})
    summary = sweep(spec)
    assert summary.exit_code == 1
    assert "recorded no run" in (summary.results[0].reason or "")


def test_dry_run_lines_run_the_task_in_a_shell(script: Path, root: Path) -> None:
    values = ["two words", "it's", 'say "hi"', "a;b", "échelle ✓", "../.."]
    spec = write_spec(script.parent, grid={"model": values})
    dry = sweep(spec, dry_run=True)
    assert len(dry.commands) == len(values) and not root.exists()
    line = dry.commands[3]
    subprocess.run(
        ["sh", "-c", line], cwd=script.parent, check=True, capture_output=True
    )
    (run,) = all_runs(root)
    assert exman.Run(run["path"]).params["model"] == "a;b"
    status = sweep(spec, status=True)
    assert [s.state for s in status.states] == ["pending"] * 3 + ["completed"] + [
        "pending"
    ] * 2
    rest = sweep(spec, jobs=2)
    assert sorted(r.task.index for r in rest.results) == [0, 1, 2, 4, 5]
    models = sorted(exman.Run(r["path"]).params["model"] for r in all_runs(root))
    assert models == sorted(values)


def test_index_runs_exactly_one_task(script: Path, root: Path) -> None:
    spec = write_spec(script.parent, grid={"lr": [0.1, 0.2, 0.3]})
    summary = sweep(spec, index=1)
    assert [r.task.index for r in summary.results] == [1]
    assert summary.selected == [1]
    assert sweep(spec, index=1).results == []


def test_shards_run_disjoint_shares_that_cover_the_sweep(
    script: Path, root: Path
) -> None:
    spec = write_spec(script.parent, grid={"lr": [0.1, 0.2, 0.3], "model": ["a", "b"]})
    first = sweep(spec, shard="0/2", jobs=2)
    second = sweep(spec, shard=(1, 2), jobs=2)
    a = {r.task.index for r in first.results}
    b = {r.task.index for r in second.results}
    assert a.isdisjoint(b) and a | b == set(range(6))
    assert first.exit_code == second.exit_code == 0
    assert len(all_runs(root)) == 6


def test_status_reads_the_root_alone(script: Path, root: Path) -> None:
    spec = write_spec(script.parent, grid={"fail": ["", "raise"], "lr": [1, 2]})
    assert sweep(spec, status=True).counts()["pending"] == 4
    sweep(spec, jobs=2)
    status = sweep(spec, status=True)
    assert status.counts() == {
        "pending": 0,
        "queued": 0,
        "running": 0,
        "completed": 2,
        "pruned": 0,
        "failed": 2,
        "interrupted": 0,
    }
    assert status.results == []


GPU_BODY = """\
import json, os, pathlib, time
with args.safe_experiment:
    start = time.monotonic()
    gpu = os.environ.get("CUDA_VISIBLE_DEVICES")
    here = pathlib.Path(os.environ["SWEEP_TEST_BARRIER"])
    (here / str(os.getpid())).touch()
    # wait for four tasks at once: there are four slots, and -j is not given
    while len(list(here.iterdir())) < 4 and time.monotonic() < start + 15:
        time.sleep(0.02)
    # GPU 0 holds its tasks longest: a slot freed on GPU 1 but handed to
    # GPU 0 would put a third task there
    time.sleep(1.0 if gpu == "0" else 0.0)
    span = {"gpu": gpu, "start": start, "end": time.monotonic()}
    (args.root / "span.json").write_text(json.dumps(span))
"""


def most_at_once(spans: list[dict[str, Any]]) -> int:
    """The most of these (start, end) spans that overlap at one instant."""
    ends = [(s["start"], 1) for s in spans] + [(s["end"], -1) for s in spans]
    now = most = 0
    for _, step in sorted(ends):  # at a tie an end (-1) sorts first
        now += step
        most = max(most, now)
    return most


def test_gpu_slots_share_out_cuda_visible_devices(
    make_script: Callable[..., Path],
    root: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    script = make_script(GPU_BODY, extra=EXTRA, name="gpus.py")
    (tmp_path / "barrier").mkdir()
    monkeypatch.setenv("SWEEP_TEST_BARRIER", str(tmp_path / "barrier"))
    spec = write_spec(
        script.parent, grid={"lr": [1, 2, 3, 4, 5, 6]}, command=f"{PYTHON} gpus.py"
    )
    summary = sweep(spec, gpus="0,1", per_gpu=2)
    assert summary.exit_code == 0, summary.text()
    spans = [json.loads((r["path"] / "span.json").read_text()) for r in all_runs(root)]
    assert Counter(s["gpu"] for s in spans).keys() == {"0", "1"} and len(spans) == 6
    assert most_at_once(spans) == 4  # -j defaults to the number of slots
    for gpu in ("0", "1"):
        assert most_at_once([s for s in spans if s["gpu"] == gpu]) <= 2


def test_timeout_fails_the_task_and_kills_its_group(
    script: Path, root: Path, pids: Path
) -> None:
    spec = write_spec(
        script.parent,
        command=f"{PYTHON} main.py --sleep 60 --child",
        grid={"lr": [0.1]},
    )
    start = time.monotonic()
    summary = sweep(spec, timeout=1, grace=1)
    assert time.monotonic() - start < 30
    (result,) = summary.results
    assert result.status == "failed" and result.timed_out
    assert result.reason == "timeout: stopped after 1 s"
    assert result.run is not None and result.run.path.parent == root / "fails"
    record = Run(result.run.path).record()
    assert record["status"] == "failed" and record["reason"] == result.reason
    assert "timeout" in (result.run.path / "traceback.txt").read_text()
    assert not (root / "index").exists() or not list((root / "index").iterdir())
    wait_for(lambda: not any(alive(p) for p in task_pids(pids)), 10)
    assert sweep(spec).results == []  # failed: not retried by default


def test_exman_sweep_command_line(script: Path, root: Path, capsys: Any) -> None:
    spec = write_spec(script.parent, grid={"lr": [0.1, 0.2]})
    assert sweep_main([str(spec), "-j", "2", "-q"]) == 0
    out = capsys.readouterr().out
    assert "ran 2 tasks" in out
    assert sweep_main([str(spec), "--status"]) == 0
    out = capsys.readouterr().out
    assert "2 tasks: 2 completed" in out and "lr=0.1" in out
    assert sweep_main([str(spec), "--dry-run", "--force"]) == 0
    out = capsys.readouterr().out
    assert out.count("EXMAN_SWEEP_PARAMS=") == 2
    assert sweep_main([str(spec)]) == 0
    assert "nothing to run" in capsys.readouterr().out
    assert sweep_main([str(spec), "--shard", "2/2"]) == 2
    assert "numbered from 0" in capsys.readouterr().err
    bad = write_spec(script.parent, "bad.yaml", grid={"lr": [1]}, colour="red")
    assert sweep_main([str(bad)]) == 2
    assert "bad.yaml: unknown key 'colour'" in capsys.readouterr().err


def test_a_spec_error_is_raised_before_anything_runs(tmp_path: Path) -> None:
    spec = write_spec(tmp_path, command=f"{PYTHON} main.py --lr 1", grid={"lr": [1]})
    with pytest.raises(SpecError, match="lr"):
        sweep(spec)
    assert not (tmp_path / "exman").exists()


# -- signals: Ctrl-C, SIGTERM, SIGKILL -------------------------------------------------
def launch(spec: Path, *args: str) -> subprocess.Popen[str]:
    """``exman sweep`` as its own process group, as a terminal would start it."""
    return subprocess.Popen(
        [sys.executable, "-m", "exman.sweep", str(spec), *args],
        cwd=spec.parent,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_ctrl_c_stops_every_child_and_the_sweep_resumes(
    script: Path,
    root: Path,
    pids: Path,
    signum: int,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    spec = write_spec(
        script.parent,
        command=f"{PYTHON} main.py --child",
        grid={"sleep": [0.0, 30.0, 30.1, 0.01, 0.02]},
    )
    proc = launch(spec, "-j", "2", "--grace", "3")
    try:
        # task 0 ends at once; tasks 1 and 2 sleep: then the pool is full
        wait_for(lambda: len(list(pids.iterdir())) >= 3)
        wait_for(lambda: any(r.get("status") == "completed" for r in all_runs(root)))
        os.kill(proc.pid, signum)
        out, _ = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 128 + signum, out
    assert "run the same command again to resume" in out
    wait_for(lambda: not any(alive(p) for p in task_pids(pids)), 10)
    statuses = Counter(r["status"] for r in all_runs(root))
    assert statuses == {"completed": 1, "interrupted": 2}, out
    assert all(r["place"] == "runs" for r in all_runs(root))

    monkeypatch.setenv("SWEEP_TEST_SCALE", "0")  # no more sleeping
    resumed = sweep(spec, jobs=2)
    # the interrupted tasks run again, the completed one does not
    assert sorted(r.task.index for r in resumed.results) == [1, 2, 3, 4]
    assert resumed.skipped == {"completed": 1}


def test_a_task_killed_by_the_signal_that_stops_the_sweep_is_interrupted(
    tmp_path: Path,
) -> None:
    """scancel, or a signal to a whole process tree, may reach a task a
    moment before its launcher: the task was stopped, it did not fail."""
    (tmp_path / "wait.py").write_text("import time\ntime.sleep(60)\n")
    spec = write_spec(tmp_path, command=f"{PYTHON} wait.py", grid={"x": [1]})
    proc = launch(spec)
    try:
        claims = tmp_path / "exman" / ".exman" / "tasks"

        def child() -> int | None:
            for path in claims.glob("*.json"):
                pid = json.loads(path.read_text()).get("child")
                if isinstance(pid, int):
                    return pid
            return None

        wait_for(lambda: child() is not None)
        pid = child()
        assert pid is not None
        os.kill(pid, signal.SIGTERM)  # the task first, then its launcher
        time.sleep(0.05)  # long enough for the launcher to see the task end
        os.kill(proc.pid, signal.SIGTERM)
        out, _ = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert "1 interrupted" in out and "failed" not in out, out


def test_a_child_that_ignores_sigint_is_killed_after_the_grace(
    script: Path, root: Path, pids: Path
) -> None:
    spec = write_spec(
        script.parent,
        command=f"{PYTHON} main.py --child --ignore_int --sleep 60",
        grid={"lr": [0.1]},
    )
    proc = launch(spec, "--grace", "1")
    try:
        wait_for(lambda: len(list(pids.iterdir())) >= 1)
        time.sleep(0.2)
        os.kill(proc.pid, signal.SIGINT)
        out, _ = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 130, out
    assert "killed after 1 s" in out
    wait_for(lambda: not any(alive(p) for p in task_pids(pids)), 10)
    (run,) = all_runs(root)
    assert run["status"] == "interrupted" and "SIGINT" in run["reason"]


def test_a_second_ctrl_c_kills_at_once(script: Path, root: Path, pids: Path) -> None:
    spec = write_spec(
        script.parent,
        command=f"{PYTHON} main.py --ignore_int --sleep 60",
        grid={"lr": [0.1]},
    )
    proc = launch(spec, "--grace", "30")
    try:
        wait_for(lambda: len(list(pids.iterdir())) >= 1)
        time.sleep(0.2)
        os.kill(proc.pid, signal.SIGINT)
        time.sleep(0.5)
        second = time.monotonic()
        os.kill(proc.pid, signal.SIGINT)
        out, _ = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    # far sooner than the 30 s grace: the second signal means "now"
    assert time.monotonic() - second < 10, out
    assert proc.returncode == 130, out
    wait_for(lambda: not any(alive(p) for p in task_pids(pids)), 10)


def test_sigkill_of_the_launcher_loses_no_task_and_runs_none_twice(
    script: Path, root: Path, pids: Path
) -> None:
    spec = write_spec(
        script.parent,
        command=f"{PYTHON} main.py --sleep 1.5",
        grid={"lr": [1, 2, 3, 4, 5, 6]},
    )
    proc = launch(spec, "-j", "2")
    try:
        wait_for(lambda: any(r.get("status") == "completed" for r in all_runs(root)))
        wait_for(lambda: sum(r.get("status") == "running" for r in all_runs(root)) >= 1)
        os.kill(proc.pid, signal.SIGKILL)
        proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    held = Claims(Root(root)).held()  # tasks whose process outlived the launcher
    assert held, "the test must kill the launcher while tasks run"
    # the orphans go on; the resumed sweep must not start their tasks again
    resumed = sweep(spec, jobs=2)
    assert resumed.exit_code == 0, resumed.text()
    assert not held & {r.task.key for r in resumed.results}
    wait_for(lambda: not Claims(Root(root)).held(), 30)
    final = sweep(spec, jobs=2)
    assert final.exit_code == 0
    assert final.counts()["completed"] == 6
    keys = Counter(r["sweep"]["key"] for r in all_runs(root))
    assert len(keys) == 6 and set(keys.values()) == {1}, keys
    assert all(r.get("status") == "completed" for r in all_runs(root))


def test_two_launchers_at_once_share_the_work(script: Path, root: Path) -> None:
    spec = write_spec(
        script.parent,
        command=f"{PYTHON} main.py --sleep 0.3",
        grid={"lr": [1, 2, 3, 4, 5, 6]},
    )
    first = launch(spec, "-j", "2", "-q")
    second = launch(spec, "-j", "2", "-q")
    out1, _ = first.communicate(timeout=60)
    out2, _ = second.communicate(timeout=60)
    assert first.returncode == second.returncode == 0, out1 + out2
    keys = Counter(r["sweep"]["key"] for r in all_runs(root))
    assert len(keys) == 6 and set(keys.values()) == {1}, out1 + out2


def test_a_reader_that_stops_early_does_not_stop_the_sweep(
    script: Path, root: Path
) -> None:
    spec = write_spec(
        script.parent,
        command=f"{PYTHON} main.py --sleep 0.1",
        grid={"lr": [1, 2, 3, 4, 5, 6]},
    )
    with subprocess.Popen(
        [sys.executable, "-m", "exman.sweep", str(spec), "-j", "2"],
        cwd=spec.parent,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as proc:
        assert proc.stdout is not None and proc.stderr is not None
        first = proc.stdout.readline()  # `exman sweep ... | head -1`
        proc.stdout.close()
        assert first.startswith("sweep ")
        assert proc.wait(timeout=60) == 0
        assert proc.stderr.read() == ""
    assert sorted(r["status"] for r in all_runs(root)) == ["completed"] * 6


# -- the Python surface and the display --------------------------------------------
def test_exman_sweep_is_lazy_and_callable(script: Path, root: Path) -> None:
    spec = write_spec(script.parent, grid={"lr": [0.1]})
    code = (
        "import sys, exman\n"
        "assert 'exman.sweep' not in sys.modules, 'import exman loaded the sweep'\n"
        f"print(exman.sweep({str(spec)!r}, status=True).counts()['pending'])\n"
        "import exman.sweep.cli\n"  # now exman.sweep names the package
        f"print(exman.sweep({str(spec)!r}).exit_code)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["1", "0"]


def test_the_live_display_shows_counts_and_failures(script: Path, root: Path) -> None:
    import io

    from rich.console import Console

    from exman.sweep.progress import LiveProgress
    from exman.sweep.runner import Options, execute
    from exman.sweep.spec import load_spec

    spec = write_spec(script.parent, grid={"fail": ["", "raise"]})
    progress = LiveProgress()
    out = io.StringIO()
    progress.console = Console(file=out, force_terminal=True, width=100)
    summary = execute(load_spec(spec), Options(jobs=2), progress)
    assert summary.exit_code == 1
    text = out.getvalue()
    assert "sweep sweep" in text and "1 done" in text and "1 failed" in text
    assert "failed task 1 (run" in text
    assert "ran 2 tasks" in text  # the summary follows the display


def test_the_index_shows_sweep_task_and_key(script: Path, root: Path) -> None:
    spec = write_spec(script.parent, grid={"lr": [0.1, 0.2], "fail": ["", "raise"]})
    summary = sweep(spec, jobs=2)
    df = exman.Index(root).info(failed=True)
    assert list(df["sweep"]) == ["sweep"] * 4
    by_task = {s.task.index: s.task.key for s in summary.states}
    assert sorted(zip(df["task"], df["task_key"])) == sorted(by_task.items())
    assert set(df.loc[df["task_key"] == by_task[1], "status"]) == {"failed"}


# -- the launcher's contract (the suite every launcher passes) ----------------------
class TestLocalLauncher(LauncherSuite):
    backend = "local"
    options: ClassVar[dict[str, Any]] = {"grace": 1.0}


def test_an_unknown_launcher_names_the_known_ones() -> None:
    with pytest.raises(ExmanError, match="known: local"):
        get_launcher("nope")
    with pytest.raises(ExmanError, match="launcher 'local'"):
        get_launcher("local", colour="red")


def test_claims_keep_a_task_from_starting_twice(tmp_path: Path) -> None:
    claims = Claims(Root(tmp_path / "exman"))
    before = time.time()
    assert claims.acquire("k1", since=before, sweep="s", task=0) is None
    assert claims.held() == {"k1"}
    assert claims.acquire("k1", since=before) == "running"  # we are alive
    claims.release("k1", "completed")
    assert claims.held() == set()
    assert sorted(p.name for p in claims.dir.glob("k1*")) == ["k1.ended"]
    # finished after the caller looked at the runs: not again
    assert claims.acquire("k1", since=before) == "completed"
    # finished before: the caller's plan knows better (a deleted run, --force)
    assert claims.acquire("k1", since=time.time() + 1) is None
    # a claim whose processes are gone is stale
    stale = claims.dir / "k2.json"
    stale.write_text(
        json.dumps(
            {
                "state": "running",
                "host": os.uname().nodename,
                "pid": 2**22 + 12345,
                "pid_start": 1,
            }
        )
    )
    assert claims.held() == {"k1"}
    assert claims.acquire("k2", since=before) is None


def test_a_task_that_ended_under_a_dead_launchers_claim_is_not_started_again(
    make_script: Callable[..., Path], root: Path
) -> None:
    # a launcher claims the task and dies; its task still completes, after
    # the next launcher planned the sweep but before it takes the task
    script = make_script("")
    claim = (
        "import sys; from exman.record.store import Root; "
        "from exman.sweep.claims import Claims; "
        "assert Claims(Root(sys.argv[1])).acquire('k1', since=0) is None"
    )
    subprocess.run([sys.executable, "-c", claim, str(root)], check=True)
    planned_at = time.time()
    env = dict(os.environ, EXMAN_SWEEP="s", EXMAN_SWEEP_TASK="0", EXMAN_SWEEP_KEY="k1")
    subprocess.run([sys.executable, str(script)], env=env, check=True)
    claims = Claims(Root(root))
    assert claims.held() == set()  # its processes are gone
    assert claims.acquire("k1", since=planned_at) == "completed"
    assert claims.acquire("k1", since=planned_at) == "completed"  # now ended
    # a task that did not finish under the dead claim is taken again
    subprocess.run([sys.executable, "-c", claim.replace("k1", "k2"), str(root)])
    assert claims.acquire("k2", since=planned_at) is None


def test_a_failed_run_left_in_runs_is_moved_with_its_links(
    make_script: Callable[..., Path], root: Path
) -> None:
    # no safe_experiment: the run records its failure but stays in runs/
    script = make_script(
        "if args.fail:\n    raise ValueError('plain failure')\n",
        parser_kwargs=", automark=['lr']",
    )
    spec = write_spec(script.parent, grid={"lr": [0.1, 0.2], "fail": ["", "x"]})
    summary = sweep(spec, jobs=2)
    assert summary.result_counts() == {
        "completed": 2,
        "pruned": 0,
        "failed": 2,
        "interrupted": 0,
    }
    for result in summary.failures:
        assert result.run is not None and result.run.path.parent == root / "fails"
        assert result.reason == "ValueError: plain failure"
    names = {r.run.path.name for r in summary.failures if r.run is not None}
    links = [p for p in (root / "marked").rglob("*") if p.is_symlink()]
    # the marks of a failed run follow it to fails/
    assert len(links) == 4 and all(p.exists() for p in links)
    moved = {p.name for p in links if Path(os.path.realpath(p)).parent.name == "fails"}
    assert moved == names
    assert len(list((root / "index").iterdir())) == 2
