"""exman sweep on Ray: a real Ray head on 127.0.0.1, started for this module.

The cluster (2 CPUs, one custom resource ``special``) is shared by every
test here: Ray takes seconds to start. The tasks run in Ray's workers, not
under the test process: they find their folder through the script's path,
not through the environment (a worker has the environment of ``ray start``).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import pytest
from _launcher_suite import LauncherSuite
from _sweep_helpers import EXTRA, PYTHON, alive, all_runs, wait_for, write_spec

from exman.record.run import Run
from exman.record.store import ExmanError
from exman.sweep import SpecError, sweep
from exman.sweep.cli import main as sweep_main
from exman.sweep.launchers import Finished, Launcher, Started, get_launcher

pytestmark = pytest.mark.ray

# the pids of the task's processes and of the Ray worker that started it
BODY = """\
import json, os, pathlib, signal, subprocess, time
here = pathlib.Path(__file__).parent
with args.safe_experiment:
    if args.ignore_int:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    mine = [os.getpid()]
    if args.child:
        mine.append(subprocess.Popen(["sleep", "60"]).pid)
    pids = here / "pids"
    pids.mkdir(exist_ok=True)
    record = json.dumps({"pids": mine, "worker": os.getppid()})
    (pids / f"{os.getpid()}.tmp").write_text(record)
    os.replace(pids / f"{os.getpid()}.tmp", pids / f"{os.getpid()}.json")
    print("task output", args.lr)
    if not (here / "fast").exists():
        time.sleep(args.sleep)
    if args.fail == "raise":
        raise ValueError("asked to fail")
