"""Rewrite the README's quoted results from the files the runs wrote, so the text never drifts from them.

Marked blocks of README.md are regenerated; the text between the markers is replaced:

- ``<!-- demo-results -->`` ... ``<!-- /demo-results -->``: from ``demo/report.json`` (rank-1 per condition),
  ``demo/timings.json`` (seconds per stage) and ``demo/summary.json`` (test subjects), all written by
  ``make demo``; the run the README quotes is kept in ``docs/results/demo/`` (``--demo docs/results/demo``);
- ``<!-- results:NAME -->`` ... ``<!-- /results:NAME -->``: the table of ``docs/results/NAME.json``
  (``scripts/run_ablation.py``'s mean and standard deviation over seeds);
- ``<!-- paired:NAME -->`` ... ``<!-- /paired:NAME -->``: the seed-paired differences of ``docs/results/NAME.json``
  (``run_ablation.py --pair``'s ``paired.json``): per comparison and condition, the mean over views and each
  view, with 95% t intervals;
- ``<!-- crowd:A,B -->`` ... ``<!-- /crowd:A,B -->``: the crowd-tracking table, a row per
  ``docs/results/crowd_tracking_A.json`` (``bench/bench_crowd.py --json``).

Usage: ``python scripts/readme_numbers.py [--demo demo] [--results docs/results] [--readme README.md] [--check]``.
``--check`` changes nothing and exits 1 when the README differs from the files (for CI).
"""
from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
STAGES = ("synth", "extract", "align", "train", "test")
# Row labels and header of each results table; a file without an entry gets "mode" and the mode names.
TABLES: dict[str, dict[str, Any]] = {
    "study": {"head": "arm", "per_seed": True, "labels": {"control": "control (full, silhouette in both branches)"}},
    "previous_recipe/ablation": {"head": "mode", "per_seed": True},
    "previous_recipe/control_silhouette_twice": {"head": "mode",
                                                 "labels": {"full": "full, silhouette in both branches (control)"}},
    "previous_recipe/oracle_truth_depth": {"head": "mode, true silhouette and depth"},
}


class ReadmeError(Exception):
    """A marker is missing or a results file lacks a field; the message names which."""


