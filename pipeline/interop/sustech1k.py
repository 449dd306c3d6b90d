"""Import SUSTech1K (Shen et al., CVPR 2023): its silhouettes, plus depth estimated from its RGB crops.

SUSTech1K ships, per sequence, the camera's RGB person crops and silhouettes of the same crops
(LiDAR data we do not use). Two release layouts exist, both read here (as documented by OpenGait's
``datasets/SUSTech1K/README.md`` and ``pretreatment_SUSTech1K.py``):

- raw (``SUSTech1K-Released-2023``): ``ROOT/<id>/<seq-type>/<view>/<modality>/<frame files>``, with
  modality folders ``RGB_raw`` (jpg crops, named by timestamp) and ``Sils_raw`` (silhouettes of the
  same crops; also ``Sils_aligned``, ``PCDs``, ``PCDs_depths``, ``Pose``, ... which we ignore);
- pkl (``SUSTech1K-Released-pkl``): ``ROOT/<id>/<seq-type>/<view>/NN-<view>-Camera-RGB_raw.pkl``
  (uint8 [T, 64, 64, 3], squashed to a square), ``NN-<view>-Camera-Sils_raw.pkl`` ([T, 64, 64]) and
  ``NN-<view>-Camera-Ratios-HW.pkl`` ([T, 2], the crop's original height and width); the ``-sync-``
  files (10 Hz, matched to the LiDAR) are ignored.

Assumptions (not stated by the release): ``Sils_raw`` frame ``k`` covers the same crop as ``RGB_raw``
frame ``k``; raw files pair by name stem (or, when no stems match and the counts agree, by sorted
order). ``Sils_aligned`` is already OpenGait-aligned and no longer pixel-matches the RGB crop, so we
align ``Sils_raw`` and the depth together with ``pipeline.align.frames``. The pkl release's 64x64 RGB gives
the depth model little to work with: prefer the raw release.
Subject ids are ``0000``..``1057``; sequence types such as ``00-nm``, ``01-bg``, ``04-cl``; views
such as ``000``, ``045``, ``090``. The train/test split comes from the manifest (``sustech1k``).
"""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np

from pipeline.align.frames import AlignSettings, align_canvas
from pipeline.errors import Failure, InputError
from pipeline.formats.aligned import AlignedSequence, AlignedWriter
from pipeline.geometry import CANVAS, pack_mask
from pipeline.interop.opengait import ImportResult, find_sequence_folders
from pipeline.interop.safe_pickle import PickleLoadError, load_pickle
from pipeline.manifest import SequenceId, load_manifest
from pipeline.progress import progress

if TYPE_CHECKING:
    from pipeline.depth.estimator import DepthEstimator

RGB_DIR, SIL_DIR = "RGB_raw", "Sils_raw"
IMAGE_EXTS = (".jpg", ".jpeg", ".png", ".bmp")
PKL_HEIGHT = 128  # a pkl-release crop is un-squashed to this height before depth


@dataclass
class CropSequence:
    """One sequence's RGB crops and silhouettes, frame ``k`` of both covering the same region."""

    rgb: list[np.ndarray]  # uint8 [h_k, w_k, 3] RGB
    sil: list[np.ndarray]  # uint8 [h_k, w_k], 0 / non-zero
    frames: np.ndarray  # int32 [T], index of each frame in the release's 30 Hz sequence


def layout_of(folder: Path) -> str | None:
    """``"raw"``, ``"pkl"`` or None (not a SUSTech1K sequence folder)."""
    if (folder / RGB_DIR).is_dir() and (folder / SIL_DIR).is_dir():
        return "raw"
    if _pkl_file(folder, "RGB_raw") is not None:
        return "pkl"
    return None


def _pkl_file(folder: Path, modality: str) -> Path | None:
    hits = sorted(p for p in folder.glob(f"*-Camera-{modality}.pkl") if "-sync-" not in p.name)
    return hits[0] if hits else None


