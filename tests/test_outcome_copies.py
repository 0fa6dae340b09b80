"""The copies of results.json and of the last metrics that run.json takes
as a run ends: read by a first load instead of the files while each file
is the one it was made of, never once it changed."""

from __future__ import annotations

import json
import math
import os
import pathlib
import subprocess
import sys
from typing import Any

import pytest
from _index_runs import edit_in_place, make_run

from exman.index import Index
from exman.record import snapshot
from exman.record.run import METRICS_FILE, RESULTS_FILE, RUN_FILE, Run
from exman.record.store import Root


def _ended_with(root: pathlib.Path, results: Any, **params: Any) -> pathlib.Path:
    """A run that wrote ``results`` (as they are: any JSON) and then ended."""
    folder = make_run(root, params, status="running")
    (folder / RESULTS_FILE).write_text(json.dumps(results))
    Run(folder).finish("completed", exit_code=0)
    return folder


def _copy(folder: pathlib.Path, field: str = snapshot.RESULTS_FIELD) -> Any:
    return json.loads((folder / RUN_FILE).read_text()).get(field)


def _logged(
    root: pathlib.Path, lines: list[dict[str, Any]], **params: Any
) -> pathlib.Path:
    """A run that logged ``lines`` to metrics.jsonl and then ended."""
    folder = make_run(root, params, status="running")
    text = "".join(json.dumps(line) + "\n" for line in lines)
    (folder / METRICS_FILE).write_text(text)
    Run(folder).finish("completed", exit_code=0)
    return folder


