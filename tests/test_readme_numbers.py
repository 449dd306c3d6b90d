"""scripts/readme_numbers.py: the README quotes exactly what the demo and the studies wrote."""
from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
spec = importlib.util.spec_from_file_location("readme_numbers", REPO / "scripts" / "readme_numbers.py")
readme_numbers = importlib.util.module_from_spec(spec)
spec.loader.exec_module(readme_numbers)


def test_readme_result_tables_equal_the_results_files(tmp_path: Path) -> None:
    """Every table between results markers is what docs/results/*.json says (no hand-edited numbers)."""
    text = (REPO / "README.md").read_text()
    after, done = readme_numbers.rewrite(text, tmp_path / "no-demo", REPO / "docs" / "results")
    tags = re.findall(r"<!-- (results|paired|crowd):([\w/,-]+) -->", text)
    assert {t for _, t in tags} >= {"study", "study_paired", "previous_recipe/ablation",
                                    "bytetrack,botsort,heldout_bytetrack,heldout_botsort"}
    files = [f"crowd_tracking_{n}" for kind, t in tags if kind == "crowd" for n in t.split(",")]
    files += [t for kind, t in tags if kind != "crowd"]
    missing = [t for t in files if not (REPO / "docs" / "results" / f"{t}.json").is_file()]
    assert not missing, f"README blocks without their results file: {missing}"
    assert sorted(done) == sorted(f"{kind}:{tag}" for kind, tag in tags)
    assert after == text


def test_readme_demo_figures_equal_the_recorded_demo_run() -> None:
    """The demo sentences are what the fresh-clone run recorded in docs/results/demo wrote, and that run met
    the demo's aim (NM rank-1 >= 70% for >= 8 unseen people inside 15 minutes)."""
    demo = REPO / "docs" / "results" / "demo"
    text = (REPO / "README.md").read_text()
    after, done = readme_numbers.rewrite(text, demo, None)
    assert done == ["demo-results"]
    assert after == text
    summary = json.loads((demo / "summary.json").read_text())
    assert summary["test_subjects"] >= 8
    assert summary["rank1"]["NM"] >= 70.0
    assert summary["timings"]["total"] <= 15 * 60


def test_demo_block_is_rewritten_from_the_demo_files(tmp_path: Path) -> None:
    demo = tmp_path / "demo"
    demo.mkdir()
    report = {"conditions": ["NM", "BG", "CL"], "NM": {"mean": 50.0}, "BG": {"mean": 46.666}, "CL": {"mean": 56.7}}
    (demo / "report.json").write_text(json.dumps(report))
    timings = {"synth": 41.2, "extract": 101.0, "align": 4.4, "train": 178.0, "test": 5.1, "total": 331.0}
    (demo / "timings.json").write_text(json.dumps(timings))
    (demo / "summary.json").write_text(json.dumps({"test_subjects": 5}))
    readme = tmp_path / "README.md"
    original = (REPO / "README.md").read_text()
    readme.write_text(original)
    assert readme_numbers.main(["--readme", str(readme), "--demo", str(demo), "--results", str(REPO / "docs" / "results")]) == 0
    text = readme.read_text()
    block = text.split("<!-- demo-results -->\n")[1].split("\n<!-- /demo-results -->")[0]
    assert " ".join(block.split()) == (
        "The demo itself took 5.5 minutes (synth 41 s, extract 101 s, align 4 s, train 178 s, test 5 s). It printed a "
        "mean rank-1 of NM 50.0%, BG 46.7% and CL 56.7% against a chance level of 20% (5 test subjects)."
    )
    assert text.replace(block, "") == original.replace(original.split("<!-- demo-results -->\n")[1].split(
        "\n<!-- /demo-results -->")[0], "")  # fmt: skip  # nothing else changed
    assert readme_numbers.main(["--readme", str(readme), "--demo", str(demo), "--check"]) == 0  # idempotent
    readme.write_text(original)
    assert readme_numbers.main(["--readme", str(readme), "--demo", str(demo), "--check"]) == 1  # stale, untouched
    assert readme.read_text() == original


def test_missing_markers_are_an_error(tmp_path: Path) -> None:
    with pytest.raises(readme_numbers.ReadmeError, match="no <!-- demo-results -->"):
        readme_numbers.replace_block("no markers here", "demo-results", "x")
