"""Evaluate a trained checkpoint, or any model's embeddings, under a manifest's protocol.

``test_checkpoint`` embeds the manifest's test subjects from ``aligned.h5`` with all their frames,
evaluates, prints the protocol's table and writes the JSON report and figures. ``evaluate_file``
does the same for an embeddings npz (OpenGait's included).
"""
from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from depthgait_model.embeddings import Embeddings, embed_aligned, load_embeddings, save_embeddings
from depthgait_model.plots import write_plots
from depthgait_model.protocols import evaluate, format_table, type_mask
from pipeline.atomic import write_text_atomic
from pipeline.errors import InputError
from pipeline.formats.aligned import AlignedReader
from pipeline.manifest import Manifest, SequenceId, load_manifest

Echo = Callable[[str], None] | None


def protocol_ids(reader: AlignedReader, manifest: Manifest) -> list[SequenceId]:
    """Sequences of the manifest's test subjects whose type is in the protocol's gallery or a probe set."""
    ids = reader.ids()
    if not ids:
        raise InputError(f"{reader.path}: holds no sequences")
    _, test = manifest.split_subjects(s.subject for s in ids)
    test_set = set(test)
    ids = [s for s in ids if s.subject in test_set]
    if not ids:
        raise InputError(f"{reader.path}: no sequence of a {manifest.name} test subject (split: {manifest.test_ranges})")
    proto = manifest.protocol
    types = np.array([s.condition for s in ids])
    keep = type_mask(types, proto.gallery, proto.match)
    for patterns in proto.probes.values():
        keep |= type_mask(types, patterns, proto.match)
    chosen = [s for s, k in zip(ids, keep, strict=True) if k]
    if not chosen:
        raise InputError(f"{reader.path}: the test subjects have no gallery or probe sequences of the {manifest.name} protocol")
    return chosen


def finish_report(
    report: dict[str, Any], json_path: str | Path | None, plots_dir: str | Path | None, echo: Echo
) -> dict[str, Any]:
    """Print the table, write the JSON report and the figures where asked; returns the report."""
    if echo is not None:
        echo(format_table(report))
    if json_path is not None:
        write_text_atomic(json_path, json.dumps(report, indent=1) + "\n")
    if plots_dir is not None:
        paths = write_plots(report, plots_dir)
        if echo is not None:
            echo("figures: " + ", ".join(str(p) for p in paths))
    return report


def test_checkpoint(
    checkpoint: str | Path,
    data: str | Path = "cache/aligned.h5",
    manifest: str | Path | None = None,
    device: str | torch.device = "cpu",
    json_path: str | Path | None = None,
    plots_dir: str | Path | None = None,
    metric: str | None = None,
    embeddings_path: str | Path | None = None,
    batch_size: int = 8,
    quiet: bool = False,
    echo: Echo = print,
) -> dict[str, Any]:
    """Embed the test subjects of ``data`` with the checkpoint's model and evaluate them.

    ``manifest`` defaults to the one the run was trained with (checkpoint metadata), else casia-b.
    """
    from depthgait_model.checkpoint import load_model

    model, run_config, meta = load_model(checkpoint, device)
    manifest_obj = load_manifest(manifest or meta.get("extra", {}).get("manifest") or "casia-b")
    with AlignedReader(data) as reader:
        ids = protocol_ids(reader, manifest_obj)
        emb = embed_aligned(
            model,
            reader,
            ids,
            device=device,
            which=run_config.train.test_embedding,
            batch_size=batch_size,
            cut=run_config.data.cut,
            quiet=quiet,
        )
    if embeddings_path is not None:
        save_embeddings(embeddings_path, emb)
    report = evaluate(emb, manifest_obj, metric=metric, device=device, quiet=quiet)
    report.update(checkpoint=str(checkpoint), iteration=meta.get("iteration"), sequences=len(emb))
    return finish_report(report, json_path, plots_dir, echo)


test_checkpoint.__test__ = False  # a library function, not a pytest test


def evaluate_file(
    embeddings: str | Path | Embeddings,
    protocol: str | Path = "casia-b",
    metric: str | None = None,
    device: str | torch.device = "cpu",
    json_path: str | Path | None = None,
    plots_dir: str | Path | None = None,
    quiet: bool = False,
    echo: Echo = print,
) -> dict[str, Any]:
    """Evaluate an embeddings npz (or an ``Embeddings``) under a manifest's protocol."""
    manifest = load_manifest(protocol)
    emb = embeddings if isinstance(embeddings, Embeddings) else load_embeddings(embeddings)
    try:
        report = evaluate(emb, manifest, metric=metric, device=device, quiet=quiet)
    except ValueError as exc:
        if isinstance(embeddings, Embeddings):
            raise
        raise InputError(f"{embeddings}: {exc}") from exc
    report.update(embeddings=str(embeddings) if not isinstance(embeddings, Embeddings) else None, sequences=len(emb))
    return finish_report(report, json_path, plots_dir, echo)
