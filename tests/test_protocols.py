"""Protocol evaluation: OpenGait's CASIA-B arithmetic, hand-built answers, SUSTech1K and generic retrieval."""
from __future__ import annotations

import json

import numpy as np
import pytest

from depthgait_model.embeddings import Embeddings
from depthgait_model.plots import cmc_description, view_heatmap_figure
from depthgait_model.protocols import evaluate, format_table
from pipeline.manifest import load_manifest

CASIA = load_manifest("casia-b")
VIEWS = list(CASIA.views)
CONDS = list(CASIA.conditions)


def _casia_set(subjects: list[str], emb_of) -> Embeddings:
    """Every (subject, condition, view) of CASIA-B, embedding from ``emb_of(subject, condition, view)``."""
    rows = [(s, c, v) for s in subjects for c in CONDS for v in VIEWS]
    return Embeddings(
        embeddings=np.stack([emb_of(*r) for r in rows]).astype(np.float32),
        labels=np.array([r[0] for r in rows]),
        types=np.array([r[1] for r in rows]),
        views=np.array([r[2] for r in rows]),
    )


def _reference_casia(emb: Embeddings, metric: str) -> dict[str, list[float]]:
    """OpenGait's evaluate_indoor_dataset for CASIA-B, written out as plain loops over views."""
    feats = emb.embeddings.astype(np.float64)
    probe_sets = {"NM": ["nm-05", "nm-06"], "BG": ["bg-01", "bg-02"], "CL": ["cl-01", "cl-02"]}
    gallery_set = ["nm-01", "nm-02", "nm-03", "nm-04"]
    views = sorted(np.unique(emb.views))
    out = {}
    for name, probe_types in probe_sets.items():
        acc = np.zeros((len(views), len(views)))
        for i, pv in enumerate(views):
            pmask = np.isin(emb.types, probe_types) & (emb.views == pv)
            for j, gv in enumerate(views):
                gmask = np.isin(emb.types, gallery_set) & (emb.views == gv)
                x, y = feats[pmask], feats[gmask]
                if metric == "cos":
                    x = x / np.linalg.norm(x, axis=1, keepdims=True)
                    y = y / np.linalg.norm(y, axis=1, keepdims=True)
                    dist = 1 - np.einsum("icp,jcp->ijp", x, y).mean(-1)
                else:
                    dist = np.sqrt(((x[:, None] - y[None]) ** 2).sum(2)).mean(-1)
                nearest = emb.labels[gmask][np.argsort(dist, axis=1, kind="stable")[:, 0]]
                acc[i, j] = np.round(np.sum(nearest == emb.labels[pmask]) * 100 / len(x), 2)
        per_view = np.sum(acc - np.diag(np.diag(acc)), 1) / (len(views) - 1)  # de_diag
        out[name] = {"per_view": per_view.tolist(), "mean": float(np.mean(per_view)), "cells": acc.tolist()}
    return out


@pytest.mark.parametrize("metric", ["euc", "cos"])
def test_cross_view_equals_opengait_arithmetic(metric):
    rng = np.random.default_rng(1 if metric == "euc" else 2)
    subjects = [f"{i:03d}" for i in range(75, 81)]
    centres = {s: rng.normal(size=(16, 4)) for s in subjects}
    view_shift = {v: rng.normal(size=(16, 4)) * 1.5 for v in VIEWS}
    emb = _casia_set(subjects, lambda s, c, v: centres[s] + view_shift[v] + rng.normal(size=(16, 4)) * 2.5)
    report = evaluate(emb, CASIA, metric=metric)
    ref = _reference_casia(emb, metric)
    accs = []
    for cond in ("NM", "BG", "CL"):
        np.testing.assert_allclose(report[cond]["cells"], ref[cond]["cells"], atol=1e-9)
        np.testing.assert_allclose(report[cond]["per_view"], ref[cond]["per_view"], atol=1e-9)
        assert report[cond]["mean"] == pytest.approx(ref[cond]["mean"], abs=1e-9)
        assert len(report[cond]["per_view"]) == 11
        accs.append(report[cond]["mean"])
    # The set is hard enough that cells differ and the rounding matters (12 probes: thirds of a percent).
    assert 20 < min(accs) and max(accs) < 99
    cells = np.array(report["NM"]["cells"])
    counts = cells * 12 / 100  # 12 probes per cell: exact counts would be integers
    np.testing.assert_allclose(np.round(np.round(counts) * 100 / 12, 2), cells)
    assert (np.abs(counts - np.round(counts)) > 1e-6).any()  # the 2-decimal rounding did happen
    assert report["metric"] == metric and report["protocol"] == "casia-b" and report["views"] == VIEWS
    json.dumps(report)  # JSON-able


