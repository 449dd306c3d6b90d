"""Does depth help? Train and test each modality setting with the same recipe and seeds.

For every (mode, seed) it runs the real commands, ``depthgait train --set model.mode=MODE --seed S``
then ``depthgait test``, skipping pairs whose report already exists (a killed study resumes), and
writes ``OUT/ablation.json``, ``OUT/ablation.md`` (mean and standard deviation over seeds of the
mean rank-1 per probe condition, plus the per-seed values) and ``OUT/ablation_views.png``.

    python scripts/run_ablation.py --data cache/aligned.h5 --manifest synthetic --config small-cpu \\
        --modes silhouette-only,depth-only,full --seeds 0,1,2 --iterations 400 --jobs 2 --out runs/ablation \\
        --pair silhouette-only,full

``--control`` adds the capacity control as a third arm, ``control``: the ``full`` network trained on a copy
of ``--data`` whose depth is the silhouette (``OUT/control-aligned.h5``, written once), so ``full - control``
is what depth adds beyond a second branch and the fusion blocks. Every ``--pair A,B`` writes
``OUT/paired-B-vs-A.md`` and an entry of ``OUT/paired.json``: seed-paired ``B - A`` per condition and per
view with 95% t intervals (``depthgait_model.study``).

    python scripts/run_ablation.py --data cache/aligned.h5 --modes silhouette-only,full --control \
        --seeds 0,1,2,3,4 --iterations 300 --out docs/results/study \
        --pair silhouette-only,full --pair control,full --pair silhouette-only,control
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from pipeline.atomic import write_text_atomic

CONTROL = "control"  # the arm name of the capacity control: mode full, depth replaced by the silhouette


def control_aligned(src: Path, dst: Path) -> Path:
    """``dst``: every sequence of ``src`` with its depth replaced by a copy of its silhouette (once)."""
    from pipeline.formats.aligned import AlignedReader, AlignedSequence, AlignedWriter

    if dst.is_file():
        return dst
    with AlignedReader(src) as reader, AlignedWriter(dst, {"control": f"depth := sil of {src}"}) as writer:
        for seq in reader:
            writer.add(AlignedSequence(seq.id, seq.sil, seq.sil.copy(), seq.frames, seq.box, seq.video, seq.track))
    return dst


def run_one(args: argparse.Namespace, arm: str, seed: int) -> Path:
    """Train and test one (arm, seed); return its report path. Each job uses one torch thread."""
    mode, data = ("full", args.out / "control-aligned.h5") if arm == CONTROL else (arm, args.data)
    run = args.out / f"{arm}-seed{seed}"
    report = run / "report.json"
    if report.exists():
        return report
    env = dict(os.environ, OMP_NUM_THREADS="1")
    py = sys.executable
    train = [py, "-m", "cli.main", "train", "--data", str(data), "--manifest", args.manifest, "--config",
             args.config, "--out", str(run), "--iterations", str(args.iterations), "--seed", str(seed), "--threads", "1",
             "--quiet", "--set", f"model.mode={mode}", *sum((["--set", s] for s in args.set), [])]
    if (run / "ckpt.pt").exists():
        train.append("--resume")
    log = (args.out / f"{arm}-seed{seed}.log").open("a")
    subprocess.run(train, check=True, env=env, stdout=log, stderr=subprocess.STDOUT)
    subprocess.run([py, "-m", "cli.main", "test", "--checkpoint", str(run / "ckpt.pt"), "--data", str(data),
                    "--manifest", args.manifest, "--json", str(report), "--plots", str(run), "--quiet"],
                   check=True, env=env, stdout=log, stderr=subprocess.STDOUT)
    return report


def summarise(reports: dict[tuple[str, int], dict], modes: list[str], seeds: list[int]) -> dict:
    """Mean and standard deviation over seeds of each condition's mean rank-1 (and per view)."""
    conditions = list(next(iter(reports.values()))["conditions"])
    table: dict = {"seeds": seeds, "conditions": conditions, "modes": {}}
    for mode in modes:
        row = {}
        for cond in conditions:
            means = np.array([reports[(mode, s)][cond]["mean"] for s in seeds], dtype=float)
            views = np.array([reports[(mode, s)][cond]["per_view"] for s in seeds], dtype=float)
            row[cond] = {"mean": float(means.mean()), "std": float(means.std(ddof=1)) if len(seeds) > 1 else 0.0,
                         "per_seed": means.round(2).tolist(), "per_view_mean": views.mean(0).round(2).tolist(),
                         "per_seed_views": views.round(2).tolist()}  # [seeds, views]: for seed-paired per-view CIs
        table["modes"][mode] = row
    table["views"] = next(iter(reports.values())).get("views")
    return table


