#!/usr/bin/env bash
# Reproduce DepthGait on CASIA-B from the raw videos: extract (YOLO person boxes, SAM silhouettes,
# Depth Anything V2 depth of the person crop), align, train the paper's recipe (60k iterations), test
# with OpenGait's protocol, and print our rank-1 beside the published anchors (their papers' CASIA-B tables).
#
#   make reproduce-casiab CASIAB=/data/DatasetB/videos
#   CASIAB=/data/DatasetB/videos DEVICE=cuda scripts/reproduce_casiab.sh
#
# Every stage resumes: extract skips videos whose cache matches the settings, align skips an
# up-to-date aligned file, training continues from $RUNS/ckpt.pt.
# Variables (defaults in brackets): CASIAB (required: the folder of SSS-CC-NN-VVV.avi videos),
# DETECTOR [yolo], DETECTOR_WEIGHTS [yolo11n.pt], SEGMENTER [sam], SAM [vit_b],
# DEPTH [depth-anything/Depth-Anything-V2-Small-hf], DEVICE [auto], WORKERS [1], BATCH_SIZE [16],
# CACHE [cache/casia-b], RUNS [runs/casia-b], CONFIG [casia-b: the paper's recipe], ITERATIONS [the recipe's],
# MANIFEST [casia-b], BIN [.venv/bin], TRAIN_ARGS [extra `depthgait train` options, e.g. "--set train.batch_p=2"].
# The offline check (tests/test_reproduce.py) runs this very script on a fake CASIA-B tree made by the
# generator, with DETECTOR=bgsub SEGMENTER=bgsub DEPTH=depthgait/synthdepth-small CONFIG=tiny ITERATIONS=...
set -euo pipefail

: "${CASIAB:?set CASIAB=/path/to/DatasetB/videos (the raw SSS-CC-NN-VVV.avi files)}"
BIN=${BIN:-.venv/bin}
DETECTOR=${DETECTOR:-yolo}
DETECTOR_WEIGHTS=${DETECTOR_WEIGHTS:-yolo11n.pt}
SEGMENTER=${SEGMENTER:-sam}
SAM=${SAM:-vit_b}
DEPTH=${DEPTH:-depth-anything/Depth-Anything-V2-Small-hf}
DEVICE=${DEVICE:-auto}
WORKERS=${WORKERS:-1}
BATCH_SIZE=${BATCH_SIZE:-16}
CACHE=${CACHE:-cache/casia-b}
RUNS=${RUNS:-runs/casia-b}
CONFIG=${CONFIG:-casia-b}
MANIFEST=${MANIFEST:-casia-b}
ALIGNED="$CACHE/aligned.h5"
REPORT="$RUNS/report.json"

if [ ! -d "$CASIAB" ]; then
    echo "CASIAB=$CASIAB is not a folder" >&2
    exit 2
fi

echo "== 1/4 extract $CASIAB -> $CACHE ($DETECTOR / $SEGMENTER / $DEPTH on $DEVICE)"
# exit code 1 means some videos failed (rows in $CACHE/errors.jsonl); the rest are cached and align goes on
"$BIN/depthgait-prep" extract "$CASIAB" --cache "$CACHE" --manifest "$MANIFEST" --detector "$DETECTOR" \
    --detector-weights "$DETECTOR_WEIGHTS" --segmenter "$SEGMENTER" --sam "$SAM" --depth "$DEPTH" \
    --device "$DEVICE" --batch-size "$BATCH_SIZE" --workers "$WORKERS" || [ $? -eq 1 ]

echo "== 2/4 align -> $ALIGNED"
"$BIN/depthgait-prep" align --cache "$CACHE" --out "$ALIGNED" --workers "$WORKERS" || [ $? -eq 1 ]
"$BIN/depthgait-prep" status --cache "$CACHE"

echo "== 3/4 train $CONFIG -> $RUNS"
train_args=(--data "$ALIGNED" --manifest "$MANIFEST" --config "$CONFIG" --out "$RUNS" --device "$DEVICE")
if [ -n "${ITERATIONS:-}" ]; then train_args+=(--iterations "$ITERATIONS"); fi
if [ -f "$RUNS/ckpt.pt" ]; then train_args+=(--resume); fi
read -r -a extra_train_args <<< "${TRAIN_ARGS:-}"
"$BIN/depthgait" train "${train_args[@]}" "${extra_train_args[@]}"

echo "== 4/4 test $RUNS/ckpt.pt"
"$BIN/depthgait" test --checkpoint "$RUNS/ckpt.pt" --data "$ALIGNED" --manifest "$MANIFEST" \
    --device "$DEVICE" --json "$REPORT" --plots "$RUNS"

"$BIN/python" - "$REPORT" <<'PY'
import json, sys

# Published CASIA-B rank-1 (%), mean over probe views, identical views excluded.
anchors = {
    "GaitBase (sil)": {"NM": 97.6, "BG": 94.0, "CL": 77.4},
    "GaitGL (sil)": {"NM": 97.4, "BG": 94.5, "CL": 83.8},
    "GaitEdge (RGB + sil, CASIA-B*)": {"NM": 97.9, "BG": 96.1, "CL": 86.4},
}
report = json.load(open(sys.argv[1]))
conds = ["NM", "BG", "CL"]
def cell(c):
    value = report.get(c, {}).get("mean")
    return f"{'-':>8}" if value is None else f"{value:8.2f}"
print("\nCASIA-B rank-1 (%)                    " + "".join(f"{c:>8}" for c in conds))
print(f"{'DepthGait (ours, this run)':38}" + "".join(cell(c) for c in conds))
for name, row in anchors.items():
    print(f"{name:38}" + "".join(f"{row[c]:8.1f}" for c in conds))
print("The paper reports no CASIA-B figure for DepthGait itself; the rows above are its peers.")
PY
