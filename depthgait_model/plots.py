"""Evaluation figures: per-view rank-1 heatmaps and CMC curves, written as PNGs.

Figures are built on ``matplotlib.figure.Figure`` with the Agg canvas, so nothing touches the
global pyplot state or needs a display, and files land atomically.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from pipeline.atomic import atomic_path
from pipeline.errors import InputError


def _save(fig: Figure, path: Path) -> Path:
    FigureCanvasAgg(fig)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=120, bbox_inches="tight")
    return path


def plot_view_heatmap(report: dict[str, Any], path: str | Path) -> Path:
    """One panel per probe condition: rank-1 (%) of probe view (rows) against gallery view (columns)."""
    if report.get("kind") != "cross-view":
        raise InputError(f"a per-view heatmap needs a cross-view report, got kind {report.get('kind')!r}")
    views, conds = report["views"], report["conditions"]
    fig = Figure(figsize=(4.2 * len(conds) + 0.8, 4.0), layout="constrained")
    axes = fig.subplots(1, len(conds), squeeze=False)[0]
    image = None
    for ax, cond in zip(axes, conds, strict=True):
        cells = np.array([[np.nan if x is None else x for x in row] for row in report[cond]["cells"]], dtype=float)
        image = ax.imshow(cells, vmin=0, vmax=100, cmap="viridis")
        ax.set_xticks(range(len(views)), views, rotation=90, fontsize=7)
        ax.set_yticks(range(len(views)), views, fontsize=7)
        ax.set_xlabel("gallery view")
        ax.set_ylabel("probe view")
        ax.set_title(f"{cond}: mean {_pct(report[cond]['mean'])}")
        if len(views) <= 12:  # cell values stay legible up to CASIA-B's 11 views
            for (i, j), v in np.ndenumerate(cells):
                if not np.isnan(v):
                    ax.text(j, i, f"{v:.0f}", ha="center", va="center", fontsize=7 if len(views) <= 6 else 5, color="w" if v < 60 else "k")
    fig.colorbar(image, ax=list(axes), label=f"rank-{report['ranks'][0]} (%)", shrink=0.8)
    fig.suptitle(f"{report['protocol']}: per-view rank-{report['ranks'][0]} ({report['metric']})")
    return _save(fig, Path(path))


def plot_cmc(report: dict[str, Any], path: str | Path) -> Path:
    """CMC curves (identification rate against rank) of every probe condition in the report."""
    groups = [c for c in [*report["conditions"], "overall"] if c in report and report[c].get("cmc")]
    if not groups:
        raise InputError("the report holds no CMC curve to plot")
    fig = Figure(figsize=(5.5, 4.0), layout="constrained")
    ax = fig.subplots()
    for name in groups:
        curve = np.array([np.nan if x is None else x for x in report[name]["cmc"]], dtype=float)
        ax.plot(np.arange(1, len(curve) + 1), curve, marker="o", markersize=3, label=name)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("rank")
    ax.set_ylabel("identification rate (%)")
    ax.set_ylim(0, 101)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title(f"{report['protocol']}: CMC ({report['metric']})")
    return _save(fig, Path(path))


def write_plots(report: dict[str, Any], out_dir: str | Path) -> list[Path]:
    """Every figure that fits the report's protocol kind, into ``out_dir``; returns the paths."""
    out_dir = Path(out_dir)
    written = [plot_cmc(report, out_dir / "cmc.png")]
    if report.get("kind") == "cross-view":
        written.insert(0, plot_view_heatmap(report, out_dir / "rank1_views.png"))
    return written


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{x:.2f}%"
