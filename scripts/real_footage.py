"""Real multi-person footage through `extract FILE` then `align`: PETS 2009 S2L1 (OpenCV's vtest.avi).

OpenCV's sample video ``vtest.avi`` is view 1 of PETS 2009 S2L1 (MOTChallenge 2D MOT 2015 ``PETS09-S2L1``):
795 frames, 768x576 at 10 frames/s, a static camera over a campus crossing where about 19 people walk
in groups, cross, stop, pass behind a sign post and a fluttering barrier tape, under changing sunlight.
Debian ships it in the ``opencv-doc`` package, so it is fetched from the package registry (apt-get download,
no root needed) unless ``--video`` names a copy. It is copied to a name with spaces that fits no manifest
(``plaza camera 2.avi``: footage, ``--tracks all``), extracted with background subtraction, and aligned.
Written: ``--json`` (the counts of ``depthgait-prep status`` and the speed), ``--sheet`` (every kept
track: the person cut from the frame beside the aligned silhouette, ``crops_sheet``) and ``--context`` (the
same frames in their surroundings with the box drawn, ``surroundings_sheet``)::

    .venv/bin/python scripts/real_footage.py --json docs/results/footage_pets09.json \\
        --sheet docs/real-footage-tracks.jpg --context docs/real-footage-context.jpg

The depth model defaults to the shipped synthetic one (Depth Anything's weights are not on this machine);
pass ``--depth depth-anything/Depth-Anything-V2-Small-hf`` where they are. Tracking and silhouettes do not
depend on it.
"""

# ruff: noqa: E402  (sys.path is set before the project's imports)
from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pipeline.align.batch import run_align
from pipeline.extract.batch import run_extract
from pipeline.extract.settings import ExtractSettings
from pipeline.formats.aligned import AlignedReader
from pipeline.tools.contact_sheet import crops_sheet, surroundings_sheet, write_png
from pipeline.tools.status import cache_status

SAMPLE = "usr/share/doc/opencv-doc/examples/data/vtest.avi"


def fetch_sample(folder: Path) -> Path:
    """``vtest.avi`` from Debian's ``opencv-doc`` package (apt-get download + dpkg-deb -x, into ``folder``)."""
    video = folder / "vtest.avi"
    if video.is_file():
        return video
    folder.mkdir(parents=True, exist_ok=True)
    try:
        subprocess.run(["apt-get", "download", "opencv-doc"], cwd=folder, check=True, capture_output=True)
        (deb,) = folder.glob("opencv-doc_*.deb")
        subprocess.run(["dpkg-deb", "-x", str(deb), str(folder / "x")], check=True, capture_output=True)
    except (OSError, subprocess.CalledProcessError, ValueError) as exc:
        sys.exit(f"cannot fetch Debian's opencv-doc ({exc}); download vtest.avi from OpenCV's samples/data "
                 "(https://github.com/opencv/opencv/tree/4.x/samples/data) and pass --video")
    shutil.move(str(folder / "x" / SAMPLE), video)
    shutil.rmtree(folder / "x")
    deb.unlink()
    return video


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--video", type=Path, help="a copy of vtest.avi (default: fetched from Debian's opencv-doc)")
    parser.add_argument("--work", type=Path, help="folder for the video, cache and aligned file (default: a temp one)")
    parser.add_argument("--depth", default="depthgait/synthdepth-small")
    parser.add_argument("--tracker", default="bytetrack", choices=["bytetrack", "botsort"])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--sheet", type=Path)
    parser.add_argument("--context", type=Path, help="the same frames in their surroundings, box drawn")
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="real-footage-"))
    source = args.video or fetch_sample(work / "download")
    video = work / "plaza camera 2.avi"
    if not video.exists():
        shutil.copy(source, video)
    settings = ExtractSettings(depth=args.depth, tracker=args.tracker, threads=args.threads)
    start = time.perf_counter()
    summary = run_extract(video, work / "cache", settings, overwrite=True)
    seconds = time.perf_counter() - start
    print(summary.line(work / "cache"))
    print(run_align(work / "cache", quiet=True, overwrite=True).summary())
    status = cache_status(work / "cache")
    with AlignedReader(work / "cache" / "aligned.h5") as reader:
        seqs = sorted((reader.load(i) for i in reader.ids()), key=lambda s: s.track)
    report = {
        "video": "PETS 2009 S2L1 view 1 (OpenCV vtest.avi), 768x576, 10 frames/s",
        "settings": {"detector": settings.detector, "segmenter": settings.segmenter, "tracker": settings.tracker,
                     "depth": settings.depth, "threads": settings.threads},
        "frames_decoded": status.frames_decoded,
        "tracking": status.tracking,
        "sequences": len(seqs),
        "frames_kept": int(sum(len(s.frames) for s in seqs)),
        "sequence_frames": [len(s.frames) for s in seqs],
        "extract_seconds": round(seconds, 1),
        "extract_frames_per_s": round(status.frames_decoded / seconds, 1),
    }
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=1) + "\n")
        print(f"wrote {args.json}")
    if args.sheet:
        print(f"wrote {write_png(args.sheet, crops_sheet(seqs, frames_per_seq=8, height=80))}")
    if args.context:
        print(f"wrote {write_png(args.context, surroundings_sheet(seqs, frames_per_seq=8, height=80))}")


if __name__ == "__main__":
    main()
