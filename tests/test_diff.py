"""``exman diff`` and ``Index.diff``: runs side by side, their code included."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from _git_helpers import git
from _run_helpers import exman_command

import exman

Run = Callable[..., subprocess.CompletedProcess[str]]

BODY = """\
with args.safe_experiment:
    exman.log(0, loss=1.0)
    exman.log(1, loss=args.lr * 2)
    exman.result(acc=0.5 + args.lr)
    if args.fail == "raise":
        raise ValueError("asked to fail")
"""


@pytest.fixture
def runs(make_script: Callable[..., Path], run: Run, tmp_path: Path) -> Path:
    """Run 1 (lr 0.1), run 2 (lr 0.3, model vit), run 3 (failed)."""
    script = make_script(BODY)
    run(script, "--lr", "0.1", check=True)
    run(script, "--lr", "0.3", "--model", "vit", check=True)
    run(script, "--lr", "0.1", "--fail", "raise")
    return tmp_path / "exman"


def test_index_diff_frames(runs: Path) -> None:
    d = exman.Index(runs).diff(1, 2)
    assert d.ids == [1, 2]
    assert d.params.to_dict("index") == {
        "lr": {1: 0.1, 2: 0.3},
        "model": {1: "resnet", 2: "vit"},
    }
    assert d.results.loc["acc", 2] == pytest.approx(0.8)
    assert d.results.loc["acc", "Δ2"] == pytest.approx(0.2)
    assert d.results.loc["loss", "Δ2"] == pytest.approx(0.4)
    assert list(d.run.loc["status"][[1, 2]]) == ["completed", "completed"]
    assert "duration" in d.run.index
    assert d.code == []  # no git, no changes.diff: the same code


def test_several_runs_against_the_first_through_the_command(runs: Path) -> None:
    proc = exman_command("diff", "1", "2", "3", cwd=runs)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert out.startswith("runs 2, 3 compared with run 1\n")
    lines = out.splitlines()
    assert any(ln.split() == ["lr", "0.1", "0.3", "0.1"] for ln in lines)
    assert any(ln.split()[:2] == ["fail", '""'] or "raise" in ln for ln in lines)
    assert any(ln.split()[:1] == ["acc"] and "+0.2" in ln for ln in lines)
    status = next(ln for ln in lines if ln.split()[:1] == ["status"])
    assert status.split() == ["status", "completed", "completed", "failed"]
    assert "ValueError: asked to fail" in out
    assert "the same code" in out


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["1"], 2, "two runs or more"),
        (["1", "1"], 2, "two runs or more"),
        (["1", "9"], 1, "run 9 not found"),
        (["1", "x"], 2, "'x' is not a run id"),
    ],
)
def test_bad_ids(runs: Path, args: list[str], code: int, message: str) -> None:
    proc = exman_command("diff", *args, cwd=runs)
    assert proc.returncode == code and message in proc.stderr, proc.stderr


# -- code from two commits of a real repository ------------------------------------


@pytest.fixture
def two_commits(
    make_script: Callable[..., Path], run: Run, tmp_path: Path, git_env: dict[str, str]
) -> Path:
    """Run 1 from a first commit, run 2 from a second (lr default changed,
    plus an uncommitted change); returns the root."""
    script = make_script(BODY, parser_kwargs=", git=True")
    helper = tmp_path / "model.py"
    helper.write_text("WIDTH = 64\n")
    git(tmp_path, "init", "-q")
    (tmp_path / ".gitignore").write_text("exman/\ngitconfig\n")
    git(tmp_path, "add", ".")
    git(tmp_path, "commit", "-q", "-m", "first")
    run(script, check=True)
    helper.write_text("WIDTH = 128\n")
    git(tmp_path, "commit", "-q", "-am", "wider")
    helper.write_text("WIDTH = 256\n")  # not committed: goes to changes.diff
    run(script, "--git-dirty", check=True)
    return tmp_path / "exman"


def test_code_of_two_commits_through_git(two_commits: Path, tmp_path: Path) -> None:
    first, second = git(tmp_path, "rev-list", "--reverse", "HEAD").split()
    proc = exman_command("diff", "1", "2", cwd=two_commits)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert f"git diff {first[:12]} {second[:12]} in {tmp_path}" in out
    assert "-WIDTH = 64\n+WIDTH = 128" in out
    assert "run 2 also had uncommitted changes" in out and "+WIDTH = 256" in out
    commit = next(ln for ln in out.splitlines() if ln.split()[:1] == ["commit"])
    assert commit.split() == ["commit", first, second]


def test_code_without_the_repository_uses_the_saved_diffs(
    two_commits: Path, tmp_path: Path
) -> None:
    shutil.rmtree(tmp_path / ".git")
    d = exman.Index(two_commits).diff(1, 2)
    (code,) = d.code
    assert "repository is not at hand" in code.how
    assert "+WIDTH = 256" in code.text and "+WIDTH = 128" not in code.text


def test_the_same_commit_with_other_uncommitted_changes(
    make_script: Callable[..., Path], run: Run, tmp_path: Path, git_env: dict[str, str]
) -> None:
    script = make_script(BODY, parser_kwargs=", git=True")
    (tmp_path / "model.py").write_text("WIDTH = 64\n")
    git(tmp_path, "init", "-q")
    (tmp_path / ".gitignore").write_text("exman/\ngitconfig\n")
    git(tmp_path, "add", ".")
    git(tmp_path, "commit", "-q", "-m", "first")
    run(script, check=True)
    (tmp_path / "model.py").write_text("WIDTH = 32\n")
    run(script, "--git-dirty", check=True)
    (code,) = exman.Index(tmp_path / "exman").diff(1, 2).code
    assert "their uncommitted changes" in code.how
    assert "+WIDTH = 32" in code.text


def test_environment_where_it_differs(
    make_script: Callable[..., Path], run: Run, tmp_path: Path
) -> None:
    script = make_script(BODY)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    run(script, check=True)
    run(script, "--lr", "0.2", cwd=elsewhere, check=True)
    env = exman.Index(tmp_path / "exman").diff(1, 2).environment
    assert env.index.tolist() == ["cwd"]  # same Python, script and host
    assert env.loc["cwd"].tolist() == [str(tmp_path), str(elsewhere)]
    out = exman_command("diff", "1", "2", cwd=tmp_path).stdout
    assert "environment that differs:" in out and str(elsewhere) in out


def test_what_the_runs_recorded_of_their_environment_is_compared(
    make_script: Callable[..., Path], run: Run, tmp_path: Path
) -> None:
    script = make_script(BODY)
    run(script, check=True)
    run(script, "--lr", "0.2", env={"EXMAN_PACKAGES": "none"}, check=True)
    env = exman.Index(tmp_path / "exman").diff(1, 2).environment
    packages = [name for name in env.index if name.startswith("packages.")]
    assert "packages.exman" in packages  # the first run recorded its imports
    first, second = env.loc["packages.exman"].tolist()
    assert (first, second) == (exman.__version__, "(none)")


def test_json_for_scripts(
    runs: Path, make_script: Callable[..., Path], run: Run
) -> None:
    other = make_script(
        "with args.safe_experiment:\n    exman.result(f1=0.9)\n", name="other.py"
    )
    run(other, check=True)  # run 4: no acc, no loss, an f1
    proc = exman_command("diff", "1", "2", "4", "--format", "json", cwd=runs)
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["ids"] == [1, 2, 4]
    assert data["params"]["lr"] == {"1": 0.1, "2": 0.3, "4": 0.1}
    assert data["params"]["model"] == {"1": "resnet", "2": "vit", "4": "resnet"}
    acc = data["results"]["acc"]
    assert acc.keys() == {"1", "2", "Δ2"}  # run 4 has none: no key, no change
    assert acc["2"] == pytest.approx(0.8) and acc["Δ2"] == pytest.approx(0.2)
    assert data["results"]["f1"] == {"4": 0.9}
    assert data["run"]["status"] == {
        "1": "completed",
        "2": "completed",
        "4": "completed",
    }
    assert data["code"] == []
    # the same document from the library, and strict JSON (no NaN)
    d = exman.Index(runs).diff(1, 2, 4)
    assert json.loads(json.dumps(d.to_json(), allow_nan=False)) == data
    short = exman_command("diff", "1", "2", "4", "-f", "json", cwd=runs)
    assert json.loads(short.stdout) == data


def test_json_has_the_code(two_commits: Path, tmp_path: Path) -> None:
    proc = exman_command("diff", "1", "2", "-f", "json", cwd=two_commits)
    assert proc.returncode == 0, proc.stderr
    (code,) = json.loads(proc.stdout)["code"]
    assert code["first"] == 1 and code["other"] == 2
    assert code["how"].startswith("git diff ")
    assert "-WIDTH = 64\n+WIDTH = 128" in code["text"]