def _one_hot_set(subjects: list[str], tweak=None) -> Embeddings:
    """Perfectly separable: each subject its own axis (x10), shared by every part; ``tweak`` edits rows."""
    def emb_of(s, c, v):
        e = np.zeros((8, 2))
        e[subjects.index(s)] = 10.0
        return e
    emb = _casia_set(subjects, emb_of)
    if tweak:
        tweak(emb)
    return emb


def _row(emb: Embeddings, s: str, c: str, v: str) -> int:
    return int(np.flatnonzero((emb.labels == s) & (emb.types == c) & (emb.views == v))[0])


def test_perfect_embeddings_give_100():
    report = evaluate(_one_hot_set(["075", "076", "077"]), CASIA)
    for cond in ("NM", "BG", "CL"):
        assert report[cond]["per_view"] == [100.0] * 11
        assert report[cond]["mean"] == 100.0
        assert report[cond]["probes"] == 3 * 2 * 11


def _swap_one_cell(gallery_view: str):
    """Probe 075/nm-05/090 gets a private offset; 076's nm-01 gallery at ``gallery_view`` copies it exactly.

    Only the (NM, 090, gallery_view) cell can go wrong: 1 of its 6 probes (3 subjects x nm-05/06).
    """
    def tweak(emb: Embeddings) -> None:
        probe = _row(emb, "075", "nm-05", "090")
        emb.embeddings[probe, 7] = 1.0  # axis 7 is no subject's
        emb.embeddings[_row(emb, "076", "nm-01", gallery_view)] = emb.embeddings[probe]
    return tweak


def test_swapped_identity_in_one_cell():
    report = evaluate(_one_hot_set(["075", "076", "077"], _swap_one_cell("000")), CASIA)
    cells = np.array(report["NM"]["cells"])
    i, j = VIEWS.index("090"), VIEWS.index("000")
    assert cells[i, j] == 83.33  # round(5 / 6 * 100, 2)
    assert (np.delete(cells.ravel(), i * 11 + j) == 100).all()
    per_view = report["NM"]["per_view"]
    assert per_view[i] == pytest.approx((9 * 100 + 83.33) / 10)
    assert [x for k, x in enumerate(per_view) if k != i] == [100.0] * 10
    assert report["NM"]["mean"] == pytest.approx((10 * 100 + (900 + 83.33) / 10) / 11)
    assert report["BG"]["mean"] == 100.0 and report["CL"]["mean"] == 100.0


def test_identical_view_is_excluded():
    report = evaluate(_one_hot_set(["075", "076", "077"], _swap_one_cell("090")), CASIA)
    i = VIEWS.index("090")
    assert report["NM"]["cells"][i][i] == 83.33  # computed and kept for the heatmap ...
    assert report["NM"]["per_view"] == [100.0] * 11  # ... but never averaged in
    assert report["NM"]["mean"] == 100.0


def test_missing_views_and_unknown_views():
    emb = _one_hot_set(["075", "076"])
    keep = np.isin(emb.views, ["000", "090", "180"])
    small = Embeddings(emb.embeddings[keep], emb.labels[keep], emb.types[keep], emb.views[keep])
    report = evaluate(small, CASIA)
    assert report["views"] == ["000", "090", "180"] and report["NM"]["per_view"] == [100.0] * 3
    odd = Embeddings(emb.embeddings, emb.labels, emb.types, np.where(emb.views == "000", "045", emb.views))
    with pytest.raises(ValueError, match=r"\['045'\].*casia-b"):
        evaluate(odd, CASIA)
    no_gallery = Embeddings(emb.embeddings, emb.labels, np.char.replace(emb.types, "nm-0", "xx-0"), emb.views)
    with pytest.raises(ValueError, match="no gallery sequences"):
        evaluate(no_gallery, CASIA)


