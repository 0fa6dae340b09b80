"""The code blocks of README.rst and docs/*.rst run as shown.

Each page is pasted as a user would: its ``python``, ``bash`` and
``console`` blocks run in order in one fresh folder, with this Python
first on the PATH.

- A ``python`` block is written to ``main.py`` and run with
  ``python main.py``, unless ``console`` blocks follow it: then they run it.
- A ``bash`` block runs as one script with ``set -e``: it must succeed.
- A ``console`` block is ``$ command`` lines, each followed by what it
  prints (stdout and stderr together), where ``...`` stands for any text
  (doctest's ELLIPSIS). A command shown printing a ``Traceback`` may fail.
- ``yaml`` blocks must parse.

An rst comment before a block changes this:

- ``.. test-file: NAME``: the block is written to ``NAME`` in the folder
  (a ``python`` one then runs as ``main.py`` would);
- ``.. skip-test``: the block cannot run here (it needs a SLURM cluster,
  a clone of the repository, ...): it is checked for syntax only.

A page with the comment ``.. test-fresh-folder-per-script`` runs each of its
``python`` blocks, with the commands after it, in a folder of its own. On a
page with the comment ``.. test-python-session`` the ``python`` blocks are
pasted into one Python session instead: each runs after the ones before it,
in the same namespace.
"""

from __future__ import annotations

import doctest
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parent.parent
DOCS = REPO / "docs"
PAGES = [REPO / "README.rst", *sorted(DOCS.glob("*.rst"))]

_DIRECTIVE = re.compile(r"^( *)\.\. code-block:: (\w+)\s*$")
_MARK = re.compile(r"^ *\.\. (skip-test|test-file: (\S+))\s*$")
_FRESH = ".. test-fresh-folder-per-script"
_SESSION = ".. test-python-session"
_SESSION_FILE = "session.py"
_SHELLS = ("bash", "console", "shell", "sh")


@dataclass
class Block:
    """A code block and how the harness treats it."""

    line: int
    language: str
    code: str
    skip: bool = False
    file: str | None = None


@dataclass
class Example:
    """Blocks of a page run in order in one folder."""

    page: str
    line: int
    blocks: list[Block] = field(default_factory=list)
    session: bool = False

    def __str__(self) -> str:
        return f"{self.page}:{self.line}"


def blocks(text: str) -> list[Block]:
    """The code blocks of an rst text, dedented, with their marks."""
    lines = text.splitlines()
    found = []
    mark: re.Match[str] | None = None
    i = 0
    while i < len(lines):
        m = _DIRECTIVE.match(lines[i])
        marked = _MARK.match(lines[i])
        i += 1
        if marked is not None:
            mark = marked
            continue
        if m is None:
            if lines[i - 1].strip():
                mark = None
            continue
        start = i
        body: list[str] = []
        inside = " " * (len(m.group(1)) + 1)
        while i < len(lines) and (not lines[i].strip() or lines[i].startswith(inside)):
            body.append(lines[i])
            i += 1
        indent = min(len(b) - len(b.lstrip()) for b in body if b.strip())
        code = "\n".join(b[indent:] for b in body).strip("\n") + "\n"
        found.append(
            Block(
                start,
                m.group(2),
                code,
                skip=mark is not None and mark.group(1) == "skip-test",
                file=mark.group(2) if mark is not None else None,
            )
        )
        mark = None
    return found


def examples(page: Path) -> list[Example]:
    """The page's blocks, grouped by the folder they run in."""
    text = page.read_text()
    name = str(page.relative_to(REPO))
    fresh = _FRESH in text.splitlines()
    session = _SESSION in text.splitlines()
    found: list[Example] = []
    for block in blocks(text):
        new_script = block.language == "python" and block.file is None
        if not found or (fresh and new_script and not block.skip):
            found.append(Example(name, block.line, session=session))
        found[-1].blocks.append(block)
    return found


