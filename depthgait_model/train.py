"""The training loop: P x K clips -> DepthGait -> triplet + cross-entropy -> SGD, resumable bit-for-bit.

One function, ``train``, owns the loop; data, sampler, augmentation, losses and checkpoints live
in their own modules. Resuming restores model, optimiser, scheduler, grad scaler, RNG and sampler
state from ``out_dir/ckpt.pt``; because every batch and every clip is a pure function of
(seed, iteration), a run stopped at iteration k and resumed ends with the same weights as one that
never stopped (bit-for-bit on CPU). Under ``torchrun`` (WORLD_SIZE > 1) it runs DDP, gloo on CPU
and NCCL on CUDA; otherwise one process on CPU or one GPU. Mixed precision is used on CUDA only.
"""
from __future__ import annotations

import json
import math
import os
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
import yaml
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader

from depthgait_model.augment import ClipAugment
from depthgait_model.checkpoint import config_of, load_checkpoint, save_checkpoint, set_rng_state, unwrap
from depthgait_model.config import RunConfig
from depthgait_model.convert import init_from_checkpoint
from depthgait_model.data import GaitDataset, collate
from depthgait_model.losses import GaitLoss
from depthgait_model.model import DepthGait
from depthgait_model.numerics import numerics_mismatch, numerics_record
from depthgait_model.sampler import PKSampler
from depthgait_model.train_eval import eval_ids, periodic_eval
from depthgait_model.weight_init import init_weights
from pipeline.atomic import atomic_path, write_failure, write_text_atomic
from pipeline.device import resolve_device
from pipeline.errors import DepthgaitError, InputError
from pipeline.manifest import Manifest
from pipeline.progress import progress

# Train settings a resumed run may change without breaking the bit-for-bit continuation.
RESUMABLE_CHANGES = {"iterations", "checkpoint_every", "log_every", "num_workers", "eval_every", "eval_metric"}
NONFINITE_PATIENCE_AMP = 50  # with a grad scaler, fp16 overflow is skipped; give up only if it persists


class TrainingDiverged(DepthgaitError, RuntimeError):
    """The loss stopped being finite; the message says when and what to try."""


@dataclass
class TrainResult:
    out_dir: Path
    checkpoint: Path  # out_dir/ckpt.pt, the latest
    start_iteration: int  # 0, or the iteration a resumed run started from
    iterations: int  # the last iteration trained
    first_loss: float  # mean loss of the first logged window of this process's run
    final_loss: float  # mean loss of the last logged window
    iters_per_s: float
    seconds: float
    num_parameters: int
    history: list[dict[str, Any]] = field(default_factory=list)  # every metrics.jsonl record


@dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @classmethod
    def from_env(cls) -> DistInfo:
        """torchrun sets WORLD_SIZE, RANK and LOCAL_RANK; absent means one process."""
        return cls(int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1)), int(os.environ.get("LOCAL_RANK", 0)))

    @property
    def main(self) -> bool:
        return self.rank == 0


def pick_device(name: str, info: DistInfo) -> torch.device:
    """The device policy (``pipeline.device``); under DDP each process takes its LOCAL_RANK GPU."""
    if resolve_device(name) == "cpu":
        return torch.device("cpu")
    return torch.device("cuda", info.local_rank % torch.cuda.device_count())


def train(
    run_cfg: RunConfig,
    data_path: str | Path,
    manifest: Manifest | str,
    out_dir: str | Path,
    resume: bool = False,
    device: str = "auto",
    quiet: bool = False,
    init: str | Path | None = None,
    tensorboard: bool = False,
) -> TrainResult:
    """Train ``run_cfg`` on the train split of ``manifest`` in ``data_path``; write ``out_dir``.

    ``init``: a checkpoint whose weights start a new run (see ``convert.init_from_checkpoint``);
    ignored when resuming, where the run's own checkpoint holds the weights. ``tensorboard``: also the
    metrics as TensorBoard scalars in ``out_dir/tensorboard``.
    """
    info = DistInfo.from_env()
    dev = pick_device(device, info)
    owns_group = info.world_size > 1 and not dist.is_initialized()
    if owns_group:
        if dev.type == "cuda":
            torch.cuda.set_device(dev)
        dist.init_process_group("nccl" if dev.type == "cuda" else "gloo")
    try:
        return _train(run_cfg, Path(data_path), manifest, Path(out_dir), resume, dev, info, quiet, init, tensorboard)
    finally:
        if owns_group:
            dist.destroy_process_group()