def test_table_layout():
    text = format_table(evaluate(_one_hot_set(["075", "076"]), CASIA))
    lines = text.splitlines()
    assert lines[1].split() == [*VIEWS, "mean"]
    assert lines[2].split()[0] == "NM" and lines[2].split()[1:] == ["100.00"] * 12
    assert [ln.split()[0] for ln in lines[2:]] == ["NM", "BG", "CL"]


# ---- SUSTech1K ---------------------------------------------------------------------------------
def _sustech_set() -> Embeddings:
    """6 subjects x 2 views; gallery 00-nm; probes 01-nm, 02-bg, 03-cl-ub (two conditions), 04-nt."""
    subjects = [f"{i:04d}" for i in range(250, 256)]
    axis = {s: np.eye(8)[k] * 10 for k, s in enumerate(subjects)}
    rows, feats = [], []
    for s in subjects:
        for t in ("00-nm", "01-nm", "02-bg", "03-cl-ub", "04-nt"):
            for v in ("000", "090"):
                e = axis[s].copy()
                if (s, t, v) == ("0251", "02-bg", "000"):
                    e = 0.8 * axis["0252"] + 0.2 * axis["0251"]  # wrong at rank 1, right at rank 3
                if (s, t, v) == ("0253", "03-cl-ub", "090"):
                    e = axis["0250"] - 0.3 * axis["0253"]  # own subject last: a miss at rank 5 too
                rows.append((s, t, v))
                feats.append(e)
    return Embeddings(np.array(feats, np.float32), *(np.array(col) for col in zip(*rows, strict=True)))


def test_sustech1k_pooled_conditions_by_keyword():
    report = evaluate(_sustech_set(), load_manifest("sustech1k-pooled"))
    assert report["kind"] == "condition" and report["gallery"] == 12
    assert report["NM"]["probes"] == 12  # the 00-nm gallery is never a probe, though it holds 'nm'
    assert (report["NM"]["rank1"], report["NM"]["rank5"]) == (100.0, 100.0)
    assert report["BG"]["rank1"] == pytest.approx(1100 / 12) and report["BG"]["rank5"] == 100.0
    for cond in ("CL", "UB"):  # one sequence, two conditions
        assert report[cond]["probes"] == 12
        assert report[cond]["rank1"] == pytest.approx(1100 / 12) and report[cond]["rank5"] == pytest.approx(1100 / 12)
    assert report["NT"]["rank1"] == 100.0
    assert report["CR"]["probes"] == 0 and report["CR"]["rank1"] is None
    assert report["overall"]["probes"] == 48
    assert report["overall"]["rank1"] == pytest.approx(4600 / 48)
    assert report["overall"]["rank5"] == pytest.approx(4700 / 48)
    lines = format_table(report).splitlines()
    assert lines[1].split() == ["NM", "BG", "CL", "CR", "UB", "UF", "OC", "NT", "overall"]
    assert lines[2].split()[0] == "R1" and lines[3].split()[0] == "R5"
    assert lines[2].split()[-1] == f"{4600 / 48:.2f}"


SUSTECH = load_manifest("sustech1k")
SUSTECH_VIEWS = ["000", "000-far", "045", "090", "090-near", "180"]
# Types shaped like the release's: a sequence number, then one or two attributes (a probe of two conditions).
SUSTECH_TYPES = ["00-nm", "01-nm", "01-bg", "02-cl", "01-cr-ub", "03-uf", "01-oc", "04-nt-bg", "05-cl"]