ALL = [example for page in PAGES for example in examples(page)]


def commands(code: str, where: str) -> list[tuple[str, str]]:
    """``(command, shown output)`` of a console block."""
    found: list[tuple[str, str]] = []
    for row in code.splitlines():
        if row.startswith("$ "):
            found.append((row[2:], ""))
        else:
            assert found, f"{where}: output before any '$ command'"
            found[-1] = (found[-1][0], found[-1][1] + row + "\n")
    assert found, f"{where}: no '$ command'"
    return found


def check_syntax(block: Block, where: str) -> None:
    if block.language == "python":
        compile(block.code, where, "exec")
    elif block.language in _SHELLS:
        code = block.code
        if block.language == "console":
            code = "".join(f"{c}\n" for c, _ in commands(code, where))
        proc = subprocess.run(
            ["bash", "-n"], input=code, capture_output=True, text=True
        )
        assert proc.returncode == 0, f"{where}: {proc.stderr}"
    elif block.language == "yaml":
        yaml.safe_load(block.code)


def run(
    command: str, folder: Path, env: dict[str, str]
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", "-c", command],
        cwd=folder,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=120,
    )


def test_the_pages_have_examples() -> None:
    assert sum(len(e.blocks) for e in ALL) >= 40
    pages = {e.page for e in ALL}
    assert {"README.rst", "docs/parser.rst", "docs/index_api.rst"} <= pages


@pytest.mark.parametrize("page", PAGES, ids=lambda page: page.name)
def test_every_mark_is_understood(page: Path) -> None:
    # a misspelt mark is an rst comment like any other: the block would run
    for number, line in enumerate(page.read_text().splitlines(), 1):
        comment = re.match(r"^ *\.\. ((?:skip|test)\S*.*?)\s*$", line)
        if comment is not None:
            known = _MARK.match(line) or line.strip() in (_FRESH, _SESSION)
            assert known, f"{page.name}:{number}: unknown mark {comment.group(1)!r}"


_KNOWN = ("python", "yaml", "text", *_SHELLS)
#: the first line of a literal block that is a command to paste
_COMMAND = re.compile(r"^(\$ |pip |python |exman |import |from \S+ import )")


@pytest.mark.parametrize("page", PAGES, ids=lambda page: page.name)
def test_every_block_is_run_or_checked(page: Path) -> None:
    # a block of another language, or a command in a plain literal block
    # (``::``), would be skipped without a word
    text = page.read_text()
    for block in blocks(text):
        assert block.language in _KNOWN, f"{page.name}:{block.line}: {block.language}"
    lines = text.splitlines()
    for number, line in enumerate(lines, 1):
        if not line.rstrip().endswith("::") or line.lstrip().startswith(".. "):
            continue
        body = [row.strip() for row in lines[number:] if row.strip()]
        assert not (body and _COMMAND.match(body[0])), (
            f"{page.name}:{number}: a command in a literal block; "
            "make it a code-block (with .. skip-test if it cannot run here)"
        )


