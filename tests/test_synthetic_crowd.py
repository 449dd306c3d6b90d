"""Synthetic crowds: several walkers in one video whose per-pixel truth agrees with the pixels and depth order."""
from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import h5py
import numpy as np
import pytest
from click.testing import CliRunner

from cli.prep import main as prep_main
from pipeline.errors import InputError
from pipeline.synthetic.crowd import generate_crowds, read_crowd_truth, render_crowd, scene_walkers
from pipeline.synthetic.dataset import mask_boxes, subject_params
from pipeline.synthetic.render import background
from tests.test_synthetic import THRESHOLD, decode

PEOPLE, FRAMES, SIZE = 3, 40, (160, 120)


@pytest.fixture(scope="module")
def crowd_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One small scene through the real CLI: 3 walkers, 40 frames, 160x120, one view."""
    out = tmp_path_factory.mktemp("crowd")
    result = CliRunner().invoke(prep_main, ["synth", str(out), "--people", str(PEOPLE), "--views", "090",
                                            "--conditions", "nm-01,bg-01,cl-01", "--frames", str(FRAMES),
                                            "--size", "160x120", "--quiet"])
    assert result.exit_code == 0, result.output
    return out


def test_cli_writes_scene_videos_truth_and_background(crowd_dir: Path) -> None:
    assert sorted(p.name for p in crowd_dir.glob("*.avi")) == ["bkgrd-090.avi", "scene-1-090.avi"]
    assert [p.name for p in (crowd_dir / "truth").glob("*.h5")] == ["scene-1-090.h5"]
    with h5py.File(crowd_dir / "truth" / "scene-1-090.h5", "r") as h5:
        assert h5["person"].shape == (FRAMES, 120, 160) and h5["person"].dtype == np.uint8
        assert h5["boxes"].shape == (PEOPLE, FRAMES, 4) and h5["boxes"].dtype == np.float32
        assert h5["depth"].shape == (FRAMES, 120, 160)
        assert json.loads(h5.attrs["subjects"]) == [1, 2, 3]
    assert len(decode(crowd_dir / "scene-1-090.avi")) == FRAMES


def test_truth_agrees_with_the_pixels(crowd_dir: Path) -> None:
    truth = read_crowd_truth(crowd_dir / "truth" / "scene-1-090.h5")
    rgb = decode(crowd_dir / "scene-1-090.avi")
    moved = np.abs(rgb.astype(np.int16) - background("090", SIZE).astype(np.int16)).max(-1) > THRESHOLD
    on = truth.person > 0
    assert (moved & ~on).sum() < 1e-3 * (~on).sum()  # the background is the background, up to noise
    assert (moved & on).sum() > 0.9 * on.sum()  # people stand out
    assert set(np.unique(truth.person)) == {0, 1, 2, 3}  # every walker is seen somewhere
    with h5py.File(crowd_dir / "truth" / "scene-1-090.h5", "r") as h5:
        depth = h5["depth"][()]
    assert np.array_equal(depth > 0, on)
    assert 4.0 < depth[on].min() and depth[on].max() < 13.0  # metres, a plaza seen from 1.5 m up
    for p in range(PEOPLE):
        seen = truth.person == p + 1
        present = seen.any((1, 2))
        assert np.array_equal(truth.visible[p], seen.sum((1, 2)))
        assert np.isnan(truth.boxes[p][~present]).all()
        assert np.array_equal(truth.boxes[p][present], mask_boxes(seen[present]))


def test_walkers_are_different_subjects_with_their_own_ways() -> None:
    walkers = scene_walkers(1, [1, 2, 3], ["nm-01"], FRAMES, seed=0)
    assert [w.subject for w in walkers] == [subject_params(i, 0) for i in (1, 2, 3)]
    assert len({round(w.heading, 6) for w in walkers}) == 3
    assert len({round(w.subject.speed * w.walk.speed_jitter ** 2, 6) for w in walkers}) == 3


def test_the_nearer_walker_hides_the_farther_one() -> None:
    near, far = scene_walkers(1, [1, 2], ["nm-01"], 20, seed=0)
    # Both cross the image centre line at the same moment, 6 m and 10 m from the camera.
    near = replace(near, heading=np.deg2rad(90.0), crossing=(0.0, 6.0), crossing_time=0.4)
    far = replace(far, heading=np.deg2rad(270.0), crossing=(0.0, 10.0), crossing_time=0.4)
    crowd = render_crowd([near, far], "090", frames=20, size=SIZE)
    near_alone = render_crowd([near], "090", frames=20, size=SIZE)
    far_alone = render_crowd([far], "090", frames=20, size=SIZE)
    f = 10
    overlap = (near_alone.person[f] == 1) & (far_alone.person[f] == 1)
    assert overlap.sum() > 0.3 * far_alone.visible[0, f]  # the near one covers much of the far one
    assert (crowd.person[f][overlap] == 1).all()  # the nearer surface owns every shared pixel
    assert np.array_equal(crowd.person[f] == 2, (far_alone.person[f] == 1) & ~overlap)
    assert crowd.visible[1, f] == far_alone.visible[0, f] - overlap.sum()
    assert np.allclose(crowd.depth[f][overlap], near_alone.depth[f][overlap])
    assert np.array_equal(crowd.full_boxes[1, f], far_alone.boxes[0, f])  # the box ignoring the others


def test_walkers_enter_and_leave_the_picture() -> None:
    (walker,) = scene_walkers(1, [1], ["nm-01"], FRAMES, seed=0)
    leaving = replace(walker, heading=np.deg2rad(90.0), crossing=(1.0, 6.0), crossing_time=0.0)
    entering = replace(walker, heading=np.deg2rad(90.0), crossing=(-1.0, 6.0), crossing_time=FRAMES / 25)
    out = render_crowd([leaving], "090", FRAMES, SIZE).visible[0]
    into = render_crowd([entering], "090", FRAMES, SIZE).visible[0]
    assert out[0] > 0 and out[-1] == 0
    assert into[0] == 0 and into[-1] > 0


def test_same_seed_same_scene_and_views_show_the_same_walks() -> None:
    walkers = scene_walkers(2, [4, 5], ["nm-01", "bg-01"], 4, seed=3)
    a = render_crowd(walkers, "090", 4, (64, 48), seed=3, scene=2)
    b = render_crowd(scene_walkers(2, [4, 5], ["nm-01", "bg-01"], 4, seed=3), "090", 4, (64, 48), seed=3, scene=2)
    assert np.array_equal(a.rgb, b.rgb) and np.array_equal(a.person, b.person)
    other = render_crowd(walkers, "000", 4, (64, 48), seed=3, scene=2)
    assert other.meta["walkers"] == a.meta["walkers"]  # same walks, another side
    assert not np.array_equal(other.person, a.person)


def test_bad_requests_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="people"):
        generate_crowds(tmp_path, people=0)
    with pytest.raises(InputError, match="view"):
        generate_crowds(tmp_path, people=2, views=["90"])
