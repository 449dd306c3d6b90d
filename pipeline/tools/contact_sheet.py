"""Contact sheets: the pictures a person looks at to trust a cache (``depthgait-prep show``, the demo).

Layout of one sequence's sheet (all sizes in pixels, ``s`` = ``scale``, ``g`` = ``GAP``):

- a title bar ``TITLE_H`` high;
- a grid of cells, ``cols`` per row, each cell the aligned silhouette and the aligned depth side by side
  (``128 s`` wide, ``64 s`` high), with the source frame index written on it; ``g`` between cells and
  around the grid, so the width is ``cols * 128 s + (cols + 1) g``;
- when the video is at hand, one more row of raw frames (``128 s`` wide, the video's aspect) with
  the person box in red and the silhouette tinted green, so a wrong box or mask is obvious.

Depth is drawn with the inferno colour map (bright yellow = near), black outside the silhouette.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from pipeline.atomic import atomic_path
from pipeline.errors import InputError
from pipeline.formats.aligned import AlignedReader, AlignedSequence
from pipeline.formats.video_cache import VideoCache, absolute_video, cache_path, read_video_cache
from pipeline.geometry import unpack_canvas
from pipeline.manifest import SequenceId

GAP = 4
TITLE_H = 24
FONT = cv2.FONT_HERSHEY_SIMPLEX


def depth_colour(depth: np.ndarray) -> np.ndarray:
    """uint8 depth [H, W] -> BGR [H, W, 3]; black where the depth is 0 (outside the silhouette)."""
    rgb = cv2.applyColorMap(depth, cv2.COLORMAP_INFERNO)  # [H, W, 3]
    rgb[depth == 0] = 0
    return rgb


def frame_cell(sil: np.ndarray, depth: np.ndarray | None, scale: int, label: str = "") -> np.ndarray:
    """One aligned frame as BGR [64 s, 128 s, 3]: silhouette left, depth right (grey when there is none)."""
    left = cv2.cvtColor(sil, cv2.COLOR_GRAY2BGR)  # [64, 64, 3]
    right = depth_colour(depth) if depth is not None else np.full_like(left, 64)
    cell = np.concatenate([left, right], axis=1)  # [64, 128, 3]
    cell = cv2.resize(cell, None, fx=scale, fy=scale, interpolation=cv2.INTER_NEAREST)  # [64 s, 128 s, 3]
    if label:
        cv2.putText(cell, label, (3, 12), FONT, 0.35, (0, 200, 255), 1, cv2.LINE_AA)
    return cell


def sample_indices(n: int, k: int) -> np.ndarray:
    """Up to ``k`` indices spread evenly over ``range(n)`` (all of them when n <= k)."""
    if n <= k:
        return np.arange(n)
    return np.unique(np.linspace(0, n - 1, k).round().astype(int))


def grid(cells: list[np.ndarray], cols: int, background: int = 40) -> np.ndarray:
    """Tile equal-size cells ``cols`` per row with ``GAP`` between and around them."""
    h, w = cells[0].shape[:2]
    rows = -(-len(cells) // cols)
    out = np.full((rows * (h + GAP) + GAP, cols * (w + GAP) + GAP, 3), background, np.uint8)
    for i, cell in enumerate(cells):
        y, x = GAP + (i // cols) * (h + GAP), GAP + (i % cols) * (w + GAP)
        out[y : y + h, x : x + w] = cell
    return out


def title_bar(text: str, width: int) -> np.ndarray:
    bar = np.full((TITLE_H, width, 3), 20, np.uint8)
    cv2.putText(bar, text, (GAP, TITLE_H - 8), FONT, 0.5, (255, 255, 255), 1, cv2.LINE_AA)
    return bar


def decode_frames(video: str | Path, wanted: list[int]) -> dict[int, np.ndarray]:
    """BGR frames ``wanted`` (sorted source indices) of a video, read forward (seeking is inexact for many codecs)."""
    capture = cv2.VideoCapture(str(video))
    if not capture.isOpened():
        raise FileNotFoundError(f"{video}: cannot open the video")
    decoded: dict[int, np.ndarray] = {}
    index = 0
    try:
        while wanted and index <= wanted[-1]:
            ok, image = capture.read()
            if not ok:
                break
            if index in wanted:
                decoded[index] = image
            index += 1
    finally:
        capture.release()
    return decoded


def _panel(image: np.ndarray, f: int, width: int) -> np.ndarray:
    height = max(1, round(width * image.shape[0] / image.shape[1]))
    panel = cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA)
    cv2.putText(panel, f"frame {f}", (3, height - 5), FONT, 0.4, (255, 255, 255), 1, cv2.LINE_AA)
    return panel


def raw_panels(cache: VideoCache, frames: list[int], width: int, video: str | Path | None = None) -> list[np.ndarray]:
    """Decode ``frames`` (source indices present in ``cache``), draw box and mask, scale to ``width``.

    ``video`` overrides the cache's own path (the aligned file's absolute one, say)."""
    rows = {int(f): i for i, f in enumerate(cache.frames)}
    wanted = sorted(f for f in set(frames) if f in rows)
    decoded = decode_frames(video or cache.video, wanted)
    panels = []
    for f in wanted:
        if f not in decoded:
            continue
        image = decoded[f].copy()  # BGR [H, W, 3]
        i = rows[f]
        x0, y0, x1, y1 = (int(v) for v in cache.crop_box[i])
        region = image[y0:y1, x0:x1]
        if region.size:
            mask = unpack_canvas(cache.mask[i], cache.crop_size[i])
            mask = cv2.resize(mask, (region.shape[1], region.shape[0]), interpolation=cv2.INTER_NEAREST) > 0
            region[mask] = (0.5 * region[mask] + np.array([0, 127, 0])).astype(np.uint8)
        bx0, by0, bx1, by1 = (int(round(v)) for v in cache.box[i])
        cv2.rectangle(image, (bx0, by0), (bx1, by1), (0, 0, 255), 2)
        panels.append(_panel(image, f, width))
    return panels


def box_panels(seq: AlignedSequence, frames: list[int], width: int) -> list[np.ndarray]:
    """Raw frames with the person box only, from what the aligned file itself holds (video and box)."""
    if seq.video is None or seq.box is None:
        return []
    rows = {int(f): i for i, f in enumerate(seq.frames)}
    wanted = sorted(f for f in set(frames) if f in rows)
    decoded = decode_frames(seq.video, wanted)
    panels = []
    for f in wanted:
        if f in decoded:
            image = decoded[f].copy()
            bx0, by0, bx1, by1 = (int(round(v)) for v in seq.box[rows[f]])
            cv2.rectangle(image, (bx0, by0), (bx1, by1), (0, 0, 255), 2)
            panels.append(_panel(image, f, width))
    return panels


def sequence_sheet(
    seq: AlignedSequence, max_frames: int = 16, cols: int = 8, scale: int = 2, cache: VideoCache | None = None,
    boxes_only: bool = False,
) -> np.ndarray:
    """One sequence's sheet (BGR); raw frames are added when ``cache`` is given and its video opens
    (box and silhouette drawn), or with ``boxes_only`` from the sequence's own video and boxes."""
    if len(seq.frames) == 0:
        raise InputError(f"{seq.id.key}: the sequence has no frames to show")
    idx = sample_indices(len(seq.frames), max_frames)
    cells = [
        frame_cell(seq.sil[i], None if seq.depth is None else seq.depth[i], scale, str(int(seq.frames[i]))) for i in idx
    ]
    cols = max(1, min(cols, len(cells)))
    parts = [grid(cells, cols)]
    if cache is not None or boxes_only:
        picks = [int(seq.frames[i]) for i in idx[sample_indices(len(idx), cols)]]
        width = cells[0].shape[1]  # panels as wide as a cell
        panels = raw_panels(cache, picks, width, seq.video) if cache is not None else box_panels(seq, picks, width)
        if panels:
            raw = grid(panels, cols)
            parts.append(raw[GAP:])  # the grid above already ends with a gap
    body = np.concatenate(parts, axis=0)
    title = f"{seq.id.key}  {len(seq.frames)} frames  (left: silhouette, right: depth, near = bright)"
    return np.concatenate([title_bar(title, body.shape[1]), body], axis=0)