class Opens:
    """The results.json and metrics.jsonl files a load opens (in this
    process: no fork)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.results = 0
        self.metrics = 0
        real = os.open

        def counting(path: Any, *args: Any, **kwargs: Any) -> int:
            if os.fspath(path).endswith(RESULTS_FILE):
                self.results += 1
            if os.fspath(path).endswith(METRICS_FILE):
                self.metrics += 1
            return real(path, *args, **kwargs)

        monkeypatch.setattr(os, "open", counting)
        monkeypatch.setenv("EXMAN_FORK", "0")


def test_a_script_s_results_are_copied_as_its_run_ends(tmp_path: pathlib.Path) -> None:
    root = tmp_path / "exman"
    script = tmp_path / "main.py"
    script.write_text(
        "import exman\n"
        f"exman.ExParser(root={str(root)!r}).parse_args([])\n"
        "exman.result(acc=0.5, name='best')\n"
        "exman.result(loss=float('nan'))\n"
    )
    subprocess.run([sys.executable, str(script)], check=True, timeout=60)
    folder = Root(root).find(1)
    copy = _copy(folder)
    assert copy["file"] == snapshot.identity((folder / RESULTS_FILE).stat())
    assert copy["values"]["acc"] == 0.5 and copy["values"]["name"] == "best"
    assert math.isnan(copy["values"]["loss"])


def test_a_first_load_takes_the_copy_and_opens_no_results_json(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "exman"
    for i in range(3):
        _ended_with(root, {"acc": i / 4, "tags": ["a", i]}, i=i)
    opens = Opens(monkeypatch)
    frame = Index(root, cache=False).info()
    assert frame.acc.tolist() == [0.0, 0.25, 0.5]
    assert frame.tags.tolist() == [["a", 0], ["a", 1], ["a", 2]]
    # nor a metrics.jsonl that is not there (a look at the name is enough)
    assert (opens.results, opens.metrics) == (0, 0)


@pytest.mark.parametrize("change", ["replaced", "edited in place", "deleted"])
def test_a_results_json_changed_after_the_end_is_read_again(
    tmp_path: pathlib.Path, change: str
) -> None:
    root = tmp_path / "exman"
    folder = _ended_with(root, {"acc": 0.25, "note": "old"})
    results = folder / RESULTS_FILE
    if change == "replaced":
        new = results.with_name("results.json.new")
        new.write_text(json.dumps({"acc": 0.75, "note": "new"}))
        os.replace(new, results)
    elif change == "edited in place":
        edit_in_place(results, "old", "new")
    else:
        results.unlink()
    frame = Index(root, cache=False).info()
    if change == "deleted":
        assert "acc" not in frame.columns
    else:
        assert frame.note.tolist() == ["new"]


@pytest.mark.parametrize(
    "results", [[1, 2], "x" * (snapshot.MAX_RESULTS + 1)], ids=["a list", "too large"]
)
def test_results_a_copy_cannot_stand_for_are_read_from_the_file(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch, results: Any
) -> None:
    root = tmp_path / "exman"
    folder = _ended_with(root, results if isinstance(results, list) else {"x": results})
    assert _copy(folder) is None
    opens = Opens(monkeypatch)
    if isinstance(results, list):
        with pytest.warns(UserWarning, match="not a JSON object"):
            frame = Index(root, cache=False).info()
        assert "x" not in frame.columns
    else:
        assert Index(root, cache=False).info().x.tolist() == [results]
    assert opens.results == 1


def test_a_run_that_ends_again_copies_what_it_has_then(tmp_path: pathlib.Path) -> None:
    # a resumed run ends a second time: its copy is made again, or dropped
    root = tmp_path / "exman"
    folder = _ended_with(root, {"acc": 0.25})
    (folder / RESULTS_FILE).unlink()
    Run(folder).finish("completed", exit_code=0)
    assert _copy(folder) is None
    assert "acc" not in Index(root, cache=False).info().columns


def test_a_script_s_last_metrics_are_copied_as_its_run_ends(
    tmp_path: pathlib.Path,
) -> None:
    root = tmp_path / "exman"
    script = tmp_path / "main.py"
    script.write_text(
        "import exman\n"
        f"exman.ExParser(root={str(root)!r}).parse_args([])\n"
        "for step in range(3):\n"
        "    exman.log(step=step, loss=1 / (step + 1), acc=step / 4)\n"
        "exman.log(step=3, acc=0.9)\n"
    )
    subprocess.run([sys.executable, str(script)], check=True, timeout=60)
    folder = Root(root).find(1)
    copy = _copy(folder, snapshot.METRICS_FIELD)
    assert copy["file"] == snapshot.identity((folder / METRICS_FILE).stat())
    assert copy["values"] == {"loss": 1 / 3, "acc": 0.9}


def test_a_first_load_takes_the_metrics_copy_and_opens_no_metrics_file(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "exman"
    for i in range(3):
        folder = _logged(root, [{"step": 0, "loss": 1.0}, {"step": 1, "loss": i / 2}])
        # a result wins over a metric of its name, copies or not
        (folder / RESULTS_FILE).write_text(json.dumps({"acc": i}))
        Run(folder).finish("completed", exit_code=0)
    opens = Opens(monkeypatch)
    frame = Index(root, cache=False).info()
    assert frame.loss.tolist() == [0.0, 0.5, 1.0]
    assert frame.acc.tolist() == [0, 1, 2]
    assert (opens.metrics, opens.results) == (0, 0)


@pytest.mark.parametrize("change", ["appended", "deleted"])
def test_metrics_changed_after_the_end_are_read_again(
    tmp_path: pathlib.Path, change: str
) -> None:
    # another rank of the run appends after rank 0 ended it
    root = tmp_path / "exman"
    folder = _logged(root, [{"step": 0, "loss": 1.0}])
    if change == "appended":
        with open(folder / METRICS_FILE, "a") as f:
            f.write(json.dumps({"step": 1, "loss": 0.5}) + "\n")
        assert Index(root, cache=False).info().loss.tolist() == [0.5]
    else:
        (folder / METRICS_FILE).unlink()
        assert "loss" not in Index(root, cache=False).info().columns


def test_the_metrics_copy_gives_what_the_file_gives(tmp_path: pathlib.Path) -> None:
    # a long file (only its end is read), a damaged line, a last line cut
    # short: the copy is made by the readers' own function
    root = tmp_path / "exman"
    lines = [{"step": i, "loss": 1 / (i + 1), "x": "y" * 50} for i in range(500)]
    folder = _logged(root, [{"early": 1}, *lines])
    with open(folder / METRICS_FILE, "a") as f:
        f.write('{"step": 500, "loss"\n{"step": 501, "ac')
    Run(folder).finish("completed", exit_code=0)
    with_copy = Index(root, cache=False).info()
    record = json.loads((folder / RUN_FILE).read_text())
    assert snapshot.METRICS_FIELD in record
    del record[snapshot.METRICS_FIELD]
    (folder / RUN_FILE).write_text(json.dumps(record))
    without = Index(root, cache=False).info()
    assert "early" not in with_copy.columns
    assert with_copy.loss.tolist() == without.loss.tolist() == [1 / 500]
