"""Index.info(): rows, columns and types, marks, failed and tmp runs, roots
made by exman 0.1.9, and runs that cannot be read."""

from __future__ import annotations

import datetime
import json
import math
import os
import pathlib
import re
import shutil
import subprocess
import sys
import textwrap
import time
from typing import Any

import pandas as pd
import pytest
import yaml
from _index_runs import TRACEBACK, make_old_run, make_run

import exman
from exman.index import Index, MarkNotFound, SkippedRunWarning
from exman.record.metrics import Recorder
from exman.record.run import Run, process_start
from exman.record.store import Root


def values(series: pd.Series) -> list[Any]:
    """The cells as plain Python values, NaN/NaT as None."""
    out = []
    for v in series.tolist():
        if v is None or (isinstance(v, float) and math.isnan(v)) or v is pd.NaT:
            out.append(None)
        else:
            out.append(v)
    return out


# -- rows, columns, types -----------------------------------------------------
def test_types_of_parameters_and_run_columns(tmp_path: pathlib.Path) -> None:
    root = tmp_path / "exman"
    a = make_run(
        root,
        {
            "lr": 0.1,
            "epochs": 3,
            "model": "mlp",
            "flag": True,
            "layers": [64, 32],
            "opt": {"name": "adam", "b": [0.9]},
            "wd": None,
            "nothing": None,
        },
    )
    b = make_run(
        root,
        {
            "lr": 1,
            "epochs": 5,
            "model": "cnn",
            "flag": False,
            "layers": [8],
            "opt": {"name": "sgd"},
            "wd": 0.5,
            "nothing": None,
        },
    )
    df = Index(root).info()
    assert list(df.columns[:1]) == ["id"]
    assert df.id.tolist() == [1, 2]
    dtypes = df.dtypes.astype(str).to_dict()
    assert dtypes["id"] == "int64"
    assert dtypes["epochs"] == "int64"
    assert dtypes["lr"] == "float64"  # an int and a float
    assert dtypes["flag"] == "bool"
    assert dtypes["wd"] == "float64" and values(df.wd) == [None, 0.5]
    assert df.model.tolist() == ["mlp", "cnn"]
    assert pd.api.types.is_string_dtype(df.model)
    assert df.layers.tolist() == [[64, 32], [8]]
    assert df.opt.tolist() == [{"name": "adam", "b": [0.9]}, {"name": "sgd"}]
    # a key that is null in every run is kept
    assert values(df.nothing) == [None, None]
    assert dtypes["time"] == "datetime64[ns]"  # as exman 0.1.9 documented
    assert df.root.tolist() == [a, b]
    assert all(isinstance(p, pathlib.Path) and p.is_absolute() for p in df.root)
    # the run columns come after the parameters
    assert list(df.columns[-6:]) == [
        "status",
        "started",
        "finished",
        "duration",
        "host",
        "error",
    ]
    assert df.status.tolist() == ["completed", "completed"]
    assert str(df.started.dt.tz) == "UTC" and df.started.notna().all()
    assert (df.finished >= df.started).all()
    assert df.duration.dtype == "float64" and (df.duration >= 0).all()
    assert df.host.tolist() == [os.uname().nodename] * 2
    assert values(df.error) == [None, None]


def test_the_time_column_is_the_time_in_params(tmp_path: pathlib.Path) -> None:
    root = tmp_path / "exman"
    folder = make_run(root, {"x": 1})
    text = (folder / "params.yaml").read_text()
    written = yaml.safe_load(text)["time"]
    df = Index(root).info()
    assert df.time[0] == pd.Timestamp(written)
    assert df.time[0].tzinfo is None


def test_parameter_added_later_is_missing_in_older_runs(tmp_path: pathlib.Path) -> None:
    root = tmp_path / "exman"
    make_run(root, {"lr": 0.1})
    make_run(root, {"lr": 0.2, "new": 5, "tag": "x", "on": True})
    df = Index(root).info()
    assert df.new.dtype == "float64" and values(df.new) == [None, 5.0]
    assert values(df.tag) == [None, "x"]
    assert values(df.on) == [None, True]
    assert list(df.columns).index("new") > list(df.columns).index("lr")


