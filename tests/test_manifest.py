from pathlib import Path

import numpy as np
import pytest

from depthgait_model.protocols import type_mask
from pipeline.manifest import ManifestError, SequenceId, in_ranges, load_manifest, read_identity_csv


def _matches(condition: str, patterns: tuple[str, ...]) -> bool:
    return bool(type_mask(np.array([condition]), patterns, "keyword")[0])


def test_casia_b_names_are_recognised():
    m = load_manifest("casia-b")
    assert m.identify(Path("/data/DatasetB/001-nm-01-090.avi")) == SequenceId("001", "nm-01", "090")
    assert m.identify("124-cl-02-180.avi") == SequenceId("124", "cl-02", "180")
    assert m.is_skipped(Path("001-bkgrd-090.avi"))
    assert not m.is_skipped(Path("001-nm-01-090.avi"))


def test_name_that_does_not_fit_names_the_file():
    m = load_manifest("casia-b")
    with pytest.raises(ManifestError, match="walk_video.avi"):
        m.identify("videos/walk_video.avi")


def test_casia_b_split_and_protocol():
    m = load_manifest("casia-b")
    subjects = [f"{i:03d}" for i in range(1, 125)]
    train, test = m.split_subjects(subjects)
    assert train[0] == "001" and train[-1] == "074" and len(train) == 74
    assert test[0] == "075" and test[-1] == "124" and len(test) == 50
    assert m.protocol.gallery == ("nm-01", "nm-02", "nm-03", "nm-04")
    assert m.protocol.probes == {"NM": ("nm-05", "nm-06"), "BG": ("bg-01", "bg-02"), "CL": ("cl-01", "cl-02")}
    assert len(m.views) == 11 and m.views[0] == "000" and m.views[-1] == "180"
    assert m.protocol.exclude_identical_view


def test_synthetic_split_is_a_share_of_any_subject_count():
    m = load_manifest("synthetic")
    assert m.split_subjects(["001", "002"]) == (["001"], ["002"])
    train, test = m.split_subjects([f"{i:03d}" for i in range(1, 8)])
    assert train == ["001", "002", "003", "004"] and test == ["005", "006", "007"]
    with pytest.raises(ManifestError):
        m.split_subjects(["001"])


def test_sustech1k_keyword_matching():
    m = load_manifest("sustech1k")
    assert m.protocol.kind == "cross-view" and m.protocol.ranks == (1, 5) and m.protocol.exclude_identical_view
    assert _matches("01-cl-bg", m.protocol.probes["Clothing"])
    assert _matches("01-cl-bg", m.protocol.probes["Bag"])
    assert not _matches("01-nm", m.protocol.probes["Bag"])
    assert _matches("03-ub", m.protocol.probes["Overall"])
    assert not _matches("00-nm", m.protocol.probes["Overall"])
    pooled = load_manifest("sustech1k-pooled")
    assert pooled.protocol.kind == "condition" and not pooled.protocol.exclude_identical_view
    assert m.split_subjects(["0000", "0001", "0002", "1057", "1055"]) == (["0000", "0002", "1057"], ["0001", "1055"])
    assert m.identify(Path("root/0003/00-nm/090"), root="root") == SequenceId("0003", "00-nm", "090")


def test_unknown_key_is_an_error_naming_key_and_file(tmp_path):
    bad = tmp_path / "mine.yaml"
    bad.write_text("name: x\nprotocol: {kind: cross-view, gallery: [a], probes: {A: [b]}, galery: [c]}\n")
    with pytest.raises(ManifestError, match=r"mine\.yaml.*protocol\.galery"):
        load_manifest(bad)


def test_missing_manifest_lists_shipped_ones():
    with pytest.raises(ManifestError, match="casia-b"):
        load_manifest("no-such-dataset")


def test_ranges_and_csv(tmp_path):
    assert in_ranges("074", ["001-074"]) and not in_ranges("075", ["001-074"])
    assert in_ranges("005", ["005"])
    (tmp_path / "ids.csv").write_text("path,subject,condition,view\nclips/a.mp4,p1,walk-1,front\n")
    table = read_identity_csv(tmp_path / "ids.csv")
    assert table == {(tmp_path / "clips/a.mp4").resolve(): SequenceId("p1", "walk-1", "front")}
    assert SequenceId.from_key("p1/walk-1/front").key == "p1/walk-1/front"


def test_a_protocol_condition_outside_the_conditions_list_is_a_typo(tmp_path: Path) -> None:
    path = tmp_path / "typo.yaml"
    path.write_text(
        "name: typo\nconditions: [nm-01, nm-02]\n"
        "protocol:\n  kind: cross-view\n  gallery: [nm-01]\n  probes:\n    NM: [nm-2]\n"
    )
    with pytest.raises(ManifestError, match="'nm-2' is not among conditions"):
        load_manifest(path)
