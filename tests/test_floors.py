"""The lowest versions setup.cfg allows are the ones the tests run with.

A floor below the major release under test (``pandas>=1.5`` while CI runs
pandas 3) promises what nobody checked: pandas 2 returns string columns as
``object`` and the index tests fail there. The extras' floors too: CI
installs ``.[test]``, which holds every extra's packages. Below 1.0 a
minor release is a major one (``uvicorn 0.30`` and ``0.54``).
"""

from __future__ import annotations

import configparser
import os
import re
import sys
from importlib import metadata
from pathlib import Path

import pytest

SETUP = Path(__file__).resolve().parent.parent / "setup.cfg"


def release(version: str) -> tuple[int, ...]:
    return tuple(int(p) for p in re.findall(r"\d+", version)[:2])


def family(version: str) -> tuple[int, ...]:
    """The releases that may differ in their interface: 3 for 3.1, (0, 54) for 0.54."""
    major, minor = (*release(version), 0)[:2]
    return (major,) if major else (major, minor)


FLOOR = re.compile(r"^\s*([A-Za-z0-9_.-]+)(?:\[[\w,]+\])?\s*>=\s*([\d.]+)\s*$")


def floors() -> dict[str, str]:
    config = configparser.ConfigParser()
    config.read(SETUP)
    found = {}
    for line in config["options"]["install_requires"].split("\n"):
        m = FLOOR.match(line)
        if line.strip():
            assert m, f"setup.cfg: {line.strip()!r} has no '>=' floor"
            found[m.group(1)] = m.group(2)
    return found


def extra_floors() -> dict[str, str]:
    """The floors of the extras (``plotly>=7.1``; lines without one are left)."""
    config = configparser.ConfigParser()
    config.read(SETUP)
    found = {}
    for text in config["options.extras_require"].values():
        for line in text.split("\n"):
            m = FLOOR.match(line)
            if m:
                assert found.get(m.group(1), m.group(2)) == m.group(2), line
                found[m.group(1)] = m.group(2)
    return found


def check_floor(name: str, floor: str) -> None:
    try:
        installed = metadata.version(name)
    except metadata.PackageNotFoundError:
        if os.environ.get("CI", "").lower() == "true":
            raise
        pytest.skip(f"{name} is not installed (pip install -e '.[test]' installs it)")
    assert release(installed) >= release(floor), (name, installed, floor)
    assert family(installed) == family(floor), (
        f"setup.cfg allows {name}>={floor} but the tests run {name} {installed}: "
        "raise the floor to the release tested, or test the floor too"
    )


@pytest.mark.parametrize("name", sorted(floors()))
def test_each_floor_is_the_release_under_test(name: str) -> None:
    check_floor(name, floors()[name])


@pytest.mark.parametrize("name", sorted(extra_floors()))
def test_each_extras_floor_is_the_release_under_test(name: str) -> None:
    check_floor(name, extra_floors()[name])


def test_family() -> None:
    assert family("3.1.1") == family("3.9") == (3,)
    assert family("0.54.0") == (0, 54) != family("0.30")
    assert family("15") == (15,)


def test_the_python_floor_is_met() -> None:
    config = configparser.ConfigParser()
    config.read(SETUP)
    floor = config["options"]["python_requires"].strip().lstrip(">=")
    assert sys.version_info[:2] >= release(floor)
