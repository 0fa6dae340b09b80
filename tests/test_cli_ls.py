"""``exman ls``: the runs of a real root as a table, CSV or JSON."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

import exman
from exman.cli import main
from exman.commands import manage
from exman.record.store import ExmanError, Root


def make_runs(root: Path, *argvs: Sequence[str], fail: Sequence[int] = ()) -> None:
    parser = exman.ExParser(root=root)
    parser.add_argument("--lr", type=float, default=0.1)
    parser.add_argument("--model", default="a")
    parser.add_argument("--layers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--seed", type=int, default=0)
    for i, argv in enumerate(argvs):
        ns = parser.parse_args(list(argv))
        if i in fail:
            with pytest.raises(ValueError), ns.safe_experiment:
                raise ValueError("asked to fail")
        else:
            with ns.safe_experiment:
                pass


@pytest.fixture
def root(root: Path) -> Path:
    """Runs 1-4 in runs/ (seed always 0), 5 failed, 6 in tmp/."""
    make_runs(
        root,
        ["--lr", "0.01"],
        ["--lr", "0.1", "--model", "b"],
        ["--lr", "0.5", "--model", "b", "--layers", "3"],
        ["--lr", "0.05", "--name", "ünï code"],
        ["--lr", "9"],
        ["--tmp"],
        fail=[4],
    )
    return root


Ls = Callable[..., tuple[int, str, str]]


@pytest.fixture
def ls(root: Path, capsys: pytest.CaptureFixture[str]) -> Ls:
    def call(*argv: str) -> tuple[int, str, str]:
        capsys.readouterr()
        code = main(["--root", str(root), "ls", *argv])
        out, err = capsys.readouterr()
        return code, out, err

    return call


def records(ls: Ls, *argv: str) -> list[dict[str, object]]:
    code, out, err = ls(*argv, "--format", "json")
    assert code == 0, err
    data: list[dict[str, object]] = json.loads(out)
    return data


def test_table_shows_the_columns_that_differ(ls: Ls) -> None:
    code, out, _ = ls()
    assert code == 0
    header = out.splitlines()[0].split()
    assert header[0] == "id" and header[-2:] == ["status", "time"]
    assert {"lr", "model", "layers", "name"} <= set(header)
    assert "seed" not in header and "root" not in header  # the same everywhere
    lines = out.splitlines()[1:]
    assert [line.split()[0] for line in lines] == ["1", "2", "3", "4"]
    assert "ünï code" in out and "[3]" in out


def test_one_run_shows_all_its_parameters(ls: Ls) -> None:
    header = ls("--query", "id == 2")[1].splitlines()[0].split()
    assert {"lr", "model", "layers", "seed"} <= set(header)


def test_query_sort_columns(ls: Ls) -> None:
    rows = records(ls, "--query", "lr > 0.01 and model == 'b'", "--sort=-lr")
    assert [r["id"] for r in rows] == [3, 2]
    rows = records(ls, "--columns", "id,lr,layers", "--sort", "model,-lr")
    assert [list(r) for r in rows] == [["id", "lr", "layers"]] * 4
    assert [r["id"] for r in rows] == [4, 1, 3, 2]
    assert rows[2]["layers"] == [3]


def test_failed_tmp_and_status(ls: Ls) -> None:
    assert 5 not in [r["id"] for r in records(ls)]
    failed = records(ls, "--failed", "--status", "failed")
    assert [r["id"] for r in failed] == [5]
    assert failed[0]["error"] == "ValueError: asked to fail"
    assert 6 in [r["id"] for r in records(ls, "--tmp")]
    assert records(ls, "--status", "running,crashed") == []


def test_marked(ls: Ls, root: Path) -> None:
    manage.mark(root, "best/lr", [2, 4])
    assert [r["id"] for r in records(ls, "--marked", "best")] == [2, 4]
    assert [r["id"] for r in records(ls, "--marked", "best/lr")] == [2, 4]
    code, _, err = ls("--marked", "nothing")
    assert code == 2 and "keys: best" in err
    code, _, err = ls("--marked", "../x")
    assert code == 2 and "mark key" in err


def test_marks_of_the_command_are_seen_by_index_info(
    root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--root", str(root), "mark", "best/lr", "2", "3", "5"]) == 0
    assert main(["--root", str(root), "mark", "best", "1"]) == 0
    index = exman.Index(root)
    assert list(index.info("best/lr")["id"]) == [2, 3, 5]
    assert list(index.info("best")["id"]) == [1, 2, 3, 5]
    assert main(["--root", str(root), "unmark", "best/lr", "3"]) == 0
    assert list(index.info("best/lr")["id"]) == [2, 5]
    assert main(["--root", str(root), "delete", "2"]) == 0
    assert 2 not in list(index.info()["id"])
    assert main(["--root", str(root), "restore", "2"]) == 0
    assert 2 in list(index.info()["id"])
    assert main(["--root", str(root), "delete", "--all", "--yes", "2"]) == 0
    assert list(index.info("best/lr")["id"]) == [5]


def test_unreadable_run_is_a_warning(ls: Ls, root: Path) -> None:
    broken = next((root / "runs").glob("000002-*"))
    (broken / "params.yaml").write_text("lr: [unclosed\n")
    code, out, err = ls("--format", "json")
    assert code == 0
    assert [r["id"] for r in json.loads(out)] == [1, 3, 4]
    assert "warning:" in err and broken.name in err


def test_csv(ls: Ls) -> None:
    code, out, _ = ls("--format", "csv", "--columns", "id,lr,layers,name")
    assert code == 0
    rows = list(csv.DictReader(io.StringIO(out)))
    assert [r["id"] for r in rows] == ["1", "2", "3", "4"]
    assert rows[2]["layers"] == "[3]" and rows[3]["name"] == "ünï code"


def test_json_paths_and_times(ls: Ls) -> None:
    rows = records(ls, "--columns", "id,root,time")
    assert str(rows[0]["root"]).startswith("runs/000001-")
    assert str(rows[0]["time"])[:2] == "20" and "T" in str(rows[0]["time"])


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--query", "lr >"], "--query"),
        (["--query", "nosuch > 1"], "the columns are"),
        (["--sort", "nosuch"], "no column 'nosuch'"),
        (["--columns", "id,nosuch"], "no column 'nosuch'"),
        (["--status", "runing"], "use one of"),
    ],
)
def test_bad_options_say_what_is_valid(ls: Ls, argv: list[str], message: str) -> None:
    code, out, err = ls(*argv)
    assert code == 2 and out == ""
    assert message in err and "Traceback" not in err


def test_empty_listing(ls: Ls) -> None:
    code, out, err = ls("--query", "lr > 100")
    assert code == 0 and out == "" and "no runs" in err
    assert records(ls, "--query", "lr > 100") == []


def test_library_ls(root: Path) -> None:
    df = manage.ls(root, query="model == 'b'", columns=["id", "lr"])
    assert list(df.columns) == ["id", "lr"] and list(df["id"]) == [2, 3]
    with pytest.raises(ExmanError):
        manage.ls(root, sort="nosuch")


# -- at any size ------------------------------------------------------------------
def test_sort_descending_as_users_type_it(ls: Ls) -> None:
    assert [r["id"] for r in records(ls, "--sort", "-lr")] == [3, 2, 4, 1]
    rows = records(ls, "--sort", "-model,lr", "--columns", "id")
    assert [r["id"] for r in rows] == [2, 3, 1, 4]
    code, _, err = ls("--sort", "-nosuch")
    assert code == 2 and "no column 'nosuch'" in err


def test_sort_value_glued_only_before_the_script_arguments() -> None:
    from exman.commands.argv import glue_dashed

    assert glue_dashed(["ls", "--sort", "-lr", "--last", "3"]) == [
        "ls",
        "--sort=-lr",
        "--last",
        "3",
    ]
    assert glue_dashed(["ls", "--sort", "lr"]) == ["ls", "--sort", "lr"]
    rerun = ["rerun", "1", "--", "--sort", "-x"]
    assert glue_dashed(rerun) == rerun


def test_last_and_limit(ls: Ls) -> None:
    assert [r["id"] for r in records(ls, "--last", "2")] == [3, 4]
    assert [r["id"] for r in records(ls, "--limit", "2")] == [1, 2]
    assert [r["id"] for r in records(ls, "--sort", "-lr", "--limit", "1")] == [3]
    assert [r["id"] for r in records(ls, "--sort", "-lr", "--last", "1")] == [1]
    assert records(ls, "--last", "0") == []
    assert len(records(ls, "--limit", "99")) == 4


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--last", "-1"], "--last -1: give a number of runs"),
        (["--limit", "-2"], "--limit -2: give a number of runs"),
        (["--last", "1", "--limit", "1"], "not allowed with"),
        (["--last", "x"], "invalid int value: 'x'"),
    ],
)
def test_bad_counts_say_what_is_valid(ls: Ls, argv: list[str], message: str) -> None:
    code, out, err = ls(*argv)
    assert code == 2 and out == ""
    assert message in err and "Traceback" not in err


def test_the_columns_cut_to_the_runs_listed(ls: Ls) -> None:
    # runs 2 and 3 share model b: after the cut, model is the same everywhere
    header = ls("--query", "model == 'b'", "--last", "2")[1].splitlines()[0].split()
    assert "model" not in header and "lr" in header
    # a column sorted by stays, to explain the order
    header = ls("--sort", "model", "--last", "2")[1].splitlines()[0].split()
    assert "model" in header


def test_library_last_and_limit(root: Path) -> None:
    assert list(manage.ls(root, last=1)["id"]) == [4]
    assert list(manage.ls(root, sort="-id", limit=2)["id"]) == [4, 3]
    with pytest.raises(ExmanError, match="one of them"):
        manage.ls(root, last=1, limit=1)


def test_table_for_a_pipe_is_what_rich_prints(root: Path) -> None:
    import pandas as pd

    from exman.commands import listing

    awkward = pd.DataFrame(
        {
            "id": [1, 22, 333],
            "name": ["ünï code", "宽字符", None],
            "lr": [0.1, float("nan"), 1e-7],
            "flag": [True, False, True],
            "markup": ["[red]", "[/]", "a\tb"],
            "layers": [[1, 2], [3], []],
            "time": pd.to_datetime(
                ["2026-01-01 00:00:01", None, "2026-01-02 00:00:00.5"], format="ISO8601"
            ),
            "status": ["completed", "failed", "running"],
        }
    )
    at = Root(root)
    for df in (awkward, manage.ls(root, all_columns=True)):
        cells = [[listing._text(v, at) for v in df[c]] for c in df.columns]
        rows = [[listing.printable(t) for t in row] for row in zip(*cells)]
        assert listing.render(df, root=at) == listing._table(list(df.columns), rows)


def _listed_alone(root: Path, check: str) -> None:
    """``exman ls`` of ``root`` in a new interpreter, then ``check`` (Python
    that asserts what ``sys.modules`` holds); it lists the runs."""
    script = (
        "import sys\n"
        "from exman.cli import main\n"
        "code = main(['--root', sys.argv[1], 'ls'])\n"
        f"{check}\n"
        "sys.exit(code)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", script, str(root)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[0].split()[0] == "id"


def test_a_long_table_is_not_drawn_by_rich(root: Path) -> None:
    _listed_alone(root, "assert 'rich.table' not in sys.modules, 'rich drew the table'")


def test_a_listing_imports_no_writer_of_runs(root: Path) -> None:
    # a run's metrics and code check and the metrics' frames are not what
    # a listing shows: their modules (with atexit, the launch and the
    # current run) stay off the path of every `exman ls`
    _listed_alone(
        root,
        "out = {'exman.record.metrics', 'exman.look.analysis',\n"
        "       'exman.record.fingerprint', 'pandas'}\n"
        "assert not out & set(sys.modules), out & set(sys.modules)",
    )


def test_default_view_leaves_out_exman_internals(
    root: Path, ls: Ls, monkeypatch: pytest.MonkeyPatch
) -> None:
    header = ls()[1].splitlines()[0].split()
    for internal in ("tmp", "git_dirty", "config_file", "task_key", "pid_start"):
        assert internal not in header
    # a flag set on some of the runs listed is shown, as a parameter would be
    assert "tmp" in ls("--tmp")[1].splitlines()[0].split()
    config = root.parent / "config.yaml"
    config.write_text("lr: 0.3\n")
    make_runs(root, ["--config", str(config)])
    header = ls()[1].splitlines()[0].split()
    assert "config_file" not in header and "tmp" not in header
    monkeypatch.setenv("EXMAN_SWEEP", "grid")
    for task in (0, 1):
        monkeypatch.setenv("EXMAN_SWEEP_TASK", str(task))
        monkeypatch.setenv("EXMAN_SWEEP_KEY", f"key{task}")
        make_runs(root, ["--lr", str(task)])
    header = ls("--query", "id > 7")[1].splitlines()[0].split()
    assert "task" in header and "task_key" not in header
    rows = records(ls, "--query", "id > 7", "--columns", "id,task_key")
    assert [r["task_key"] for r in rows] == ["key0", "key1"]
    assert "task_key" in ls("--all-columns")[1].splitlines()[0].split()


def test_csv_and_table_write_booleans_alike(ls: Ls, root: Path) -> None:
    import pandas as pd

    code, out, _ = ls("--tmp", "--format", "csv", "--columns", "id,tmp")
    assert code == 0
    assert out.splitlines()[1:] == [
        f"{i},{'true' if i == 6 else 'false'}" for i in (1, 2, 3, 4, 6)
    ]
    assert ls("--tmp", "--columns", "id,tmp")[1].split()[-1] == "true"
    assert pd.read_csv(io.StringIO(out))["tmp"].dtype == bool
