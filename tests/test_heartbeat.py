"""A run killed on another host reads as crashed from here: its heartbeat.

The other host is real as far as exman can tell: a process in a UTS
namespace of its own (``unshare --uts``) with a hostname of its own, so
that the check of the pid on the run's own host does not apply.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest

import exman
from exman.record import heartbeat
from exman.sweep.plan import scan_runs

REPO = Path(__file__).resolve().parents[1]
OTHER_HOST = "exman-test-node-7"
BEAT = 0.1  # seconds: stale after STALE_BEATS of them
STALE = BEAT * heartbeat.STALE_BEATS

#: two runs (one in the index, one --tmp) of one process that then waits
TRAINER = textwrap.dedent(
    """\
    import sys
    import time

    import exman

    for extra in ([], ["--tmp"]):
        parser = exman.ExParser(root=sys.argv[1])
        parser.add_argument("--lr", type=float, default=0.1)
        parser.parse_args(extra)
    print("ready", flush=True)
    time.sleep(120)
    """
)


def can_unshare() -> str | None:
    """Why a UTS namespace cannot be made here, or None."""
    if os.geteuid() != 0:
        return "a UTS namespace needs root (CI runs the tests as root)"
    if shutil.which("unshare") is None or shutil.which("hostname") is None:
        return "unshare(1) or hostname(1) is missing"
    probe = subprocess.run(
        ["unshare", "--uts", "true"], capture_output=True, text=True, check=False
    )
    if probe.returncode != 0:
        return f"unshare --uts fails here: {probe.stderr.strip()}"
    return None


CLI = "import sys; from exman.cli import main; sys.exit(main())"


def exman_cli(*args: str) -> str:
    """The ``exman`` command, in a process of its own."""
    proc = subprocess.run(
        [sys.executable, "-c", CLI, *args],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def statuses(root: Path) -> dict[int, str]:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        frame = exman.Index(root).info(tmp=True)
    return dict(zip(frame["id"].tolist(), frame["status"].tolist()))


@pytest.fixture
def other_host(tmp_path: Path) -> Iterator[tuple[Path, subprocess.Popen[str]]]:
    """Two runs started on host OTHER_HOST, alive until the test kills them."""
    why = can_unshare()
    if why is not None:
        pytest.skip(why)
    root = tmp_path / "exman"
    script = tmp_path / "trainer.py"
    script.write_text(TRAINER)
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO),
        heartbeat.INTERVAL_ENV: str(BEAT),
        "EXMAN_SWEEP": "grid",
        "EXMAN_SWEEP_TASK": "0",
        "EXMAN_SWEEP_KEY": "k0",
    }
    env.pop("EXMAN_ROOT", None)
    # unshare execs sh, which execs python: the pid is the trainer's own
    command = f"hostname {OTHER_HOST} && exec {sys.executable} {script} {root}"
    proc = subprocess.Popen(
        ["unshare", "--uts", "sh", "-c", command],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line == "ready\n", line + proc.communicate(timeout=30)[1]
        yield root, proc
    finally:
        proc.kill()
        proc.communicate(timeout=30)


def test_a_run_killed_on_another_host_is_crashed_here(
    other_host: tuple[Path, subprocess.Popen[str]],
) -> None:
    root, proc = other_host
    runs = {folder.parent.name: folder for folder in exman.Root(root).iter_runs()}
    record = json.loads((runs["runs"] / "run.json").read_text())
    assert record["host"] == OTHER_HOST != os.uname().nodename
    assert record["heartbeat"] == BEAT

    # alive: longer than the staleness window, its heartbeat keeps it running
    assert statuses(root) == {1: "running", 2: "running"}  # and caches it
    time.sleep(STALE * 2)
    assert statuses(root) == {1: "running", 2: "running"}
    assert exman.Run(runs["runs"]).status == "running"
    exman_cli("gc", "--root", str(root))
    assert runs["tmp"].is_dir()  # gc keeps a running tmp run

    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    time.sleep(STALE * 1.5)

    # every reader, from a host that cannot check the pid
    assert statuses(root) == {1: "crashed", 2: "crashed"}  # past the cache
    assert exman.Run(runs["runs"]).status == "crashed"
    listed = exman_cli("ls", "--root", str(root))
    assert "crashed" in listed and "running" not in listed
    shown = exman_cli("show", "1", "--root", str(root))
    assert "crashed" in shown
    assert f"heartbeat every {BEAT:g} s, last " in shown
    planned = scan_runs(exman.Root(root))
    assert [info.status for info in planned["k0"]] == ["crashed"]
    exman_cli("gc", "--root", str(root))
    assert not runs["tmp"].exists()  # a crashed tmp run is gc's to remove
    assert runs["runs"].is_dir()


#: one run that beats, then the process goes on without it
ONE_RUN = textwrap.dedent(
    """\
    import json
    import os
    import sys
    import time

    import exman
    from exman.record import heartbeat

    def beating():
        return heartbeat.running()

    args = exman.ExParser(root=sys.argv[1]).parse_args([])
    record = os.path.join(args.root, "run.json")
    with args.safe_experiment:
        first = os.stat(record).st_mtime_ns
        time.sleep(0.5)
        during = os.stat(record).st_mtime_ns
        alive = beating()
    deadline = time.monotonic() + 5
    while beating() and time.monotonic() < deadline:
        time.sleep(0.01)
    after = beating()
    ended = os.stat(record).st_mtime_ns
    time.sleep(0.3)
    print(json.dumps({
        "beat": during > first, "alive": alive, "after": after,
        "still": os.stat(record).st_mtime_ns == ended,
    }))
    """
)


def test_the_heartbeat_ends_with_the_run(tmp_path: Path) -> None:
    script = tmp_path / "one_run.py"
    script.write_text(ONE_RUN)
    env = {**os.environ, "PYTHONPATH": str(REPO), heartbeat.INTERVAL_ENV: "0.05"}
    proc = subprocess.run(
        [sys.executable, str(script), str(tmp_path / "exman")],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    seen = json.loads(proc.stdout)
    assert seen["beat"] and seen["alive"]  # while it runs
    assert not seen["after"], "the heartbeat outlived its run"
    assert seen["still"]  # and nobody touches run.json any more
    assert exman.Run(next((tmp_path / "exman/runs").iterdir())).status == "completed"


@pytest.mark.parametrize("value", ["0", "-1", "soon", "nan", "inf"])
def test_a_bad_interval_is_refused_before_any_run(
    root: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    value: str,
) -> None:
    monkeypatch.setenv(heartbeat.INTERVAL_ENV, value)
    with pytest.raises(SystemExit) as exit:
        exman.ExParser(root=root).parse_args([])
    assert exit.value.code == 2
    assert f"EXMAN_HEARTBEAT={value!r} is refused" in capsys.readouterr().err
    assert not root.exists()


def test_a_record_of_an_earlier_exman_is_judged_by_its_pid_only(
    root: Path,
) -> None:
    # no "heartbeat" in run.json: an old, untouched record is not stale
    args = exman.ExParser(root=root).parse_args([])
    run = exman.Run(args.root)
    record = run.record()
    del record["heartbeat"]
    run.write_record(record)
    old = time.time() - 86400
    os.utime(run.record_file, (old, old))
    assert run.status == "running"
    record["heartbeat"] = 30
    run.write_record(record)
    os.utime(run.record_file, (old, old))
    assert run.status == "crashed"
