"""What every run knows of its environment and its code: env and code in
run.json, Index columns, ``exman show``, ``exman ls --stale``, ``exman sweep
--rerun-stale``, and the command ``exman show`` gives to reproduce a run."""

from __future__ import annotations

import importlib.metadata
import json
import os
import platform
import shlex
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from _git_helpers import git
from _requires import IN_CI

import exman
from tests._run_helpers import exman_command, record
from tests.conftest import run_python

#: an ExParser script whose body imports yaml (so a distribution named
#: otherwise than its module) and writes what its own process sees
SCRIPT = """\
import json
import os
import sys

import yaml

import exman

parser = exman.ExParser(root={root!r})
parser.add_argument("--lr", type=float, default=0.1)
parser.add_argument("--model", default="mlp")
args = parser.parse_args()
with args.safe_experiment:
    seen = {{k: v for k, v in os.environ.items() if k.startswith("SLURM")}}
    (args.root / "seen.json").write_text(json.dumps(seen))
    print("version", {version!r})
"""


def write_script(folder: Path, root: Path, version: str = "v1") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "train.py"
    path.write_text(SCRIPT.format(root=str(root), version=version))
    return path


def runs(root: Path) -> list[Path]:
    return sorted((root / "runs").iterdir())


@pytest.fixture
def repo(tmp_path: Path, git_env: dict[str, str]) -> Path:
    """A repository with one commit of train.py, whose root is outside it."""
    path = tmp_path / "repo"
    write_script(path, tmp_path / "exman")
    git(path, "init", "-q")
    git(path, "add", "train.py")
    git(path, "commit", "-q", "-m", "first")
    return path


def stale_ids(root: Path) -> list[int]:
    proc = exman_command(
        "ls", "--stale", "--format", "json", "--root", str(root), cwd=root
    )
    assert proc.returncode == 0, proc.stderr
    rows = json.loads(proc.stdout or "[]")
    return [row["id"] for row in rows]


