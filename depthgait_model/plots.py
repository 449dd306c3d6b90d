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
from matplotlib.patches import Rectangle
from matplotlib.ticker import MaxNLocator

from pipeline.atomic import atomic_path
from pipeline.errors import InputError


def _save(fig: Figure, path: Path) -> Path:
    FigureCanvasAgg(fig)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=120, bbox_inches="tight")
    return path


def plot_view_heatmap(report: dict[str, Any], path: str | Path) -> Path:
    """The per-view heatmap (``view_heatmap_figure``) as a PNG."""
    return _save(view_heatmap_figure(report), Path(path))


def view_heatmap_figure(report: dict[str, Any]) -> Figure:
    """One panel per probe condition: rank-1 (%) of probe view (rows) against gallery view (columns).

    When the protocol excludes identical views, the diagonal cells are hatched: they are shown but
    never enter the mean in the panel's title.
    """
    if report.get("kind") != "cross-view":
        raise InputError(f"a per-view heatmap needs a cross-view report, got kind {report.get('kind')!r}")
    views, conds = report["views"], report["conditions"]
    excluded = bool(report.get("exclude_identical_view"))
    n_cols = min(len(conds), 3)
    n_rows = -(-len(conds) // n_cols)
    fig = Figure(figsize=(4.2 * n_cols + 0.8, 4.0 * n_rows), layout="constrained")
    grid = fig.subplots(n_rows, n_cols, squeeze=False)
    axes = list(grid.ravel())
    image = None
    for ax, cond in zip(axes, conds, strict=False):
        cells = np.array([[np.nan if x is None else x for x in row] for row in report[cond]["cells"]], dtype=float)
        image = ax.imshow(cells, vmin=0, vmax=100, cmap="viridis")
        ax.set_xticks(range(len(views)), views, rotation=90, fontsize=7)
        ax.set_yticks(range(len(views)), views, fontsize=7)
        ax.set_xlabel("gallery view")
        ax.set_ylabel("probe view")
        ax.set_title(f"{cond}: mean {_pct(report[cond]['mean'])}")
        if excluded:
            for i in range(len(views)):
                ax.add_patch(Rectangle((i - 0.5, i - 0.5), 1, 1, fill=False, hatch="///", edgecolor="0.85", linewidth=0))
        if len(views) <= 12:  # cell values stay legible up to CASIA-B's 11 views (SUSTech1K's 12)
            for (i, j), v in np.ndenumerate(cells):
                if not np.isnan(v):
                    ax.text(j, i, f"{v:.0f}", ha="center", va="center", fontsize=7 if len(views) <= 6 else 5, color="w" if v < 60 else "k")
    for ax in axes[len(conds):]:
        ax.set_visible(False)
    fig.colorbar(image, ax=axes[: len(conds)], label=f"rank-{report['ranks'][0]} (%)", shrink=0.8)
    note = " (hatched diagonal: identical views, excluded from the means)" if excluded else ""
    fig.suptitle(f"{report['protocol']}: per-view rank-{report['ranks'][0]} ({report['metric']}){note}")
    return fig


def cmc_description(report: dict[str, Any]) -> str:
    """What the report's CMC curve is, in words (the figure's subtitle)."""
    if report.get("kind") == "cross-view":
        excl = ", identical views excluded" if report.get("exclude_identical_view") else ""
        return f"the table's protocol: per-view galleries{excl}, mean over views"
    return "one gallery pooled over all views"


def plot_cmc(report: dict[str, Any], path: str | Path) -> Path:
    """CMC curves (identification rate against rank) of every probe condition, under the table's protocol.

    For a cross-view report each rank-r point is computed as the table's rank-1 is (per-view cells,
    rounded, identical views excluded, mean over probe views), so the curve starts at the table's number.
    """
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
    ax.set_title(f"{report['protocol']}: CMC ({report['metric']})\n{cmc_description(report)}", fontsize=9)
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
