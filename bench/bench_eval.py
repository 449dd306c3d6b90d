"""Speed of the CASIA-B evaluator on the full test-set shape.

50 test subjects x 110 sequences (10 conditions x 11 views) = 5,500 sequences with [256, 16]
embeddings: 3,300 probes against 2,200 gallery sequences, 16 parts. Target: a few seconds on CPU.
The embeddings are random around a per-subject centre, so the accuracies are not meaningful;
only the time is.

    .venv/bin/python bench/bench_eval.py --metric euc --repeat 2 [--device cuda]
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from depthgait_model.embeddings import Embeddings  # noqa: E402
from depthgait_model.protocols import evaluate, format_table  # noqa: E402
from pipeline.manifest import load_manifest  # noqa: E402


def casia_b_test_set(subjects: int, channels: int, parts: int, seed: int = 0) -> Embeddings:
    manifest = load_manifest("casia-b")
    rng = np.random.default_rng(seed)
    rows = [(f"{75 + s:03d}", c, v) for s in range(subjects) for c in manifest.conditions for v in manifest.views]
    centres = rng.normal(size=(subjects, channels, parts)).astype(np.float32)
    subject_of = np.repeat(np.arange(subjects), len(manifest.conditions) * len(manifest.views))
    feats = centres[subject_of] + 6.0 * rng.normal(size=(len(rows), channels, parts)).astype(np.float32)
    return Embeddings(feats, *(np.array(col) for col in zip(*rows, strict=True)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--subjects", type=int, default=50)
    parser.add_argument("--channels", type=int, default=256)
    parser.add_argument("--parts", type=int, default=16)
    parser.add_argument("--metric", choices=["euc", "cos"], default="euc")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()

    emb = casia_b_test_set(args.subjects, args.channels, args.parts)
    manifest = load_manifest("casia-b")
    print(f"{len(emb)} sequences, embeddings {emb.embeddings.shape[1:]}, metric {args.metric}, "
          f"device {args.device}, torch threads {torch.get_num_threads()}")
    times = []
    for _ in range(args.repeat):
        start = time.perf_counter()
        report = evaluate(emb, manifest, metric=args.metric, device=args.device)
        if args.device.startswith("cuda"):
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    print(format_table(report))
    print(f"evaluate: best {min(times):.2f} s, runs {', '.join(f'{t:.2f}' for t in times)} s")


if __name__ == "__main__":
    main()
