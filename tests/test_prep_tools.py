"""The cache tools through the real CLI: ``depthgait-prep align``, ``status`` and ``show``."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from click.testing import CliRunner
from test_align import make_cache

from cli.prep import main
from pipeline.errors import Failure, append_failure
from pipeline.formats.aligned import AlignedReader, AlignedSequence
from pipeline.manifest import SequenceId
from pipeline.tools.contact_sheet import GAP, TITLE_H, crops_sheet, sequences_sheet, surroundings_sheet, write_png

A, B, SHORT = SequenceId("001", "nm-01", "090"), SequenceId("002", "bg-01", "000"), SequenceId("003", "cl-01", "180")


def invoke(*args: str):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


@pytest.fixture()
def cache(tmp_path: Path) -> Path:
    """Two good sequences (one with 2 empty frames), one too short, one failed video, one warning."""
    root = tmp_path / "cache"
    make_cache(root, A, n_frames=9, empty=(3, 4), video=str(tmp_path / "001-nm-01-090.avi"))
    make_cache(root, B, n_frames=6, video=str(tmp_path / "002-bg-01-000.avi"))
    make_cache(root, SHORT, n_frames=6, empty=(0, 2, 5), video=str(tmp_path / "003-cl-01-180.avi"))
    append_failure(root, Failure(str(tmp_path / "004-nm-01-090.avi"), "decode", "004-nm-01-090.avi: zero-byte file"))
    append_failure(root, Failure(str(tmp_path / "005-nm-01-090.avi"), "detect", "005-nm-01-090.avi: no person found"))
    append_failure(root, Failure(str(tmp_path / "002-bg-01-000.avi"), "decode", "002-bg-01-000.avi: grayscale video", "warning"))
    return root


def test_every_command_has_help_with_an_example() -> None:
    for name in ("align", "status", "show"):
        result = invoke(name, "--help")
        assert result.exit_code == 0 and "Example:" in result.output and f"depthgait-prep {name}" in result.output


def test_align_cli_writes_reports_and_skips(cache: Path) -> None:
    result = invoke("align", "--cache", str(cache), "--quiet")
    assert result.exit_code == 0, result.output
    assert "2 sequences, 13 frames" in result.output
    assert "003/cl-01/180 (3 frames)" in result.output  # too short is reported by name
    with AlignedReader(cache / "aligned.h5") as reader:
        assert reader.ids() == [A, B]
    again = invoke("align", "--cache", str(cache), "--quiet")
    assert again.exit_code == 0 and "up to date" in again.output
    redo = invoke("align", "--cache", str(cache), "--quiet", "--overwrite", "--min-frames", "3")
    assert "wrote" in redo.output and "3 sequences" in redo.output


def test_align_cli_errors(tmp_path: Path, cache: Path) -> None:
    empty = invoke("align", "--cache", str(tmp_path / "nothing"), "--quiet")
    assert empty.exit_code == 1 and "no per-video caches" in empty.output and "Traceback" not in empty.output
    bad = cache / "videos/009/nm-01/090.h5"
    bad.parent.mkdir(parents=True)
    bad.write_text("garbage")
    partial = invoke("align", "--cache", str(cache), "--quiet")
    assert partial.exit_code == 1  # the exit code says some failed ...
    assert f"failed: {bad}" in partial.output and "1 cache(s) could not be aligned" in partial.output
    with AlignedReader(cache / "aligned.h5") as reader:
        assert len(reader.ids()) == 2  # ... and the rest were written


def test_status_counts_match(cache: Path) -> None:
    before = json.loads(invoke("status", "--cache", str(cache), "--json", "-").output)
    assert before["videos_done"] == 3 and before["aligned"] is None
    assert before["frames_with_person"] == 9 + 6 + 6 and before["frames_decoded"] == 11 + 8 + 8
    assert sorted(Path(v).name for v in before["failed"]) == ["004-nm-01-090.avi", "005-nm-01-090.avi"]
    assert {row["stage"] for row in before["failed"].values()} == {"decode", "detect"}
    assert [Path(w["video"]).name for w in before["warnings"]] == ["002-bg-01-000.avi"]

    invoke("align", "--cache", str(cache), "--quiet")
    after = json.loads(invoke("status", "--cache", str(cache), "--json", "-").output)["aligned"]
    assert after["up_to_date"] is True
    assert after["sequences"] == 2 and after["frames_kept"] == 7 + 6 and after["frames_dropped"] == 2 + 3
    assert after["too_short"] == [["003/cl-01/180", 3]]

    text = invoke("status", "--cache", str(cache)).output
    assert "videos failed: 2" in text and "no person found" in text and "up to date" in text

    make_cache(cache, SequenceId("010", "nm-01", "090"), n_frames=6)  # a new cache: the file is stale
    stale = json.loads(invoke("status", "--cache", str(cache), "--json", "-").output)["aligned"]
    assert stale["up_to_date"] is False


def test_status_of_a_missing_cache_is_a_clear_error(tmp_path: Path) -> None:
    result = invoke("status", "--cache", str(tmp_path / "nope"))
    assert result.exit_code == 1 and "no such cache folder" in result.output


def write_video(path: Path, n_frames: int, size: tuple[int, int] = (120, 160)) -> None:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 25.0, (size[1], size[0]))
    assert writer.isOpened()
    for t in range(n_frames):
        writer.write(np.full((*size, 3), 30 + 10 * t, np.uint8))
    writer.release()


def test_show_writes_a_png_of_the_expected_size(tmp_path: Path, cache: Path) -> None:
    invoke("align", "--cache", str(cache), "--quiet")
    out = tmp_path / "sheet.png"
    result = invoke(
        "show", "001/nm-01/090", "--cache", str(cache), "--out", str(out), "--max-frames", "6", "--cols", "4"
    )
    assert result.exit_code == 0, result.output
    assert "raw frames left out" in result.output  # no video on disk yet
    image = cv2.imread(str(out))
    cell_w, cell_h = 2 * 64 * 2, 64 * 2  # silhouette + depth, scale 2
    assert image.shape == (TITLE_H + GAP + 2 * (cell_h + GAP), 4 * cell_w + 5 * GAP, 3)
    # the first cell shows the stored silhouette (scaled by 2) and its depth is black outside it
    with AlignedReader(cache / "aligned.h5") as reader:
        seq = reader.load(A)
    y, x = TITLE_H + GAP, GAP
    sil_px = image[y : y + cell_h : 2, x : x + 128 : 2, 0]
    np.testing.assert_array_equal(sil_px[16:] > 127, seq.sil[0][16:] > 0)  # below the frame label
    depth_px = image[y + 32 : y + cell_h : 2, x + 128 : x + cell_w : 2].max(axis=2)
    assert (depth_px[seq.sil[0][16:] == 0] == 0).all()

    write_video(tmp_path / "001-nm-01-090.avi", n_frames=11)  # now the raw frames can be drawn
    with_raw = invoke(
        "show", "001/nm-01/090", "--cache", str(cache), "--out", str(out), "--max-frames", "6", "--cols", "4"
    )
    assert "raw frames left out" not in with_raw.output
    image = cv2.imread(str(out))
    assert image.shape[0] == TITLE_H + GAP + 2 * (cell_h + GAP) + cell_w * 120 // 160 + GAP
    raw = image[-cell_w * 120 // 160 - GAP : -GAP, GAP : GAP + cell_w]
    assert (raw[..., 2] > 200).any() and (raw[..., 1] > raw[..., 0] + 40).any()  # red box, green mask tint


def test_show_unknown_sequence_names_what_exists(tmp_path: Path, cache: Path) -> None:
    invoke("align", "--cache", str(cache), "--quiet")
    result = invoke("show", "001/nm-01/999", "--cache", str(cache), "--out", str(tmp_path / "x.png"))
    assert result.exit_code == 1 and "not in" in result.output and "001/nm-01/090" in result.output
    assert not (tmp_path / "x.png").exists()
    bad_key = invoke("show", "001-nm-01", "--cache", str(cache))
    assert bad_key.exit_code == 1 and "<subject>/<condition>/<view>" in bad_key.output


def test_sheet_of_several_sequences() -> None:
    rng = np.random.default_rng(0)
    seqs = []
    for i, t in enumerate((10, 3)):
        sil = (rng.random((t, 64, 64)) > 0.5).astype(np.uint8) * 255
        seqs.append(AlignedSequence(SequenceId(f"00{i}", "nm-01", "090"), sil, sil // 2, np.arange(t, dtype=np.int32)))
    image = sequences_sheet(seqs, frames_per_seq=4, scale=1)
    row_h = TITLE_H + 64 + 2 * GAP
    assert image.shape == (2 * row_h, 4 * 128 + 5 * GAP, 3)
    y, x = row_h + TITLE_H + GAP, 3 * (128 + GAP) + GAP  # the short sequence's 4th (empty) slot
    assert image[y : y + 64, x : x + 128].max() == 0
    assert image[y : y + 64, x - 128 - GAP : x - GAP].max() == 255  # its 3rd frame is drawn


def test_crops_sheet_cuts_each_person_from_its_frame(tmp_path: Path) -> None:
    """Frame t of the video is grey 30 + 10 t with a white person at x 40-60, y 20-100: each cell's left half is
    that person cut at the box (white, stretched to the cell), its right half the aligned silhouette."""
    video = tmp_path / "plaza camera 2.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (160, 120))
    for t in range(6):
        frame = np.full((120, 160, 3), 30 + 10 * t, np.uint8)
        frame[20:100, 40:60] = 250
        writer.write(frame)
    writer.release()
    sil = np.zeros((3, 64, 64), np.uint8)
    sil[:, 8:56, 24:40] = 255
    box = np.tile(np.array([40, 20, 60, 100], np.float32), (3, 1))
    box[2] = [0, 0, 160, 120]  # the last frame's box is the whole frame: grey around the person
    seq = AlignedSequence(SequenceId("plaza camera 2.1", "footage", "000"), sil, None, np.array([1, 3, 5], np.int32),
                          box=box, video=str(video))
    image = crops_sheet([seq, seq], frames_per_seq=4, height=80)
    assert image.shape == (2 * (80 + 2 * GAP), 150 + 4 * (80 + GAP) + GAP, 3)
    cells = [image[GAP : GAP + 80, 150 + GAP + j * (80 + GAP) : 150 + GAP + j * (80 + GAP) + 80] for j in range(4)]
    assert cells[0][:, :40].min() > 200 and cells[1][:, :40].min() > 200  # the person, box to box
    assert abs(int(np.median(cells[2][:, :40])) - 80) < 10  # frame 5's grey (30 + 50) around the person
    assert (cells[0][:, 40:, 0] > 127).sum() == (cv2.resize(sil[0], (40, 80), interpolation=cv2.INTER_NEAREST) > 0).sum()
    assert cells[3].max() == 40  # three frames: the 4th cell is left empty
    out = write_png(tmp_path / "sheet.jpg", image)
    assert out.read_bytes()[:2] == b"\xff\xd8" and cv2.imread(str(out)).shape == image.shape  # a JPEG


def test_surroundings_sheet_shows_who_stands_beside_the_box(tmp_path: Path) -> None:
    """A white walker at x 40-60, y 20-100 of a 160x120 grey frame, a red one beside it at x 70-90: each cell is
    the picture around the box (2.5 box heights high, so the whole 120 rows, and 160 wide), resized to 64x48,
    with the box drawn in yellow; the red neighbour, outside the box, shows in it."""
    video = tmp_path / "plaza camera 2.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (160, 120))
    for _ in range(4):
        frame = np.full((120, 160, 3), 90, np.uint8)
        frame[20:100, 40:60] = 250
        frame[20:100, 70:90] = (0, 0, 230)
        writer.write(frame)
    writer.release()
    sil = np.zeros((2, 64, 64), np.uint8)
    box = np.tile(np.array([40, 20, 60, 100], np.float32), (2, 1))
    seq = AlignedSequence(SequenceId("plaza camera 2.1", "footage", "000"), sil, None, np.array([1, 3], np.int32),
                          box=box, video=str(video))
    image = surroundings_sheet([seq], frames_per_seq=3, height=48)
    assert image.shape == (48 + 2 * GAP, 150 + 3 * (64 + GAP) + GAP, 3)
    cell = image[GAP : GAP + 48, 150 + GAP : 150 + GAP + 64].astype(int)
    red = (cell[..., 2] > 150) & (cell[..., 1] < 80)
    assert red[20:40, 30:34].all() and not red[:, :25].any()  # x 70-90 of 160 -> 28-36 of 64
    yellow = (cell[..., 1] > 180) & (cell[..., 2] > 180) & (cell[..., 0] < 100)
    assert yellow[:, 15:17].sum() > 10 and yellow[:, 23:25].sum() > 10  # the box's sides at x 40 and 60
    assert image[GAP : GAP + 48, 150 + GAP + 2 * 68 :].max() == 40  # two frames: the 3rd cell is left empty


def test_show_works_from_any_folder(tmp_path: Path, monkeypatch) -> None:
    """Extract ran in work/ with a relative video path; show runs elsewhere and still finds the frames."""
    work = tmp_path / "work"
    work.mkdir()
    write_video(work / "walk 1.avi", n_frames=11)
    make_cache(work / "cache", A, n_frames=9, video="walk 1.avi")
    monkeypatch.chdir(work)
    assert invoke("align", "--quiet").exit_code == 0
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    full = invoke("show", A.key, "--cache", str(work / "cache"), "--out", "full.png", "--max-frames", "4")
    assert full.exit_code == 0 and "raw frames" not in full.output, full.output
    boxes = invoke("show", A.key, "--data", str(work / "cache" / "aligned.h5"), "--out", "boxes.png",
                   "--max-frames", "4")
    assert boxes.exit_code == 0 and "box only" in boxes.output, boxes.output
    with_mask, box_only = cv2.imread("full.png").astype(int), cv2.imread("boxes.png").astype(int)
    assert with_mask.shape == box_only.shape  # both have the row of raw frames
    raw = slice(-(2 * 128 * 120 // 160) - GAP, -GAP)  # the row of raw frames, a cell wide each
    assert (with_mask[raw][..., 1] > with_mask[raw][..., 0] + 40).any()  # the silhouette tint ...
    assert not (box_only[raw][..., 1] > box_only[raw][..., 0] + 40).any()  # ... only where the cache is at hand
    assert (box_only[raw][..., 2] > 200).any()  # the red box is drawn from the aligned file's own boxes
