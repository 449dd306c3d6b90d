"""docs/crowd-tracks.png: every kept track of one synthetic crowd video, through extract FILE then align.

A 3-walker scene (80 frames, 320x240, view 090, seed 0) copied to a name no manifest knows
(``plaza camera 2.avi``: footage, ``--tracks all``), extracted with bgsub, aligned, and each
sequence's sheet stacked with its raw frames (box drawn, silhouette tinted green):

    .venv/bin/python scripts/crowd_contact_sheet.py --out docs/crowd-tracks.png
"""

# ruff: noqa: E402  (sys.path is set before the project's imports)
from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pipeline.align.batch import run_align
from pipeline.extract.batch import run_extract
from pipeline.extract.settings import ExtractSettings
from pipeline.synthetic.crowd import generate_crowds
from pipeline.tools.contact_sheet import tracks_sheet, write_png


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="docs/crowd-tracks.png")
    parser.add_argument("--depth", default="depthgait/synthdepth-small")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="crowd-sheet-"))
    (scene,) = generate_crowds(work / "render", people=3, frames=80, size=(320, 240), seed=0, quiet=True)
    video = work / "plaza camera 2.avi"
    shutil.copy(scene, video)
    summary = run_extract(video, work / "cache", ExtractSettings(depth=args.depth), quiet=True)
    print(summary.line(work / "cache"))
    run_align(work / "cache", quiet=True)
    out = write_png(args.out, tracks_sheet(work / "cache" / "aligned.h5", work / "cache"))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
