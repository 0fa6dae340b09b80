"""pathlib imported without urllib.parse on a run's start (exman.record.lazyurl)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def _fresh(code: str) -> str:
    """What ``code`` prints in a new interpreter without site's start-up
    hooks (``-S``), which could import urllib.parse before it."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
    proc = subprocess.run(
        [sys.executable, "-S", "-c", code],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return proc.stdout


def test_exman_imports_pathlib_and_leaves_urllib_to_as_uri() -> None:
    code = (
        "import sys\n"
        "import exman\n"
        "print('pathlib' in sys.modules, 'urllib.parse' in sys.modules,"
        " 'ipaddress' in sys.modules)\n"
        "import pathlib\n"
        "print(pathlib.PurePosixPath('/a b/\\u00e9%').as_uri())\n"
        "real = sys.modules['urllib.parse']\n"
        "print(hasattr(real, '_exman_stand_in'), real.urlsplit('http://h/p').path)\n"
        "import urllib.parse\n"
        "print(urllib.parse is real, urllib.parse.quote_from_bytes(b'a b'))\n"
    )
    assert _fresh(code).splitlines() == [
        "True False False",
        "file:///a%20b/%C3%A9%25",
        "False /p",
        "True a%20b",
    ]


def test_urllib_first_is_left_as_it_is() -> None:
    code = (
        "import urllib.parse\n"
        "import exman, pathlib\n"
        "print(pathlib.urlquote_from_bytes is urllib.parse.quote_from_bytes)\n"
    )
    assert _fresh(code) == "True\n"


def test_the_stand_in_gives_the_real_module_for_anything_else() -> None:
    # another thread importing urllib.parse while exman imports pathlib
    # would get the stand-in: everything but the import system's own
    # questions comes from the real module
    code = (
        "import sys\n"
        "from exman.record import lazyurl\n"
        "sys.modules.pop('urllib.parse', None)\n"
        "sys.modules['urllib.parse'] = module = lazyurl.stand_in()\n"
        "print(hasattr(module, '__path__'))\n"
        "from urllib.parse import urlsplit, quote\n"
        "real = sys.modules['urllib.parse']\n"
        "print(real is module, urlsplit is real.urlsplit, quote('a b'))\n"
        "print(module.quote_from_bytes(b'/x y', safe=''))\n"
    )
    assert _fresh(code).splitlines() == ["False", "False True a%20b", "%2Fx%20y"]


def test_as_uri_means_what_it_meant(tmp_path: Path) -> None:
    code = (
        "import exman, pathlib\n"
        "try:\n"
        "    pathlib.Path('relative').as_uri()\n"
        "except ValueError as e:\n"
        "    print('ValueError', e)\n"
        f"print(pathlib.Path({str(tmp_path / 'a#b')!r}).as_uri())\n"
    )
    expected = Path(tmp_path / "a#b").as_uri()
    assert _fresh(code).splitlines() == [
        "ValueError relative path can't be expressed as a file URI",
        expected,
    ]


def test_ntpath_does_not_look_for_nt_on_every_folder_of_sys_path() -> None:
    # pathlib imports ntpath, which tries the Windows-only module nt five
    # times; each failed import would search every folder of sys.path
    code = (
        "import sys\n"
        "asked = []\n"
        "class Watch:\n"
        "    @staticmethod\n"
        "    def find_spec(name, path=None, target=None):\n"
        "        asked.append(name)\n"
        "sys.meta_path.insert(0, Watch)\n"
        "import exman, ntpath\n"
        "joined = ntpath.join('a', 'b') == 'a' + chr(92) + 'b'\n"
        "print(asked.count('nt'), 'nt' in sys.modules, joined)\n"
        "try:\n"
        "    import nt\n"
        "except ModuleNotFoundError as e:\n"
        "    print(type(e).__name__, e.name, asked.count('nt'))\n"
    )
    if os.name == "nt":  # pragma: no cover - nt is there to be found
        return
    assert _fresh(code).splitlines() == [
        "0 False True",
        "ModuleNotFoundError nt 1",
    ]