@pytest.mark.parametrize("example", ALL, ids=str)
def test_the_example_runs_as_shown(example: Example, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "EXMAN_ROOT"}
    bindir = os.path.dirname(sys.executable)
    env.update(PATH=f"{bindir}{os.pathsep}{env.get('PATH', '')}", COLUMNS="80")
    checker = doctest.OutputChecker()
    script: str | None = None
    session = ""

    def run_script() -> None:
        nonlocal script
        if script is not None:
            proc = run(f"python {script}", tmp_path, env)
            assert proc.returncode == 0, f"{where}: python {script}\n{proc.stdout}"
        script = None

    for block in example.blocks:
        where = f"{example.page}:{block.line}"
        check_syntax(block, where)
        if block.skip:
            continue
        if example.session and block.language == "python" and block.file is None:
            run_script()
            session += f"\n# {where}\n{block.code}"
            (tmp_path / _SESSION_FILE).write_text(session)
            proc = run(f"python {_SESSION_FILE}", tmp_path, env)
            assert proc.returncode == 0, (
                f"{where}:\n{block.code}--- printed:\n{proc.stdout}"
            )
            continue
        if block.file is not None or block.language == "python":
            name = block.file or "main.py"
            (tmp_path / name).write_text(block.code)
            if block.language == "python":
                run_script()
                script = name
            continue
        if block.language == "console":
            script = None
            for command, want in commands(block.code, where):
                proc = run(command, tmp_path, env)
                got = proc.stdout
                assert checker.check_output(want, got, doctest.ELLIPSIS), (
                    f"{where}: $ {command}\n--- shown:\n{want}--- printed:\n{got}"
                )
                if not want.startswith("Traceback"):
                    assert proc.returncode == 0, f"{where}: $ {command}\n{proc.stdout}"
        elif block.language in _SHELLS:
            run_script()
            proc = run("set -e\n" + block.code, tmp_path, env)
            assert proc.returncode == 0, (
                f"{where}:\n{block.code}--- printed:\n{proc.stdout}"
            )
    run_script()


def test_the_example_of_the_set_up_runs_as_described(tmp_path: Path) -> None:
    # README's set-up: "a small sweep of examples/main.py: 2 learning rates x
    # 2 models x 2 seeds, 2 runs at a time; then the runs are listed"
    examples = tmp_path / "examples"
    shutil.copytree(REPO / "examples", examples, ignore=shutil.ignore_patterns("exman"))
    env = {k: v for k, v in os.environ.items() if k != "EXMAN_ROOT"}
    bindir = os.path.dirname(sys.executable)
    env.update(PATH=f"{bindir}{os.pathsep}{env.get('PATH', '')}", COLUMNS="80")
    first = run("bash examples/run.sh", tmp_path, env)
    assert first.returncode == 0, first.stdout
    assert first.stdout.startswith("sweep example: 8 tasks, 8 to run with 2 jobs\n")
    assert "ran 8 tasks" in first.stdout and "8 completed" in first.stdout
    listed = first.stdout[first.stdout.index("\nid ") + 1 :].splitlines()[1:]
    assert [row.split()[0] for row in listed] == [str(i) for i in range(1, 9)]
    again = run("bash examples/run.sh", tmp_path, env)
    assert again.returncode == 0, again.stdout
    assert again.stdout.startswith("sweep example: nothing to run (skipped: 8 "), (
        again.stdout
    )


_TREE_SCRIPT = """\
import exman

parser = exman.ExParser(root="exman")
args = parser.parse_args()
with args.safe_experiment:
    print("hello")
    exman.log(step=0, loss=1.0)
    exman.result(loss=1.0)
"""


@pytest.mark.parametrize("page", ["README.rst", "docs/layout.rst"])
def test_the_tree_of_a_root_names_every_file_a_run_makes(
    page: str, tmp_path: Path
) -> None:
    tree = next(
        b.code for b in blocks((REPO / page).read_text()) if b.language == "text"
    )
    top = {m.group(1).split("/")[0] for m in re.finditer(r"^[├└]── (\S+)", tree, re.M)}
    inside = set(re.findall(r"^│ {7}[├└]── (\S+)", tree, re.M))
    (tmp_path / "main.py").write_text(_TREE_SCRIPT)
    env = {k: v for k, v in os.environ.items() if k != "EXMAN_ROOT"}
    proc = run(f"{sys.executable} main.py", tmp_path, env)
    assert proc.returncode == 0, proc.stdout
    root = tmp_path / "exman"
    assert {p.name for p in root.iterdir()} <= top, f"{page}: {sorted(top)}"
    (run_folder,) = (root / "runs").iterdir()
    assert {p.name for p in run_folder.iterdir()} <= inside, f"{page}: {sorted(inside)}"
