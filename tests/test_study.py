"""Seed-paired differences with t intervals, on hand-computed numbers and the shipped study tables."""
from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from depthgait_model.study import compare, markdown, paired

RESULTS = Path(__file__).resolve().parent.parent / "docs" / "results" / "previous_recipe"


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
    """full - silhouette-only of docs/results/previous_recipe/ablation.json (same seeds 0, 1, 2): NM per seed by hand."""
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


def _script(name: str):
    import importlib.util

    spec = importlib.util.spec_from_file_location(name, Path(__file__).resolve().parent.parent / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_control_file_feeds_the_silhouette_to_the_depth_branch(tmp_path: Path) -> None:
    """The capacity control's data: every sequence kept, depth == sil exactly, frames and boxes unchanged."""
    import numpy as np

    from pipeline.formats.aligned import AlignedReader, AlignedSequence, AlignedWriter
    from pipeline.manifest import SequenceId

    rng = np.random.default_rng(0)
    src = tmp_path / "aligned.h5"
    with AlignedWriter(src) as writer:
        for subject in ("001", "002"):
            sil = (rng.random((6, 64, 64)) > 0.5).astype(np.uint8) * 255
            depth = (sil // 255 * rng.integers(1, 255, (6, 64, 64))).astype(np.uint8)
            writer.add(AlignedSequence(SequenceId(subject, "nm-01", "090"), sil, depth, np.arange(6, dtype=np.int32),
                                       box=rng.random((6, 4)).astype(np.float32)))
    out = _script("run_ablation").control_aligned(src, tmp_path / "control.h5")
    with AlignedReader(src) as a, AlignedReader(out) as b:
        assert [s.key for s in a.ids()] == [s.key for s in b.ids()]
        for seq in a.ids():
            x, y = a.load(seq), b.load(seq)
            assert np.array_equal(y.depth, x.sil) and not np.array_equal(y.depth, x.depth)
            assert np.array_equal(y.sil, x.sil) and np.array_equal(y.frames, x.frames) and np.array_equal(y.box, x.box)


def test_paired_results_file_renders_every_view(tmp_path: Path) -> None:
    """``as_json`` -> the README's paired table: one row per (comparison, condition), every view's interval."""
    from depthgait_model.study import as_json

    table = {"seeds": [0, 1, 2], "conditions": ["NM"], "views": ["000", "090"], "modes": {
        "silhouette-only": {"NM": {"per_seed": [60.0, 62.0, 64.0], "per_seed_views": [[50, 70], [52, 72], [54, 74]]}},
        "full": {"NM": {"per_seed": [68.0, 71.0, 72.0], "per_seed_views": [[60, 76], [61, 81], [66, 78]]}}}}
    result = as_json(compare(table, "silhouette-only", table, "full"))
    assert json.loads(json.dumps(result))["conditions"]["NM"]["per_view"][0]["per_seed"] == [10.0, 9.0, 12.0]
    path = tmp_path / "paired.json"
    path.write_text(json.dumps({"full-vs-silhouette-only": result}))
    text = _script("readme_numbers").paired_table(path)
    nm = paired([60.0, 62.0, 64.0], [68.0, 71.0, 72.0])
    v0 = paired([50, 52, 54], [60, 61, 66])
    assert f"| full - silhouette-only | NM | {nm.text()} | {v0.text()} |" in text
    assert text.splitlines()[0] == "| difference | condition | mean over views | 000 | 090 |"