def markdown(table: dict, args: argparse.Namespace) -> str:
    conds = table["conditions"]
    lines = [f"Rank-1 (%), mean over probe views with identical views excluded; mean ± sd over seeds "
             f"{', '.join(map(str, table['seeds']))}; recipe `{args.config}`, {args.iterations} iterations.", "",
             "| mode | " + " | ".join(conds) + " | per seed (" + "/".join(conds) + ") |",
             "| --- | " + " | ".join("---" for _ in conds) + " | --- |"]
    for mode, row in table["modes"].items():
        cells = [f"{row[c]['mean']:.1f} ± {row[c]['std']:.1f}" for c in conds]
        seeds = "; ".join("/".join(f"{row[c]['per_seed'][i]:.1f}" for c in conds) for i in range(len(table["seeds"])))
        lines.append(f"| {mode} | " + " | ".join(cells) + f" | {seeds} |")
    return "\n".join(lines) + "\n"


def plot(table: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    conds, views = table["conditions"], table["views"]
    fig, axes = plt.subplots(1, len(conds), figsize=(4.5 * len(conds), 3.6), sharey=True)
    for ax, cond in zip(np.atleast_1d(axes), conds, strict=True):
        for mode, row in table["modes"].items():
            ax.plot(views, row[cond]["per_view_mean"], marker="o", label=mode)
        ax.set_title(f"{cond}: rank-1 per probe view")
        ax.set_xlabel("probe view")
        ax.set_ylim(0, 100)
        ax.grid(alpha=0.3)
    np.atleast_1d(axes)[0].set_ylabel("rank-1 (%), mean over seeds")
    np.atleast_1d(axes)[0].legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("cache/aligned.h5"))
    parser.add_argument("--manifest", default="synthetic")
    parser.add_argument("--config", default="small-cpu")
    parser.add_argument("--modes", default="silhouette-only,depth-only,full")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--iterations", type=int, default=400)
    parser.add_argument("--set", action="append", default=[], help="extra config overrides KEY=VALUE, for all runs")
    parser.add_argument("--control", action="store_true",
                        help="add the arm 'control': mode full with the silhouette as its depth")
    parser.add_argument("--jobs", type=int, default=2, help="runs in parallel (one thread each)")
    parser.add_argument("--out", type=Path, default=Path("runs/ablation"))
    parser.add_argument("--pair", action="append", default=[], metavar="A,B",
                        help="also write OUT/paired-B-vs-A.md: seed-paired B - A per condition and view, 95%% t CI")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    modes, seeds = args.modes.split(","), [int(s) for s in args.seeds.split(",")]
    if args.control:
        control_aligned(args.data, args.out / "control-aligned.h5")
        modes.append(CONTROL)
    pairs = [(m, s) for s in seeds for m in modes]
    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        paths = dict(zip(pairs, pool.map(lambda p: run_one(args, *p), pairs), strict=True))
    reports = {p: json.loads(path.read_text()) for p, path in paths.items()}
    table = summarise(reports, modes, seeds)
    write_text_atomic(args.out / "ablation.json", json.dumps(table, indent=2) + "\n")
    text = markdown(table, args)
    write_text_atomic(args.out / "ablation.md", text)
    plot(table, args.out / "ablation_views.png")
    print(text)
    from depthgait_model.study import as_json, compare
    from depthgait_model.study import markdown as paired_markdown

    paired_all = {}
    for pair in args.pair:
        mode_a, mode_b = pair.split(",")
        result = compare(table, mode_a, table, mode_b)
        paired_text = paired_markdown(result, f"Recipe `{args.config}`, {args.iterations} iterations.")
        write_text_atomic(args.out / f"paired-{mode_b}-vs-{mode_a}.md", paired_text)
        paired_all[f"{mode_b}-vs-{mode_a}"] = as_json(result)
        print(paired_text)
    if paired_all:
        write_text_atomic(args.out / "paired.json", json.dumps(paired_all, indent=2) + "\n")


if __name__ == "__main__":
    main()
