"""Ray-casting of capsules and ellipsoids into RGB, mask and depth that agree by construction.

One pinhole camera, rays from its centre; every primitive is intersected analytically only
inside its own projected bounding box, a z-buffer keeps the nearest hit, and Lambert shading of
the hit normal gives the colour. All per-pixel work is numpy over whole boxes (no pixel loops).
Depth is the camera-frame Z (metres along the optical axis), what monocular depth models estimate.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import cv2
import numpy as np

from pipeline.errors import InputError
from pipeline.synthetic.body import Shapes

NEAR = 0.05  # m; primitives closer than this to the camera plane are not drawn
LIGHT = np.array([-0.35, -0.75, -0.56]) / np.linalg.norm([-0.35, -0.75, -0.56])  # camera frame, towards the light
AMBIENT, DIFFUSE = 0.38, 0.72


@dataclass(frozen=True)
class Camera:
    """A fixed pinhole camera ``height`` m above the floor, tilted down by ``tilt`` rad.

    World frame: x right, y away from the camera (horizontal), z up; camera frame: x right,
    y down, z forward (OpenCV convention).
    """

    width: int = 320
    height: int = 240
    focal: float = 520.0  # px, for a 320-px-wide image (scaled with the width)
    cam_height: float = 1.5
    tilt: float = float(np.deg2rad(5.0))

    @classmethod
    def for_size(cls, size: tuple[int, int]) -> Camera:
        width, height = size
        return cls(width=width, height=height, focal=520.0 * width / 320.0)

    @property
    def K(self) -> np.ndarray:
        return np.array([[self.focal, 0, self.width / 2], [0, self.focal, self.height / 2], [0, 0, 1.0]])

    @property
    def R_wc(self) -> np.ndarray:
        """World -> camera rotation (rows are the camera axes in world coordinates)."""
        c, s = np.cos(self.tilt), np.sin(self.tilt)
        return np.array([[1.0, 0, 0], [0, -s, -c], [0, c, -s]])

    @property
    def centre(self) -> np.ndarray:
        return np.array([0.0, 0.0, self.cam_height])

    def world_to_camera(self, shapes: Shapes) -> Shapes:
        return shapes.transformed(self.R_wc, -self.R_wc @ self.centre)

    def project(self, points: np.ndarray) -> np.ndarray:
        """Camera-frame points [..., 3] -> pixel coordinates [..., 2] (x, y)."""
        return points[..., :2] / points[..., 2:3] * self.focal + np.array([self.width / 2, self.height / 2])


@lru_cache(maxsize=8)
def ray_directions(camera: Camera) -> np.ndarray:
    """Unit ray through every pixel centre, camera frame: [H, W, 3] float64."""
    u = (np.arange(camera.width) + 0.5 - camera.width / 2) / camera.focal
    v = (np.arange(camera.height) + 0.5 - camera.height / 2) / camera.focal
    d = np.stack(np.broadcast_arrays(u[None, :], v[:, None], np.ones((1, 1))), -1)  # [H, W, 3]
    d = d / np.linalg.norm(d, axis=-1, keepdims=True)
    d.setflags(write=False)
    return d


def _pixel_box(camera: Camera, centre: np.ndarray, radius: float) -> tuple[int, int, int, int] | None:
    """Conservative pixel box (x0, y0, x1, y1), clipped to the image, of a sphere; None if invisible."""
    if centre[2] - radius < NEAR:
        return None
    xs = (centre[0] + np.array([-radius, radius]))[:, None] / (centre[2] + np.array([-radius, radius]))[None, :]
    ys = (centre[1] + np.array([-radius, radius]))[:, None] / (centre[2] + np.array([-radius, radius]))[None, :]
    x0 = int(np.floor(xs.min() * camera.focal + camera.width / 2))
    x1 = int(np.ceil(xs.max() * camera.focal + camera.width / 2)) + 1
    y0 = int(np.floor(ys.min() * camera.focal + camera.height / 2))
    y1 = int(np.ceil(ys.max() * camera.focal + camera.height / 2)) + 1
    x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, camera.width), min(y1, camera.height)
    if x0 >= x1 or y0 >= y1:
        return None
    return x0, y0, x1, y1


def _sphere_t(rd: np.ndarray, centre: np.ndarray, r: float) -> np.ndarray:
    """Nearest hit distance of rays from the origin with a sphere; inf where missed. rd [N, 3] -> [N]."""
    b = rd @ centre  # [N]
    h = b * b - (centre @ centre - r * r)
    t = b - np.sqrt(np.maximum(h, 0.0))
    return np.where((h >= 0) & (t > NEAR), t, np.inf)


def intersect_capsule(rd: np.ndarray, a: np.ndarray, b: np.ndarray, r: float) -> np.ndarray:
    """Hit distance [N] of rays [N, 3] from the origin with the capsule a-b of radius r (inf: miss)."""
    ba = b - a
    baba = ba @ ba
    bard = rd @ ba  # [N]
    baoa = -(ba @ a)
    rdoa = -(rd @ a)  # [N]
    qa = baba - bard * bard
    qb = baba * rdoa - baoa * bard
    qc = baba * (a @ a) - baoa * baoa - r * r * baba
    h = qb * qb - qa * qc
    with np.errstate(divide="ignore", invalid="ignore"):
        t_cyl = (-qb - np.sqrt(np.maximum(h, 0.0))) / qa
    y = baoa + t_cyl * bard
    t_cyl = np.where((h >= 0) & (qa > 1e-12) & (y > 0) & (y < baba) & (t_cyl > NEAR), t_cyl, np.inf)
    return np.minimum(t_cyl, np.minimum(_sphere_t(rd, a, r), _sphere_t(rd, b, r)))


def capsule_normal(p: np.ndarray, a: np.ndarray, b: np.ndarray, r: float) -> np.ndarray:
    """Outward unit normal at surface points p [M, 3] of the capsule a-b."""
    ba = b - a
    k = np.clip(((p - a) @ ba) / (ba @ ba), 0.0, 1.0)  # [M]
    return (p - a - k[:, None] * ba) / r


def intersect_ellipsoid(rd: np.ndarray, c: np.ndarray, R: np.ndarray, s: np.ndarray) -> np.ndarray:
    """Hit distance [N] of rays from the origin with an ellipsoid (centre c, axes = R's columns, semi-axes s)."""
    o = (R.T @ -c) / s  # ray origin in the unit-sphere frame [3]
    d = (rd @ R) / s  # [N, 3]
    qa = np.einsum("ni,ni->n", d, d)
    qb = d @ o
    h = qb * qb - qa * (o @ o - 1.0)
    t = (-qb - np.sqrt(np.maximum(h, 0.0))) / qa
    return np.where((h >= 0) & (t > NEAR), t, np.inf)


def ellipsoid_normal(p: np.ndarray, c: np.ndarray, R: np.ndarray, s: np.ndarray) -> np.ndarray:
    """Outward unit normal at surface points p [M, 3]: the gradient of the implicit function."""
    n = (((p - c) @ R) / (s * s)) @ R.T  # [M, 3]
    return n / np.linalg.norm(n, axis=-1, keepdims=True)


def _bound(kind: str, shapes: Shapes, f: int, i: int) -> tuple[np.ndarray, float]:
    """Bounding sphere (centre, radius) of primitive i in frame f."""
    if kind == "cap":
        a, b = shapes.cap_a[f, i], shapes.cap_b[f, i]
        return (a + b) / 2, float(np.linalg.norm(b - a) / 2 + shapes.cap_r[i])
    return shapes.ell_c[f, i], float(shapes.ell_s[i].max())


def render_frame(camera: Camera, shapes: Shapes, f: int, albedo: np.ndarray
                 ) -> tuple[np.ndarray, np.ndarray, tuple[int, int, int, int] | None]:
    """Ray-cast frame f of camera-frame ``shapes``.

    Returns (depth [H, W] float32, 0 off the person; shaded colour [H, W, 3] float32 in 0..1,
    valid on the person; the union box of all primitives or None when nothing is visible).
    """
    H, W = camera.height, camera.width
    rays = ray_directions(camera)
    tbuf = np.full((H, W), np.inf)
    colour = np.zeros((H, W, 3), np.float32)
    union: list[tuple[int, int, int, int]] = []
    prims = [("cap", i) for i in range(len(shapes.cap_r))] + [("ell", i) for i in range(len(shapes.ell_s))]
    for kind, i in prims:
        box = _pixel_box(camera, *_bound(kind, shapes, f, i))
        if box is None:
            continue
        x0, y0, x1, y1 = box
        union.append(box)
        rd = rays[y0:y1, x0:x1].reshape(-1, 3)  # [N, 3]
        if kind == "cap":
            a, b, r = shapes.cap_a[f, i], shapes.cap_b[f, i], shapes.cap_r[i]
            t = intersect_capsule(rd, a, b, r)
            mat = shapes.cap_mat[i]
        else:
            c, Rot, s = shapes.ell_c[f, i], shapes.ell_R[f, i], shapes.ell_s[i]
            t = intersect_ellipsoid(rd, c, Rot, s)
            mat = shapes.ell_mat[i]
        region = tbuf[y0:y1, x0:x1].reshape(-1)  # copy of the z-buffer window
        nearer = t < region
        if not nearer.any():
            continue
        region[nearer] = t[nearer]
        tbuf[y0:y1, x0:x1] = region.reshape(y1 - y0, x1 - x0)
        p = t[nearer, None] * rd[nearer]  # [M, 3] hit points
        n = capsule_normal(p, a, b, r) if kind == "cap" else ellipsoid_normal(p, c, Rot, s)
        shade = AMBIENT + DIFFUSE * np.clip(n @ LIGHT, 0.0, None)  # [M]
        window = colour[y0:y1, x0:x1].reshape(-1, 3)
        window[nearer] = shade[:, None] * albedo[mat][None, :]
        colour[y0:y1, x0:x1] = window.reshape(y1 - y0, x1 - x0, 3)
    hit = np.isfinite(tbuf)
    depth = np.where(hit, tbuf * rays[..., 2], 0.0).astype(np.float32)
    if not union:
        return depth, colour, None
    boxes = np.array(union)
    return depth, colour, (int(boxes[:, 0].min()), int(boxes[:, 1].min()), int(boxes[:, 2].max()), int(boxes[:, 3].max()))


def check_view(view: str) -> str:
    """A view is a three-digit azimuth string such as ``"090"``; anything else is a clear error."""
    if not (isinstance(view, str) and len(view) == 3 and view.isdigit() and int(view) < 360):
        raise InputError(f"view {view!r} is not a three-digit azimuth in degrees (000..359, e.g. 090)")
    return view


def background(view: str, size: tuple[int, int] = (320, 240), seed: int = 0) -> np.ndarray:
    """The static, textured background of one view: uint8 [H, W, 3] RGB, deterministic from (view, seed).

    A wall with panels and a floor, both with smooth texture in muted mid tones, so that people
    stand out the way they do in a lab corridor, while a simple threshold is not trivially perfect.
    """
    check_view(view)
    width, height = (int(v) for v in size)
    if width < 16 or height < 16:
        raise InputError(f"frame size {width}x{height} is too small (at least 16x16)")
    rng = np.random.default_rng([int(seed), int(view), 0xBAC6])
    horizon = int(height * rng.uniform(0.58, 0.68))  # where the floor meets the wall
    wall = rng.uniform(120, 200) * np.ones(3) + rng.normal(0, 12, 3)
    floor = rng.uniform(90, 150) * np.ones(3) + rng.normal(0, 10, 3)
    rows = np.arange(height)[:, None, None]
    img = np.where(rows < horizon, wall, floor) * np.ones((height, width, 3))  # [H, W, 3]
    img[:horizon] *= np.linspace(0.92, 1.05, horizon)[:, None, None]  # light fall-off
    img[horizon:] *= np.linspace(0.95, 1.08, height - horizon)[:, None, None]
    for _ in range(int(rng.integers(2, 5))):  # panels, doors, posters on the wall
        w, h = int(rng.uniform(0.08, 0.25) * width), int(rng.uniform(0.2, 0.5) * horizon)
        x, y = int(rng.integers(0, width - w)), int(rng.integers(0, max(1, horizon - h)))
        tone = np.clip(wall + rng.normal(0, 25, 3), 60, 230)
        cv2.rectangle(img, (x, y), (x + w, y + h), tone.tolist(), thickness=-1)
        cv2.rectangle(img, (x, y), (x + w, y + h), (tone * 0.8).tolist(), thickness=1)
    cv2.line(img, (0, horizon), (width, horizon), (floor * 0.6).tolist(), 2)  # skirting board
    for k in range(1, 8):  # floor tiles converging to the vanishing point
        x = int(width * k / 8)
        cv2.line(img, (width // 2 + (x - width // 2) // 4, horizon), (x * 3 - width, height), (floor * 0.85).tolist(), 1)
    # Smooth low-frequency texture plus fine static grain.
    coarse = rng.normal(0, 1, (max(2, height // 24), max(2, width // 24), 4)).astype(np.float32)
    coarse = cv2.resize(coarse, (width, height), interpolation=cv2.INTER_CUBIC)  # [H, W, 4]
    img += 8.0 * coarse[..., :1] + 2.5 * coarse[..., 1:]  # mostly brightness, a little colour
    img += rng.normal(0, 2.5, (height, width, 1)) + rng.normal(0, 1.0, img.shape)
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)
