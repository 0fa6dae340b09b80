"""``exman ls`` on a real terminal (a pseudo-terminal): the pager, or not."""

from __future__ import annotations

import fcntl
import os
import pty
import re
import shlex
import struct
import subprocess
import sys
import termios
from pathlib import Path

import pytest
from _index_runs import make_run

PAGER = """\
import sys
with open(sys.argv[1], "w") as f:
    f.write(sys.stdin.read())
"""


@pytest.fixture
def root(root: Path) -> Path:
    for i in range(12):
        make_run(root, {"lr": 0.1 * i})
    return root


def on_terminal(root: Path, argv: list[str], env: dict[str, str]) -> tuple[str, str]:
    """``exman ls ARGV`` with stdout on a terminal of 10 rows: (screen, stderr),
    the screen without colours."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 10, 200, 0, 0))
    full = {k: v for k, v in os.environ.items() if k not in ("LINES", "COLUMNS")}
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "exman", "--root", str(root), "ls", *argv],
            stdin=subprocess.DEVNULL,
            stdout=slave,
            stderr=subprocess.PIPE,
            env={**full, **env},
        )
    finally:
        os.close(slave)
    screen = b""
    while True:
        try:
            chunk = os.read(master, 4096)
        except OSError:  # EIO: the other side is closed
            break
        if not chunk:
            break
        screen += chunk
    os.close(master)
    assert proc.stderr is not None
    err = proc.stderr.read().decode()
    proc.stderr.close()
    assert proc.wait(timeout=60) == 0, err
    # rich colours a short table: its escapes are not what is checked here
    return re.sub("\x1b\\[[0-9;]*m", "", screen.decode()), err


@pytest.fixture
def pager(tmp_path: Path) -> tuple[str, Path]:
    script, out = tmp_path / "pager.py", tmp_path / "paged.txt"
    script.write_text(PAGER)
    return shlex.join([sys.executable, str(script), str(out)]), out


def test_longer_than_the_screen_goes_through_the_pager(
    root: Path, pager: tuple[str, Path]
) -> None:
    command, out = pager
    screen, err = on_terminal(root, [], {"PAGER": command})
    paged = out.read_text().splitlines()
    assert paged[0].split()[:2] == ["id", "lr"] and len(paged) == 13
    assert "12" not in screen.split() and err == ""


def test_no_pager_and_short_lists_print_on_the_terminal(
    root: Path, pager: tuple[str, Path]
) -> None:
    command, out = pager
    screen, _ = on_terminal(root, ["--no-pager"], {"PAGER": command})
    assert not out.exists() and "12" in screen.split()
    screen, _ = on_terminal(root, ["--last", "3"], {"PAGER": command})
    assert not out.exists() and "12" in screen.split()
    screen, _ = on_terminal(root, [], {"PAGER": "cat"})
    assert "12" in screen.split()


def test_a_pager_that_cannot_start_loses_nothing(root: Path) -> None:
    screen, err = on_terminal(root, [], {"PAGER": "no-such-pager-here --x"})
    assert "12" in screen.split()
    assert "no program 'no-such-pager-here'" in err
