"""The examples of the guides run as shown.

On these pages every ``python`` code block is a whole ``main.py``: it is
written into a fresh folder, and the ``console`` blocks after it are run
there in order, each ``$ command`` by bash with this Python first on the
PATH. What a command prints (stdout and stderr together) must match the
lines shown below it, where ``...`` stands for any text (doctest's
ELLIPSIS). A script with no console block after it must run cleanly.
"""

from __future__ import annotations

import doctest
import os
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parent.parent / "docs"
PAGES = ["parser.rst"]

_DIRECTIVE = re.compile(r"^\.\. code-block:: (\w+)\s*$")


@dataclass
class Example:
    """A script and the commands run with it."""

    page: str
    line: int
    script: str
    commands: list[tuple[str, str]] = field(default_factory=list)

    def __str__(self) -> str:
        return f"{self.page}:{self.line}"


def blocks(text: str) -> list[tuple[int, str, str]]:
    """``(line, language, body)`` of each code block, dedented."""
    lines = text.splitlines()
    found = []
    i = 0
    while i < len(lines):
        m = _DIRECTIVE.match(lines[i])
        i += 1
        if m is None:
            continue
        start = i
        body: list[str] = []
        while i < len(lines) and (not lines[i].strip() or lines[i].startswith(" ")):
            body.append(lines[i])
            i += 1
        indent = min(len(b) - len(b.lstrip()) for b in body if b.strip())
        code = "\n".join(b[indent:] for b in body).strip("\n") + "\n"
        found.append((start, m.group(1), code))
    return found


def examples(page: str) -> list[Example]:
    found: list[Example] = []
    for line, language, code in blocks((DOCS / page).read_text()):
        if language == "python":
            found.append(Example(page, line, code))
        elif language == "console":
            assert found, f"{page}:{line}: a console block before any script"
            command = None
            want: list[str] = []
            for row in code.splitlines():
                if row.startswith("$ "):
                    if command is not None:
                        found[-1].commands.append((command, "".join(want)))
                    command, want = row[2:], []
                else:
                    want.append(row + "\n")
            assert command is not None, f"{page}:{line}: no '$ command'"
            found[-1].commands.append((command, "".join(want)))
    return found


ALL = [example for page in PAGES for example in examples(page)]


def test_the_pages_have_examples() -> None:
    assert len(ALL) >= 10
    assert all(example.commands for example in ALL[:3])


@pytest.mark.parametrize("example", ALL, ids=str)
def test_the_example_runs_as_shown(example: Example, tmp_path: Path) -> None:
    (tmp_path / "main.py").write_text(example.script)
    env = {k: v for k, v in os.environ.items() if k != "EXMAN_ROOT"}
    bindir = os.path.dirname(sys.executable)
    env.update(PATH=f"{bindir}{os.pathsep}{env.get('PATH', '')}", COLUMNS="80")
    commands = example.commands or [("python main.py", "")]
    checker = doctest.OutputChecker()
    for command, want in commands:
        proc = subprocess.run(
            ["bash", "-c", command],
            cwd=tmp_path,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=60,
        )
        got = proc.stdout
        assert checker.check_output(want, got, doctest.ELLIPSIS), (
            f"{example}: $ {command}\n--- shown:\n{want}--- printed:\n{got}"
        )
        if not want.startswith("Traceback"):
            assert proc.returncode == 0, f"{example}: $ {command}\n{got}"
