"""How the benchmarks judge a ratio on a noisy machine (bench/_common.py)."""

from __future__ import annotations

import random
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))
from _common import Summary, Targets, ratio_span


def _rounds(center: float, noise: float, n: int = 30, seed: int = 1) -> list[float]:
    draw = random.Random(seed)
    return [center * (1 + draw.gauss(0, noise)) for _ in range(n)]


def test_the_span_holds_the_ratio_and_narrows_with_the_noise() -> None:
    floor = _rounds(1.0, 0.01, seed=2)
    quiet = ratio_span(_rounds(1.3, 0.01), floor)
    noisy = ratio_span(_rounds(1.3, 0.2), _rounds(1.0, 0.2, seed=2))
    assert quiet is not None and noisy is not None
    assert quiet[0] < 1.3 < quiet[1] and noisy[0] < 1.3 < noisy[1]
    assert quiet[1] - quiet[0] < 0.05 < noisy[1] - noisy[0]
    # the same timings, the same span
    assert ratio_span(_rounds(1.3, 0.01), floor) == quiet


def test_no_span_for_few_rounds_or_unpaired_ones() -> None:
    assert ratio_span([1.0] * 4, [1.0] * 4) is None
    assert ratio_span([1.0] * 10, [1.0] * 9) is None


@pytest.mark.parametrize(
    ("noise", "decides"), [(0.005, False), (0.3, True)], ids=["quiet", "noisy"]
)
def test_a_target_inside_the_span_is_called_noise(
    noise: float, decides: bool, capsys: pytest.CaptureFixture[str]
) -> None:
    targets = Targets()
    ours = Summary.of(_rounds(1.1, noise))
    floor = Summary.of(_rounds(1.0, noise, seed=2))
    targets.check("start", ours, floor, 1.2, at_most=True)
    line = capsys.readouterr().out
    assert line.startswith("PASS  start: 1.1") or decides, line
    assert "90 % of resampled rounds" in line
    assert ("noise decides" in line) == decides, line


def test_a_summary_prints_its_median_and_minimum() -> None:
    assert str(Summary.of([0.002, 0.001, 0.003])) == (
        "median     2.00 ms  min     1.00 ms  (n=3)"
    )
