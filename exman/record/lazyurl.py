"""pathlib without urllib.parse: the import that pathlib makes for ``as_uri``.

On Python 3.11 and 3.12, ``import pathlib`` imports :mod:`urllib.parse`
(which imports :mod:`ipaddress`) for one function, ``quote_from_bytes``,
that only :meth:`pathlib.PurePath.as_uri` calls. Those two modules are
about a twentieth of what a configargparse + PyYAML script pays to start,
so every run's start would pay them for a method it rarely calls.
:func:`import_pathlib` imports pathlib with a stand-in for
``urllib.parse`` whose ``quote_from_bytes`` imports the real module when
first called; the stand-in leaves ``sys.modules`` as soon as pathlib is
imported. Anything else asked of it (another thread importing
``urllib.parse`` in that instant) is taken from the real module.
A pathlib that does not import urllib.parse at its start leaves the
stand-in unused.

pathlib also imports :mod:`ntpath`, which tries five names of the
Windows-only module ``nt``; each failed import searches every folder of
``sys.path``. Where ``nt`` cannot exist, ``sys.modules["nt"]`` is None
while pathlib is imported (an import of it fails at once, as it would
anyway), and the entry goes with the stand-in.
"""

from __future__ import annotations

import sys

__all__ = ["import_pathlib", "quote_from_bytes", "stand_in"]

_NAME = "urllib.parse"


def _real() -> object:
    """The real urllib.parse, imported now if need be."""
    module = sys.modules.get(_NAME)
    if module is None or module.__dict__.get("_exman_stand_in"):
        sys.modules.pop(_NAME, None)
        __import__(_NAME)
        module = sys.modules[_NAME]
    return module


def quote_from_bytes(bs: bytes, safe: str = "/") -> str:
    """``urllib.parse.quote_from_bytes``, imported when first called."""
    return _real().quote_from_bytes(bs, safe)  # type: ignore[attr-defined]


def _attribute(name: str) -> object:
    if name.startswith("__"):  # what the import system asks of any module
        raise AttributeError(name)
    return getattr(_real(), name)


def stand_in() -> object:
    """A module that passes for ``urllib.parse`` until more than
    ``quote_from_bytes`` is asked of it."""
    module = type(sys)(_NAME)
    module.__dict__.update(
        quote_from_bytes=quote_from_bytes,
        __getattr__=_attribute,
        _exman_stand_in=True,
    )
    return module


def import_pathlib() -> None:
    """Import pathlib, leaving urllib.parse to the first ``as_uri``."""
    if "pathlib" in sys.modules or _NAME in sys.modules:
        return
    module = sys.modules[_NAME] = stand_in()  # type: ignore[assignment]
    # pathlib imports ntpath, which tries five names of the Windows-only
    # module nt: each failed import searches every folder of sys.path
    no_nt = "nt" not in sys.modules and "nt" not in sys.builtin_module_names
    if no_nt:
        sys.modules["nt"] = None  # type: ignore[assignment]
    try:
        import pathlib  # noqa: F401
    finally:
        if sys.modules.get(_NAME) is module:
            del sys.modules[_NAME]
        if no_nt and "nt" in sys.modules and sys.modules["nt"] is None:
            del sys.modules["nt"]