def _train(
    run_cfg: RunConfig, data_path: Path, manifest: Manifest | str, out_dir: Path, resume: bool,
    dev: torch.device, info: DistInfo, quiet: bool, init: str | Path | None = None, tensorboard: bool = False,
) -> TrainResult:
    tc = run_cfg.train
    latest = out_dir / "ckpt.pt"
    numerics = numerics_record(dev, info.world_size)
    payload = _resume_payload(latest, run_cfg, resume, numerics)
    torch.manual_seed(tc.seed)  # same initial weights on every rank

    dataset = GaitDataset(
        data_path, manifest, "train", frames=tc.frames, modalities=run_cfg.model.modalities,
        augment=ClipAugment(p=tc.augment_p, recipe=tc.augment, cut=run_cfg.data.cut) if tc.augment_p > 0 else None,
        label_map=payload["label_map"] if payload else None, cut=run_cfg.data.cut, quiet=quiet or not info.main,
        sampling=tc.sampling, frames_skip_num=tc.frames_skip_num,
    )
    test_ids = eval_ids(data_path, dataset.manifest) if tc.eval_every and info.main else []
    model = init_weights(DepthGait(run_cfg.model, num_classes=len(dataset.label_map)), tc.weight_init)
    if init is not None and not payload:
        init_report = init_from_checkpoint(model, init)
        if info.main and not quiet:
            print(f"{init_report.summary()} from {init}", file=sys.stderr)
    model = model.to(dev)
    model = maybe_sync_bn(model, tc.sync_bn, info.world_size, dev)
    optimizer = torch.optim.SGD(model.parameters(), lr=tc.lr, momentum=tc.momentum, weight_decay=tc.weight_decay)
    scheduler = torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones=list(tc.milestones), gamma=tc.gamma)
    use_amp = tc.amp and dev.type == "cuda"
    scaler = torch.amp.GradScaler(dev.type, enabled=use_amp)
    criterion = GaitLoss(tc)
    sampler = PKSampler(dataset.labels, tc.batch_p, tc.batch_k, tc.seed, stop=tc.iterations,
                        rank=info.rank, world_size=info.world_size)
    start = 0
    if payload:
        model.load_state_dict(payload["model"])
        optimizer.load_state_dict(payload["optimizer"])
        scheduler.load_state_dict(payload["scheduler"])
        if payload["scaler"] and use_amp:
            scaler.load_state_dict(payload["scaler"])
        sampler.load_state_dict(payload["sampler"])
        set_rng_state(payload["rng"])
        start = int(payload["iteration"])
    del payload  # the weights now live in the model; do not keep a second copy
    net = DistributedDataParallel(model, device_ids=[dev.index] if dev.type == "cuda" else None) if info.world_size > 1 else model

    loader = DataLoader(
        dataset, batch_sampler=sampler, collate_fn=collate, num_workers=tc.num_workers,
        pin_memory=dev.type == "cuda", generator=torch.Generator().manual_seed(tc.seed),  # keep global RNG untouched
    )
    log = MetricsLog(out_dir / "metrics.jsonl", keep_until=start, enabled=info.main)
    if tensorboard and info.main:
        from depthgait_model.tensorboard_log import TensorBoardLog

        log.sink = TensorBoardLog(out_dir, resumed_from=start)
    if info.main:
        write_text_atomic(out_dir / "config.yaml", yaml.safe_dump(run_cfg.to_dict(), sort_keys=False))
    extra = {"data": str(data_path), "manifest": getattr(manifest, "name", str(manifest)),
             "train_subjects": dataset.subjects, "world_size": info.world_size, "numerics": numerics}
    if init is not None:
        extra["init"] = str(init)

    window: list[dict[str, float]] = []
    evals = [r["eval/rank1"] for r in log.records if "eval/rank1" in r and math.isfinite(r["eval/rank1"])]
    best_rank1 = max(evals, default=-math.inf)
    nonfinite = 0
    began = time.perf_counter()
    window_began = began
    bar = progress(total=tc.iterations, initial=start, desc="train", unit="it", disable=quiet or not info.main,
               dynamic_ncols=True)
    net.train()
    iteration = start
    for batch in loader:
        iteration += 1
        labels = batch.labels.to(dev, non_blocking=True)  # [N]
        with torch.autocast(dev.type, dtype=torch.float16, enabled=use_amp):
            out = net(**batch.model_inputs(dev))
        loss, loss_info = criterion(out, labels)  # embeddings [N, C, P], logits [N, classes, P] -> ()
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        if tc.grad_clip is not None:
            scaler.unscale_(optimizer)
            torch.nn.utils.clip_grad_norm_(model.parameters(), tc.grad_clip)
        scaler.step(optimizer)
        scaler.update()
        scheduler.step()

        value = loss_info["loss"]
        nonfinite = nonfinite + 1 if not math.isfinite(value) else 0
        if nonfinite >= (NONFINITE_PATIENCE_AMP if use_amp else 1):
            raise TrainingDiverged(
                f"loss is {value} at iteration {iteration} ({nonfinite} in a row); "
                f"lower train.lr (now {tc.lr}) or set train.grad_clip"
            )
        window.append(loss_info)
        bar.update(1)
        last = iteration == tc.iterations
        if iteration % tc.log_every == 0 or last:
            now = time.perf_counter()
            record = _summarise(window, iteration, scheduler.get_last_lr()[0], len(window) / max(now - window_began, 1e-9))
            log.append(record)
            bar.set_postfix(loss=f"{record['loss']:.3f}", nz=f"{record.get('triplet/nonzero_frac', float('nan')):.2f}",
                            lr=f"{record['lr']:.3g}")
            window, window_began = [], now
        if info.main and (iteration % tc.checkpoint_every == 0 or last):
            numbered = save_checkpoint(
                out_dir / f"ckpt-{iteration}.pt", model=model, run_config=run_cfg, label_map=dataset.label_map,
                iteration=iteration, optimizer=optimizer, scheduler=scheduler, scaler=scaler,
                sampler_state=sampler.state_dict(next_batch=iteration), extra=extra,
            )
            with atomic_path(latest) as tmp:
                shutil.copyfile(numbered, tmp)
            plot_losses(log.records, out_dir / "loss.png")
        if tc.eval_every and (iteration % tc.eval_every == 0 or last):
            if info.main:
                record = {"iter": iteration, **periodic_eval(unwrap(model), run_cfg, data_path, dataset.manifest, test_ids, dev)}
                log.append(record)
                bar.write(f"iteration {iteration}: test rank-1 {record['eval/rank1']:.2f}%")
                if record["eval/rank1"] > best_rank1:
                    best_rank1 = record["eval/rank1"]
                    save_checkpoint(
                        out_dir / "ckpt-best.pt", model=model, run_config=run_cfg, label_map=dataset.label_map,
                        iteration=iteration, optimizer=optimizer, scheduler=scheduler, scaler=scaler,
                        sampler_state=sampler.state_dict(next_batch=iteration), extra={**extra, "eval": record},
                    )
                plot_losses(log.records, out_dir / "loss.png")
            if info.world_size > 1:
                dist.barrier()
    bar.close()
    if log.sink is not None:
        log.sink.close()
    seconds = time.perf_counter() - began
    if info.world_size > 1:
        dist.barrier()
    trained = log.records if log.records else []
    mine = [r for r in trained if r["iter"] > start and "loss" in r]
    return TrainResult(
        out_dir=out_dir, checkpoint=latest, start_iteration=start, iterations=iteration,
        first_loss=mine[0]["loss"] if mine else float("nan"), final_loss=mine[-1]["loss"] if mine else float("nan"),
        iters_per_s=(iteration - start) / seconds if seconds > 0 else float("nan"), seconds=seconds,
        num_parameters=sum(p.numel() for p in unwrap(model).parameters()), history=trained,
    )


