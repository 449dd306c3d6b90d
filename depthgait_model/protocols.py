"""Protocol evaluation driven by a manifest's ``Protocol`` (no dataset hard-coded here).

Three kinds:

- ``cross-view`` (CASIA-B and SUSTech1K, exactly as OpenGait's ``evaluate_indoor_dataset``): for
  every probe condition, probe view and gallery view, rank-k of that view's probes against the
  gallery sequences of that single view; each cell is rounded to 2 decimals (OpenGait's quirk,
  kept so that numbers match published ones to 0.01), then averaged over the other gallery views
  (identical view excluded) and over probe views. With ``match: keyword`` (SUSTech1K) a sequence
  belongs to every condition whose keyword its type holds. The CMC curve is computed the same way
  (rank-r cells, rounded, off-diagonal mean, mean over probe views), so its rank-1 point is the
  table's number; ``cmc_pooled`` is the curve over one gallery of all other views. Where OpenGait's
  arithmetic has no answer (a view with no probes of a condition, or no gallery: NaN there, which
  makes its whole mean NaN), that cell is left out of the means here instead.
- ``condition`` (``sustech1k-pooled``): all views pooled into one gallery; a probe belongs to
  every condition whose keyword its type holds; rank-k per condition and over all probes.
- ``retrieval`` (any custom set): rank-1/5/10, mAP and mINP per probe group; with
  ``exclude_identical_view`` the gallery items of the probe's subject in the probe's view are
  dropped (the Market-1501 "junk" rule that OpenGait's ``compute_ACC_mAP`` applies).

The result is a JSON-able dict: one entry per probe condition plus ``protocol``, ``kind``,
``metric``, ``conditions`` (the condition keys, in order) and kind-specific keys.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from depthgait_model.embeddings import Embeddings
from depthgait_model.metrics import (
    RankStats,
    as_parts,
    cmc,
    iter_distance_chunks,
    mean_ap,
    mean_inp,
    rank_k,
    rank_stats,
    topk_hits,
)
from pipeline.errors import InputError
from pipeline.manifest import Manifest, Protocol
from pipeline.progress import progress

KINDS: tuple[str, ...] = ("cross-view", "condition", "retrieval")
RETRIEVAL_RANKS: tuple[int, ...] = (1, 5, 10)


def evaluate(
    emb: Embeddings,
    manifest: Manifest,
    metric: str | None = None,
    device: str | torch.device = "cpu",
    chunk_size: int | None = None,
    max_rank: int = 20,
    quiet: bool = True,
) -> dict[str, Any]:
    """Evaluate an embedding set under ``manifest.protocol``; returns the JSON-able report."""
    proto = manifest.protocol
    if proto.kind not in KINDS:
        raise InputError(f"{manifest.source or manifest.name}: protocol kind {proto.kind!r} is not one of {', '.join(KINDS)}")
    metric = metric or proto.metric
    data = _Prepared(emb, proto, device)
    head = {"protocol": manifest.name, "kind": proto.kind, "metric": metric}
    if proto.kind == "cross-view":
        body = _cross_view(data, proto, _view_list(emb.views, manifest), metric, chunk_size, max_rank, quiet)
    elif proto.kind == "condition":
        body = _condition(data, proto, metric, chunk_size, max_rank, quiet)
    else:
        body = _retrieval(data, proto, metric, chunk_size, max_rank, quiet)
    return _jsonable({**head, **body})


# ---- shared preparation ----------------------------------------------------------------------
def type_mask(types: np.ndarray, patterns: Sequence[str], match: str) -> np.ndarray:
    """bool [N]: exact membership, or (``keyword``) the type contains one of the patterns."""
    if match == "keyword":
        found = [np.char.find(types, p) >= 0 for p in patterns]
        return np.any(found, axis=0) if found else np.zeros(len(types), bool)
    return np.isin(types, list(patterns))


class _Prepared:
    """Embeddings on the device, labels as integer codes, gallery and probe masks from the protocol."""

    def __init__(self, emb: Embeddings, proto: Protocol, device: str | torch.device) -> None:
        self.feats = as_parts(emb.embeddings, device=device)  # [N, C, P]
        _, codes = np.unique(emb.labels, return_inverse=True)
        self.codes = torch.as_tensor(codes.reshape(-1), dtype=torch.int64, device=self.feats.device)  # [N]
        self.views = emb.views
        self.gallery = type_mask(emb.types, proto.gallery, proto.match)
        if not self.gallery.any():
            raise InputError(f"no gallery sequences: no type matches {list(proto.gallery)} (types present: {_some(emb.types)})")
        # A gallery type never doubles as a probe (keyword 'nm' would otherwise take the '00-nm' gallery).
        self.probes = {c: type_mask(emb.types, pats, proto.match) & ~self.gallery for c, pats in proto.probes.items()}
        if not any(m.any() for m in self.probes.values()):
            wanted = sorted({p for pats in proto.probes.values() for p in pats})
            raise InputError(f"no probe sequences: no type matches {wanted} (types present: {_some(emb.types)})")
        self.g_idx = np.flatnonzero(self.gallery)
        self.p_idx = np.flatnonzero(np.any(list(self.probes.values()), axis=0))

    def in_probes(self, condition: str) -> np.ndarray:
        """bool over ``p_idx`` rows: which of them belong to ``condition``."""
        return self.probes[condition][self.p_idx]

    def stream(self, metric: str, chunk_size: int | None, quiet: bool):
        """(rows over p_idx, distances [rows, G]) blocks with a progress bar."""
        chunks = iter_distance_chunks(self.feats[self.p_idx], self.feats[self.g_idx], metric, chunk_size)
        with progress(total=len(self.p_idx), desc="evaluate", unit="probe", disable=quiet) as bar:
            for rows, dist in chunks:
                yield rows, dist
                bar.update(rows.stop - rows.start)


def _some(values: np.ndarray, n: int = 8) -> str:
    uniq = np.unique(values)
    return ", ".join(uniq[:n]) + (", ..." if len(uniq) > n else "")


def _view_list(views: np.ndarray, manifest: Manifest) -> list[str]:
    """The manifest's views present in the data, in manifest order (sorted views when it lists none)."""
    present = set(np.unique(views).tolist())
    if not manifest.views:
        return sorted(present)
    unknown = sorted(present - set(manifest.views))
    if unknown:
        raise InputError(f"views {unknown} are not among the {manifest.name} manifest's views {list(manifest.views)}")
    return [v for v in manifest.views if v in present]