def _sustech_like(seed: int, view_offset: float = 1.5) -> Embeddings:
    """6 test subjects x 9 types x 6 views; a view offset makes same-view matches easier."""
    rng = np.random.default_rng(seed)
    subjects = [f"{i:04d}" for i in range(1, 7)]
    centre = {s: rng.normal(size=(8, 4)) for s in subjects}
    shift = {v: rng.normal(size=(8, 4)) * view_offset for v in SUSTECH_VIEWS}
    rows = [(s, t, v) for s in subjects for t in SUSTECH_TYPES for v in SUSTECH_VIEWS]
    feats = [centre[s] + shift[v] + rng.normal(size=(8, 4)) * 1.6 for s, _, v in rows]
    return Embeddings(np.array(feats, np.float32), *(np.array(col) for col in zip(*rows, strict=True)))


def _reference_sustech(emb: Embeddings, metric: str) -> dict[str, dict[int, list[float]]]:
    """OpenGait's SUSTech1K rules (evaluate_indoor_dataset) written out as plain loops, numpy only."""
    probe_sets = {"Normal": ["01-nm"], "Bag": ["bg"], "Clothing": ["cl"], "Carrying": ["cr"], "Umbrella": ["ub"],
                  "Uniform": ["uf"], "Occlusion": ["oc"], "Night": ["nt"], "Overall": ["01", "02", "03", "04"]}
    feats = emb.embeddings.astype(np.float64)
    views = sorted(set(emb.views.tolist()))
    has = lambda t, keys: any(k in t for k in keys)  # noqa: E731
    out: dict[str, dict[int, list[float]]] = {}
    for name, keys in probe_sets.items():
        acc = np.zeros((len(views), len(views), 5))
        for i, pv in enumerate(views):
            p_rows = [n for n in range(len(emb)) if has(emb.types[n], keys) and emb.views[n] == pv]
            for j, gv in enumerate(views):
                g_rows = [n for n in range(len(emb)) if "00-nm" in emb.types[n] and emb.views[n] == gv]
                for r in range(5):
                    found = 0
                    for a in p_rows:
                        dists = []
                        for b in g_rows:
                            x, y = feats[a], feats[b]  # [C, P]
                            if metric == "cos":
                                x, y = x / np.linalg.norm(x, axis=0), y / np.linalg.norm(y, axis=0)
                                dists.append(1 - float(np.mean(np.sum(x * y, 0))))
                            else:
                                dists.append(float(np.mean(np.sqrt(np.sum((x - y) ** 2, 0)))))
                        order = sorted(range(len(g_rows)), key=lambda k: dists[k])[: r + 1]
                        found += any(emb.labels[g_rows[k]] == emb.labels[a] for k in order)
                    acc[i, j, r] = round(found * 100 / len(p_rows), 2)
        out[name] = {}
        for r in (1, 5):
            cells = acc[:, :, r - 1]
            rows_mean = [(cells[i].sum() - cells[i, i]) / (len(views) - 1) for i in range(len(views))]
            out[name][r] = [*rows_mean, float(np.mean(rows_mean))]
    return out


@pytest.mark.parametrize("metric", ["euc", "cos"])
def test_sustech1k_equals_opengait_arithmetic(metric):
    emb = _sustech_like(3 if metric == "euc" else 4)
    report = evaluate(emb, SUSTECH, metric=metric)
    ref = _reference_sustech(emb, metric)
    assert report["kind"] == "cross-view" and report["views"] == sorted(SUSTECH_VIEWS)
    assert report["conditions"] == list(ref)
    means = []
    for cond, by_rank in ref.items():
        for r, want in by_rank.items():
            block = report[cond] if r == 1 else report[cond]["rank5"]
            np.testing.assert_allclose([*block["per_view"], block["mean"]], want, atol=0.01)
        means.append(report[cond]["mean"])
    # Hard enough that the answer is informative: neither chance nor perfect, and rank-5 above rank-1.
    assert 20 < min(means) and max(means) < 95
    assert report["Overall"]["rank5"]["mean"] > report["Overall"]["mean"]
    # Probe membership by keyword: 01-cr-ub counts for Carrying and Umbrella, 04-nt-bg for Night and Bag,
    # 05-cl for Clothing but not Overall; 00-nm is the gallery only.
    per_view = 6
    assert report["Bag"]["probes"] == 2 * 6 * per_view and report["Umbrella"]["probes"] == 6 * per_view
    assert report["Clothing"]["probes"] == 2 * 6 * per_view
    assert report["Overall"]["probes"] == 7 * 6 * per_view
    # The CMC is the table's protocol: its rank-1 and rank-5 points are the table's means.
    assert report["Overall"]["cmc"][0] == pytest.approx(report["Overall"]["mean"])
    assert report["Overall"]["cmc"][4] == pytest.approx(report["Overall"]["rank5"]["mean"])
    lines = format_table(report).splitlines()
    assert lines[1].split() == [*sorted(SUSTECH_VIEWS), "mean"]
    assert [ln.split()[0] for ln in lines[2:11]] == list(ref)
    assert "rank-5" in lines[11] and lines[-1].split()[-1] == f"{report['Overall']['rank5']['mean']:.2f}"


