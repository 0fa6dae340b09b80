"""The lowest versions setup.cfg allows are the ones the tests run with.

A floor below the major release under test (``pandas>=1.5`` while CI runs
pandas 3) promises what nobody checked: pandas 2 returns string columns as
``object`` and the index tests fail there.
"""

from __future__ import annotations

import configparser
import re
import sys
from importlib import metadata
from pathlib import Path

import pytest

SETUP = Path(__file__).resolve().parent.parent / "setup.cfg"


def release(version: str) -> tuple[int, ...]:
    return tuple(int(p) for p in re.findall(r"\d+", version)[:2])


def floors() -> dict[str, str]:
    config = configparser.ConfigParser()
    config.read(SETUP)
    found = {}
    for line in config["options"]["install_requires"].split("\n"):
        m = re.match(r"^\s*([A-Za-z0-9_.-]+)\s*>=\s*([\d.]+)\s*$", line)
        if line.strip():
            assert m, f"setup.cfg: {line.strip()!r} has no '>=' floor"
            found[m.group(1)] = m.group(2)
    return found


@pytest.mark.parametrize("name", sorted(floors()))
def test_each_floor_is_the_release_under_test(name: str) -> None:
    floor = floors()[name]
    installed = metadata.version(name)
    assert release(installed) >= release(floor), (name, installed, floor)
    assert release(installed)[0] == release(floor)[0], (
        f"setup.cfg allows {name}>={floor} but the tests run {name} {installed}: "
        "raise the floor to the release tested, or test the floor too"
    )


def test_the_python_floor_is_met() -> None:
    config = configparser.ConfigParser()
    config.read(SETUP)
    floor = config["options"]["python_requires"].strip().lstrip(">=")
    assert sys.version_info[:2] >= release(floor)
