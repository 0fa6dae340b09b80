"""Run ids stay unique where the root's lock does nothing (NFS with nolock)."""

from __future__ import annotations

import collections
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from exman.record.params import load_params

#: a process creating runs as on an NFS mount with ``nolock``: there
#: ``flock`` succeeds and excludes nobody, which is what is faked here, at
#: the outermost call; every run gets a name of its own, so that folder
#: names never clash even when ids do
WORKER = textwrap.dedent(
    """\
    import fcntl
    import os
    import sys
    import time

    fcntl.flock = lambda fd, operation: None

    import exman

    root, tag, count, go = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    while not os.path.exists(go):
        time.sleep(0.001)
    for i in range(count):
        exman.ExParser(root=root).parse_args(["--name", f"{tag}-{i}"])
    """
)


def test_ids_are_unique_without_a_working_lock(tmp_path: Path) -> None:
    root = tmp_path / "exman"
    worker = tmp_path / "worker.py"
    worker.write_text(WORKER)
    go = tmp_path / "go"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    procs = [
        subprocess.Popen(
            [sys.executable, str(worker), str(root), f"p{n}", "25", str(go)], env=env
        )
        for n in range(8)
    ]
    time.sleep(1.0)  # let every worker reach the starting line
    go.touch()
    assert [p.wait(timeout=100) for p in procs] == [0] * len(procs)
    folders = list((root / "runs").iterdir())
    assert len(folders) == 8 * 25
    ids = collections.Counter(load_params(f / "params.yaml")["id"] for f in folders)
    doubled = {num: n for num, n in ids.items() if n > 1}
    assert not doubled, f"ids given more than once: {doubled}"
    # ...and the folder names agree with params.yaml
    assert sorted(int(f.name.split("-")[0]) for f in folders) == sorted(ids)