# ---- cross-view (CASIA-B) ------------------------------------------------------------------
def _cross_view(
    data: _Prepared, proto: Protocol, view_list: list[str], metric: str, chunk_size: int | None, max_rank: int, quiet: bool
) -> dict[str, Any]:
    n_views = len(view_list)
    k_all = max(max(proto.ranks), max_rank)  # the table's ranks and the CMC's
    view_code = {v: i for i, v in enumerate(view_list)}
    p_view = np.array([view_code[v] for v in data.views[data.p_idx]], dtype=np.int64)  # [Np]
    g_view = np.array([view_code[v] for v in data.views[data.g_idx]], dtype=np.int64)  # [G]
    p_lab, g_lab = data.codes[data.p_idx], data.codes[data.g_idx]  # [Np], [G]
    dev = data.feats.device
    cols = [torch.as_tensor(np.flatnonzero(g_view == v), device=dev) for v in range(n_views)]
    g_view_t = torch.as_tensor(g_view, device=dev)  # [G]
    p_view_t = torch.as_tensor(p_view, device=dev)  # [Np]

    hits = np.zeros((len(data.p_idx), n_views, k_all), dtype=bool)  # [Np, V, K]: per gallery view
    stats: list[RankStats] = []
    for rows, dist in data.stream(metric, chunk_size, quiet):  # dist [rows, G]
        for v, c in enumerate(cols):
            if len(c):
                hits[rows, v] = topk_hits(dist[:, c], p_lab[rows], g_lab[c], k_all).cpu().numpy()
        # Pooled ranking over all other gallery views, for mAP and the pooled CMC.
        same_view = p_view_t[rows, None] == g_view_t[None, :] if proto.exclude_identical_view else None  # [rows, G]
        stats.append(rank_stats(dist, p_lab[rows], g_lab, exclude=same_view))
    pooled = RankStats.concat(stats)

    has_gallery = np.array([len(c) > 0 for c in cols])  # [V]
    off_diag = ~np.eye(n_views, dtype=bool) if proto.exclude_identical_view else np.ones((n_views, n_views), bool)
    body: dict[str, Any] = {
        "views": view_list,
        "conditions": list(proto.probes),
        "ranks": sorted(proto.ranks),
        "exclude_identical_view": proto.exclude_identical_view,
        "gallery": int(len(data.g_idx)),
    }
    for cond in proto.probes:
        in_cond = data.in_probes(cond)  # [Np]
        cells = np.full((n_views, n_views, k_all), np.nan)  # [probe view, gallery view, rank]
        n_probe = np.zeros(n_views, dtype=np.int64)
        for pv in range(n_views):
            sel = in_cond & (p_view == pv)
            n_probe[pv] = sel.sum()
            if n_probe[pv]:
                # OpenGait: np.round(count * 100 / n, 2) per cell, before any averaging.
                cells[pv, has_gallery] = np.round(hits[sel][:, has_gallery].sum(0) * 100 / n_probe[pv], 2)
        entry: dict[str, Any] = {}
        for r in sorted(proto.ranks):
            per_view = _masked_row_mean(cells[:, :, r - 1], off_diag)  # [V]
            block = {"per_view": per_view.tolist(), "mean": _nanmean(per_view), "cells": cells[:, :, r - 1].tolist()}
            if r == min(proto.ranks):
                entry.update(block)
            else:
                entry[f"rank{r}"] = block
        curve = [_nanmean(_masked_row_mean(cells[:, :, r], off_diag)) for r in range(max_rank)]  # [R]
        sub = pooled.subset(in_cond)
        entry.update(
            probes=int(in_cond.sum()),
            probes_per_view=n_probe.tolist(),
            mAP=mean_ap(sub),
            cmc=curve,
            cmc_pooled=cmc(sub, max_rank).tolist(),
        )
        body[cond] = entry
    return body