"""


# -- the cluster ---------------------------------------------------------------------
def _require_ray() -> None:
    """Skip without ray, except in CI: there a missing ray is a failure."""
    try:
        import ray  # noqa: F401
    except ImportError:
        if os.environ.get("CI", "").lower() == "true":
            raise
        pytest.skip("ray is not installed: pip install 'exman[ray]'")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class Cluster:
    """A Ray cluster of ``ray start --block`` processes, each its own group."""

    address: str
    temp: Path
    nodes: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def start(self, *args: str, head: bool = False, timeout: float = 90) -> int:
        """Start a node; returns the pid of its ``ray start`` process."""
        env = dict(os.environ)
        for name in ("RAY_ADDRESS", "EXMAN_ROOT"):
            env.pop(name, None)
        env["RAY_USAGE_STATS_ENABLED"] = "0"
        # no token: with RAY_AUTH_MODE unset, Ray would use ~/.ray/auth_token
        # if one exists, and a driver given an address would not
        env["RAY_AUTH_MODE"] = "disabled"
        where = ["--head", "--port", self.address.rsplit(":", 1)[1]] if head else []
        if not head:
            where = ["--address", self.address]
        log = self.temp / f"node{len(self.nodes)}.out"
        command = [
            sys.executable,
            "-c",
            "from ray.scripts.scripts import main; main()",
            "start",
            *where,
            "--node-ip-address",
            "127.0.0.1",
            "--temp-dir",
            str(self.temp),
            "--dashboard-agent-listen-port",
            str(_free_port()),
            "--disable-usage-stats",
            "--block",
            *args,
        ]
        if head:
            command += [
                "--include-dashboard=false",
                "--ray-client-server-port",
                str(_free_port()),
            ]
        with open(log, "wb") as out:
            proc = subprocess.Popen(
                command,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=env,
                start_new_session=True,
            )
        self.nodes.append(proc)
        end = time.monotonic() + timeout
        while "This command will now block" not in log.read_text(errors="replace"):
            if proc.poll() is not None or time.monotonic() > end:
                self.stop()
                pytest.fail(f"ray start failed:\n{log.read_text(errors='replace')}")
            time.sleep(0.2)
        return proc.pid

    def stop_node(self, proc: subprocess.Popen[bytes], signum: int) -> None:
        """Stop one node: SIGTERM is ``ray stop`` for it, SIGKILL kills it all."""
        if proc.poll() is None:
            if signum == signal.SIGKILL:
                _killpg(proc.pid, signal.SIGKILL)
            else:
                proc.send_signal(signum)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            _killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        # what the node started is in its group: nothing of it may outlive it
        _killpg(proc.pid, signal.SIGKILL)

    def stop(self) -> None:
        for proc in reversed(self.nodes):
            self.stop_node(proc, signal.SIGTERM)


def _killpg(pgid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signum)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    _require_ray()
    temp = tmp_path_factory.mktemp("ray")
    own_temp = None
    if len(str(temp)) > 40:  # Ray's socket paths must stay under 108 bytes
        temp = own_temp = Path(tempfile.mkdtemp(prefix="exray-", dir="/tmp"))
    cluster = Cluster(f"127.0.0.1:{_free_port()}", temp)
    try:
        cluster.start("--num-cpus", "2", "--resources", '{"special": 1}', head=True)
        yield cluster
    finally:
        cluster.stop()
        if own_temp is not None:
            import shutil

            shutil.rmtree(own_temp, ignore_errors=True)


@pytest.fixture(autouse=True)
def _no_connection_left() -> Iterator[None]:
    """Every launch ends the connection it made to the cluster."""
    yield
    ray = sys.modules.get("ray")
    if ray is not None:
        assert not ray.is_initialized(), "the launcher left its Ray connection open"


# -- helpers -------------------------------------------------------------------------
@pytest.fixture
def script(make_script: Callable[..., Path]) -> Path:
    return make_script(BODY, extra=EXTRA)


def task_pids(folder: Path) -> list[dict[str, Any]]:
    pids = folder / "pids"
    return [json.loads(f.read_text()) for f in sorted(pids.glob("*.json"))]


def none_alive(folder: Path) -> bool:
    return not any(alive(p) for t in task_pids(folder) for p in t["pids"])


def overlaps(runs: list[dict[str, Any]]) -> bool:
    """Whether two runs were running at the same time."""
    spans = sorted((r["started"], r["finished"]) for r in runs)
    return any(a[1] > b[0] for a, b in zip(spans, spans[1:]))


# -- the launcher's contract ---------------------------------------------------------
class TestRayLauncher(LauncherSuite):
    backend = "ray"
    gpu_slots = False
    address: ClassVar[str] = ""

    @pytest.fixture(autouse=True)
    def _on_the_cluster(self, cluster: Cluster) -> None:
        type(self).address = cluster.address

    def launcher(self) -> Launcher:
        return get_launcher("ray", address=self.address, grace=1.0)

    def sweep_options(self) -> dict[str, Any]:
        return {"backend": "ray", "address": self.address}


# -- sweeps on the cluster -------------------------------------------------------------
def test_a_sweep_runs_its_tasks_on_the_cluster_and_resumes(
    cluster: Cluster, script: Path, root: Path
) -> None:
    spec = write_spec(
        script.parent,
        grid={"lr": [0.1, 0.2], "fail": ["", "raise"]},
        ray={"address": cluster.address, "cpus": 1},
    )
    summary = sweep(spec, backend="ray")
    assert summary.result_counts() == {
        "completed": 2,
        "pruned": 0,
        "failed": 2,
        "interrupted": 0,
    }
    assert summary.exit_code == 1
    runs = all_runs(root)
    assert sorted(r["sweep"]["task"] for r in runs) == [0, 1, 2, 3]
    for record in runs:
        assert record["place"] == ("fails" if record["status"] == "failed" else "runs")
        # a Ray worker started it, not this process
        assert record["pid"] not in (os.getpid(), os.getppid())
        assert "task output" in (record["path"] / "log.txt").read_text()
    failed = {r.task.index: r for r in summary.failures}
    assert {r.reason for r in failed.values()} == {"ValueError: asked to fail"}
    logs = root / ".exman" / "sweeps" / "sweep" / "logs"
    assert len(list(logs.iterdir())) == 4
    assert "task output" in next(logs.iterdir()).read_text()

    again = sweep(spec, backend="ray")
    assert again.results == [] and again.skipped == {"completed": 2, "failed": 2}
    retried = sweep(spec, backend="ray", retry_failed=True, fail_fast=True, jobs=1)
    assert len(retried.results) == 1 and retried.not_started == 1
    assert retried.results[0].status == "failed"


def test_timeout_and_a_killed_task_process_fail_the_task(
    cluster: Cluster, script: Path, root: Path
) -> None:
    spec = write_spec(
        script.parent,
        command=f"{PYTHON} main.py --sleep 60 --child",
        grid={"lr": [0.1, 0.2]},
    )
    killed: list[int] = []
    done = threading.Event()

    def kill_the_first_task() -> None:
        while not done.is_set():
            found = task_pids(script.parent)
            if found:
                killed.append(found[0]["pids"][0])
                os.kill(killed[0], signal.SIGKILL)
                return
            time.sleep(0.05)

    killer = threading.Thread(target=kill_the_first_task, daemon=True)
    killer.start()
    try:
        summary = sweep(
            spec, backend="ray", address=cluster.address, jobs=1, timeout=3, grace=1
        )
    finally:
        done.set()
        killer.join()
    assert killed, "the test must kill the first task"
    first, second = sorted(summary.results, key=lambda r: r.task.index)
    assert first.status == "failed" and first.reason == "killed by SIGKILL"
    assert second.status == "failed" and second.timed_out
    assert second.reason == "timeout: stopped after 3 s"
    records = {r["sweep"]["task"]: r for r in all_runs(root)}
    assert records[0]["status"] == "failed" and records[0]["place"] == "fails"
    assert records[1]["status"] == "failed" and records[1]["place"] == "fails"
    assert records[1]["reason"] == "timeout: stopped after 3 s"
    wait_for(lambda: none_alive(script.parent), 10)


@pytest.mark.parametrize(
    ("section", "together"),
    [
        ({"cpus": 1}, True),  # the control: 2 CPUs hold two tasks at once
        ({"cpus": 2}, False),
        ({"cpus": 0.5, "resources": {"special": 1}}, False),
    ],
)
def test_tasks_hold_the_resources_they_ask_for(
    cluster: Cluster,
    script: Path,
    root: Path,
    section: dict[str, Any],
    together: bool,
) -> None:
    spec = write_spec(
        script.parent,
        command=f"{PYTHON} main.py --sleep 1.5",
        grid={"lr": [0.1, 0.2]},
        ray=section,
    )
    # -j 2 in flight: only Ray's accounting keeps the tasks apart
    summary = sweep(spec, backend="ray", address=cluster.address, jobs=2)
    assert summary.exit_code == 0, summary.text()
    assert overlaps(all_runs(root)) is together


@pytest.mark.parametrize(
    ("options", "jobs"),
    [
        ({}, 2),
        ({"cpus": 2}, 1),
        ({"cpus": 0.5}, 4),
        ({"cpus": 0.5, "resources": {"special": 1}}, 1),
        ({"gpus": 1}, "GPU=1"),
        ({"resources": {"nowhere": 2}}, "nowhere=2"),
    ],
)
def test_jobs_default_to_what_the_cluster_has_room_for(
    cluster: Cluster, options: dict[str, Any], jobs: int | str
) -> None:
    launcher = get_launcher("ray", address=cluster.address, **options)
    if isinstance(jobs, str):
        with pytest.raises(ExmanError, match="no node of the Ray cluster") as info:
            launcher.default_jobs()
        assert jobs in str(info.value) and "special=1" in str(info.value)
        return
    try:
        assert launcher.default_jobs() == jobs
    finally:
        list(launcher.launch([]))  # and disconnect


def test_a_task_whose_worker_dies_fails_and_leaves_no_process(
    cluster: Cluster, script: Path, root: Path
) -> None:
    spec = write_spec(
        script.parent, command=f"{PYTHON} main.py --sleep 60 --child", grid={"lr": [1]}
    )
    workers: list[int] = []

    def kill_the_worker() -> None:
        wait_for(lambda: bool(task_pids(script.parent)))
        workers.append(task_pids(script.parent)[0]["worker"])
        os.kill(workers[0], signal.SIGKILL)

    killer = threading.Thread(target=kill_the_worker, daemon=True)
    killer.start()
    summary = sweep(spec, backend="ray", address=cluster.address)
    killer.join()
    (result,) = summary.results
    assert result.status == "failed", summary.text()
    assert result.reason is not None and result.reason.startswith("ray: worker died")
    assert result.run is not None and result.run.path.parent == root / "fails"
    record = Run(result.run.path).record()
    assert (record["status"], record["reason"]) == ("failed", result.reason)
    # the watchdog killed the command and its child
    wait_for(lambda: none_alive(script.parent), 10)
    assert sweep(spec, backend="ray", address=cluster.address).results == []


@pytest.mark.slow
def test_a_task_whose_node_dies_fails_and_leaves_no_process(
    cluster: Cluster, script: Path, root: Path
) -> None:
    cluster.start("--num-cpus", "1", "--resources", '{"doomed": 1}')
    node = cluster.nodes[-1]
    spec = write_spec(
        script.parent,
        command=f"{PYTHON} main.py --sleep 60 --child",
        grid={"lr": [1]},
        ray={"cpus": 1, "resources": {"doomed": 1}},
    )

    def kill_the_node() -> None:
        wait_for(lambda: bool(task_pids(script.parent)))
        cluster.stop_node(node, signal.SIGKILL)

    killer = threading.Thread(target=kill_the_node, daemon=True)
    killer.start()
    start = time.monotonic()
    summary = sweep(spec, backend="ray", address=cluster.address, jobs=1)
    killer.join()
    (result,) = summary.results
    assert result.status == "failed", summary.text()
    assert result.reason is not None and result.reason.startswith("ray: ")
    assert time.monotonic() - start < 60
    assert result.run is not None and Run(result.run.path).status == "failed"
    wait_for(lambda: none_alive(script.parent), 10)


def test_ctrl_c_cancels_every_task_and_the_sweep_resumes(
    cluster: Cluster, script: Path, root: Path
) -> None:
    spec = write_spec(
        script.parent,
        command=f"{PYTHON} main.py --sleep 60 --child",
        grid={"ignore_int": [False, True]},
    )
    proc = subprocess.Popen(
        [
            *(sys.executable, "-m", "exman.sweep", str(spec)),
            *("--backend", "ray", "--address", cluster.address, "--grace", "1"),
        ],
        cwd=spec.parent,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        wait_for(lambda: len(task_pids(script.parent)) == 2, 60)
        os.kill(proc.pid, signal.SIGINT)
        out, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 130, out
    assert "run the same command again to resume" in out
    assert "killed after 1 s" in out  # the task that ignores SIGINT
    wait_for(lambda: none_alive(script.parent), 10)
    runs = all_runs(root)
    assert Counter(r["status"] for r in runs) == {"interrupted": 2}, out
    assert all(r["place"] == "runs" for r in runs)

    (script.parent / "fast").touch()
    resumed = sweep(spec, backend="ray", address=cluster.address)
    assert resumed.exit_code == 0, resumed.text()
    assert sorted(r.task.index for r in resumed.results) == [0, 1]


def test_a_connection_the_caller_made_is_used_and_left_open(
    cluster: Cluster, script: Path, root: Path
) -> None:
    import ray

    ray.init(address=cluster.address, log_to_driver=False)
    try:
        spec = write_spec(script.parent, grid={"lr": [0.1]})
        # no address: without the caller's connection it would start an instance
        summary = sweep(spec, backend="ray")
        assert summary.exit_code == 0, summary.text()
        assert ray.is_initialized()
    finally:
        ray.shutdown()


@pytest.mark.slow
def test_without_an_address_a_local_instance_runs_the_sweep(
    script: Path, root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _require_ray()
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    # else a new instance makes a token in ~/.ray and sets RAY_AUTH_MODE here
    monkeypatch.setenv("RAY_AUTH_MODE", "disabled")
    temp = Path(tempfile.mkdtemp(prefix="exray-", dir="/tmp"))
    monkeypatch.setenv("RAY_TMPDIR", str(temp))
    sigterm = signal.getsignal(signal.SIGTERM)
    spec = write_spec(script.parent, grid={"lr": [0.1, 0.2]})
    try:
        summary = sweep(spec, backend="ray", jobs=3)
        assert summary.result_counts()["completed"] == 2, summary.text()
        assert signal.getsignal(signal.SIGTERM) is sigterm
        # the instance ends with the sweep
        wait_for(lambda: not _processes_using(temp), 30)
    finally:
        import shutil

        shutil.rmtree(temp, ignore_errors=True)


def _processes_using(folder: Path) -> list[int]:
    """The processes whose command line names ``folder``."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmdline = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            if str(folder).encode() in cmdline:
                found.append(int(entry.name))
    return found