def _images(folder: Path) -> dict[str, Path]:
    return {p.stem: p for p in sorted(folder.iterdir()) if p.suffix.lower() in IMAGE_EXTS}


def read_raw(folder: Path) -> CropSequence:
    """Raw layout: pair ``RGB_raw`` and ``Sils_raw`` files; a silhouette is resized onto its crop if needed."""
    rgb_files, sil_files = _images(folder / RGB_DIR), _images(folder / SIL_DIR)
    if not rgb_files or not sil_files:
        raise InputError(f"{folder}: {RGB_DIR}/ has {len(rgb_files)} images, {SIL_DIR}/ has {len(sil_files)}")
    common = sorted(set(rgb_files) & set(sil_files))
    if common:
        index = {stem: i for i, stem in enumerate(sorted(rgb_files))}  # position in the 30 Hz sequence
        pairs = [(rgb_files[s], sil_files[s], index[s]) for s in common]
    elif len(rgb_files) == len(sil_files):
        pairs = [(r, s, i) for i, (r, s) in enumerate(zip(rgb_files.values(), sil_files.values(), strict=True))]
    else:
        raise InputError(f"{folder}: {len(rgb_files)} RGB and {len(sil_files)} silhouette files share no names")
    rgbs, sils = [], []
    for rgb_path, sil_path, _ in pairs:
        bgr = cv2.imread(str(rgb_path), cv2.IMREAD_COLOR)
        sil = cv2.imread(str(sil_path), cv2.IMREAD_GRAYSCALE)
        if bgr is None or sil is None:
            raise InputError(f"{rgb_path if bgr is None else sil_path}: not a readable image")
        if sil.shape != bgr.shape[:2]:
            sil = cv2.resize(sil, (bgr.shape[1], bgr.shape[0]), interpolation=cv2.INTER_NEAREST)
        rgbs.append(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
        sils.append(sil)
    return CropSequence(rgbs, sils, np.asarray([i for _, _, i in pairs], dtype=np.int32))


def read_pkl(folder: Path) -> CropSequence:
    """pkl layout: un-squash the 64x64 RGB and silhouettes to each crop's aspect ratio (height 128)."""
    paths = {m: _pkl_file(folder, m) for m in ("RGB_raw", "Sils_raw", "Ratios-HW")}
    missing = [m for m, p in paths.items() if p is None]
    if missing:
        raise InputError(f"{folder}: no *-Camera-{missing[0]}.pkl")
    rgb, sil, hw = (np.asarray(load_pickle(p)) for p in paths.values())  # type: ignore[arg-type]
    if rgb.ndim != 4 or rgb.shape[-1] != 3 or rgb.dtype != np.uint8:
        raise InputError(f"{paths['RGB_raw']}: expected uint8 [T, H, W, 3], got {rgb.dtype} {list(rgb.shape)}")
    if sil.ndim != 3 or sil.dtype != np.uint8:
        raise InputError(f"{paths['Sils_raw']}: expected uint8 [T, H, W], got {sil.dtype} {list(sil.shape)}")
    if not (len(rgb) == len(sil) == len(hw)) or hw.ndim != 2 or hw.shape[1] != 2:
        raise InputError(f"{folder}: RGB {list(rgb.shape)}, silhouettes {list(sil.shape)}, ratios {list(hw.shape)} do not match")
    rgbs, sils = [], []
    for k in range(len(rgb)):
        h, w = (float(x) for x in hw[k])
        width = max(1, int(round(PKL_HEIGHT * w / max(h, 1.0))))
        rgbs.append(cv2.resize(rgb[k], (width, PKL_HEIGHT), interpolation=cv2.INTER_CUBIC))
        sils.append(cv2.resize(sil[k], (width, PKL_HEIGHT), interpolation=cv2.INTER_LINEAR))
    return CropSequence(rgbs, sils, np.arange(len(rgb), dtype=np.int32))


def align_crops(
    seq_id: SequenceId, crops: CropSequence, estimator: DepthEstimator, settings: AlignSettings
) -> tuple[AlignedSequence | None, int]:
    """Depth of every crop, then both modalities through the same canvas and OpenGait alignment.

    The mask is packed on the canvas exactly as ``DepthEstimator`` packs its output, so pixel (i, j)
    of both is the same point of the crop. Returns the sequence (None when too short) and frames kept.
    """
    depth_canvas = estimator.estimate(crops.rgb)  # float32 [T, 128, 96]
    packed = [pack_mask(sil > 127) for sil in crops.sil]  # (uint8 [128, 96], valid (h', w') top-left) each
    masks = np.stack([m for m, _ in packed]) if packed else np.zeros((0, *CANVAS), np.uint8)
    sizes = np.array([s for _, s in packed], np.int32).reshape(-1, 2)
    seq, kept = align_canvas(seq_id, masks, depth_canvas, sizes, crops.frames, estimator.near_is_large, settings)
    return seq, int(kept.sum())


def find_sequences(root: Path) -> Iterator[tuple[SequenceId, Path, str | None]]:
    for seq_id, folder in find_sequence_folders(root):
        yield seq_id, folder, layout_of(folder)


def import_sustech1k(
    root: str | Path,
    out: str | Path,
    depth_model: str = "depth-anything/Depth-Anything-V2-Small-hf",
    device: str = "cpu",
    batch_size: int = 16,
    manifest: str = "sustech1k",
    settings: AlignSettings | None = None,
    estimator: DepthEstimator | None = None,
    quiet: bool = False,
) -> ImportResult:
    """Read a SUSTech1K release (raw or pkl layout) into a new ``aligned.h5`` with depth.

    The depth model loads once (or pass ``estimator``). A sequence that cannot be read or keeps
    fewer than ``settings.min_frames`` frames is listed in the result and skipped.
    """
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: no such folder (expected SUSTech1K <id>/<seq-type>/<view>/)")
    settings = settings or AlignSettings()
    load_manifest(manifest)  # a wrong name fails before the depth model loads
    found = list(find_sequences(root))
    sequences = [(s, f, kind) for s, f, kind in found if kind is not None]
    if not sequences:
        raise InputError(
            f"{root}: no SUSTech1K sequence folders (<id>/<seq-type>/<view>/ with {RGB_DIR}/ + {SIL_DIR}/, "
            "or *-Camera-RGB_raw.pkl)"
        )
    if estimator is None:
        from pipeline.depth.estimator import DepthEstimator

        estimator = DepthEstimator(depth_model, device=device, batch_size=batch_size)
    result = ImportResult(Path(out))
    result.failed.extend(  # folders of other material (Meta/, ...) are not subject ids: ignored
        Failure(str(f), "import", f"{f}: no {RGB_DIR}/ + {SIL_DIR}/ or Camera pkls")
        for s, f, kind in found
        if kind is None and s.subject.isdigit()
    )
    file_settings: dict[str, Any] = {
        "imported_from": {"format": "sustech1k", "root": str(root)},
        "manifest": manifest,
        "depth_model": estimator.name,
        "depth_near_is_large": bool(estimator.near_is_large),
        "align": settings.to_dict(),
    }
    with AlignedWriter(out, file_settings) as writer:  # renamed into place only when every sequence is written
        for seq_id, folder, kind in progress(sequences, desc="sustech1k", unit="seq", disable=quiet):
            try:
                crops = read_raw(folder) if kind == "raw" else read_pkl(folder)
                seq, kept = align_crops(seq_id, crops, estimator, settings)
            except (PickleLoadError, ValueError, OSError, cv2.error) as exc:
                result.failed.append(Failure(str(folder), "import", str(exc)))
                continue
            if seq is None:
                result.failed.append(Failure(str(folder), "align", f"{folder}: only {kept} usable frames (< {settings.min_frames})"))
                continue
            writer.add(seq)
            result.imported += 1
            result.with_depth += 1
        if not result.imported:
            raise InputError(f"{root}: no sequence could be imported; first problem: {result.failed[0].error}")
    return result