def _masked_row_mean(cells: np.ndarray, keep: np.ndarray) -> np.ndarray:
    """Row means of ``cells`` [V, V] over the kept, non-NaN columns; NaN for a row with none."""
    vals = np.where(keep, cells, np.nan)
    counts = np.sum(~np.isnan(vals), 1)
    sums = np.nansum(vals, 1)
    return np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)


def _nanmean(x: np.ndarray) -> float:
    x = np.asarray(x, dtype=float)
    return float(np.mean(x[~np.isnan(x)])) if (~np.isnan(x)).any() else float("nan")


# ---- condition (SUSTech1K) -------------------------------------------------------------------
def _pooled_stats(data: _Prepared, metric: str, chunk_size: int | None, quiet: bool, exclude: str | None) -> RankStats:
    """Rank statistics of every probe against the pooled gallery; ``exclude``: None, 'view' or 'view-label'."""
    dev = data.feats.device
    _, view_codes = np.unique(data.views, return_inverse=True)
    view_codes = torch.as_tensor(view_codes.reshape(-1), device=dev)  # [N]
    p_view, g_view = view_codes[data.p_idx], view_codes[data.g_idx]  # [Np], [G]
    p_lab, g_lab = data.codes[data.p_idx], data.codes[data.g_idx]  # [Np], [G]
    stats: list[RankStats] = []
    for rows, dist in data.stream(metric, chunk_size, quiet):  # dist [rows, G]
        mask = None
        if exclude is not None:
            mask = p_view[rows, None] == g_view[None, :]  # [rows, G]
            if exclude == "view-label":
                mask &= p_lab[rows, None] == g_lab[None, :]  # [rows, G]
        stats.append(rank_stats(dist, p_lab[rows], g_lab, exclude=mask))
    return RankStats.concat(stats)


def _condition(data: _Prepared, proto: Protocol, metric: str, chunk_size: int | None, max_rank: int, quiet: bool):
    stats = _pooled_stats(data, metric, chunk_size, quiet, "view" if proto.exclude_identical_view else None)
    body: dict[str, Any] = {
        "conditions": list(proto.probes),
        "ranks": list(proto.ranks),
        "exclude_identical_view": proto.exclude_identical_view,
        "gallery": int(len(data.g_idx)),
    }
    groups = {c: data.in_probes(c) for c in proto.probes} | {"overall": np.ones(len(data.p_idx), bool)}
    for name, sel in groups.items():
        sub = stats.subset(sel)
        # OpenGait divides by every probe of the condition (a probe without its subject in the gallery is a miss).
        entry = {f"rank{r}": (rank_k(sub, r, valid_only=False) if len(sub.first_hit) else math.nan) for r in proto.ranks}
        entry.update(probes=int(sel.sum()), mAP=mean_ap(sub), cmc=cmc(sub, max_rank, valid_only=False).tolist())
        body[name] = entry
    return body


