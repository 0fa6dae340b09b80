"""The copy of results.json that run.json takes as a run ends: read by a
first load instead of the file while the file is the one it was made of,
never once the file changed."""

from __future__ import annotations

import json
import math
import os
import pathlib
import subprocess
import sys
from typing import Any

import pytest
from _index_runs import make_run

from exman.index import Index
from exman.record import snapshot
from exman.record.run import RESULTS_FILE, RUN_FILE, Run
from exman.record.store import Root


def _ended_with(root: pathlib.Path, results: Any, **params: Any) -> pathlib.Path:
    """A run that wrote ``results`` (as they are: any JSON) and then ended."""
    folder = make_run(root, params, status="running")
    (folder / RESULTS_FILE).write_text(json.dumps(results))
    Run(folder).finish("completed", exit_code=0)
    return folder


def _copy(folder: pathlib.Path) -> Any:
    return json.loads((folder / RUN_FILE).read_text()).get(snapshot.RESULTS_FIELD)


class Opens:
    """The results.json files a load opens (in this process: no fork)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.results = 0
        real = os.open

        def counting(path: Any, *args: Any, **kwargs: Any) -> int:
            if os.fspath(path).endswith(RESULTS_FILE):
                self.results += 1
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
    assert opens.results == 0


def _edit_in_place(path: pathlib.Path, old: str, new: str) -> None:
    """Change the file's bytes where they are, keep its size and mtime."""
    st = path.stat()
    text = path.read_bytes()
    assert len(old) == len(new) and old.encode() in text
    with open(path, "r+b") as f:
        f.write(text.replace(old.encode(), new.encode()))
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))


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
        _edit_in_place(results, "old", "new")
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