def test_rows_are_sorted_by_id_whatever_the_folder_names(
    tmp_path: pathlib.Path,
) -> None:
    root = tmp_path / "exman"
    for zfill in (6, 2, 4, 1, 8, 3, 6, 2, 5, 3, 1):
        make_run(root, {"z": zfill}, zfill=zfill)
    df = Index(root).info()
    assert df.id.tolist() == list(range(1, 12))
    assert df.index.tolist() == list(range(11))
    assert [run.name.split("-")[0] for run in df.root] == [
        str(i).zfill(z) for i, z in zip(range(1, 12), (6, 2, 4, 1, 8, 3, 6, 2, 5, 3, 1))
    ]


def test_an_index_imports_only_what_a_load_needs(tmp_path: pathlib.Path) -> None:
    """The rows of a load are read before pandas is imported (alongside, on
    a second core): nothing else heavy may come before them."""
    root = tmp_path / "exman"
    make_run(root, {"n": 1})
    # what the interpreter's start imported (a site's .pth files) is left out
    probe = (
        "import sys\n"
        "before = set(sys.modules)\n"
        "import exman\n"
        f"index = exman.Index({str(root)!r})\n"
        "from exman.look import gather\n"
        "print(sorted((set(sys.modules) - before) & {'typing', 'configargparse',"
        " 'yaml', 'ast', 'tokenize', 'pandas', 'exman.look.aggregate',"
        " 'exman.look.query', 'exman.parser'}))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    )
    assert done.stdout.strip() == "[]"


@pytest.mark.parametrize("quick", [True, False])
def test_the_run_folders_are_paths_as_pathlib_makes_them(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch, quick: bool
) -> None:
    """The Paths are pathlib's own, made the quick way where pathlib has it
    (Python 3.11 to 3.13) and by ``base / name`` where it has not."""
    if not quick:
        monkeypatch.delattr(pathlib.Path, "_make_child_relpath", raising=False)
    elif not hasattr(pathlib.Path, "_make_child_relpath"):
        pytest.skip("this Python's pathlib makes children one way")
    root = tmp_path / "exman"
    for name in ("a", "b.c", ".x", " y "):
        make_run(root, {"n": 1}, name=name)
    make_run(root, {"n": 2}, status="failed")
    df = Index(root).info(failed=True)
    assert len(df) == 5
    for made in df.root:
        parsed = pathlib.Path(str(made))
        assert type(made) is type(parsed)
        assert made == parsed and hash(made) == hash(parsed)
        assert made.parts == parsed.parts and made.name == parsed.name
        assert made.parent == parsed.parent and str(made) == str(parsed)
        assert made.is_absolute() and made.is_dir()
    assert {p.parent.name for p in df.root} == {"runs", "fails"}


def test_a_parameter_named_like_a_run_column_keeps_its_name(
    tmp_path: pathlib.Path,
) -> None:
    root = tmp_path / "exman"
    make_run(root, {"status": "draft", "host": "db.example", "error": 0.5})
    df = Index(root).info()
    assert df.status.tolist() == ["draft"]
    assert df.host.tolist() == ["db.example"]
    assert df.run_status.tolist() == ["completed"]
    assert df.run_host.tolist() == [os.uname().nodename]
    assert values(df.run_error) == [None]


def test_empty_root(tmp_path: pathlib.Path) -> None:
    root = Root(tmp_path / "exman").ensure().path
    df = Index(root).info()
    assert len(df) == 0
    for column in ("id", "time", "root", "status", "started", "host", "error"):
        assert column in df.columns


def test_not_a_root(tmp_path: pathlib.Path) -> None:
    with pytest.raises(exman.ExmanError, match="not an exman root"):
        Index(tmp_path)


def test_index_is_exported_lazily() -> None:
    code = (
        "import sys, exman\n"
        "assert 'pandas' not in sys.modules\n"
        "assert exman.Index.__name__ == 'Index'\n"
        "assert 'pandas' not in sys.modules\n"  # only info() needs it
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_njobs_of_the_original_is_accepted_with_a_warning(
    tmp_path: pathlib.Path,
) -> None:
    root = tmp_path / "exman"
    make_run(root, {"a": 1})
    with pytest.warns(DeprecationWarning, match="njobs"):
        df = Index(root).info(njobs=4)
    assert len(df) == 1


# -- status -------------------------------------------------------------------
def test_status_is_worked_out_at_every_load(tmp_path: pathlib.Path) -> None:
    """A running run whose process died reads as crashed, though its run.json
    (and so the cache) did not change."""
    root = tmp_path / "exman"
    folder = make_run(root, {"a": 1}, status="running")
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        Run(folder).update_record(pid=child.pid, pid_start=process_start(child.pid))
        time.sleep(0.05)
        assert Index(root).info().status.tolist() == ["running"]
        assert Index(root).info().status.tolist() == ["running"]
    finally:
        child.kill()
        child.wait()
    assert Index(root).info().status.tolist() == ["crashed"]


def test_statuses_of_finished_runs(tmp_path: pathlib.Path) -> None:
    root = tmp_path / "exman"
    make_run(root, {"a": 1}, status="completed")
    make_run(root, {"a": 2}, status="interrupted")
    make_run(root, {"a": 3}, status="running")
    df = Index(root).info()
    assert df.status.tolist() == ["completed", "interrupted", "running"]


# -- failed and tmp runs ------------------------------------------------------
def test_failed_and_tmp_runs_on_request(tmp_path: pathlib.Path) -> None:
    root = tmp_path / "exman"
    make_run(root, {"a": 1})
    failed = make_run(root, {"a": 2}, status="failed")
    tmp = make_run(root, {"a": 3}, tmp=True)
    assert Index(root).info().a.tolist() == [1]
    df = Index(root).info(failed=True)
    assert df.a.tolist() == [1, 2]
    assert df.root.tolist()[1] == failed and failed.parent.name == "fails"
    assert df.status.tolist() == ["completed", "failed"]
    assert values(df.error) == [None, "ValueError: asked to fail"]
    assert Index(root).info(tmp=True).root.tolist()[1] == tmp
    assert Index(root).info(failed=True, tmp=True).a.tolist() == [1, 2, 3]


def test_real_runs_end_to_end(
    make_script: Any, run: Any, tmp_path: pathlib.Path
) -> None:
    script = make_script(parser_kwargs=", automark=['model']")
    run(script, "--lr", "0.5", check=True)
    run(script, "--model", "vgg", "--wd", "0.01", "--layers", "3", "4", "5", check=True)
    failed = run(script, "--fail", "raise")
    assert failed.returncode != 0
    run(script, "--tmp", check=True)
    index = Index(tmp_path / "exman")
    df = index.info()
    assert df.id.tolist() == [1, 2]
    assert df.lr.tolist() == [0.5, 0.1]
    assert df.layers.tolist() == [[1, 2], [3, 4, 5]]
    assert values(df.wd) == [None, 0.01]
    assert df.status.tolist() == ["completed", "completed"]
    everything = index.info(failed=True, tmp=True)
    assert everything.id.tolist() == [1, 2, 3, 4]
    assert everything.status.tolist()[2] == "failed"
    assert everything.error.tolist()[2] == "ValueError: asked to fail"
    assert index.info("model/vgg").id.tolist() == [2]
    # the automark of the failed run 3 followed it to fails/
    assert index.info("model").id.tolist() == [1, 2, 3]
    assert index.info("model").status.tolist()[2] == "failed"
    row = index.row(3)
    assert row["status"] == "failed" and row["root"].parent.name == "fails"


def test_row_finds_a_run_anywhere(tmp_path: pathlib.Path) -> None:
    root = tmp_path / "exman"
    make_run(root, {"a": 1})
    make_run(root, {"a": 2}, tmp=True)
    row = Index(root).row(2)
    assert row["a"] == 2 and row["id"] == 2 and row["root"].parent.name == "tmp"
    with pytest.raises(exman.RunNotFound):
        Index(root).row(7)


# -- marks --------------------------------------------------------------------
KEYS = [
    "best",
    "best/lr",
    "with space",
    "quote'\"",
    "semi;colon",
    "ünï/cødé",
    "a/b/c/d",
]


@pytest.mark.parametrize("key", KEYS)
def test_marks_by_automark_and_by_the_command_line(
    tmp_path: pathlib.Path, key: str
) -> None:
    root = tmp_path / "exman"
    make_run(root, {"a": 1}, mark=key)
    b = make_run(root, {"a": 2})
    make_run(root, {"a": 3})
    # a mark made as the original command line made it: a relative link
    depth = len(pathlib.PurePosixPath(key).parts)
    link = root / "marked" / key / b.name
    os.symlink(pathlib.Path(*[".."] * (depth + 1), "runs", b.name), link)
    df = Index(root).info(key)
    assert df.a.tolist() == [1, 2]
    assert df.root.tolist()[1] == b
    top = key.split("/")[0]
    assert Index(root).info(top).a.tolist() == [1, 2]


def test_marks_at_any_depth_are_found_once(tmp_path: pathlib.Path) -> None:
    root = tmp_path / "exman"
    a = make_run(root, {"a": 1}, mark="lr/0.1/seed/1")
    make_run(root, {"a": 2}, mark="lr/0.1/seed/2")
    make_run(root, {"a": 3}, mark="lr/0.2/seed/1")
    Root(root).link_mark("lr/all", a.name)  # the same run twice under lr
    assert Index(root).info("lr").a.tolist() == [1, 2, 3]
    assert Index(root).info("lr/0.1").a.tolist() == [1, 2]
    assert Index(root).info("lr/0.1/seed/2").a.tolist() == [2]


def test_marks_made_by_the_exman_command(tmp_path: pathlib.Path) -> None:
    from exman.commands import manage

    root = tmp_path / "exman"
    for i in range(3):
        make_run(root, {"a": i})
    manage.mark(root, "good", [1, 3])
    assert Index(root).info("good").a.tolist() == [0, 2]


def test_unknown_mark_raises_key_error_naming_it(tmp_path: pathlib.Path) -> None:
    root = tmp_path / "exman"
    make_run(root, {"a": 1}, mark="best")
    with pytest.raises(KeyError, match="worst"):
        Index(root).info("worst")
    with pytest.raises(MarkNotFound, match="best/sub"):
        Index(root).info("best/sub")


@pytest.mark.parametrize("key", ["../runs", "/etc", "a/../../b", ""])
def test_mark_keys_cannot_leave_marked(tmp_path: pathlib.Path, key: str) -> None:
    root = tmp_path / "exman"
    make_run(root, {"a": 1})
    with pytest.raises(exman.ExmanError):
        Index(root).info(key)


def test_an_empty_mark_gives_no_rows(tmp_path: pathlib.Path) -> None:
    root = tmp_path / "exman"
    make_run(root, {"a": 1})
    (root / "marked" / "empty").mkdir(parents=True)
    assert len(Index(root).info("empty")) == 0


def test_a_mark_whose_last_run_was_unmarked_is_not_found(
    tmp_path: pathlib.Path,
) -> None:
    from exman.commands import manage

    root = tmp_path / "exman"
    make_run(root, {"a": 1})
    manage.mark(root, "gone/soon", [1])
    manage.unmark(root, "gone/soon", [1])
    with pytest.raises(MarkNotFound, match="gone/soon"):
        Index(root).info("gone/soon")


# -- roots made by exman 0.1.9 ------------------------------------------------
def old_root(root: pathlib.Path) -> None:
    """The root of the original's README example, as 0.1.9 wrote it."""
    base = {
        "config_file": None,
        "epochs": 3,
        "flag": False,
        "git_dirty": False,
        "layers": [1, 2],
        "lr": 0.1,
        "model": "resnet",
        "name": None,
        "s": "1",
        "tmp": False,
        "wd": None,
    }
    make_old_run(root, 1, base)
    make_old_run(root, 2, {**base, "flag": True, "lr": 0.5})
    make_old_run(root, 3, {**base, "model": "vgg", "wd": 0.1, "s": "abc"})
    make_old_run(root, 4, {**base, "layers": [3], "new": 5})
    (root / "lock").touch()


#: a root written by exman 0.1.9 itself, and what its Index.info() gave
#: for it (both made by make.py there, with the real 0.1.9)
BY_0_1_9 = pathlib.Path(__file__).parent / "data" / "exman-0.1.9"
INFO_0_1_9: dict[str, dict[str, Any]] = json.loads((BY_0_1_9 / "info.json").read_text())
#: the run's own columns, which 0.1.9 did not have
RUN_COLUMNS = {"status", "started", "finished", "duration", "host", "error"}


@pytest.mark.parametrize("source", list(INFO_0_1_9), ids=str)
def test_a_root_written_by_exman_0_1_9_loads_as_0_1_9_loaded_it(
    tmp_path: pathlib.Path, source: str
) -> None:
    root = tmp_path / "exman"
    shutil.copytree(BY_0_1_9 / "root", root, symlinks=True)
    df = Index(root).info(json.loads(source))
    theirs = INFO_0_1_9[source]
    assert df.id.tolist() == theirs["id"]["values"]
    for column, orig in theirs.items():
        got, want = values(df[column]), orig["values"]
        if column == "root":  # absolute here; 0.1.9 gave it too, under its root
            assert [str(p.relative_to(root)) for p in got] == [w["path"] for w in want]
        elif column == "time":
            assert [t.isoformat() for t in got] == [w["timestamp"] for w in want]
        elif column == "code":  # a string here; 0.1.9 guessed numbers from it
            assert got == ["1e3" if v == 1000 else "007" for v in want]
            continue
        else:
            assert got == want, column
        kind = pd.api.types.pandas_dtype(orig["dtype"]).kind
        if kind in "ifbM":  # ints, floats, bools, times: the same type
            assert df[column].dtype.kind == kind, column
    # what 0.1.9 dropped (null in every run) is kept; what it lacked is new
    dropped = {"config_file"} | ({"name"} if source == '"best"' else set())
    assert set(df.columns) - set(theirs) == dropped | RUN_COLUMNS
    assert df.status.tolist() == ["unknown"] * len(df)


def test_old_marks_and_failed_runs(tmp_path: pathlib.Path) -> None:
    root = tmp_path / "exman"
    old_root(root)
    names = sorted(p.name for p in (root / "runs").iterdir())
    (root / "marked" / "best").mkdir(parents=True)
    for name in names[:2]:
        os.symlink(f"../../runs/{name}", root / "marked" / "best" / name)
    failed = make_old_run(root, 5, {"lr": 1.0}, place="fails")
    (failed / "traceback.txt").write_text(TRACEBACK + "\n\n")
    assert Index(root).info("best").id.tolist() == [1, 2]
    df = Index(root).info(failed=True)
    assert df.id.tolist() == [1, 2, 3, 4, 5]
    assert values(df.error) == [None] * 4 + ["ValueError: asked to fail"]
    assert df.root.tolist()[-1] == failed


# -- runs that cannot be read -------------------------------------------------
def _spoil(folder: pathlib.Path, how: str) -> None:
    params = folder / "params.yaml"
    if how == "dangling link":
        for item in folder.iterdir():
            item.unlink()
        folder.rmdir()
    elif how == "no params.yaml":
        params.unlink()
    elif how == "half-written":
        text = params.read_text()
        params.write_text(text[: text.index("time:") + 5])
    elif how == "cut in a value":
        text = params.read_text()
        params.write_text(text[: text.index("id:") + 2])
    elif how == "invalid YAML":
        params.write_text("a: [1, 2\nb: }\n")
    elif how == "python tag":
        marker = folder.parent.parent / "executed"
        params.write_text(f"!!python/object/apply:os.system ['touch {marker}']\n")
    elif how == "python tag in a value":
        params.write_text("a: !!python/object/apply:os.getcwd []\nid: 1\n")
    elif how == "non-UTF-8 byte":
        params.write_bytes(params.read_bytes().replace(b"lr:", b"l\xff:"))
    elif how == "empty":
        params.write_text("")
    elif how == "a list":
        params.write_text("- 1\n- 2\n")
    elif how == "no id":
        params.write_text("a: 1\n")
    elif how == "fifo":
        params.unlink()
        os.mkfifo(params)
    elif how == "two documents":
        params.write_text("a: 1\nid: 2\n---\nb: 2\n")
    else:
        raise AssertionError(how)


BAD = [
    "dangling link",
    "no params.yaml",
    "half-written",
    "cut in a value",
    "invalid YAML",
    "python tag",
    "python tag in a value",
    "non-UTF-8 byte",
    "empty",
    "a list",
    "no id",
    "fifo",
    "two documents",
]


@pytest.mark.parametrize("cache", [True, False], ids=["cache", "no-cache"])
@pytest.mark.parametrize("how", BAD)
def test_a_bad_run_is_skipped_with_one_warning(
    tmp_path: pathlib.Path, how: str, cache: bool
) -> None:
    root = tmp_path / "exman"
    make_run(root, {"lr": 0.1})
    bad = make_run(root, {"lr": 0.2})
    make_run(root, {"lr": 0.3})
    Index(root).info()  # cached before it went bad
    _spoil(bad, how)
    for _ in range(2):  # and not cached while bad
        with pytest.warns(SkippedRunWarning) as caught:
            df = Index(root, cache=cache).info()
        assert df.lr.tolist() == [0.1, 0.3]
        assert len(caught) == 1
        assert bad.name in str(caught[0].message)
    assert not (tmp_path / "executed").exists()


def test_a_damaged_run_json_keeps_the_run(tmp_path: pathlib.Path) -> None:
    root = tmp_path / "exman"
    folder = make_run(root, {"lr": 0.1})
    (folder / "run.json").write_bytes(b'{"status": "compl\xff')
    for _ in range(2):
        with pytest.warns(SkippedRunWarning, match=folder.name) as caught:
            df = Index(root).info()
        assert len(caught) == 1
        assert df.status.tolist() == ["unknown"] and df.lr.tolist() == [0.1]


@pytest.mark.parametrize("encoding", ["utf-8-sig", "utf-16", "utf-32-le"])
def test_a_run_json_in_another_encoding_is_read(
    tmp_path: pathlib.Path, encoding: str
) -> None:
    """What json itself reads: a byte-order mark, UTF-16 or UTF-32."""
    root = tmp_path / "exman"
    folder = make_run(root, {"lr": 0.1})
    record = json.loads((folder / "run.json").read_text())
    record.update(status="completed", host="h\u00e9")
    (folder / "run.json").write_bytes(json.dumps(record).encode(encoding))
    df = Index(root, cache=False).info()
    assert df.status.tolist() == ["completed"] and values(df.host) == ["h\u00e9"]


def test_a_bad_mark_link_is_skipped(tmp_path: pathlib.Path) -> None:
    root = tmp_path / "exman"
    make_run(root, {"a": 1}, mark="best")
    (root / "marked" / "best" / "000099-2020-01-01-00-00-00").symlink_to(
        "../../runs/000099-2020-01-01-00-00-00"
    )
    with pytest.warns(SkippedRunWarning, match="000099") as caught:
        df = Index(root).info("best")
    assert len(caught) == 1 and df.a.tolist() == [1]


def test_an_index_entry_that_is_not_a_link(tmp_path: pathlib.Path) -> None:
    root = tmp_path / "exman"
    make_run(root, {"a": 1})
    (root / "index" / "notes.yaml").write_text("a: 2\nid: 9\n")
    with pytest.warns(SkippedRunWarning, match="notes.yaml"):
        df = Index(root).info()
    assert df.a.tolist() == [1]


def test_an_index_link_to_a_run_elsewhere(tmp_path: pathlib.Path) -> None:
    """Links restored by hand may point to tmp/ or outside the root."""
    root = tmp_path / "exman"
    make_run(root, {"a": 1})
    moved = make_run(root, {"a": 2}, tmp=True)
    os.symlink(
        f"../tmp/{moved.name}/params.yaml", root / "index" / f"{moved.name}.yaml"
    )
    for _ in range(2):
        make_run(tmp_path / "other", {"a": 0})
    outside = make_run(tmp_path / "other", {"a": 3})  # id 3
    os.symlink(outside / "params.yaml", root / "index" / f"{outside.name}x.yaml")
    for _ in range(2):
        df = Index(root).info()
        assert df.a.tolist() == [1, 2, 3]
        assert df.root.tolist()[1:] == [moved, outside]


def test_values_yaml_gives_other_types(tmp_path: pathlib.Path) -> None:
    """Dates, sets, binary, int keys, octal: the YAML values, kept exactly,
    through the cache too."""
    root = tmp_path / "exman"
    folder = make_run(root, {"a": 1})
    text = (folder / "params.yaml").read_text()
    (folder / "params.yaml").write_text(
        "day: 2020-01-02\noct: 010\nkeys: {1: one}\nblob: !!binary aGk=\n"
        "s: !!set {x: null}\nbig: 123456789012345678901234567890\n" + text
    )
    os.utime(folder)  # the rewrite above is in place: show the cache
    time.sleep(0.01)
    (folder / "touch").touch()
    for _ in range(2):
        row = Index(root).info().iloc[0]
        assert row["day"] == datetime.date(2020, 1, 2)
        assert row["oct"] == 8
        assert row["keys"] == {1: "one"}
        assert row["blob"] == b"hi"
        assert row["s"] == {"x"}
        assert row["big"] == 123456789012345678901234567890


def test_run_json_fields_of_odd_types_are_ignored(tmp_path: pathlib.Path) -> None:
    root = tmp_path / "exman"
    folder = make_run(root, {"a": 1})
    record = json.loads((folder / "run.json").read_text())
    record.update(
        started=5, finished="yesterday", duration="long", host=["x"], pid=True
    )
    (folder / "run.json").write_text(json.dumps(record))
    df = Index(root).info()
    assert df.started.isna().all() and df.finished.isna().all()
    assert df.duration.isna().all() and values(df.host) == [None]


def test_the_examples_in_the_docs_run(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    page = pathlib.Path(__file__).parent.parent / "docs" / "index_api.rst"
    blocks = re.findall(
        r"^\.\. code-block:: python\n\n((?:(?:    .*)?\n)+)", page.read_text(), re.M
    )
    blocks = [block for block in blocks if "parse_args" not in block]
    assert len(blocks) >= 3
    root = tmp_path / "exman"
    for i, model in enumerate(["mlp", "cnn", "mlp"] * 2):
        folder = make_run(
            root,
            {"lr": 0.1 * (i % 3 + 1), "model": model, "seed": i // 3},
            mark=f"model/{model}",
        )
        recorder = Recorder(folder)
        for step in range(3):
            recorder.log(step, loss=1 / (i + step + 1))
        recorder.close()
        recorder.result(loss=1 / (i + 3))
    make_run(root, {"lr": 1.0, "model": "cnn"}, status="failed")
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, Any] = {}
    for block in blocks:
        exec(textwrap.dedent(block), namespace)
    assert namespace["best"]["lr"] == 0.1
    assert namespace["failed"].status.tolist()[-1] == "failed"
    assert namespace["wide"].shape == (3, 6)
    assert namespace["table"]["count"].tolist() == [2, 2, 2]
