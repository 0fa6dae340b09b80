"""What survives a power loss: the counter and params.yaml reach the disk.

A power loss cannot be staged here; what can be seen is the one call that
makes data survive it. Each ``os.fsync`` of a new run's process is recorded
(what the descriptor is, then the real call), and the files and folders
that must survive are checked against them.
"""

from __future__ import annotations

import functools
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

WATCHED = textwrap.dedent(
    """\
    import json
    import os
    import sys

    synced = []
    real_fsync = os.fsync


    def fsync(fd):
        synced.append(os.readlink(f"/proc/self/fd/{fd}"))
        return real_fsync(fd)


    os.fsync = fsync

    import exman

    args = exman.ExParser(root=sys.argv[1]).parse_args(["--name", "n"])
    print(json.dumps({"run": str(args.root), "synced": synced}))
    """
)


def _in(synced: list[str], wanted: Path, tmp: bool = False) -> bool:
    """Whether ``wanted`` (or, with ``tmp``, a temporary file of it) was synced."""
    real = os.path.realpath(wanted)
    if tmp:
        return any(p.startswith(real + ".") and p.endswith(".tmp") for p in synced)
    return real in synced


def test_a_new_run_s_params_and_the_counter_are_synced(tmp_path: Path) -> None:
    script = tmp_path / "watched.py"
    script.write_text(WATCHED)
    root = tmp_path / "exman"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    for _ in range(2):  # a new root, then one with a counter
        proc = subprocess.run(
            [sys.executable, str(script), str(root)],
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
            check=True,
        )
        out = json.loads(proc.stdout)
        run = Path(out["run"])
        synced = [os.path.realpath(p) for p in out["synced"]]
        was_synced = functools.partial(_in, synced)

        # the files, before they are renamed into place...
        assert was_synced(run / "params.yaml", tmp=True), synced
        counter = root / ".exman" / "counter"
        assert was_synced(counter) or was_synced(counter, tmp=True), synced
        # ...and the folders that hold the new names
        assert was_synced(run), synced
        assert was_synced(root / "runs"), synced
        assert was_synced(root / ".exman"), synced
        assert (run / "params.yaml").is_file()


SIDE_BY_SIDE = textwrap.dedent(
    """\
    import json
    import os
    import sys
    import threading

    real_fsync = os.fsync
    params_flushing = threading.Event()
    waits = []


    def fsync(fd):
        path = os.readlink(f"/proc/self/fd/{fd}")
        if ".tmp" in path and os.path.basename(path).startswith("params.yaml"):
            params_flushing.set()
        elif path.endswith(os.sep + "counter"):
            # the counter's flush goes on only once params.yaml's has begun:
            # flushes made one after the other never get there
            waits.append(params_flushing.wait(10))
        return real_fsync(fd)


    os.fsync = fsync

    import exman

    args = exman.ExParser(root=sys.argv[1]).parse_args([])
    print(json.dumps({"waits": waits}))
    """
)


def test_the_counter_is_flushed_while_params_yaml_is(tmp_path: Path) -> None:
    # five flushes each wait for the disk; the id's three (the counter and
    # the folders that hold the new names) wait side by side with the two
    # of params.yaml, and parse_args returns once all are done (above)
    script = tmp_path / "side_by_side.py"
    script.write_text(SIDE_BY_SIDE)
    proc = subprocess.run(
        [sys.executable, str(script), str(tmp_path / "exman")],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        timeout=60,
        check=True,
    )
    assert json.loads(proc.stdout) == {"waits": [True]}
