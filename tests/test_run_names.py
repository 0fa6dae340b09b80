"""Run folder names are parsed and ordered alike one at a time and in bulk."""

from __future__ import annotations

import os
import random
from pathlib import Path

import pytest

import exman
from exman.record.names import MAX_ID, run_id, run_ids, sorted_by_id


def _one_at_a_time(names: list[str]) -> list[str]:
    def key(name: str) -> tuple[int, str]:
        num = run_id(name)
        return (-1 if num is None else num), name

    return sorted(names, key=key)


RUNS = [
    "000010-2026-01-01-00-00-10",
    "000002-2026-01-01-00-00-02-name",
    "2-2026-01-01-00-00-03",  # the same id as the one above, unpadded
    "1000000-2026-01-01-00-00-01",  # a seventh digit
    "000003-2026-01-01-00-00-03-a-b",
]
ODD = [
    "notes",
    "000004-2026-01-01",  # no time
    "000005-2026-01-01-00-00-05x",  # the time runs on
    f"{MAX_ID}-2026-01-01-00-00-00",  # too large an id
    f"{MAX_ID - 1}-2026-01-01-00-00-00",  # the largest
    "000006-2026-01-01-00-00-06\n000007-2026-01-01-00-00-07",  # a newline
    " 000008-2026-01-01-00-00-08",
    "",
]


# a name with two runs' lines beside one with none: as many matches as names
TWO_LINES = [ODD[5], "notes"]


@pytest.mark.parametrize("extra", [[], TWO_LINES, *([name] for name in ODD)])
def test_bulk_ids_and_order_are_those_of_one_name_at_a_time(extra: list[str]) -> None:
    names = RUNS + extra
    for _ in range(5):
        random.shuffle(names)
        assert run_ids(names) == [run_id(name) for name in names]
        assert sorted_by_id(names) == _one_at_a_time(names)
    assert run_ids([]) == [] and sorted_by_id([]) == []


def test_a_load_orders_runs_by_id_whatever_their_names(tmp_path: Path) -> None:
    root = tmp_path / "root"
    parser = exman.ExParser(root=root)
    parser.add_argument("--n", type=int, default=0)
    made = [parser.parse_args([f"--n={i}"]).root.name for i in range(3)]
    # a run named by hand with an unpadded id, and one with a long id, in
    # runs/ and index/ (the usual link)
    for name in ("5-2026-01-01-00-00-00", "1000000-2026-01-01-00-00-00-late"):
        (root / "runs" / name).mkdir()
        (root / "runs" / name / "params.yaml").write_text(f"n: 9\nid: {run_id(name)}\n")
        os.symlink(f"../runs/{name}/params.yaml", root / "index" / f"{name}.yaml")
    frame = exman.Index(root).info()
    assert list(frame["id"]) == [1, 2, 3, 5, 1000000]
    assert [p.name for p in frame["root"]][:3] == made
