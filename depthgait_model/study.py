"""Seed-paired differences between two settings of a study, with 95% confidence intervals.

Two settings trained with the same seeds share their sampler batches and clip draws, so the
difference per seed removes much of the seed-to-seed noise that a comparison of two means keeps.
For seeds ``s`` the paired difference ``d_s = b_s - a_s`` has mean ``m``, standard deviation ``sd``
and the t interval ``m +- t_{0.975, n-1} * sd / sqrt(n)`` (n seeds). With 3 seeds t is 4.30, so
an interval that excludes 0 needs a consistent sign across seeds, not only a large mean.

Inputs are ``scripts/run_ablation.py`` tables (``ablation.json``): per mode and condition the
per-seed means (``per_seed``) and, from this version on, per-seed per-view values (``per_seed_views``).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import stats

from pipeline.errors import InputError


@dataclass(frozen=True)
class Paired:
    """Mean paired difference and its 95% t interval (``lo``, ``hi``); ``n`` seeds."""

    mean: float
    lo: float
    hi: float
    n: int
    per_seed: tuple[float, ...]

    def text(self) -> str:
        return f"{self.mean:+.1f} [{self.lo:+.1f}, {self.hi:+.1f}]"


def paired(a: list[float], b: list[float]) -> Paired:
    """``b - a`` per seed, its mean and the 95% t interval (NaN bounds with a single seed)."""
    if len(a) != len(b) or not a:
        raise InputError(f"paired differences need the same seeds on both sides, got {len(a)} and {len(b)} values")
    d = np.asarray(b, float) - np.asarray(a, float)  # [n]
    n, mean = len(d), float(d.mean())
    if n < 2:
        return Paired(mean, math.nan, math.nan, n, tuple(d.tolist()))
    half = float(stats.t.ppf(0.975, n - 1) * d.std(ddof=1) / math.sqrt(n))
    return Paired(mean, mean - half, mean + half, n, tuple(d.tolist()))


def compare(table_a: dict, mode_a: str, table_b: dict, mode_b: str) -> dict:
    """Paired ``mode_b - mode_a`` per condition (and per view where both tables hold per-seed views)."""
    if list(table_a["seeds"]) != list(table_b["seeds"]):
        raise InputError(f"the two studies used different seeds: {table_a['seeds']} and {table_b['seeds']}")
    out: dict = {"a": mode_a, "b": mode_b, "seeds": list(table_a["seeds"]), "views": table_a.get("views"), "conditions": {}}
    for cond in table_a["conditions"]:
        ra, rb = table_a["modes"][mode_a][cond], table_b["modes"][mode_b][cond]
        entry: dict = {"mean": paired(ra["per_seed"], rb["per_seed"])}
        if "per_seed_views" in ra and "per_seed_views" in rb:
            va, vb = np.asarray(ra["per_seed_views"], float), np.asarray(rb["per_seed_views"], float)  # [seeds, views]
            entry["per_view"] = [paired(va[:, v].tolist(), vb[:, v].tolist()) for v in range(va.shape[1])]
        out["conditions"][cond] = entry
    return out


def markdown(result: dict, title: str) -> str:
    """The comparison as a table: one row per condition, the mean and each view's paired difference."""
    views = result.get("views") or []
    has_views = any("per_view" in e for e in result["conditions"].values())
    head = ["condition", "mean over views", *(views if has_views else [])]
    lines = [title, "", f"Paired difference {result['b']} - {result['a']} (rank-1 points), mean [95% t interval] over "
             f"seeds {', '.join(map(str, result['seeds']))}.", "",
             "| " + " | ".join(head) + " |", "| " + " | ".join("---" for _ in head) + " |"]
    for cond, entry in result["conditions"].items():
        cells = [cond, entry["mean"].text(), *(p.text() for p in entry.get("per_view", []))]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def as_json(result: dict) -> dict:
    """``compare``'s result with each ``Paired`` as a plain dict, for a results file the README is written from."""

    def plain(p: Paired) -> dict:
        return {"mean": p.mean, "lo": p.lo, "hi": p.hi, "n": p.n, "per_seed": list(p.per_seed)}

    conditions = {cond: {"mean": plain(e["mean"]), **({"per_view": [plain(p) for p in e["per_view"]]}
                                                        if "per_view" in e else {})}
                  for cond, e in result["conditions"].items()}
    return {**result, "conditions": conditions}