def maybe_sync_bn(model: nn.Module, enabled: bool, world_size: int, device: torch.device) -> nn.Module:
    """SyncBatchNorm in place of every BatchNorm under DDP on CUDA (OpenGait's ``sync_BN``).

    Batch statistics then come from the global batch, not each rank's share (P x K / world size
    sequences). SyncBatchNorm runs on CUDA only; the state-dict keys stay the same.
    """
    if enabled and world_size > 1 and device.type == "cuda":
        return nn.SyncBatchNorm.convert_sync_batchnorm(model)
    return model


def _resume_payload(
    latest: Path, run_cfg: RunConfig, resume: bool, numerics: dict[str, Any] | None = None
) -> dict[str, Any] | None:
    """The checkpoint to continue from, after checking it belongs to this recipe and this arithmetic."""
    if not resume:
        if latest.exists():
            raise InputError(f"{latest} exists: pass --resume to continue that run, or choose another --out")
        return None
    if not latest.is_file():
        raise FileNotFoundError(f"{latest}: nothing to resume (no checkpoint in {latest.parent})")
    payload = load_checkpoint(latest)
    stored = config_of(payload, latest)
    changed = [f"model.{k}" for k, v in stored.model.__dict__.items() if getattr(run_cfg.model, k) != v]
    changed += [f"data.{k}" for k, v in stored.data.__dict__.items() if getattr(run_cfg.data, k) != v]
    changed += [f"train.{k}" for k, v in stored.train.__dict__.items()
                if getattr(run_cfg.train, k) != v and k not in RESUMABLE_CHANGES]
    if changed:
        raise InputError(
            f"{latest} was trained with different settings ({', '.join(changed)}); resume with the same config "
            f"(only {', '.join(sorted(RESUMABLE_CHANGES))} may change) or start a new --out"
        )
    stored_numerics = payload.get("extra", {}).get("numerics")
    if numerics is not None and isinstance(stored_numerics, dict):
        differs, how = numerics_mismatch(stored_numerics, numerics)
        if differs:
            raise InputError(
                f"{latest}: resuming would not continue bit-for-bit ({'; '.join(differs)}); "
                f"resume with {', '.join(how)}, or start a new --out"
            )
    return payload