# -- the environment ---------------------------------------------------------
def test_every_run_records_its_environment(tmp_path: Path) -> None:
    root = tmp_path / "exman"
    script = write_script(tmp_path / "code", root)
    run_python(script, "--lr", "0.5", env={"CUDA_VISIBLE_DEVICES": "1,3"}, check=True)
    (folder,) = runs(root)
    env = record(folder)["env"]
    assert env["cuda_visible_devices"] == "1,3"
    assert env["python"] == platform.python_version()
    assert env["platform"].startswith(platform.system())
    assert env["prefix"] == sys.prefix
    assert "slurm" not in env  # not under SLURM
    # a run that parses and ends at once is not made to look packages up
    assert env["packages_from"] == "__version__"
    assert env["packages"]["exman"] == exman.__version__
    assert env["packages"]["yaml"] == yaml.__version__

    df = exman.Index(root).info()
    assert df.loc[0, "python"] == platform.python_version()
    assert df.loc[0, "platform"] == env["platform"]
    shown = exman_command("show", "1", "--root", str(root), cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    assert f"python    {platform.python_version()}" in shown.stdout
    assert "CUDA_VISIBLE_DEVICES=1,3" in shown.stdout
    assert ["exman", exman.__version__] in [
        x.split() for x in shown.stdout.splitlines()
    ]
    # the environment is there for whoever asks, not in the default list
    listed = exman_command("ls", "--root", str(root), cwd=tmp_path)
    assert "python" not in listed.stdout.splitlines()[0]
    assert "code" not in listed.stdout.splitlines()[0]


@pytest.mark.parametrize("mode", ["imports", "freeze", "none"])
def test_packages_on_demand(tmp_path: Path, mode: str) -> None:
    root = tmp_path / "exman"
    script = write_script(tmp_path / "code", root)
    run_python(script, env={"EXMAN_PACKAGES": mode}, check=True)
    env = record(runs(root)[0])["env"]
    if mode == "none":
        assert "packages" not in env
        return
    packages = env["packages"]
    assert env["packages_from"] == ("freeze" if mode == "freeze" else "metadata")
    # the distributions, under their own names: yaml is PyYAML's
    assert packages["PyYAML"] == importlib.metadata.version("PyYAML")
    assert packages["ConfigArgParse"] == importlib.metadata.version("ConfigArgParse")
    # pytest is installed but the script does not import it
    assert ("pytest" in packages) == (mode == "freeze")


def test_a_run_that_lasts_looks_its_packages_up(tmp_path: Path) -> None:
    root = tmp_path / "exman"
    script = tmp_path / "slow.py"
    script.write_text(
        "import time\n\nimport yaml  # noqa: F401\n\nimport exman\n"
        "from exman.record.environment import LOOKUP_AFTER\n\n"
        f"parser = exman.ExParser(root={str(root)!r})\n"
        "args = parser.parse_args()\n"
        "time.sleep(LOOKUP_AFTER + 0.2)\n"
    )
    run_python(script, check=True)
    env = record(runs(root)[0])["env"]
    assert env["packages_from"] == "metadata"
    assert env["packages"]["PyYAML"] == importlib.metadata.version("PyYAML")


def slurm_problem() -> str | None:
    if shutil.which("srun") is None:
        return "srun is not on PATH"
    try:
        ping = subprocess.run(
            ["scontrol", "ping"], capture_output=True, text=True, timeout=5
        )
    except subprocess.TimeoutExpired:
        return "no SLURM answers within 5 s"
    if " UP" not in ping.stdout:
        return f"no SLURM answers: {ping.stdout.strip()}"
    return None


def test_a_run_under_slurm_records_its_job_and_node(tmp_path: Path) -> None:
    problem = slurm_problem()
    if problem is not None:
        if IN_CI:
            pytest.fail(f"CI=true but {problem}", pytrace=False)
        pytest.skip(problem)
    root = tmp_path / "exman"
    script = write_script(tmp_path / "code", root)
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLURM_")}
    env.pop("EXMAN_ROOT", None)
    proc = subprocess.run(
        ["srun", "--ntasks", "1", "--time", "5", sys.executable, str(script)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    (folder,) = runs(root)
    seen = json.loads((folder / "seen.json").read_text())
    slurm = record(folder)["env"]["slurm"]
    assert slurm["job_id"] == seen["SLURM_JOB_ID"]
    assert slurm["node"] == seen["SLURMD_NODENAME"]
    df = exman.Index(root).info()
    assert df.loc[0, "slurm_job"] == seen["SLURM_JOB_ID"]
    shown = exman_command("show", "1", "--root", str(root), cwd=tmp_path)
    assert f"slurm     job {seen['SLURM_JOB_ID']} on {seen['SLURMD_NODENAME']}" in (
        shown.stdout
    )


# -- stale runs ---------------------------------------------------------------
def test_stale_after_a_commit_and_an_uncommitted_edit(
    repo: Path, tmp_path: Path
) -> None:
    root = tmp_path / "exman"
    script = repo / "train.py"
    run_python(script, check=True)
    first = record(runs(root)[0])["code"]
    assert first == {
        "fingerprint": f"git:{git(repo, 'rev-parse', 'HEAD')}",
        "source": str(repo),
    }
    assert stale_ids(root) == []

    write_script(repo, root, version="v2")  # a real commit of a change
    git(repo, "commit", "-q", "-am", "second")
    assert stale_ids(root) == [1]
    run_python(script, check=True)
    assert stale_ids(root) == [1]

    # an uncommitted edit: every run is stale, and the next run records it
    (repo / "train.py").write_text(script.read_text() + "# edited\n")
    assert stale_ids(root) == [1, 2]
    run_python(script, check=True)
    third = record(runs(root)[2])["code"]["fingerprint"]
    assert third.startswith(f"git:{git(repo, 'rev-parse', 'HEAD')}+")
    assert stale_ids(root) == [1, 2]
    # untracked files change nothing
    (repo / "notes.txt").write_text("untracked\n")
    assert stale_ids(root) == [1, 2]

    df = exman.Index(root).info(stale=True)
    assert df["stale"].tolist() == [True, True, False]
    assert "stale" not in exman.Index(root).info().columns
    shown = exman_command("show", "1", "--root", str(root), cwd=tmp_path)
    assert f"({repo}, changed since)" in shown.stdout


def test_the_current_code_is_computed_once_per_repository(
    repo: Path, tmp_path: Path
) -> None:
    root = tmp_path / "exman"
    for _ in range(4):
        run_python(repo / "train.py", check=True)
    # a git that logs each call before doing the real work
    real = shutil.which("git")
    assert real is not None
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    log = tmp_path / "git.log"
    wrapper = bin_dir / "git"
    wrapper.write_text(
        f'#!/bin/sh\necho "$@" >> {shlex.quote(str(log))}\n'
        f'exec {shlex.quote(real)} "$@"\n'
    )
    wrapper.chmod(wrapper.stat().st_mode | stat.S_IEXEC)
    env = dict(os.environ, PATH=f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    env.pop("EXMAN_ROOT", None)
    found = shutil.which("exman", path=os.path.dirname(sys.executable))
    assert found is not None
    proc = subprocess.run(
        [found, "ls", "--stale", "--root", str(root)],
        env=env,
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    calls = log.read_text().splitlines()
    # one look at the repository (toplevel, HEAD, status), not one per run
    assert len([c for c in calls if "rev-parse --show-toplevel" in c]) == 1


#: a script that says which of the modules a git command would bring it
#: has: the start of its run runs git without them
LIGHT = """\
import json
import sys

import exman

parser = exman.ExParser(root={root!r})
parser.add_argument("--lr", type=float, default=0.1)
args = parser.parse_args()
print(json.dumps(sorted({{"subprocess", "threading", "selectors"}} & set(sys.modules))))
"""


def test_a_script_in_git_records_its_code_without_subprocess(
    repo: Path, tmp_path: Path
) -> None:
    root = tmp_path / "exman"
    script = repo / "light.py"
    script.write_text(LIGHT.format(root=str(root)))
    git(repo, "add", "light.py")
    git(repo, "commit", "-q", "-m", "light")
    # without site (-S): no .pth file of the interpreter imports anything first
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
    env.pop("EXMAN_ROOT", None)

    def start() -> dict[str, str]:
        proc = subprocess.run(
            [sys.executable, "-S", str(script)],
            env=env,
            capture_output=True,
            text=True,
            cwd=tmp_path,
            timeout=60,
        )
        assert proc.returncode == 0, proc.stderr
        assert json.loads(proc.stdout) == []
        code: dict[str, str] = record(runs(root)[-1])["code"]
        return code

    head = git(repo, "rev-parse", "HEAD")
    assert start() == {"fingerprint": f"git:{head}", "source": str(repo)}
    # uncommitted changes: the hash of the diff, as the stale check computes it
    (repo / "train.py").write_text((repo / "train.py").read_text() + "# edited\n")
    dirty = start()["fingerprint"]
    assert dirty.startswith(f"git:{head}+")
    now = exman.record.fingerprint.CodeCheck().current(str(repo), git=True)
    assert dirty == now
    assert stale_ids(root) == [1]


#: a script whose parse fails after its git commands started
REFUSED = """\
import os

import exman

parser = exman.ExParser(root={root!r})
parser.add_argument("--lr", type=float, default=0.1)
try:
    parser.parse_args(["--lr", "not a number"])
except SystemExit as e:
    print("exit", e.code)
try:
    os.waitpid(-1, os.WNOHANG)
except ChildProcessError:
    print("no process left")
"""


def test_a_refused_parse_in_git_leaves_no_git_process(
    repo: Path, tmp_path: Path
) -> None:
    root = tmp_path / "exman"
    script = repo / "refused.py"
    script.write_text(REFUSED.format(root=str(root)))
    proc = run_python(script, check=True)
    assert proc.stdout == "exit 2\nno process left\n"
    assert not (root / "runs").exists() or runs(root) == []


def test_a_script_in_git_that_ignores_sigchld_records_its_code(
    repo: Path, tmp_path: Path
) -> None:
    # with SIGCHLD ignored the system reaps the git commands itself
    root = tmp_path / "exman"
    script = repo / "ignoring.py"
    script.write_text(
        "import signal\n\nsignal.signal(signal.SIGCHLD, signal.SIG_IGN)\n"
        + LIGHT.format(root=str(root))
    )
    git(repo, "add", "ignoring.py")
    git(repo, "commit", "-q", "-m", "ignoring")
    run_python(script, check=True)
    code = record(runs(root)[0])["code"]
    assert code == {
        "fingerprint": f"git:{git(repo, 'rev-parse', 'HEAD')}",
        "source": str(repo),
    }


def test_a_script_outside_git_is_fingerprinted_by_its_bytes(tmp_path: Path) -> None:
    root = tmp_path / "exman"
    script = write_script(tmp_path / "code", root)
    run_python(script, check=True)
    code = record(runs(root)[0])["code"]
    assert code["fingerprint"].startswith("file:")
    assert code["source"] == str(script)
    assert stale_ids(root) == []
    write_script(tmp_path / "code", root, version="v2")
    assert stale_ids(root) == [1]
    script.unlink()  # the code is gone: unknown, not stale
    assert stale_ids(root) == []
    assert exman.Index(root).info(stale=True)["stale"].tolist() == [None]


def test_a_record_naming_a_fifo_or_a_folder_is_unknown_not_a_hang(
    tmp_path: Path,
) -> None:
    root = tmp_path / "exman"
    script = write_script(tmp_path / "code", root)
    for _ in range(3):
        run_python(script, check=True)
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    planted = {"fingerprint": "file:0", "source": str(fifo)}
    for folder, code in zip(
        runs(root)[:2],
        [planted, {"fingerprint": "file:0", "source": str(tmp_path)}],
    ):
        data = record(folder)
        data["code"] = code
        (folder / "run.json").write_text(json.dumps(data))
    assert stale_ids(root) == []
    assert exman.Index(root).info(stale=True)["stale"].tolist() == [None, None, False]


def test_sweep_rerun_stale_runs_the_tasks_whose_code_changed(tmp_path: Path) -> None:
    root = tmp_path / "exman"
    code = tmp_path / "code"
    write_script(code, root)
    spec = code / "sweep.yaml"
    spec.write_text(
        yaml.safe_dump(
            {
                "command": f"{shlex.quote(sys.executable)} train.py",
                "root": str(root),
                "grid": {"lr": [0.1, 0.2]},
            }
        )
    )

    def sweep(*flags: str) -> None:
        proc = exman_command("sweep", str(spec), "--quiet", *flags, cwd=code)
        assert proc.returncode == 0, proc.stdout + proc.stderr

    sweep()
    assert len(runs(root)) == 2
    sweep("--rerun-stale")  # nothing changed: nothing runs
    assert len(runs(root)) == 2
    write_script(code, root, version="v2")
    sweep()  # completed is completed, without the flag
    assert len(runs(root)) == 2
    sweep("--rerun-stale")
    assert len(runs(root)) == 4
    assert sorted(
        yaml.safe_load((r / "params.yaml").read_text())["lr"] for r in runs(root)[2:]
    ) == [0.1, 0.2]
    sweep("--rerun-stale")  # the new runs have the code of now
    assert len(runs(root)) == 4


# -- reproducing a sweep run ----------------------------------------------------
def test_show_gives_a_line_that_reproduces_a_sweep_run(tmp_path: Path) -> None:
    root = tmp_path / "exman"
    code = tmp_path / "my code"  # a space, to be quoted
    write_script(code, root)
    spec = code / "sweep.yaml"
    spec.write_text(
        yaml.safe_dump(
            {
                "command": f"{shlex.quote(sys.executable)} train.py",
                "root": str(root),
                "grid": {"lr": [0.25], "model": ["it's; a b"]},
            }
        )
    )
    proc = exman_command("sweep", str(spec), "--quiet", cwd=code)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    shown = exman_command("show", "1", "--root", str(root), cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    lines = {line[:12].strip(): line[12:] for line in shown.stdout.splitlines()}
    assert lines["rerun"] == f"exman rerun 1 --root {shlex.quote(str(root))}"
    pasted = lines["or"]
    assert "--config" in pasted and "params.yaml" in pasted
    # pasted into a shell elsewhere, with neither the sweep's nor a root's
    # variables: the same parameters
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("EXMAN_") and not k.startswith("SLURM_")
    }
    done = subprocess.run(
        ["/bin/sh", "-c", pasted],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    first, again = runs(root)
    old = yaml.safe_load((first / "params.yaml").read_text())
    new = yaml.safe_load((again / "params.yaml").read_text())
    meta = {"root", "time", "id", "config_file"}
    assert {k: v for k, v in new.items() if k not in meta} == {
        k: v for k, v in old.items() if k not in meta
    }
    assert (new["lr"], new["model"]) == (0.25, "it's; a b")
    assert "sweep" not in record(again)  # a run of its own, not the sweep's