def test_sustech1k_per_view_is_harder_than_pooled():
    """The pooled gallery lets a probe match its own view; OpenGait's protocol never does."""
    emb = _sustech_like(5, view_offset=5.0)
    opengait = evaluate(emb, SUSTECH)
    pooled = evaluate(emb, load_manifest("sustech1k-pooled"))
    assert pooled["NM"]["rank1"] > opengait["Normal"]["mean"] + 15
    assert load_manifest("sustech1k-pooled").test_ranges == SUSTECH.test_ranges  # same split, only the scoring differs
    assert load_manifest("sustech1k-pooled").train_ranges == SUSTECH.train_ranges


def test_heatmap_marks_the_excluded_diagonal_and_cmc_says_what_it_is():
    report = evaluate(_sustech_like(3), SUSTECH)
    fig = view_heatmap_figure(report)
    panels = [ax for ax in fig.axes if ax.get_visible() and ax.get_images() and ax.get_label() != "<colorbar>"]
    assert len(panels) == 9  # one per condition, 3 x 3
    for ax in panels:
        hatched = [p for p in ax.patches if p.get_hatch()]
        assert sorted((round(p.get_x() + 0.5), round(p.get_y() + 0.5)) for p in hatched) == [(i, i) for i in range(6)]
    assert "identical views excluded" in cmc_description(report)
    assert cmc_description(evaluate(_sustech_like(3), load_manifest("sustech1k-pooled"))) == "one gallery pooled over all views"


# ---- generic retrieval -------------------------------------------------------------------------
def test_generic_retrieval_from_custom_manifest(tmp_path):
    path = tmp_path / "mine.yaml"
    path.write_text(
        "name: mine\nnaming: {layout: folders}\nsplit: {train_share: 0.5}\n"
        "protocol: {kind: retrieval, gallery: [g], probes: {P: [p]}, exclude_identical_view: false}\n"
    )
    # 1-D embeddings: gallery A at 0 and 2, B at 1 and 3.
    pos = [0.0, 1.0, 2.0, 3.0, -0.1, 1.6, 0.5]
    labels = ["A", "B", "A", "B", "A", "B", "C"]
    types = ["g", "g", "g", "g", "p", "p", "p"]
    emb = Embeddings(np.array(pos, np.float32)[:, None], np.array(labels), np.array(types), np.array(["0"] * 7))
    report = evaluate(emb, load_manifest(path))
    p = report["P"]
    # Probe A: ranks A B A B -> AP (1 + 2/3) / 2, INP 2/3.  Probe B at 1.6: A B B A -> AP (1/2 + 2/3) / 2, INP 2/3.
    assert p["probes"] == 3 and p["valid_probes"] == 2  # C is not in the gallery: skipped
    assert p["rank1"] == pytest.approx(50.0) and p["rank5"] == 100.0 and p["rank10"] == 100.0
    assert p["mAP"] == pytest.approx(100 * ((1 + 2 / 3) / 2 + (1 / 2 + 2 / 3) / 2) / 2)
    assert p["mINP"] == pytest.approx(100 * 2 / 3)
    assert "mINP" in format_table(report)
