"""The CLI reference (docs/cli.rst) is the live --help of every command."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from exman.cli import build_parser, subcommands

REPO = Path(__file__).resolve().parent.parent
DOCS = REPO / "docs"
COMMANDS = list(subcommands(build_parser()))


def test_every_command_is_in_the_reference() -> None:
    text = (DOCS / "cli.rst").read_text()
    shown = re.findall(r"^\.\. exman-help::[ \t]*(\S*)[ \t]*$", text, re.MULTILINE)
    assert "" in shown, "the top-level 'exman --help' is missing"
    missing = [c for c in COMMANDS if c not in shown]
    assert not missing, f"docs/cli.rst has no '.. exman-help:: {missing[0]}'"
    assert "cli" in (DOCS / "index.rst").read_text().split()


def _build(tmp_path: Path, page: str) -> subprocess.CompletedProcess[str]:
    src = tmp_path / "src"
    src.mkdir()
    (src / "conf.py").write_text(
        "import sys\n"
        f"sys.path.insert(0, {str(DOCS / '_ext')!r})\n"
        "extensions = ['exman_help']\n"
        "root_doc = 'cli'\n"
    )
    (src / "cli.rst").write_text(page)
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "sphinx",
            "-b",
            "text",
            "-q",
            "-W",
            "-E",
            str(src),
            str(tmp_path / "out"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_reference_builds_from_the_live_help(tmp_path: Path) -> None:
    proc = _build(tmp_path, (DOCS / "cli.rst").read_text())
    assert proc.returncode == 0, proc.stderr
    out = (tmp_path / "out" / "cli.txt").read_text()
    assert build_parser().format_usage().strip() in out
    assert "exit codes:" in out
    for command in COMMANDS:
        usage = subcommands(build_parser())[command].format_usage()
        assert usage.split("\n")[0].strip() in out
        assert f"exman {command}" in out


def test_build_fails_when_a_command_is_undocumented(tmp_path: Path) -> None:
    proc = _build(tmp_path, "Reference\n=========\n\n.. exman-help:: ls\n")
    assert proc.returncode != 0
    assert f"exman {COMMANDS[-1]} is not documented" in proc.stderr


def test_unknown_command_in_the_directive_is_an_error(tmp_path: Path) -> None:
    page = (DOCS / "cli.rst").read_text() + "\n.. exman-help:: nosuch\n"
    proc = _build(tmp_path, page)
    assert proc.returncode != 0 and "no command 'nosuch'" in proc.stderr
