"""exman.log / exman.result: what came out of a run, written safely and cheaply."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import run_python


def records(run: Path) -> list[dict]:
    text = (run / "metrics.jsonl").read_text()
    return [json.loads(line) for line in text.splitlines()]


def newest_run(root: Path, place: str = "runs") -> Path:
    return sorted((root / place).iterdir())[-1]


def test_log_and_result_without_safe_experiment(make_script, tmp_path):
    script = make_script(
        """
        import numpy as np
        for epoch in range(3):
            exman.log(loss=1.0 / (epoch + 1))
        exman.log(step=10, acc=np.float32(0.5), n=np.int64(7))
        args.run.log(other=1)
        exman.result(best=0.25)
        print(args.run.result(final=np.float64(0.125)))
        """
    )
    proc = run_python(script, check=True)
    run = newest_run(tmp_path / "exman")
    got = records(run)
    assert [r["step"] for r in got] == [0, 1, 2, 10, 11]  # one counter per run
    assert [r.get("loss") for r in got[:3]] == [1.0, 0.5, 1 / 3]
    assert got[3]["acc"] == 0.5 and got[3]["n"] == 7
    assert all(isinstance(r["time"], float) for r in got)
    results = json.loads((run / "results.json").read_text())
    assert results == {"best": 0.25, "final": 0.125}
    assert "'best': 0.25" in proc.stdout


def test_result_updates_earlier_values(make_script, tmp_path):
    script = make_script(
        """
        exman.result(a=1, b=2)
        exman.result(b=3, c=[1, 2])
        """
    )
    run_python(script, check=True)
    run = newest_run(tmp_path / "exman")
    assert json.loads((run / "results.json").read_text()) == {
        "a": 1,
        "b": 3,
        "c": [1, 2],
    }


@pytest.mark.parametrize("name", ["lr", "model", "id", "status", "root", "time"])
def test_a_name_taken_by_a_parameter_or_column_is_kept(make_script, tmp_path, name):
    """Logging the learning rate of a scheduler, ``exman.log(lr=...)``, must
    not stop the training; the index shows the value as ``result_<name>``."""
    script = make_script(
        f"""
        exman.log(**{{{name!r}: 0.5}})
        exman.log(**{{{name!r}: 0.25}})
        exman.result(**{{{name!r}: 7}}) if {name!r} == "model" else None
        print("logged")
        """
    )
    proc = run_python(script, "--lr", "0.1", check=True)
    assert proc.stdout == "logged\n"
    run = newest_run(tmp_path / "exman")
    stored = "metric_time" if name == "time" else name
    assert [r[stored] for r in records(run)] == [0.5, 0.25]
    assert all(isinstance(r["time"], float) for r in records(run))

    import exman

    frame = exman.Index(tmp_path / "exman").info()
    shown = {"time": "metric_time"}.get(name, f"result_{name}")
    last = 7 if name == "model" else 0.25
    assert frame[shown].tolist() == [last]
    if name in ("lr", "model"):  # the parameter keeps its own column
        assert frame[name].tolist() == [0.1 if name == "lr" else "resnet"]


def test_no_current_run_is_a_clear_error(tmp_path):
    code = (
        "import exman\n"
        "try:\n    exman.log(x=1)\n"
        "except exman.NoCurrentRun as e:\n    print('error:', e)\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "EXMAN_RUN"}
    proc = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    assert "error: no current run" in proc.stdout
    assert "parse_args" in proc.stdout


def test_a_child_process_logs_to_the_run_through_the_environment(make_script, tmp_path):
    script = make_script(
        """
        import subprocess
        code = "import exman; exman.log(step=5, child=1); exman.result(child_done=True)"
        subprocess.run([sys.executable, "-c", code], check=True)
        exman.log(step=0, parent=1)
        """
    )
    run_python(script, check=True)
    run = newest_run(tmp_path / "exman")
    got = sorted(records(run), key=lambda r: r["step"])
    assert [(r["step"], r.get("parent"), r.get("child")) for r in got] == [
        (0, 1, None),
        (5, None, 1),
    ]
    assert json.loads((run / "results.json").read_text()) == {"child_done": True}


def test_results_of_many_processes_at_once_are_all_kept(make_script, tmp_path):
    script = make_script(
        """
        import multiprocessing as mp

        def work(i):
            for j in range(20):
                exman.result(**{f"w{i}_{j}": j})

        if __name__ == "__main__":
            procs = [mp.get_context("fork").Process(target=work, args=(i,))
                     for i in range(4)]
            for p in procs:
                p.start()
            for p in procs:
                p.join()
                assert p.exitcode == 0
        """
    )
    run_python(script, check=True)
    results = json.loads((newest_run(tmp_path / "exman") / "results.json").read_text())
    assert results == {f"w{i}_{j}": j for i in range(4) for j in range(20)}


def test_forked_workers_and_many_writers_do_not_corrupt_the_file(make_script, tmp_path):
    script = make_script(
        """
        import multiprocessing as mp

        def work(i):
            for j in range(500):
                exman.log(worker=i, j=j, pad="x" * 200)

        if __name__ == "__main__":
            exman.log(parent=1)
            ctx = mp.get_context("fork")
            procs = [ctx.Process(target=work, args=(i,)) for i in range(4)]
            for p in procs:
                p.start()
            with ctx.Pool(2) as pool:
                pool.map(work, [10, 11])
                pool.close()
                pool.join()
            for p in procs:
                p.join()
        """
    )
    run_python(script, check=True)
    got = records(newest_run(tmp_path / "exman"))  # every line parses
    per_worker: dict[int, int] = {}
    for r in got:
        if "worker" in r:
            per_worker[r["worker"]] = per_worker.get(r["worker"], 0) + 1
    assert per_worker == {0: 500, 1: 500, 2: 500, 3: 500, 10: 500, 11: 500}
    assert sum("parent" in r for r in got) == 1


def test_a_killed_process_loses_at_most_the_last_second(make_script, tmp_path):
    script = make_script(
        """
        exman.log(first=1)
        print("logged", flush=True)
        time.sleep(60)
        """,
        extra="import time",
    )
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    proc = subprocess.Popen(
        [sys.executable, str(script)], stdout=subprocess.PIPE, text=True, env=env
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "logged"
    time.sleep(1.5)  # more than the flush interval: the record must be on disk
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    proc.stdout.close()
    assert records(newest_run(tmp_path / "exman")) == [
        {"step": 0, "time": pytest.approx(time.time(), abs=30), "first": 1}
    ]


def test_metrics_follow_a_failed_run_to_fails(make_script, tmp_path):
    script = make_script(
        """
        with args.safe_experiment:
            exman.log(loss=1.0)
            raise RuntimeError("boom")
        """
    )
    proc = run_python(script)
    assert proc.returncode == 1
    failed = newest_run(tmp_path / "exman", "fails")
    assert records(failed)[0]["loss"] == 1.0