def _join_conditions(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def demo_text(demo: Path) -> str:
    """The sentences that quote ``make demo``'s run, from the files it wrote."""
    try:
        report = json.loads((demo / "report.json").read_text())
        timings = json.loads((demo / "timings.json").read_text())
    except FileNotFoundError as exc:
        raise ReadmeError(f"{exc.filename}: missing; run `make demo` first") from exc
    summary_path = demo / "summary.json"
    summary = json.loads(summary_path.read_text()) if summary_path.is_file() else {}
    conditions = report.get("conditions", ["NM", "BG", "CL"])
    stages = ", ".join(f"{s} {timings[s]:.0f} s" for s in STAGES if s in timings)
    means = _join_conditions([f"{c} {report[c]['mean']:.1f}%" for c in conditions])
    text = f"The demo itself took {timings['total'] / 60:.1f} minutes ({stages}). It printed a mean rank-1 of {means}"
    if summary.get("test_subjects"):
        n = summary["test_subjects"]
        text += f" against a chance level of {100 / n:.0f}% ({n} test subjects)"
    return text + "."


def markdown_table(head: list[str], rows: list[list[str]]) -> str:
    """A GitHub markdown table: the header, the rule, a line per row."""
    return "\n".join("| " + " | ".join(cells) + " |" for cells in [head, ["---"] * len(head), *rows])


def results_table(path: Path, name: str) -> str:
    """The markdown table of one ``docs/results/NAME.json``: mean ± sd per mode and condition."""
    data = json.loads(path.read_text())
    spec = TABLES.get(name, {"head": "mode"})
    conditions = data["conditions"]
    head = [spec["head"], *conditions] + (["per seed (NM/BG/CL)"] if spec.get("per_seed") else [])
    rows = []
    for mode, cells in data["modes"].items():
        row = [spec.get("labels", {}).get(mode, mode)]
        row += [f"{cells[c]['mean']:.1f} ± {cells[c]['std']:.1f}" for c in conditions]
        if spec.get("per_seed"):
            per_seed = zip(*(cells[c]["per_seed"] for c in conditions), strict=True)
            row.append("; ".join("/".join(f"{x:.1f}" for x in seed) for seed in per_seed))
        rows.append(row)
    return markdown_table(head, rows)


def _interval(p: dict) -> str:
    return f"{p['mean']:+.1f} [{p['lo']:+.1f}, {p['hi']:+.1f}]"


def paired_table(path: Path) -> str:
    """The markdown table of one paired-differences file: a row per (comparison, condition)."""
    data = json.loads(path.read_text())
    first = next(iter(data.values()))
    views = first.get("views") or []
    head = ["difference", "condition", "mean over views", *views]
    rows = []
    for entry in data.values():
        label = f"{entry['b']} - {entry['a']}"
        for cond, cell in entry["conditions"].items():
            rows.append([label, cond, _interval(cell["mean"]), *(_interval(v) for v in cell.get("per_view", []))])
    return markdown_table(head, rows)


TRACKER_NAMES = {"bytetrack": "ByteTrack", "botsort": "BoT-SORT"}


def crowd_table(results: Path, names: list[str]) -> str:
    """The crowd-tracking table from ``bench/bench_crowd.py``'s JSONs: a row per file, scored on trajectories
    (mask IoU on the kept frames, the only ones with a silhouette)."""
    head = ["tracker, scenes", "walkers followed", "mean hit rate", "ID switches", "IDF1", "MOTA",
            "spare tracks (max per scene)", "mask IoU of kept frames"]
    rows = []
    for name in names:
        data = json.loads((results / f"crowd_tracking_{name}.json").read_text())
        cfg, traj, kept = data["settings"], data["summary"]["trajectory"], data["summary"]["kept"]
        label = f"{TRACKER_NAMES.get(cfg['tracker'], cfg['tracker'])}, seed {cfg['seed']} x {cfg['scenes']}"
        rows.append([
            label, f"{traj['walkers_followed']} / {traj['walkers']}", f"{traj['walker_hit_rate_mean']:.2f}",
            str(traj["id_switches"]), f"{traj['idf1']:.2f}", f"{traj['mota']:.2f}", str(traj["spare_tracks_max"]),
            f"{kept['mask_iou']:.2f}"])
    return markdown_table(head, rows)


def replace_block(text: str, tag: str, body: str) -> str:
    """Replace what lies between ``<!-- tag -->`` and ``<!-- /tag -->`` (markers kept, on their own lines)."""
    pattern = re.compile(rf"(<!-- {re.escape(tag)} -->\n)(.*?)(\n<!-- /{re.escape(tag)} -->)", re.DOTALL)
    if not pattern.search(text):
        raise ReadmeError(f"README has no <!-- {tag} --> ... <!-- /{tag} --> block")
    return pattern.sub(lambda m: m.group(1) + body + m.group(3), text, count=1)


def wrap(text: str, width: int = 115) -> str:
    """Wrap a paragraph to the README's line width."""
    lines, line = [], ""
    for word in text.split():
        if line and len(line) + 1 + len(word) > width:
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}" if line else word
    return "\n".join([*lines, line])


def rewrite(readme: str, demo: Path | None, results: Path | None) -> tuple[str, list[str]]:
    """The README with every block whose source files exist regenerated, and the names of those blocks."""
    done = []
    if demo is not None and (demo / "report.json").is_file():
        readme = replace_block(readme, "demo-results", wrap(demo_text(demo)))
        done.append("demo-results")
    if results is not None:
        for tag in re.findall(r"<!-- results:([\w/-]+) -->", readme):
            path = results / f"{tag}.json"
            if path.is_file():
                readme = replace_block(readme, f"results:{tag}", results_table(path, tag))
                done.append(f"results:{tag}")
        for tag in re.findall(r"<!-- paired:([\w/-]+) -->", readme):
            path = results / f"{tag}.json"
            if path.is_file():
                readme = replace_block(readme, f"paired:{tag}", paired_table(path))
                done.append(f"paired:{tag}")
        for tags in re.findall(r"<!-- crowd:([\w,-]+) -->", readme):
            names = tags.split(",")
            if all((results / f"crowd_tracking_{n}.json").is_file() for n in names):
                readme = replace_block(readme, f"crowd:{tags}", crowd_table(results, names))
                done.append(f"crowd:{tags}")
    return readme, done


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--readme", type=Path, default=REPO / "README.md")
    parser.add_argument("--demo", type=Path, default=REPO / "demo", help="the folder `make demo` wrote")
    parser.add_argument("--results", type=Path, default=REPO / "docs" / "results")
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 when the README is stale")
    args = parser.parse_args(argv)
    try:
        before = args.readme.read_text()
        after, done = rewrite(before, args.demo, args.results)
    except (ReadmeError, KeyError, json.JSONDecodeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if not done:
        print(f"nothing to regenerate: no {args.demo}/report.json and no results files for the README's blocks")
        return 1
    if args.check:
        print(("stale: " if after != before else "up to date: ") + ", ".join(done))
        return int(after != before)
    if after != before:
        args.readme.write_text(after)
    print(f"{'rewrote' if after != before else 'unchanged'} {args.readme}: {', '.join(done)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