# -- errors ------------------------------------------------------------------------
def test_without_ray_the_error_gives_the_install_command() -> None:
    code = (
        "import sys\n"
        "sys.modules['ray'] = None\n"  # what a missing ray looks like to import
        "from exman.sweep.launchers import get_launcher\n"
        "get_launcher('ray')\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 1
    assert "ray is not installed: pip install 'exman[ray]'" in done.stderr


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ({"cpu": 2}, "ray.cpu: unknown key; valid: address, cpus, gpus, memory"),
        ({"cpus": -1}, "ray.cpus: must be a number >= 0"),
        ({"gpus": 1.5}, "ray.gpus: Ray takes fractions only below 1"),
        ({"memory": "lots"}, "ray.memory: must be bytes or a size such as 512M"),
        ({"resources": {"CPU": 1}}, "ray.resources.CPU: set it with ray.cpus"),
        ({"max_retries": -1}, "ray.max_retries: must be a whole number >= 0"),
        ({"address": ""}, "ray.address: must be auto or host:port"),
        ("2 cpus", "ray: must be a mapping"),
    ],
)
def test_a_wrong_ray_section_is_a_spec_error(
    tmp_path: Path, section: Any, message: str
) -> None:
    spec = write_spec(tmp_path, grid={"lr": [1]}, ray=section)
    with pytest.raises(SpecError, match=r"sweep\.yaml: ") as info:
        sweep(spec, status=True)
    assert message in str(info.value)