def sequences_sheet(seqs: list[AlignedSequence], frames_per_seq: int = 8, scale: int = 1) -> np.ndarray:
    """Several sequences, one row each with its key (for the demo and reports)."""
    if not seqs:
        raise InputError("no sequences to show")
    rows = []
    for seq in seqs:
        idx = sample_indices(len(seq.frames), frames_per_seq)
        cells = [frame_cell(seq.sil[i], None if seq.depth is None else seq.depth[i], scale) for i in idx]
        cells += [np.zeros_like(cells[0])] * (frames_per_seq - len(cells))  # short sequences keep the columns
        row = grid(cells, frames_per_seq)
        rows.append(np.concatenate([title_bar(f"{seq.id.key} ({len(seq.frames)} frames)", row.shape[1]), row], axis=0))
    return np.concatenate(rows, axis=0)


Frames = dict[str, dict[int, np.ndarray]]  # video path -> source frame index -> BGR frame


def decode_samples(seqs: list[AlignedSequence], frames_per_seq: int) -> Frames:
    """The frames ``sampled_images`` shows of each of ``seqs``, each video read forward once for all its
    sequences (reading it again per sequence took 30 s for a sheet of PETS 2009's 53 tracks)."""
    wanted: dict[str, set[int]] = {}
    for seq in seqs:
        if seq.video is not None and seq.box is not None:
            idx = sample_indices(len(seq.frames), frames_per_seq)
            wanted.setdefault(str(seq.video), set()).update(int(seq.frames[i]) for i in idx)
    return {video: decode_frames(video, sorted(frames)) for video, frames in wanted.items()}