def _summarise(window: list[dict[str, float]], iteration: int, lr: float, rate: float) -> dict[str, Any]:
    """Mean of every logged value over the window since the last record."""
    keys = window[0].keys()
    record: dict[str, Any] = {"iter": iteration}
    record.update({k: sum(w[k] for w in window) / len(window) for k in keys})
    record.update({"lr": lr, "it_s": rate, "time": time.time()})
    return record


class MetricsLog:
    """``metrics.jsonl``: one JSON record per log step, appended and flushed as training goes.

    On resume, records past the checkpoint's iteration (written after it, then lost) are dropped
    by rewriting the file atomically, so the log always matches the weights it continues from.
    """

    def __init__(self, path: Path, keep_until: int, enabled: bool = True) -> None:
        self.path, self.enabled = path, enabled
        self.sink: Any = None  # also called with each new record (TensorBoard)
        self.records: list[dict[str, Any]] = []
        if not enabled:
            return
        if keep_until > 0 and path.is_file():
            lines = path.read_text().splitlines()
            for line_no, line in enumerate(lines, start=1):
                try:
                    record = json.loads(line)
                except json.JSONDecodeError:
                    if line_no == len(lines):
                        break  # a half line from a killed run
                    raise InputError(f"{path}:{line_no}: not a JSON record") from None
                if record.get("iter", 0) <= keep_until:
                    self.records.append(record)
        write_text_atomic(path, "".join(json.dumps(r) + "\n" for r in self.records))

    def append(self, record: dict[str, Any]) -> None:
        self.records.append(record)
        if self.enabled:
            try:
                with self.path.open("a") as handle:
                    end = handle.tell()
                    try:
                        handle.write(json.dumps(record) + "\n")
                        handle.flush()
                    except OSError:
                        handle.truncate(end)  # no half record left behind
                        raise
            except OSError as exc:
                raise write_failure(self.path, exc) from None
        if self.sink is not None:
            self.sink(record)


def plot_losses(records: list[dict[str, Any]], path: Path) -> Path | None:
    """Loss curves (total, triplet, cross-entropy), the triplet non-zero fraction and, when the run
    evaluates (``train.eval_every``), test rank-1 against iteration."""
    steps = [r for r in records if "loss" in r]
    evals = [r for r in records if "eval/rank1" in r]
    if not steps and not evals:
        return None
    fig = Figure(figsize=(13.5 if evals else 9, 3.6), layout="constrained")
    axes = fig.subplots(1, 3 if evals else 2)
    ax_loss, ax_nz = axes[0], axes[1]
    iters = [r["iter"] for r in steps]
    for key, label in (("loss", "total"), ("triplet/loss", "triplet"), ("ce/loss", "cross-entropy")):
        if steps and key in steps[0]:
            ax_loss.plot(iters, [r[key] for r in steps], label=label)
    ax_loss.set(xlabel="iteration", ylabel="loss", title="training loss")
    ax_loss.legend()
    for key, label in (("triplet/nonzero_frac", "triplets with non-zero loss"), ("ce/accuracy", "train accuracy")):
        if steps and key in steps[0]:
            ax_nz.plot(iters, [r[key] for r in steps], label=label)
    ax_nz.set(xlabel="iteration", ylabel="fraction", title="triplet activity and accuracy", ylim=(0, 1.05))
    ax_nz.legend()
    if evals:
        ax_eval = axes[2]
        ax_eval.plot([r["iter"] for r in evals], [r["eval/rank1"] for r in evals], marker="o", label="rank-1")
        best = max(evals, key=lambda r: r["eval/rank1"] if math.isfinite(r["eval/rank1"]) else -math.inf)
        ax_eval.axhline(best["eval/rank1"], color="0.6", linestyle=":", label=f"best {best['eval/rank1']:.1f} @ {best['iter']}")
        ax_eval.set(xlabel="iteration", ylabel="rank-1 (%)", title="test rank-1 (protocol)", ylim=(0, 101))
        ax_eval.legend()
    FigureCanvasAgg(fig)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=100)
    return path