def test_the_ray_section_is_what_each_task_asks(tmp_path: Path) -> None:
    spec = write_spec(
        tmp_path,
        grid={"lr": [1]},
        ray={"cpus": 0.5, "gpus": 1, "memory": "1.5G", "resources": {"a": 2}},
    )
    from exman.sweep import load_spec

    assert load_spec(spec).ray == {
        "cpus": 0.5,
        "gpus": 1,
        "memory": 3 * 2**29,
        "resources": {"a": 2},
    }


def test_command_line_errors(tmp_path: Path, capsys: Any) -> None:
    spec = write_spec(tmp_path, grid={"lr": [1]})
    assert sweep_main([str(spec), "--address", "auto"]) == 2
    assert "--backend ray" in capsys.readouterr().err
    _require_ray()
    port = _free_port()  # nobody listens there
    start = time.monotonic()
    address = f"127.0.0.1:{port}"
    assert sweep_main([str(spec), "--backend", "ray", "--address", address]) == 2
    err = capsys.readouterr().err
    assert f"cannot reach the Ray cluster at '127.0.0.1:{port}'" in err
    assert time.monotonic() - start < 30


def test_launch_events_name_no_local_pid(cluster: Cluster, tmp_path: Path) -> None:
    from _launcher_suite import shell_task

    launcher = get_launcher("ray", address=cluster.address)
    events = list(launcher.launch([shell_task(tmp_path, 0, "true")]))
    (started,) = [e for e in events if isinstance(e, Started)]
    (ended,) = [e for e in events if isinstance(e, Finished)]
    # the process runs on some node: its pid means nothing here
    assert started.pid is None and ended.status == "completed"
    head = (tmp_path / "task0.log").read_text().splitlines()[0]
    assert head.startswith("== ") and f"on {os.uname().nodename}: sh -c true" in head


