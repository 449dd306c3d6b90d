"""An aligned file from the synthetic generator's ground truth (true masks, true depth in metres).

A diagnostic for the depth-helps study: the same alignment (``pipeline.align.frames.align_frames``) as the
real pipeline, but with the generator's exact silhouette and metric depth instead of background
subtraction and the estimated depth. Training on it tells whether the network can use depth at all,
separately from how good the depth estimate is.

    python scripts/oracle_aligned.py videos/ --out oracle/aligned.h5
"""
from __future__ import annotations

import argparse
from pathlib import Path

import h5py
import numpy as np

from pipeline.align.frames import align_frames
from pipeline.formats.aligned import AlignedSequence, AlignedWriter
from pipeline.manifest import load_manifest
from pipeline.progress import progress


def oracle_sequence(truth: Path, manifest_name: str) -> AlignedSequence | None:
    """Crop every frame to its true box and align true mask + true depth (metres: near is small)."""
    with h5py.File(truth, "r") as h5:
        mask, depth, box = h5["mask"][()], h5["depth"][()], h5["box"][()]  # [T,H,W], [T,H,W], [T,4]
    frames = np.flatnonzero(box[:, 2] > box[:, 0])  # frames with the person in view
    crops_m = [mask[f, int(box[f, 1]):int(box[f, 3]), int(box[f, 0]):int(box[f, 2])].astype(np.uint8) * 255 for f in frames]
    crops_d = [depth[f, int(box[f, 1]):int(box[f, 3]), int(box[f, 0]):int(box[f, 2])] for f in frames]
    sil, dep, kept = align_frames(crops_m, crops_d, near_is_large=False)
    if kept.sum() < 5:
        return None
    seq_id = load_manifest(manifest_name).identify(truth.with_suffix(".avi"))
    return AlignedSequence(seq_id, sil, dep, frames[kept].astype(np.int32))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("videos", type=Path, help="a folder written by `depthgait-prep synth` (with truth/)")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--manifest", default="synthetic")
    args = parser.parse_args()
    truths = sorted((args.videos / "truth").glob("*.h5"))
    if not truths:
        raise SystemExit(f"{args.videos}/truth: no truth files")
    with AlignedWriter(args.out, {"oracle": True, "source": str(args.videos)}) as writer:
        for truth in progress(truths, desc="oracle", unit="seq"):
            seq = oracle_sequence(truth, args.manifest)
            if seq is not None:
                writer.add(seq)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
