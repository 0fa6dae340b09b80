"""Run folder names are parsed and ordered alike one at a time and in bulk."""

from __future__ import annotations

import random

import pytest

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
        assert sorted_by_id(names, runs_only=True) == [
            name for name in _one_at_a_time(names) if run_id(name) is not None
        ]
    assert run_ids([]) == [] and sorted_by_id([]) == []


@pytest.mark.parametrize("extra", [[], ["notes"], [ODD[4]]])
def test_distinct_ids_are_ordered_as_one_name_at_a_time_orders_them(
    extra: list[str],
) -> None:
    """The usual listing, no two ids alike (at most one name no run's), is
    ordered by the ids alone: the same order."""
    names = [name for name in RUNS if not name.startswith("2-")] + extra
    names += [f"{i:06d}-2026-01-02-00-00-00" for i in range(20, 60)]
    for _ in range(5):
        random.shuffle(names)
        assert sorted_by_id(names) == _one_at_a_time(names)
        assert sorted_by_id(names, runs_only=True) == [
            name for name in _one_at_a_time(names) if run_id(name) is not None
        ]


@pytest.mark.parametrize("seed", range(20))
def test_a_listing_made_from_the_one_before_is_the_sorted_listing(seed: int) -> None:
    """A load lists a place again from its listing before (cached) when a
    few folders came (one sorted in, not a million): the same list as a
    sort of the whole folder, whatever came or went, ids alike or odd."""
    from exman.look import gather

    rng = random.Random(seed)
    before = [f"{i:06d}-2026-01-01-00-00-00" for i in range(0, 4000, 2)]
    before += RUNS + [name for name in ODD if "\n" not in name]
    folders = [name for name in before if rng.random() > 0.05]  # some went
    came = [f"{rng.randrange(5000):06d}-2026-01-02-00-00-00" for _ in range(10)]
    came += [f"{rng.randrange(5000)}-2026-01-01-00-00-00", "notes", "1-x"]
    folders = list(dict.fromkeys(folders + came))
    rng.shuffle(folders)
    for runs_only in (True, False):
        old = sorted_by_id(before, runs_only=runs_only)
        relisted = gather._relisted(old, folders, runs_only=runs_only)
        assert relisted == sorted_by_id(folders, runs_only=runs_only)
        # most folders new, or no listing before: a sort of the whole folder
        assert gather._relisted(old[:20], folders, runs_only=runs_only) is None
        assert gather._relisted(None, folders, runs_only=runs_only) is None
        assert gather._relisted([1, 2], folders, runs_only=runs_only) is None
