"""P x K batch sampler: P distinct subjects, K sequences each, deterministic from a seed.

Batch ``i`` is drawn from its own generator seeded with ``(seed, i)``, so the sampler's whole state
is two integers (seed, next batch). A resumed run that restarts at batch ``i`` sees exactly the
batches an uninterrupted run would have seen, however far DataLoader workers had prefetched.

Each item is ``(dataset index, item seed)``: the dataset draws the clip window and augmentation
from the item seed, so a batch's content does not depend on worker count or order either.
Under DDP every rank draws the same global batch and keeps a share that still holds triplets:
K/world_size sequences of every subject when that leaves >= 2 per subject, else P/world_size whole
subjects (a plain ``rank::world_size`` slice could leave a rank with no positive pair).
"""
from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Sequence

import numpy as np

from pipeline.errors import InputError

Item = tuple[int, int]  # (dataset index, item seed)


class PKSampler:
    """Yield batches of P x K ``(index, seed)`` items for batches ``start .. stop - 1``."""

    def __init__(
        self,
        labels: Sequence[int],
        p: int,
        k: int,
        seed: int = 0,
        start: int = 0,
        stop: int | None = None,
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        by_label: dict[int, list[int]] = defaultdict(list)
        for index, label in enumerate(labels):
            by_label[int(label)].append(index)
        if p < 1 or k < 1:
            raise InputError(f"P x K sampler needs P >= 1 and K >= 1, got P={p}, K={k}")
        if len(by_label) < p:
            raise InputError(
                f"P x K sampler needs at least P={p} subjects with sequences, the data has {len(by_label)}; "
                "lower train.batch_p or add subjects"
            )
        if not 0 <= rank < world_size:
            raise InputError(f"rank {rank} outside world size {world_size}")
        if k % world_size == 0 and k // world_size >= 2:
            self.split = "k"
        elif p % world_size == 0 and p // world_size >= 2:
            self.split = "p"
        else:
            raise InputError(
                f"P x K = {p} x {k} cannot be split evenly over {world_size} processes so that each keeps "
                f">= 2 subjects with >= 2 sequences; make K or P a multiple of {world_size} (K/{world_size} >= 2 or "
                f"P/{world_size} >= 2)"
            )
        self.labels = sorted(by_label)
        self.members = [np.asarray(by_label[label], dtype=np.int64) for label in self.labels]
        self.p, self.k, self.seed = p, k, int(seed)
        self.start, self.stop = int(start), stop
        self.rank, self.world_size = rank, world_size

    def batch(self, i: int) -> list[Item]:
        """The items of batch ``i`` for this rank; a pure function of (seed, i)."""
        rng = np.random.default_rng([self.seed, i])
        chosen = rng.choice(len(self.labels), size=self.p, replace=False)  # [P] label positions
        grid = np.stack([
            rng.choice(self.members[pos], size=self.k, replace=len(self.members[pos]) < self.k) for pos in chosen
        ])  # [P, K] dataset indices
        seeds = rng.integers(0, 2**62, size=grid.shape)  # [P, K] per-item seeds
        if self.world_size > 1:
            part = np.s_[:, self.rank :: self.world_size] if self.split == "k" else np.s_[self.rank :: self.world_size]
            grid, seeds = grid[part], seeds[part]
        return [(int(i), int(s)) for i, s in zip(grid.ravel(), seeds.ravel(), strict=True)]

    def __iter__(self) -> Iterator[list[Item]]:
        i = self.start
        while self.stop is None or i < self.stop:
            yield self.batch(i)
            i += 1

    def __len__(self) -> int:
        if self.stop is None:
            raise TypeError("an endless PKSampler has no length; give stop")
        return max(0, self.stop - self.start)

    # ---- resume -------------------------------------------------------------------------
    def state_dict(self, next_batch: int) -> dict[str, int]:
        """State to save: the seed and the index of the next batch the trainer will consume."""
        return {"seed": self.seed, "next_batch": int(next_batch), "p": self.p, "k": self.k}

    def load_state_dict(self, state: dict[str, int]) -> None:
        if (state.get("p"), state.get("k")) != (self.p, self.k):
            raise InputError(
                f"sampler state was saved with P x K = {state.get('p')} x {state.get('k')}, "
                f"this run uses {self.p} x {self.k}"
            )
        self.seed = int(state["seed"])
        self.start = int(state["next_batch"])