# ---- generic retrieval ----------------------------------------------------------------------
def _retrieval(data: _Prepared, proto: Protocol, metric: str, chunk_size: int | None, max_rank: int, quiet: bool):
    stats = _pooled_stats(data, metric, chunk_size, quiet, "view-label" if proto.exclude_identical_view else None)
    ranks = sorted(set(RETRIEVAL_RANKS) | set(proto.ranks))
    body: dict[str, Any] = {
        "conditions": list(proto.probes),
        "ranks": ranks,
        "exclude_identical_view": proto.exclude_identical_view,
        "gallery": int(len(data.g_idx)),
    }
    groups = {c: data.in_probes(c) for c in proto.probes} | {"overall": np.ones(len(data.p_idx), bool)}
    for name, sel in groups.items():
        sub = stats.subset(sel)
        # Gait3D / OpenGait evaluate_rank: probes whose subject is absent from the gallery are skipped.
        entry = {f"rank{r}": (rank_k(sub, r) if sub.valid.any() else math.nan) for r in ranks}
        entry.update(
            mAP=mean_ap(sub),
            mINP=mean_inp(sub),
            probes=int(sel.sum()),
            valid_probes=int(sub.valid.sum()),
            cmc=cmc(sub, max_rank).tolist(),
        )
        body[name] = entry
    return body


# ---- output ----------------------------------------------------------------------------------
def _jsonable(obj: Any) -> Any:
    """Plain Python types; NaN (an empty cell) becomes None so the JSON stays standard."""
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, (np.floating, float)):
        return None if math.isnan(obj) else float(obj)
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, np.bool_):
        return bool(obj)
    return obj


def _fmt(x: float | None, width: int = 7) -> str:
    return f"{'-':>{width}}" if x is None else f"{x:{width}.2f}"


def format_table(report: dict[str, Any]) -> str:
    """The protocol's table as text: OpenGait's per-view rows for cross-view, one row per condition otherwise."""
    kind, conds = report["kind"], report["conditions"]
    title = f"{report['protocol']} ({kind}, metric {report['metric']}"
    if kind == "cross-view":
        excl = ", identical views excluded" if report.get("exclude_identical_view") else ""
        width = max(6, *(len(c) + 1 for c in conds))
        vw = max(7, *(len(v) + 1 for v in report["views"]))  # SUSTech1K has views such as '000-far'
        lines: list[str] = []
        for r in report["ranks"]:
            lines.append(f"{title}{excl}): rank-{r} accuracy (%) per probe view")
            lines.append(f"{'':<{width}}" + "".join(f"{v:>{vw}}" for v in report["views"]) + f"{'mean':>8}")
            for c in conds:
                block = report[c] if r == report["ranks"][0] else report[c][f"rank{r}"]
                lines.append(f"{c:<{width}}" + "".join(_fmt(x, vw) for x in block["per_view"]) + " " + _fmt(block["mean"]))
        return "\n".join(lines)
    if kind == "condition":
        cols = [*conds, "overall"]
        lines = [f"{title}): accuracy (%) per probe condition"]
        lines.append(f"{'':<6}" + "".join(f"{c:>8}" for c in cols))
        for r in report["ranks"]:
            lines.append(f"{'R' + str(r):<6}" + "".join(" " + _fmt(report[c][f"rank{r}"]) for c in cols))
        return "\n".join(lines)
    keys = [*(f"rank{r}" for r in report["ranks"]), "mAP", "mINP"]
    heads = [*(f"R{r}" for r in report["ranks"]), "mAP", "mINP"]
    lines = [f"{title}): retrieval (%)", f"{'':<10}" + "".join(f"{h:>8}" for h in heads)]
    for c in [*conds, "overall"]:
        lines.append(f"{c:<10}" + "".join(" " + _fmt(report[c][k]) for k in keys))
    return "\n".join(lines)
