"""The library behind the exman command, on real roots made by ExParser."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

import pytest

import exman
from exman.commands import manage
from exman.commands.selection import NotARoot
from exman.commands.show import format_details, tail
from exman.record.run import LOG_FILE, RUN_FILE, Run
from exman.record.store import ExmanError, Root


def make_runs(
    root: Path,
    *argvs: Sequence[str],
    fail: Sequence[int] = (),
    finish: bool = True,
) -> list[Path]:
    """One run per argv, made in this process; the ``fail``-th ones raise."""
    parser = exman.ExParser(root=root)
    parser.add_argument("--lr", type=float, default=0.1)
    parser.add_argument("--model", default="a")
    folders = []
    for i, argv in enumerate(argvs):
        ns = parser.parse_args(list(argv))
        if i in fail:
            with pytest.raises(ValueError), ns.safe_experiment:
                print("about to fail")
                raise ValueError("asked to fail")
            folders.append(Path(root, "fails", ns.root.name))
        elif finish:
            with ns.safe_experiment:
                print(f"training with lr={ns.lr}")
            folders.append(ns.root)
        else:
            folders.append(ns.root)
    return folders


@pytest.fixture
def runs(root: Path) -> list[Path]:
    """Runs 1-3 in runs/, 4 failed, 5 in tmp/."""
    return make_runs(
        root, [], ["--lr", "0.5"], ["--model", "b"], [], ["--tmp"], fail=[3]
    )


# -- ids ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    "spec, ids",
    [
        ("3", [3]),
        ("3-5", [3, 4, 5]),
        ("3,5,9-10", [3, 5, 9, 10]),
        (" 4 - 6 ", [4, 5, 6]),
        (["3", "5", "3"], [3, 5]),
        ([7, "1-2"], [7, 1, 2]),
        (12, [12]),
        ("000042", [42]),
    ],
)
def test_parse_ids(spec: object, ids: list[int]) -> None:
    assert manage.parse_ids(spec) == ids  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("spec", "says"),
    [
        ("", "empty run id ''"),
        ("a", "'a' is not a run id"),
        ("3-", "'3-' is not a run id"),
        ("-3", "'-3' is not a run id"),
        ("7-3", "range '7-3' is reversed: write 3-7"),
        ("1-2000000", "range '1-2000000' spans more than 1000000 ids"),
        ("3;rm -rf", "is not a run id"),
        ("..", "'..' is not a run id"),
        ("5x", "'5x' is not a run id"),
        ("1.5", "'1.5' is not a run id"),
        ([True], "run id True is not a number"),
        ([-1], "run id -1 is negative"),
    ],
)
def test_parse_ids_refuses(spec: object, says: str) -> None:
    with pytest.raises(ExmanError) as e:
        manage.parse_ids(spec)  # type: ignore[arg-type]
    assert says in str(e.value)


def test_format_ids() -> None:
    assert manage.format_ids([9, 3, 4, 5, 12, 11]) == "3-5, 9, 11-12"
    assert manage.format_ids([]) == ""


# -- the root -----------------------------------------------------------------------
def test_find_root_from_inside(runs: list[Path], root: Path) -> None:
    assert manage.find_root(cwd=root).path == root
    assert manage.find_root(cwd=runs[0]).path == root
    assert manage.find_root(cwd=root / "marked").path == root


def test_find_root_explicit_and_env(
    runs: list[Path], root: Path, tmp_path: Path
) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    assert manage.find_root(root, cwd=elsewhere).path == root
    env = {"EXMAN_ROOT": str(root)}
    assert manage.find_root(cwd=elsewhere, environ=env).path == root
    # --root wins over the environment
    with pytest.raises(NotARoot, match="--root"):
        manage.find_root(elsewhere, environ=env)
    with pytest.raises(NotARoot, match="EXMAN_ROOT"):
        manage.find_root(cwd=root, environ={"EXMAN_ROOT": str(elsewhere)})


def test_find_root_outside_says_what_to_do(tmp_path: Path) -> None:
    for sub in ("runs", "index"):
        (tmp_path / "top" / "project" / "exman" / sub).mkdir(parents=True)
    with pytest.raises(NotARoot) as e:
        manage.find_root(cwd=tmp_path / "top", environ={})
    message = str(e.value)
    assert "--root" in message and "EXMAN_ROOT" in message
    # the root next to a script below is suggested
    assert "exman --root project/exman" in message


# -- mark / unmark ------------------------------------------------------------------
def test_mark_links_relative_and_nested(runs: list[Path], root: Path) -> None:
    report = manage.mark(root, "best/lr", ["1-2", 9])
    assert [c.id for c in report.done] == [1, 2]
    assert report.missing == [9] and not report.ok
    link = root / "marked" / "best" / "lr" / runs[0].name
    assert link.is_symlink() and not os.path.isabs(os.readlink(link))
    assert link.resolve() == runs[0].resolve()
    assert (link / "params.yaml").is_file()
    # moving the root keeps the marks
    moved = root.parent / "moved"
    root.rename(moved)
    assert (moved / "marked" / "best" / "lr" / runs[0].name / "params.yaml").is_file()


def test_mark_twice_and_failed_runs(runs: list[Path], root: Path) -> None:
    manage.mark(root, "best", [1])
    again = manage.mark(root, "best", [1, 4])
    assert [c.id for c in again.unchanged] == [1]
    assert [c.id for c in again.done] == [4]
    assert (root / "marked" / "best" / runs[3].name).resolve() == runs[3].resolve()
    assert again.ok


@pytest.mark.parametrize("key", ["/abs", "..", "../x", "a/../b", "a/..", "", "a\0b"])
def test_mark_refuses_escaping_keys(runs: list[Path], root: Path, key: str) -> None:
    with pytest.raises(ExmanError):
        manage.mark(root, key, [1])
    assert list((root / "marked").iterdir()) == []


def test_mark_refuses_key_through_a_run_link(runs: list[Path], root: Path) -> None:
    manage.mark(root, "best", [1])
    with pytest.raises(ExmanError, match="run link"):
        manage.mark(root, f"best/{runs[0].name}/x", [2])
    assert not (runs[0] / "x").exists()


@pytest.mark.parametrize(
    "key", ["with space", "quote'\"", "semi;colon", "ünï/cødé", "a.b"]
)
def test_mark_awkward_keys(runs: list[Path], root: Path, key: str) -> None:
    assert manage.mark(root, key, [2]).ok
    assert (root / "marked" / key / runs[1].name / "params.yaml").is_file()
    assert manage.unmark(root, key, [2]).ok
    assert list((root / "marked").iterdir()) == []


def test_unmark_prunes_only_empty_folders(runs: list[Path], root: Path) -> None:
    manage.mark(root, "best/lr", [1, 2])
    manage.mark(root, "best", [3])
    report = manage.unmark(root, "best/lr", [1, 3, 8])
    assert [c.id for c in report.done] == [1]
    assert [c.id for c in report.unchanged] == [3]  # exists, not marked best/lr
    assert report.missing == [8]
    assert (root / "marked" / "best" / "lr" / runs[1].name).is_symlink()
    manage.unmark(root, "best/lr", [2])
    assert not (root / "marked" / "best" / "lr").exists()
    assert (root / "marked" / "best" / runs[2].name).is_symlink()


def test_unmark_a_run_whose_folder_is_gone(runs: list[Path], root: Path) -> None:
    manage.mark(root, "best", [2])
    shutil.rmtree(runs[1])
    report = manage.unmark(root, "best", [2])
    assert report.ok and [c.id for c in report.done] == [2]
    assert not (root / "marked" / "best").exists()


# -- delete / restore ---------------------------------------------------------------
def test_delete_keeps_the_folder_and_restore_puts_it_back(
    runs: list[Path], root: Path
) -> None:
    index = root / "index" / f"{runs[1].name}.yaml"
    manage.mark(root, "best", [2])
    report = manage.delete(root, [2])
    assert report.ok and [c.id for c in report.done] == [2]
    assert not os.path.lexists(index)
    assert runs[1].is_dir()
    assert (root / "marked" / "best" / runs[1].name).is_symlink()
    again = manage.delete(root, [2])
    assert again.ok and [c.id for c in again.unchanged] == [2]
    restored = manage.restore(root, [2])
    assert restored.ok and [c.id for c in restored.done] == [2]
    assert index.resolve() == (runs[1] / "params.yaml").resolve()
    assert [c.id for c in manage.restore(root, [2]).unchanged] == [2]


def test_delete_of_failed_and_tmp_runs_without_all(
    runs: list[Path], root: Path
) -> None:
    report = manage.delete(root, [4, 5, 6])
    assert [c.id for c in report.unchanged] == [4, 5]
    assert "delete --all 4" in report.unchanged[0].message
    assert report.missing == [6]
    assert runs[3].is_dir() and runs[4].is_dir()


def test_restore_refuses_failed_runs(runs: list[Path], root: Path) -> None:
    report = manage.restore(root, [4])
    assert not report.ok and [c.id for c in report.refused] == [4]
    assert "fails/" in report.refused[0].message


def test_delete_all_removes_folders_and_every_link(
    runs: list[Path], root: Path
) -> None:
    manage.mark(root, "best/lr", [1, 2])
    manage.mark(root, "other", [1])
    manage.mark(root, "failed", [4])
    report = manage.delete(root, [1, 4, 5], all=True)
    assert report.ok and [c.id for c in report.done] == [1, 4, 5]
    for path in (runs[0], runs[3], runs[4]):
        assert not path.exists()
    assert not os.path.lexists(root / "index" / f"{runs[0].name}.yaml")
    assert sorted(p.name for p in (root / "marked").iterdir()) == ["best"]
    assert [p.name for p in (root / "marked" / "best" / "lr").iterdir()] == [
        runs[1].name
    ]
    assert runs[1].is_dir() and runs[2].is_dir()
    # ids are never reused after a delete
    assert make_runs(root, [])[0].name.startswith("000006-")


def test_delete_all_refuses_a_running_run(root: Path) -> None:
    running = make_runs(root, [], finish=False)[0]
    report = manage.delete(root, [1], all=True)
    assert not report.ok and "still running" in report.refused[0].message
    assert running.is_dir()
    assert manage.delete(root, [1]).ok  # out of the index is fine


def test_delete_removes_an_index_link_whose_folder_is_gone(
    runs: list[Path], root: Path
) -> None:
    shutil.rmtree(runs[2])
    report = manage.delete(root, [3])
    assert (
        report.ok and not (root / "index").joinpath(f"{runs[2].name}.yaml").is_symlink()
    )


# -- gc -----------------------------------------------------------------------------
def test_gc_dry_run_then_for_real(runs: list[Path], root: Path) -> None:
    manage.mark(root, "scratch", [5])  # a mark on a tmp run
    manage.mark(root, "best", [1])
    shutil.rmtree(runs[1])  # index link of run 2 now dangles
    (root / "marked" / "empty" / "deeper").mkdir(parents=True)
    running = make_runs(root, ["--tmp"], finish=False)[0]

    dry = manage.gc(root, dry_run=True)
    what = {c.path for c in dry.done}
    assert runs[4] in what and running not in what
    assert root / "index" / f"{runs[1].name}.yaml" in what
    assert root / "marked" / "scratch" / runs[4].name in what
    assert {root / "marked" / "scratch", root / "marked" / "empty"} <= what
    assert [c.path for c in dry.unchanged] == [running]
    assert runs[4].is_dir() and (root / "marked" / "empty" / "deeper").is_dir()

    done = manage.gc(root)
    assert {c.path for c in done.done} == what
    assert not runs[4].exists() and running.is_dir()
    assert sorted(p.name for p in (root / "marked").iterdir()) == ["best"]
    assert sorted(p.name for p in (root / "index").iterdir()) == [
        f"{runs[0].name}.yaml",
        f"{runs[2].name}.yaml",
    ]
    assert manage.gc(root).done == []


def test_gc_older_than(runs: list[Path], root: Path) -> None:
    assert manage.gc(root, older_than="1h").done == []
    assert runs[4].is_dir()
    record = Run(runs[4]).record()
    record["finished"] = "2000-01-01T00:00:00.000+00:00"
    Run(runs[4]).write_record(record)
    assert [c.path for c in manage.gc(root, older_than="7d").done] == [runs[4]]


@pytest.mark.parametrize(
    "text, seconds",
    [
        ("90s", 90),
        ("30m", 1800),
        ("12h", 43200),
        ("7d", 604800),
        ("2w", 1209600),
        ("15", 15),
        ("1.5h", 5400),
    ],
)
def test_parse_age(text: str, seconds: float) -> None:
    assert manage.parse_age(text).total_seconds() == seconds


@pytest.mark.parametrize("text", ["", "7 days", "-1d", "1y", "d"])
def test_parse_age_refuses(text: str) -> None:
    with pytest.raises(ExmanError, match="7d"):
        manage.parse_age(text)


# -- show ---------------------------------------------------------------------------
def test_show_gathers_everything(runs: list[Path], root: Path) -> None:
    manage.mark(root, "best/lr", [2])
    (runs[1] / "sub").mkdir()
    (runs[1] / "sub" / "model.pt").write_bytes(b"x" * 3000)
    d = manage.show(root, 2)
    assert (d.id, d.place, d.status, d.indexed) == (2, "runs", "completed", True)
    assert d.params["lr"] == 0.5 and d.marks == ["best/lr"]
    assert ("sub/model.pt", 3000) in d.files and (LOG_FILE, d.files[0][1]) in d.files
    assert d.log_tail == ["training with lr=0.5"] and d.traceback is None
    text = format_details(d)
    for piece in (
        "completed",
        "best/lr",
        "lr",
        "0.5",
        "sub/model.pt",
        "2.9 KB",
        "training with lr=0.5",
        "command",
    ):
        assert piece in text
    json.dumps(d.to_json())


def test_show_failed_run_has_its_traceback(runs: list[Path], root: Path) -> None:
    d = manage.show(root, "4")
    assert d.place == "fails" and d.status == "failed" and not d.indexed
    assert d.traceback is not None and "ValueError: asked to fail" in d.traceback
    text = format_details(d)
    assert "traceback.txt" in text and "ValueError: asked to fail" in text


def test_show_old_run_and_broken_params(runs: list[Path], root: Path) -> None:
    (runs[0] / RUN_FILE).unlink()
    (runs[0] / "params.yaml").write_text("lr: [unclosed\n")
    d = manage.show(root, 1)
    assert d.status == "unknown" and d.record == {} and d.params == {}
    assert d.problems and "params.yaml" in d.problems[0]
    assert "exman 0.1.9" in format_details(d)
    with pytest.raises(exman.RunNotFound, match="run 99"):
        manage.show(root, 99)


@pytest.mark.skipif(shutil.which("git") is None, reason="needs the git command")
def test_show_the_git_commit(
    tmp_path: Path, root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", os.devnull)
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "train.py").write_text("print(1)\n")
    for argv in (
        ["init", "-q"],
        ["add", "train.py"],
        [
            "-c",
            "user.name=T",
            "-c",
            "user.email=t@example.com",
            "commit",
            "-q",
            "-m",
            "first",
        ],
    ):
        subprocess.run(["git", "-C", str(repo), *argv], check=True)
    head = subprocess.run(
        ["git", "-C", str(repo), "rev-parse", "HEAD"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    (repo / "train.py").write_text("print(2)\n")
    ns = exman.ExParser(root=root, git=repo).parse_args([])
    with ns.safe_experiment:
        pass
    text = format_details(manage.show(root, 1))
    assert f"git       {head} (dirty: see changes.diff)" in text
    assert "changes.diff" in text


def test_tail_reads_from_the_end(tmp_path: Path) -> None:
    path = tmp_path / "log.txt"
    path.write_text("".join(f"line {i}\n" for i in range(10_000)))
    assert tail(path, 3, block=64) == ["line 9997", "line 9998", "line 9999"]
    assert tail(path, 0) == []
    path.write_text("only\n")
    assert tail(path, 5) == ["only"]


# -- rerun (the command; running it for real is in test_cli.py) -----------------------
def test_rerun_dry_run_builds_the_command(runs: list[Path], root: Path) -> None:
    plan = manage.rerun(root, 2, ["--lr", "0.9", "--", "x"], dry_run=True)
    command = Run(runs[1]).record()["command"]
    assert plan.argv[0] == command["executable"]
    assert plan.argv[-6:] == [
        "--config",
        str(runs[1] / "params.yaml"),
        "--lr",
        "0.9",
        "--",
        "x",
    ]
    assert plan.cwd == Path(command["cwd"]) and plan.returncode is None
    assert f"EXMAN_ROOT={root}" in plan.shell()


def test_rerun_refuses_what_it_cannot_repeat(runs: list[Path], root: Path) -> None:
    (runs[0] / RUN_FILE).unlink()
    with pytest.raises(ExmanError, match=r"0\.1\.9"):
        manage.rerun(root, 1, dry_run=True)
    run = Run(runs[1])
    record = run.record()
    record["command"]["script"] = str(root / "gone.py")
    run.write_record(record)
    with pytest.raises(ExmanError, match="does not exist"):
        manage.rerun(root, 2, dry_run=True)


# -- the store methods the commands use --------------------------------------------
def test_root_removes_only_its_links_and_runs(runs: list[Path], root: Path) -> None:
    store = Root(root)
    with pytest.raises(ExmanError):
        store.unlink(runs[0] / "params.yaml")  # not under index/ or marked/
    (root / "marked" / "file").write_text("x")
    with pytest.raises(ExmanError, match="not a link"):
        store.unlink(root / "marked" / "file")
    assert store.unlink(root / "index" / "nothing.yaml") is False
    for bad in (root / "marked", root / "runs", root / ".." / "x"):
        with pytest.raises(ExmanError, match="not a run folder"):
            store.remove_run(bad)
