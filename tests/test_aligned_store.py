import h5py
import numpy as np
import pytest

from pipeline.atomic import atomic_path
from pipeline.formats.aligned import AlignedFormatError, AlignedReader, AlignedSequence, AlignedWriter
from pipeline.manifest import SequenceId


def _seq(subject: str, t: int, with_depth: bool = True) -> AlignedSequence:
    rng = np.random.default_rng(int(subject))
    sil = (rng.random((t, 64, 64)) > 0.5).astype(np.uint8) * 255
    depth = (rng.integers(1, 256, (t, 64, 64)) * (sil > 0)).astype(np.uint8) if with_depth else None
    return AlignedSequence(SequenceId(subject, "nm-01", "090"), sil, depth, np.arange(t, dtype=np.int32) * 2)


def test_round_trip_is_exact(tmp_path):
    path = tmp_path / "aligned.h5"
    seqs = [_seq("002", 7), _seq("001", 5, with_depth=False)]
    with AlignedWriter(path, settings={"made_by": "test"}) as writer:
        for s in seqs:
            writer.add(s)
    with AlignedReader(path) as reader:
        assert reader.ids() == [SequenceId("001", "nm-01", "090"), SequenceId("002", "nm-01", "090")]
        assert reader.settings == {"made_by": "test"}
        back = reader.load(SequenceId("002", "nm-01", "090"))
        np.testing.assert_array_equal(back.sil, seqs[0].sil)
        np.testing.assert_array_equal(back.depth, seqs[0].depth)
        np.testing.assert_array_equal(back.frames, seqs[0].frames)
        assert not reader.has_depth(SequenceId("001", "nm-01", "090"))
        assert reader.length(SequenceId("001", "nm-01", "090")) == 5


def test_failed_write_leaves_no_file(tmp_path):
    path = tmp_path / "aligned.h5"
    with pytest.raises(RuntimeError):
        with AlignedWriter(path) as writer:
            writer.add(_seq("001", 3))
            raise RuntimeError("killed")
    assert not path.exists()
    assert list(tmp_path.iterdir()) == []


def test_atomic_path_keeps_old_file_on_failure(tmp_path):
    final = tmp_path / "report.json"
    final.write_text("old")
    with pytest.raises(ValueError):
        with atomic_path(final) as tmp:
            tmp.write_text("half")
            raise ValueError("stop")
    assert final.read_text() == "old"
    with atomic_path(final) as tmp:
        tmp.write_text("new")
    assert final.read_text() == "new" and len(list(tmp_path.iterdir())) == 1


def test_wrong_shapes_and_foreign_files_are_clear_errors(tmp_path):
    with pytest.raises(AlignedFormatError, match="001/nm-01/090"):
        AlignedSequence(SequenceId("001", "nm-01", "090"), np.zeros((3, 64, 44), np.uint8), None, np.arange(3))
    other = tmp_path / "other.h5"
    with h5py.File(other, "w") as h5:
        h5.attrs["format"] = "something-else"
    with pytest.raises(AlignedFormatError, match="other.h5"):
        AlignedReader(other)
    with pytest.raises(AlignedFormatError, match="align"):
        AlignedReader(tmp_path / "missing.h5")


def test_box_video_and_track_round_trip_and_old_files_still_read(tmp_path):
    base = _seq("003", 4)
    box = np.arange(16, dtype=np.float32).reshape(4, 4)
    seq = AlignedSequence(base.id, base.sil, base.depth, base.frames, box=box, video="/data/plaza 2.avi", track=3)
    path = tmp_path / "aligned.h5"
    with AlignedWriter(path) as writer:
        writer.add(seq)
        writer.add(_seq("004", 2))
    with AlignedReader(path) as reader:
        back = reader.load(seq.id)
        assert back.video == "/data/plaza 2.avi" and back.track == 3
        np.testing.assert_array_equal(back.box, box)
        plain = reader.load(SequenceId("004", "nm-01", "090"))
        assert plain.box is None and plain.video is None and plain.track == 0
    with h5py.File(path, "a") as h5:  # a file written before box, video and track existed
        del h5["003/nm-01/090/box"]
        del h5["003/nm-01/090"].attrs["video"]
        del h5["003/nm-01/090"].attrs["track"]
    with AlignedReader(path) as reader:
        old = reader.load(seq.id)
        assert old.box is None and old.video is None and old.track == 0
        np.testing.assert_array_equal(old.sil, seq.sil)
    with pytest.raises(AlignedFormatError, match=r"box must be \[4, 4\]"):
        AlignedSequence(base.id, base.sil, base.depth, base.frames, box=box[:3])
