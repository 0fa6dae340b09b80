"""Fixtures shared by the test modules: real roots, real scripts, real processes."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent

#: an ExParser script with a few typical arguments; its root is EXMAN_ROOT
SCRIPT = """\
import sys
import exman

parser = exman.ExParser(root=exman.simpleroot(__file__){parser_kwargs})
parser.add_argument("--lr", type=float, default=0.1)
parser.add_argument("--model", default="resnet")
parser.add_argument("--epochs", type=int, default=3)
parser.add_argument("--layers", type=int, nargs="+", default=[1, 2])
parser.add_argument("--wd", type=exman.optional(float), default=None)
parser.add_argument("--flag", action="store_true")
parser.add_argument("--fail", default="")
{extra}
args = parser.parse_args()
{body}
"""

DEFAULT_BODY = """\
with args.safe_experiment:
    print("run folder:", args.root)
    if args.fail == "raise":
        raise ValueError("asked to fail")
    if args.fail == "exit":
        sys.exit(3)
"""


@pytest.fixture(autouse=True)
def _no_exman_root_from_outside(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests decide the root themselves."""
    monkeypatch.delenv("EXMAN_ROOT", raising=False)


@pytest.fixture(autouse=True)
def _process_hooks_restored() -> Iterator[None]:
    """An in-process ``parse_args()`` hooks sys.exit, sys.excepthook and
    SIGTERM to track its run; give the next test the process as it was."""
    import atexit
    import signal

    from exman.record import safe

    saved = (sys.exit, sys.excepthook, signal.getsignal(signal.SIGTERM))
    yield
    sys.exit, sys.excepthook = saved[0], saved[1]
    if saved[2] is not None:
        signal.signal(signal.SIGTERM, saved[2])
    with safe._lock:
        if safe._installed:
            atexit.unregister(safe._at_exit)
        safe._active.clear()
        safe._installed = False
    safe._exit_code.clear()


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """A root folder (not created yet: exman creates it)."""
    return tmp_path / "exman"


@pytest.fixture
def make_script(tmp_path: Path) -> Callable[..., Path]:
    """Write an ExParser script ``main.py`` into ``tmp_path``; its root is
    ``tmp_path/exman`` (simpleroot) unless EXMAN_ROOT is set."""

    def make(
        body: str = DEFAULT_BODY,
        *,
        extra: str = "",
        parser_kwargs: str = "",
        name: str = "main.py",
    ) -> Path:
        path = tmp_path / name
        path.write_text(
            SCRIPT.format(
                body=textwrap.dedent(body),
                extra=textwrap.dedent(extra),
                parser_kwargs=parser_kwargs,
            )
        )
        return path

    return make


def run_python(
    script: Path | str,
    *args: str,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
    check: bool = False,
    timeout: float = 60,
) -> subprocess.CompletedProcess[str]:
    """Run ``python script args…`` in a real subprocess and capture its output."""
    full_env = dict(os.environ)
    full_env.pop("EXMAN_ROOT", None)
    full_env.update(env or {})
    proc = subprocess.run(
        [sys.executable, str(script), *args],
        capture_output=True,
        text=True,
        env=full_env,
        cwd=cwd or Path(script).parent,
        timeout=timeout,
    )
    if check and proc.returncode != 0:
        raise AssertionError(
            f"exit code {proc.returncode}\n"
            f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
        )
    return proc


@pytest.fixture
def run() -> Callable[..., subprocess.CompletedProcess[str]]:
    """``run(script, *args, env=..., check=...)``: see :func:`run_python`."""
    return run_python


@pytest.fixture
def chdir_tmp(tmp_path: Path) -> Iterator[Path]:
    old = os.getcwd()
    os.chdir(tmp_path)
    try:
        yield tmp_path
    finally:
        os.chdir(old)


@pytest.fixture
def git_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """git configured by the test alone, not by this machine's config."""
    home = tmp_path / "home"
    home.mkdir()
    config = home / "gitconfig"
    config.write_text("[user]\n\tname = Test\n\temail = test@example.com\n")
    env = {
        "HOME": str(home),
        "GIT_CONFIG_GLOBAL": str(config),
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_CEILING_DIRECTORIES": str(tmp_path),
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return env
