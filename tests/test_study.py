"""Seed-paired differences with t intervals, on hand-computed numbers and the shipped study tables."""
from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from depthgait_model.study import compare, markdown, paired

RESULTS = Path(__file__).resolve().parent.parent / "docs" / "results"


def test_paired_t_interval_by_hand():
    p = paired([60.0, 62.0, 64.0], [68.0, 71.0, 72.0])  # differences 8, 9, 8
    assert p.per_seed == (8.0, 9.0, 8.0) and p.mean == pytest.approx(25 / 3)
    sd = math.sqrt(((8 - 25 / 3) ** 2 * 2 + (9 - 25 / 3) ** 2) / 2)
    half = 4.302652729911275 * sd / math.sqrt(3)  # t(0.975, 2)
    assert (p.lo, p.hi) == (pytest.approx(25 / 3 - half), pytest.approx(25 / 3 + half))
    assert p.text() == f"+8.3 [{25 / 3 - half:+.1f}, {25 / 3 + half:+.1f}]"
    single = paired([1.0], [2.0])
    assert single.mean == 1.0 and math.isnan(single.lo)
    with pytest.raises(ValueError, match="same seeds"):
        paired([1.0, 2.0], [1.0])


def test_compare_the_shipped_studies():
    """full - silhouette-only of docs/results/ablation.json (same seeds 0, 1, 2): NM per seed by hand."""
    table = json.loads((RESULTS / "ablation.json").read_text())
    result = compare(table, "silhouette-only", table, "full")
    nm = result["conditions"]["NM"]["mean"]
    sil, full = table["modes"]["silhouette-only"]["NM"]["per_seed"], table["modes"]["full"]["NM"]["per_seed"]
    assert nm.per_seed == pytest.approx(tuple(f - s for s, f in zip(sil, full, strict=True)))
    assert "per_view" not in result["conditions"]["NM"]  # that study stored per-view values averaged over seeds only
    text = markdown(result, "t")
    assert "| NM | " + nm.text() + " |" in text
    control = json.loads((RESULTS / "control_silhouette_twice.json").read_text())
    assert compare(control, "full", table, "full")["conditions"]["BG"]["mean"].n == 3
