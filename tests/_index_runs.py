"""Build runs for the Index tests with exman's own writing code.

``ExParser.parse_args`` in the pytest process would track the run until the
process exits; these helpers write the same files through the same calls
(allocate, dump_params, Run.start/finish, links, the move to fails/).
"""

from __future__ import annotations

import datetime
import os
import pathlib
from typing import Any

import yaml

from exman.record import snapshot
from exman.record.params import PARAMS_FILE, TIME_FORMAT, dump_params
from exman.record.run import Run
from exman.record.safe import SafeExperiment
from exman.record.store import Root, atomic_write

TRACEBACK = """\
Traceback (most recent call last):
  File "main.py", line 12, in <module>
    raise ValueError("asked to fail")
ValueError: asked to fail
"""


def make_run(
    root: pathlib.Path,
    params: dict[str, Any] | None = None,
    *,
    status: str = "completed",
    name: str | None = None,
    tmp: bool = False,
    mark: str | None = None,
    zfill: int = 6,
) -> pathlib.Path:
    """A run as ExParser makes it; ``status="running"`` leaves it running
    (in this process), ``"failed"`` moves it to fails/ as safe_experiment does.
    """
    store = Root(root).ensure()
    place = store.allocate(tmp=tmp, name=name, zfill=zfill)
    values = dict(params or {})
    values["root"] = place.relpath.as_posix()
    text = dump_params(values, time=place.time, id=place.id)
    atomic_write(place.path / PARAMS_FILE, text)
    copy = snapshot.make(
        values,
        place.time.strftime(TIME_FORMAT),
        place.id,
        str(place.path / PARAMS_FILE),
    )
    run = Run(place.path)
    fields: dict[str, Any] = {} if copy is None else {snapshot.FIELD: copy}
    record = run.start(command={"argv": ["main.py"]}, **fields)
    links = []
    if not tmp:
        links.append(store.link_index(place.name))
        if mark:
            links.append(store.link_mark(mark, place.name))
    if status == "failed":
        safe = SafeExperiment(store, run, links)
        safe.move_to_fails(TRACEBACK, "failed", 1, "ValueError: asked to fail")
        return safe.run.path
    if status != "running":
        run.finish(status, exit_code=0 if status == "completed" else 1, record=record)
    return place.path


def edit_in_place(path: pathlib.Path, old: str, new: str) -> None:
    """Change the file's bytes where they are, keep its size and mtime (its
    change time moves: nothing can set that)."""
    st = path.stat()
    text = path.read_bytes()
    assert len(old) == len(new) and old.encode() in text
    with open(path, "r+b") as f:
        f.write(text.replace(old.encode(), new.encode()))
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert path.stat().st_size == st.st_size
    assert path.stat().st_mtime_ns == st.st_mtime_ns


def make_old_run(
    root: pathlib.Path,
    num: int,
    params: dict[str, Any],
    *,
    when: datetime.datetime | None = None,
    place: str = "runs",
    index: bool = True,
) -> pathlib.Path:
    """A run as exman 0.1.9 wrote it: PyYAML's default dumper, no run.json."""
    for sub in ("runs", "index", "marked", "fails", "tmp"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    when = when or datetime.datetime(2019, 5, 1, 12, 0, num % 60)
    name = f"{num:06d}-{when.strftime('%Y-%m-%d-%H-%M-%S')}"
    folder = root / place / name
    folder.mkdir()
    values = dict(params)
    values["root"] = f"runs/{name}"
    with open(folder / PARAMS_FILE, "a") as f:
        yaml.dump(values, f, default_flow_style=False)
        print(f"time: '{when.strftime(TIME_FORMAT)}'", file=f)
        print("id:", num, file=f)
    if index and place == "runs":
        os.symlink(f"../runs/{name}/{PARAMS_FILE}", root / "index" / f"{name}.yaml")
    return folder
