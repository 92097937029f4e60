"""The paper's splits: a stable seed-42 test set, nested fine-tuning and pre-training subsets."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from diminish.data.splits import finetune_subset, pets_split, pretrain_subset
from diminish.seeds import subset_seed

FULL_POOL = 7349  # trainval + test lists of the full release
SIZES = (250, 500, 1000, 2000, 4000, 6000)


def test_test_set_is_pinned():
    # Pinned values: if these change, every earlier result's test set changed with them.
    test, pool = pets_split(FULL_POOL)
    assert test[:6].tolist() == [3652, 5289, 862, 2660, 3908, 5414]
    assert pool[:4].tolist() == [234, 140, 606, 2609]
    test, _ = pets_split(7390)
    assert test[:6].tolist() == [4601, 1373, 5987, 5557, 1234, 586]
    assert finetune_subset(pool, 5, seed=0).tolist() == [5189, 751, 4673, 4660, 5658]
    assert pretrain_subset(1_281_167, 5, data_seed=0).tolist() == [318135, 1271851, 954739, 85601, 140795]


def test_test_set_equals_random_split_and_partitions_the_pool():
    test, pool = pets_split(FULL_POOL, 1000, 42)
    assert test.dtype == np.int64 and pool.dtype == np.int64
    assert len(test) == 1000 and len(pool) == FULL_POOL - 1000
    assert np.array_equal(np.sort(np.concatenate([test, pool])), np.arange(FULL_POOL))
    ref_pool, ref_test = torch.utils.data.random_split(
        range(FULL_POOL), [FULL_POOL - 1000, 1000], generator=torch.Generator().manual_seed(42)
    )
    assert test.tolist() == list(ref_test.indices) and pool.tolist() == list(ref_pool.indices)
    again = pets_split(FULL_POOL)
    assert np.array_equal(again[0], test) and np.array_equal(again[1], pool)
    assert not np.array_equal(pets_split(FULL_POOL, seed=43)[0], test)


def test_finetune_subsets_nested_disjoint_from_test_and_condition_free():
    test, pool = pets_split(FULL_POOL)
    test_set = set(test.tolist())
    for seed in (0, 1, 2):
        subsets = [finetune_subset(pool, f, seed) for f in SIZES]
        for small, big in zip(subsets, subsets[1:]):
            assert np.array_equal(big[: len(small)], small)  # nested, same order
        for s, f in zip(subsets, SIZES):
            assert len(s) == f == len(set(s.tolist())) and s.dtype == np.int64
            assert not test_set & set(s.tolist())
        # "identical across conditions": the draw depends only on (pool, size, seed), so a call made
        # for any pre-training / intermediate condition returns the same array
        assert np.array_equal(finetune_subset(pool.copy(), 1000, seed), subsets[2])
    a, b = finetune_subset(pool, 1000, 0), finetune_subset(pool, 1000, 1)
    assert len(set(a.tolist()) & set(b.tolist())) < 500  # seeds give different draws


def test_pretrain_subsets_nested_and_fixed_by_data_seed():
    n = 250_000
    subs = [pretrain_subset(n, s, data_seed=0) for s in (45_000, 100_000, 200_000)]
    assert [len(s) for s in subs] == [45_000, 100_000, 200_000]
    assert np.array_equal(subs[1][:45_000], subs[0]) and np.array_equal(subs[2][:100_000], subs[1])
    assert len(np.unique(subs[2])) == 200_000 and subs[2].min() >= 0 and subs[2].max() < n
    assert np.array_equal(pretrain_subset(n, 45_000, 0), subs[0])
    assert not np.array_equal(pretrain_subset(n, 45_000, 1), subs[0])
    assert pretrain_subset(n, 0, 0).shape == (0,)


def test_asking_for_too_much_states_both_numbers():
    with pytest.raises(ValueError, match="asked for 1000 examples but only 400 are available"):
        pets_split(400)
    _, pool = pets_split(1500)
    with pytest.raises(ValueError, match="asked for 600 examples but only 500 are available"):
        finetune_subset(pool, 600, seed=0)
    with pytest.raises(ValueError, match="asked for 45000 examples but only 3000 are available"):
        pretrain_subset(3000, 45_000, 0)


def test_derived_seeds_are_distinct_streams():
    assert subset_seed("finetune", 0) != subset_seed("pretrain", 0) != subset_seed("finetune", 1)
    assert subset_seed("finetune", 0) == subset_seed("finetune", 0) < 2**63
