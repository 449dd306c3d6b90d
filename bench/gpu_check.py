"""One prepared GPU check (under 8 minutes on an H100/H200): extract frames/s per backend, GPU
memory and model-busy share, then train it/s of the ``casia-b`` recipe (mixed precision) and
embedding throughput.

Every model has its real size and random weights built from its config (nothing is downloaded):
YOLO from ``yolo11n.yaml`` / ``yolo11n-seg.yaml``, segment-anything ``vit_b`` from its registry
without a checkpoint, Depth Anything V2-Small from ``transformers.DepthAnythingConfig()``. The
videos are the synthetic generator's at CASIA-B's 320x240. Backends: ``yolo`` (YOLO boxes, bgsub
silhouettes), ``yolo-seg`` and ``sam`` (YOLO boxes, model silhouettes), each with the depth model.
Each backend runs with one video in flight, then with ``--streams`` (model calls batched across
videos). The model-busy share is the time inside model calls (synchronised) over the wall time; with
several videos in flight the calls overlap, so it can pass 100%.

    make bench-gpu                       # .venv/bin/python bench/gpu_check.py
    .venv/bin/python bench/gpu_check.py --smoke   # tiny sizes on a CPU, to know the script works
"""

# ruff: noqa: E402  (sys.path is set before the project's imports)
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from functools import partial
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