def sampled_images(seq: AlignedSequence, frames_per_seq: int, decoded: Frames | None = None) -> list[tuple[int, np.ndarray]]:
    """``(index into seq, BGR source frame)`` for ``frames_per_seq`` frames spread over ``seq`` whose frame
    decodes; [] when the video or the boxes are not at hand. ``decoded``: from ``decode_samples``."""
    if seq.video is None or seq.box is None:
        return []
    decoded = decoded if decoded is not None else decode_samples([seq], frames_per_seq)
    images = decoded.get(str(seq.video), {})
    idx = sample_indices(len(seq.frames), frames_per_seq)
    return [(int(i), images[int(seq.frames[i])]) for i in idx if int(seq.frames[i]) in images]


def person_crops(seq: AlignedSequence, frames_per_seq: int, height: int = 96,
                 decoded: Frames | None = None) -> list[np.ndarray]:
    """For ``frames_per_seq`` frames spread over ``seq``: the source frame cut at the person box (the
    person as the camera saw them, which a whole-frame thumbnail of real footage is too small to show)
    beside the aligned silhouette, BGR [height, height, 3] each; [] when the video is not at hand."""
    half = height // 2
    cells = []
    for i, image in sampled_images(seq, frames_per_seq, decoded):
        x0, y0, x1, y1 = (int(round(v)) for v in seq.box[i])
        crop = image[max(0, y0) : max(y0 + 1, y1), max(0, x0) : max(x0 + 1, x1)]
        crop = cv2.resize(crop, (half, height), interpolation=cv2.INTER_AREA) if crop.size else np.zeros((height, half, 3), np.uint8)
        sil = cv2.resize(seq.sil[i], (half, height), interpolation=cv2.INTER_NEAREST)
        cells.append(np.concatenate([crop, cv2.cvtColor(sil, cv2.COLOR_GRAY2BGR)], axis=1))
    return cells