#: a curve that never asks exman.should_stop(): only the launcher stops it
DEAF_QUADRATIC = """\
import time
import exman

parser = exman.ExParser(root=exman.simpleroot(__file__))
parser.add_argument("--x", type=float, default=0.0)
args = parser.parse_args()
loss = (args.x - 1) ** 2
with args.safe_experiment:
    for step in range(25):
        exman.log(step=step, loss=loss + 1 / (1 + step))
        time.sleep(0.08)
    exman.result(loss=loss)
"""


def test_a_search_runs_its_trials_on_the_cluster_and_prunes_them_there(
    cluster: Cluster, tmp_path: Path
) -> None:
    pytest.importorskip("optuna")
    (tmp_path / "search.py").write_text(DEAF_QUADRATIC)
    search = {
        "method": "random",
        "trials": 10,
        "parallel": 2,
        "objective": "loss",
        "pruner": "median",
        "grace": 0.3,
        "space": {"x": {"low": -3, "high": 3}},
    }
    spec = write_spec(tmp_path, command=f"{PYTHON} search.py", search=search)
    summary = sweep(spec, backend="ray", address=cluster.address)
    assert summary.exit_code == 0, summary.text()
    assert summary.search is not None
    counts = summary.search["counts"]
    assert sum(counts.values()) == 10 and counts.get("pruned"), counts
    root = tmp_path / "exman"
    stop = root / ".exman" / "sweeps" / "sweep" / "stop"
    runs = all_runs(root)
    assert len(runs) == 10
    for record in runs:
        marked = (stop / record["sweep"]["key"]).exists()
        assert (record["status"] == "pruned") == marked, record
    # stopped on the node by SIGTERM, before its last step
    pruned = [r for r in runs if r["status"] == "pruned"]
    assert len(pruned) == counts["pruned"]
    assert any(r["exit_code"] == 128 + signal.SIGTERM for r in pruned)