class Timed:
    """Wrap a model call (or an object's method) and add up the synchronised seconds spent in it."""

    def __init__(self, inner: Any, device: str, method: str | None = None) -> None:
        self.inner, self.device, self.method, self.seconds = inner, device, method, 0.0

    def _timed(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        _sync(self.device)
        start = time.perf_counter()
        out = fn(*args, **kwargs)
        _sync(self.device)
        self.seconds += time.perf_counter() - start
        return out

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._timed(self.inner, *args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self.inner, name)
        return partial(self._timed, attr) if name == self.method else attr


def tiny_sam() -> Any:
    from segment_anything.modeling import ImageEncoderViT, MaskDecoder, PromptEncoder, Sam, TwoWayTransformer

    dim, size = 32, 64
    return Sam(
        image_encoder=ImageEncoderViT(img_size=size, patch_size=16, embed_dim=dim, depth=2, num_heads=2, out_chans=dim,
                                      qkv_bias=True, norm_layer=partial(torch.nn.LayerNorm, eps=1e-6), use_rel_pos=True,
                                      window_size=2, global_attn_indexes=(1,)),
        prompt_encoder=PromptEncoder(embed_dim=dim, image_embedding_size=(4, 4), input_image_size=(size, size), mask_in_chans=4),
        mask_decoder=MaskDecoder(num_multimask_outputs=3, transformer_dim=dim, iou_head_hidden_dim=16,
                                 transformer=TwoWayTransformer(depth=1, embedding_dim=dim, mlp_dim=64, num_heads=2)),
    )


def depth_folder(folder: Path, smoke: bool) -> Path:
    from transformers import DepthAnythingConfig, DepthAnythingForDepthEstimation, Dinov2Config, DPTImageProcessor

    if smoke:
        backbone = Dinov2Config(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
                                patch_size=14, image_size=56, out_features=["stage1", "stage2"],
                                reshape_hidden_states=False)
        cfg = DepthAnythingConfig(backbone_config=backbone, patch_size=14, reassemble_hidden_size=32,
                                  reassemble_factors=[2, 1], neck_hidden_sizes=[16, 32], fusion_hidden_size=16,
                                  head_hidden_size=8)
    else:
        cfg = DepthAnythingConfig()  # V2-Small: DINOv2-S backbone, 24.8 M parameters
    DepthAnythingForDepthEstimation(cfg).save_pretrained(folder)
    size = 56 if smoke else 518
    DPTImageProcessor(size={"height": size, "width": size}, keep_aspect_ratio=True, ensure_multiple_of=14,
                      image_mean=[0.485, 0.456, 0.406], image_std=[0.229, 0.224, 0.225]).save_pretrained(folder)
    return folder


def extract_rates(args: argparse.Namespace, work: Path) -> None:
    from pipeline.depth.estimator import DepthEstimator
    from pipeline.extract.batch import run_extract
    from pipeline.extract.detect import YoloDetector
    from pipeline.extract.models import Models
    from pipeline.extract.segment import BgSubSegmenter, SamSegmenter, YoloSegSegmenter
    from pipeline.extract.settings import ExtractSettings
    from pipeline.synthetic.dataset import generate_dataset

    dev = args.device
    half = dev.startswith("cuda") and not args.fp32
    videos = work / "videos"
    generate_dataset(videos, subjects=args.videos, views=["090"], conditions=["nm-01"], frames=args.frames,
                     size=(320, 240), quiet=True)
    depth = str(depth_folder(work / "depth", args.smoke))
    imgsz = 160 if args.smoke else 640
    input_height = 56 if args.smoke else None
    print(f"extract: {args.videos} videos x {args.frames} frames at 320x240, batch {args.batch_size}, device {dev}"
          f"{', fp16 autocast' if half else ''}")
    for backend in args.backends:
        settings = ExtractSettings(
            detector="yolo", detector_weights="yolo11n.yaml", device=dev, batch_size=args.batch_size, depth=depth,
            depth_input_height=input_height, threads=args.threads,
            segmenter={"yolo": "bgsub", "yolo-seg": "yolo-seg", "sam": "sam"}[backend],
            seg_weights="yolo11n-seg.yaml", sam="vit_b", half=half,
        )
        torch.manual_seed(0)  # the same random weights in every run
        if backend == "sam":
            from segment_anything import sam_model_registry

            sam = tiny_sam() if args.smoke else sam_model_registry["vit_b"](checkpoint=None)
            segmenter: Any = SamSegmenter(model=sam, device=dev, half=half)
        elif backend == "yolo-seg":
            segmenter = YoloSegSegmenter("yolo11n-seg.yaml", device=dev, conf=0.0, imgsz=imgsz, min_iou=0.0, half=half)
        else:
            segmenter = BgSubSegmenter()
        # Random weights: YOLO's class bias starts near logit -9 to -11, so keep every box above 1e-6.
        det = Timed(YoloDetector("yolo11n.yaml", device=dev, conf=1e-6, imgsz=imgsz, half=half), dev)
        seg = Timed(segmenter, dev)
        est = Timed(DepthEstimator(depth, dev, input_height, args.batch_size, half=half), dev, method="estimate")
        models = Models(det, seg, est)
        if dev.startswith("cuda"):
            torch.cuda.reset_peak_memory_stats()
        # One warm-up video (cuDNN autotuning, first allocations), then the timed run.
        run_extract(videos, work / f"warm-{backend}", settings, "synthetic", quiet=True, models=models)
        for streams in sorted({1, args.streams}):
            for t in (det, seg, est):
                t.seconds = 0.0
            start = time.perf_counter()
            summary = run_extract(videos, work / f"cache-{backend}", settings, "synthetic", quiet=True, models=models,
                                  overwrite=True, streams=streams)
            wall = time.perf_counter() - start
            busy = det.seconds + seg.seconds + est.seconds
            mem = f", GPU memory peak {torch.cuda.max_memory_allocated() / 2**30:.2f} GiB" if dev.startswith("cuda") else ""
            print(f"  {backend:8s} + depth, {streams} in flight: {summary.frames / wall:7.1f} frames/s ({summary.frames} "
                  f"frames, {summary.failed} failed); model-busy {100 * busy / wall:.0f}% (detect {det.seconds:.1f} s, "
                  f"segment {seg.seconds:.1f} s, depth {est.seconds:.1f} s of {wall:.1f} s){mem}")
            for row in summary.rows[:2]:
                print(f"    {row.level}: {row.line()[:300]}")


def train_rate(args: argparse.Namespace) -> None:
    from depthgait_model.config import load_config
    from depthgait_model.losses import GaitLoss
    from depthgait_model.model import DepthGait

    dev = torch.device(args.device)
    cfg = load_config("tiny" if args.smoke else "casia-b")
    tc = cfg.train
    p, k, frames = (2, 2, 4) if args.smoke else (tc.batch_p, tc.batch_k, tc.frames)
    h, w = cfg.data.height, cfg.data.width
    model = DepthGait(cfg.model, num_classes=74).to(dev).train()
    opt = torch.optim.SGD(model.parameters(), lr=tc.lr, momentum=tc.momentum, weight_decay=tc.weight_decay)
    amp = dev.type == "cuda"
    scaler = torch.amp.GradScaler(dev.type, enabled=amp)
    criterion = GaitLoss(tc)
    n = p * k
    labels = torch.arange(p, device=dev).repeat_interleave(k)  # [N]
    sil = torch.rand(n, frames, h, w, device=dev)  # [N, T, H, W]
    depth = torch.rand(n, frames, h, w, device=dev)

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        with torch.autocast(dev.type, dtype=torch.float16, enabled=amp):
            loss, _ = criterion(model(sil, depth), labels)
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()

    for _ in range(2 if args.smoke else 5):
        step()
    _sync(args.device)
    iters = 2 if args.smoke else args.train_iters
    start = time.perf_counter()
    for _ in range(iters):
        step()
    _sync(args.device)
    rate = iters / (time.perf_counter() - start)
    mem = f", GPU memory peak {torch.cuda.max_memory_allocated() / 2**30:.2f} GiB" if amp else ""
    print(f"train ({'tiny' if args.smoke else 'casia-b'} recipe, P x K = {p} x {k}, {frames} frames, "
          f"{'fp16 autocast' if amp else 'fp32'}): {rate:.2f} it/s{mem}")

    model.eval()
    seq = 2 if args.smoke else 64
    length = 8 if args.smoke else 100  # CASIA-B sequences are ~100 frames at test time
    sil_t = torch.rand(seq, length, h, w, device=dev)
    depth_t = torch.rand(seq, length, h, w, device=dev)
    with torch.inference_mode(), torch.autocast(dev.type, dtype=torch.float16, enabled=amp):
        model(sil_t, depth_t)
        _sync(args.device)
        start = time.perf_counter()
        rounds = 1 if args.smoke else 5
        for _ in range(rounds):
            model(sil_t, depth_t)
        _sync(args.device)
    seconds = time.perf_counter() - start
    print(f"embedding: {rounds * seq / seconds:.1f} sequences/s ({length} frames each, batch {seq}) = "
          f"{rounds * seq * length / seconds:.0f} frames/s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="tiny models and sizes (a CPU run that the script works)")
    parser.add_argument("--device", default=None, help="[cuda when available]")
    parser.add_argument("--backends", nargs="+", default=["yolo", "yolo-seg", "sam"], choices=["yolo", "yolo-seg", "sam"])
    parser.add_argument("--videos", type=int, default=None, help="[8; smoke 1]")
    parser.add_argument("--frames", type=int, default=None, help="frames per video [100; smoke 6]")
    parser.add_argument("--batch-size", type=int, default=None, help="[32; smoke 4]")
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--streams", type=int, default=4, help="videos in flight in the second run of each backend")
    parser.add_argument("--train-iters", type=int, default=20)
    parser.add_argument("--fp32", action="store_true", help="no fp16 autocast in the extract models on CUDA")
    args = parser.parse_args()
    args.device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    args.videos = args.videos or (1 if args.smoke else 8)
    args.frames = args.frames or (6 if args.smoke else 100)
    args.batch_size = args.batch_size or (4 if args.smoke else 32)
    if args.device.startswith("cuda"):
        print(f"device: {torch.cuda.get_device_name()} ({torch.cuda.get_device_properties(0).total_memory / 2**30:.0f} GiB)")
    torch.set_num_threads(args.threads)
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="gpu-check-") as work:
        extract_rates(args, Path(work))
    train_rate(args)
    print(f"total {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