def surroundings(seq: AlignedSequence, frames_per_seq: int, height: int = 96, reach: float = 2.5,
                 decoded: Frames | None = None) -> list[np.ndarray]:
    """For the frames ``person_crops`` samples: the picture around the person box (``reach`` times the box's
    height, 4:3, kept inside the frame) with the box drawn, BGR [height, 4/3 height, 3] each; [] without the
    video. A crop alone cannot say who stands next to the box or whether the next crop is the same walker:
    on PETS 2009 clutter stretched into a box made one man look like another, and a second person showed
    only beside the box."""
    cells = []
    for i, image in sampled_images(seq, frames_per_seq, decoded):
        image = image.copy()
        ih, iw = image.shape[:2]
        x0, y0, x1, y1 = (float(v) for v in seq.box[i])
        wh = int(min(ih, max(8.0, reach * (y1 - y0))))
        ww = int(min(iw, round(wh * 4 / 3)))
        left = int(np.clip((x0 + x1) / 2 - ww / 2, 0, iw - ww))
        top = int(np.clip((y0 + y1) / 2 - wh / 2, 0, ih - wh))
        cv2.rectangle(image, (round(x0), round(y0)), (round(x1), round(y1)), (0, 255, 255), 2)
        window = image[top : top + wh, left : left + ww]
        cell = cv2.resize(window, (height * 4 // 3, height), interpolation=cv2.INTER_AREA)
        cv2.putText(cell, str(int(seq.frames[i])), (3, 12), FONT, 0.4, (0, 255, 255), 1, cv2.LINE_AA)
        cells.append(cell)
    return cells


def _rows_sheet(seqs: list[AlignedSequence], cells: Callable[[AlignedSequence, Frames], list[np.ndarray]],
                frames_per_seq: int, cell_w: int, height: int) -> np.ndarray:
    """One row per sequence: its subject and frame count, then its ``cells`` (BGR [height, cell_w, 3] each,
    made from the frames ``decode_samples`` read once for all of ``seqs``)."""
    if not seqs:
        raise InputError("no sequences to show")
    decoded = decode_samples(seqs, frames_per_seq)
    label_w = 150
    width = label_w + frames_per_seq * (cell_w + GAP) + GAP
    rows = []
    for seq in seqs:
        row = np.full((height + 2 * GAP, width, 3), 40, np.uint8)
        for j, cell in enumerate(cells(seq, decoded)):
            x = label_w + GAP + j * (cell_w + GAP)
            row[GAP : GAP + height, x : x + cell_w] = cell
        cv2.putText(row, seq.id.subject[-24:], (GAP, height // 2), FONT, 0.45, (255, 255, 255), 1, cv2.LINE_AA)
        cv2.putText(row, f"{len(seq.frames)} frames", (GAP, height // 2 + 18), FONT, 0.4, (180, 180, 180), 1, cv2.LINE_AA)
        rows.append(row)
    return np.concatenate(rows, axis=0)


def crops_sheet(seqs: list[AlignedSequence], frames_per_seq: int = 10, height: int = 96) -> np.ndarray:
    """The tracks of a crowd video at a glance: one row per sequence, its key then ``person_crops``, so a
    track that holds two people or switches person shows at once (BGR)."""
    return _rows_sheet(seqs, lambda seq, decoded: person_crops(seq, frames_per_seq, height, decoded=decoded),
                       frames_per_seq, height, height)


def surroundings_sheet(seqs: list[AlignedSequence], frames_per_seq: int = 8, height: int = 96) -> np.ndarray:
    """``crops_sheet``'s frames in their surroundings (``surroundings``): one row per sequence (BGR)."""
    return _rows_sheet(seqs, lambda seq, decoded: surroundings(seq, frames_per_seq, height, decoded=decoded),
                       frames_per_seq, height * 4 // 3, height)


def write_png(path: str | Path, image: np.ndarray) -> Path:
    """Encode and write atomically; the folder is created. A ``.jpg`` path is written as JPEG (quality 90):
    crops of real footage are photographs, a fifth of the PNG's size."""
    path = Path(path)
    ext = ".jpg" if path.suffix.lower() in (".jpg", ".jpeg") else ".png"
    ok, data = cv2.imencode(ext, image, [cv2.IMWRITE_JPEG_QUALITY, 90] if ext == ".jpg" else [])
    if not ok:
        raise InputError(f"{path}: could not encode the image as {ext[1:].upper()}")
    with atomic_path(path) as tmp:
        tmp.write_bytes(data.tobytes())
    return path


@dataclass
class ShowResult:
    out: Path
    width: int
    height: int
    note: str = ""  # why the raw frames are missing, when they are


def show_sequence(
    key: str, data: str | Path, cache_dir: str | Path | None, out: str | Path, max_frames: int = 16, cols: int = 8
) -> ShowResult:
    """``depthgait-prep show``: the sheet of one sequence of ``data`` (aligned.h5), raw frames when possible."""
    seq_id = SequenceId.from_key(key)
    with AlignedReader(data) as reader:
        ids = reader.ids()
        if seq_id not in ids:
            some = ", ".join(i.key for i in ids[:3]) + (" ..." if len(ids) > 3 else "")
            raise InputError(f"{key}: not in {data} (it has {len(ids)} sequences: {some or 'none'})")
        seq = reader.load(seq_id)
    cache, note = None, ""
    if cache_dir is not None:
        path = cache_path(cache_dir, seq_id)
        if not path.is_file():
            note = f"raw frames left out: no extract cache at {path}"
        else:
            cache = read_video_cache(path)
            if seq.video is None:  # an aligned file older than the stored absolute paths
                seq.video = absolute_video(cache)
            if not Path(seq.video).is_file():
                cache, note = None, f"raw frames left out: video {seq.video} not found"
    boxes_only = cache is None and seq.video is not None and seq.box is not None and Path(seq.video).is_file()
    if boxes_only:  # the aligned file alone still shows where the person was
        note = f"raw frames show the box only ({note.removeprefix('raw frames left out: ') or 'no extract cache'})"
    try:
        image = sequence_sheet(seq, max_frames, cols, cache=cache, boxes_only=boxes_only)
    except FileNotFoundError as exc:  # the video exists but does not open
        image, note = sequence_sheet(seq, max_frames, cols), f"raw frames left out: {exc}"
    write_png(out, image)
    return ShowResult(Path(out), image.shape[1], image.shape[0], note)


def tracks_sheet(data: str | Path, cache_dir: str | Path, keys: list[str] | None = None, max_frames: int = 8) -> np.ndarray:
    """The sheets of several sequences (default: all of ``data``) one above the other, each with its raw
    frames (box drawn, silhouette tinted): the tracks of one crowd video side by side."""
    with AlignedReader(data) as reader:
        ids = [SequenceId.from_key(k) for k in keys] if keys else reader.ids()
        seqs = [reader.load(i) for i in ids]
    sheets = []
    for seq in seqs:
        path = cache_path(cache_dir, seq.id)
        cache = read_video_cache(path) if path.is_file() else None
        sheets.append(sequence_sheet(seq, max_frames, max_frames, scale=1, cache=cache, boxes_only=cache is None))
    width = max(s.shape[1] for s in sheets)
    padded = [np.pad(s, ((0, GAP), (0, width - s.shape[1]), (0, 0)), constant_values=40) for s in sheets]
    return np.concatenate(padded, axis=0)
