"""Speed of the DepthGait network: one training step (forward + loss + backward + SGD) and inference.

Cases (random silhouettes and depth, 64x44 frames, the recipe's own P x K x frames batch):

- ``tiny``, ``small-cpu``: training step in train mode, as ``depthgait train`` runs it;
- ``casia-b``: the paper-size model, forward only in eval mode, one sequence of 30 frames.

Each case runs at every ``--threads`` count; the best of ``--repeat`` timed runs after one warm-up
is reported (other processes share the CPU, so the best is the most stable figure), as wall time and
as this process's CPU time (user + system, all threads): on a loaded machine the wall time includes
waiting for a core, the CPU time does not; at one thread with an idle core the two agree.
Target (issue): small-cpu at 1 thread at least 2x faster than the first cut (about 3.1 s a step).

    .venv/bin/python bench/bench_model.py --threads 1 2 --repeat 3 [--device cuda]
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from depthgait_model.config import load_config  # noqa: E402
from depthgait_model.losses import GaitLoss  # noqa: E402
from depthgait_model.model import DepthGait  # noqa: E402

NUM_CLASSES = 74  # CASIA-B training subjects


def make_clips(n: int, t: int, device: torch.device, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    sil = (torch.rand(n, t, 64, 44, generator=g) > 0.5).float()  # (N, T, 64, 44)
    depth = torch.rand(n, t, 64, 44, generator=g) * sil  # (N, T, 64, 44)
    return sil.to(device), depth.to(device)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def time_calls(step: Callable[[], None], repeat: int, device: torch.device) -> tuple[list[float], list[float]]:
    """Wall and CPU seconds of ``repeat`` calls after one warm-up call."""
    step()  # warm-up: allocations, oneDNN primitive caches
    walls, cpus = [], []
    for _ in range(repeat):
        sync(device)
        wall, cpu = time.perf_counter(), time.process_time()
        step()
        sync(device)
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    return walls, cpus


def bench_train(recipe: str, repeat: int, device: torch.device) -> tuple[tuple[list[float], list[float]], int]:
    """Seconds per training step of ``recipe`` at its own batch size; also the frames per step."""
    cfg = load_config(recipe)
    tc = cfg.train
    torch.manual_seed(0)
    model = DepthGait(cfg.model, NUM_CLASSES).to(device).train()
    optimizer = torch.optim.SGD(model.parameters(), lr=tc.lr, momentum=tc.momentum, weight_decay=tc.weight_decay)
    criterion = GaitLoss(tc)
    n = tc.batch_p * tc.batch_k
    sil, depth = make_clips(n, tc.frames, device)
    labels = torch.arange(tc.batch_p, device=device).repeat_interleave(tc.batch_k)  # (N,)

    def step() -> None:
        loss, _ = criterion(model(sil, depth), labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    return time_calls(step, repeat, device), n * tc.frames


def bench_infer(
    recipe: str, frames: int, repeat: int, device: torch.device
) -> tuple[tuple[list[float], list[float]], int]:
    """Seconds per forward pass (eval mode, no grad) of one sequence of ``frames`` frames."""
    cfg = load_config(recipe)
    torch.manual_seed(0)
    model = DepthGait(cfg.model, NUM_CLASSES).to(device).eval()
    sil, depth = make_clips(1, frames, device)

    def step() -> None:
        with torch.no_grad():
            model(sil, depth)

    return time_calls(step, repeat, device), frames


def report(name: str, threads: int, times: tuple[list[float], list[float]], frames: int) -> None:
    walls, cpus = times
    best = min(walls)
    print(f"{name:<22} threads {threads}  wall best {best * 1e3:7.1f} ms (median {statistics.median(walls) * 1e3:7.1f})  "
          f"{frames / best:6.0f} frames/s  cpu best {min(cpus) * 1e3:7.1f} ms", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--cases", nargs="+", default=["tiny", "small-cpu", "casia-b"],
                        choices=["tiny", "small-cpu", "casia-b"])
    args = parser.parse_args()
    device = torch.device(args.device)
    print(f"torch {torch.__version__}, device {device}, mkldnn {torch.backends.mkldnn.is_available()}")
    for threads in args.threads:
        torch.set_num_threads(threads)
        for case in args.cases:
            if case == "casia-b":
                times, frames = bench_infer(case, 30, args.repeat, device)
                report("casia-b forward 1x30", threads, times, frames)
            else:
                times, frames = bench_train(case, args.repeat, device)
                report(f"{case} train step", threads, times, frames)


if __name__ == "__main__":
    main()
