"""P x K sampler: shape of batches, determinism, resume and the DDP partition."""
from __future__ import annotations

from collections import Counter
from itertools import islice

import pytest

from depthgait_model.sampler import PKSampler

# 6 subjects; subject 5 has only 2 sequences (fewer than K)
LABELS = [0] * 5 + [1] * 6 + [2] * 4 + [3] * 7 + [4] * 5 + [5] * 2


def test_batches_hold_p_distinct_subjects_k_each():
    sampler = PKSampler(LABELS, p=3, k=4, seed=1, stop=50)
    batches = list(sampler)
    assert len(batches) == len(sampler) == 50
    seen_subjects = set()
    for batch in batches:
        assert len(batch) == 12
        per_label = Counter(LABELS[i] for i, _ in batch)
        assert len(per_label) == 3 and set(per_label.values()) == {4}
        for label in per_label:
            picks = [i for i, _ in batch if LABELS[i] == label]
            if label != 5:  # enough sequences: no repeats inside a subject
                assert len(set(picks)) == 4
        seen_subjects |= set(per_label)
        assert len({s for _, s in batch}) == 12  # every item gets its own seed
    assert seen_subjects == set(range(6))
    with_five = [b for b in batches if any(LABELS[i] == 5 for i, _ in b)]
    assert with_five and all(len({i for i, _ in b if LABELS[i] == 5}) <= 2 for b in with_five)


def test_deterministic_per_seed():
    a = list(PKSampler(LABELS, 3, 4, seed=7, stop=20))
    b = list(PKSampler(LABELS, 3, 4, seed=7, stop=20))
    c = list(PKSampler(LABELS, 3, 4, seed=8, stop=20))
    assert a == b and a != c


def test_state_restore_resumes_the_identical_sequence():
    full = list(PKSampler(LABELS, 2, 3, seed=3, stop=30))
    first = PKSampler(LABELS, 2, 3, seed=3, stop=12)
    consumed = list(first)
    state = first.state_dict(next_batch=12)
    resumed = PKSampler(LABELS, 2, 3, seed=999, stop=30)  # the state's seed wins
    resumed.load_state_dict(state)
    assert consumed + list(resumed) == full
    with pytest.raises(ValueError, match="P x K"):
        PKSampler(LABELS, 3, 3).load_state_dict(state)


@pytest.mark.parametrize(("p", "k", "per_subject", "subjects"), [(2, 4, 2, 2), (4, 2, 2, 2)])
def test_ddp_ranks_partition_the_global_batch(p, k, per_subject, subjects):
    whole = list(islice(PKSampler(LABELS, p, k, seed=5), 6))
    ranks = [list(islice(PKSampler(LABELS, p, k, seed=5, rank=r, world_size=2), 6)) for r in (0, 1)]
    for i, batch in enumerate(whole):
        assert sorted(ranks[0][i] + ranks[1][i]) == sorted(batch)  # a partition of the global batch
        for part in (ranks[0][i], ranks[1][i]):
            counts = Counter(LABELS[idx] for idx, _ in part)
            # every rank keeps triplets: >= 2 subjects, each with >= 2 sequences
            assert len(counts) == subjects and set(counts.values()) == {per_subject}


def test_bad_settings_are_clear():
    with pytest.raises(ValueError, match="at least P=7 subjects"):
        PKSampler(LABELS, p=7, k=2)
    with pytest.raises(ValueError, match="split evenly"):
        PKSampler(LABELS, p=3, k=3, world_size=2)
    with pytest.raises(ValueError, match="split evenly"):
        PKSampler(LABELS, p=2, k=2, world_size=2)  # would leave one subject or one sequence each
