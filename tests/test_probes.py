"""Frozen-feature probes (core/probes.py) and ViNy.encode_blocks: planted backbones whose tokens carry
the answer linearly score (near) perfectly, constant tokens score the trivial predictor, the same seed
gives bit-identical probes on the CPU, and a backbone's per-block CKA with itself is 1."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from diminish.config import ViNyConfig
from diminish.core.model import ViNy, patchify
from diminish.core.probes import (
    ProbeSettings,
    backbone_cka,
    block_cka,
    block_tokens,
    knn_accuracy,
    knn_predict,
    linear_probe_accuracy,
    segmentation_probe,
    train_segmentation_probe,
)
from diminish.core.transforms import normalize

TINY = ViNyConfig(image_size=32, patch_size=8, dim=32, depth=2, heads=2, dim_head=16, mlp_dim=64)
FAST = ProbeSettings(epochs=10, batch_size=32, lr=1e-2)
PROBS = (0.5, 0.3, 0.2)  # trimap class frequencies of the planted masks


def _vit(seed=0, cfg=TINY):
    torch.manual_seed(seed)
    return ViNy(cfg)


def _images(n, seed=0, size=32):
    return torch.randint(0, 256, (n, 3, size, size), generator=torch.Generator().manual_seed(seed), dtype=torch.uint8)


def _masks(n, seed, size=16):
    g = torch.Generator().manual_seed(seed)
    return torch.multinomial(torch.tensor(PROBS), n * size * size, replacement=True, generator=g).reshape(n, size, size)


def _planted_tokens(masks, patch_size=4, dim=64):
    """Patch tokens that encode the trimap linearly: each patch's one-hot pixel classes (p * p * 3 values, in
    the head's (p1, p2, class) order) through a fixed random projection of full column rank to ``dim``."""
    onehot = F.one_hot(masks, 3).permute(0, 3, 1, 2).float()  # (N, 3, H, W)
    proj = torch.randn(patch_size**2 * 3, dim, generator=torch.Generator().manual_seed(99))
    return patchify(onehot, patch_size) @ proj  # (N, L, dim)


# ---- ViNy.encode_blocks and block_tokens --------------------------------------------------------------


def test_encode_blocks_gives_one_output_per_block_and_the_last_is_encode():
    vit = _vit().eval()
    tokens = vit.embed_patches(normalize(_images(3)))
    with torch.no_grad():
        outs = vit.encode_blocks(tokens)
        raw = vit.encode_blocks(tokens, norm=False)
        no_cls = vit.encode_blocks(tokens, with_cls=False)
        assert len(outs) == len(raw) == len(no_cls) == TINY.depth
        assert all(o.shape == (3, 1 + TINY.num_patches, TINY.dim) for o in outs + raw)
        assert all(o.shape == (3, TINY.num_patches, TINY.dim) for o in no_cls)
        assert torch.equal(outs[-1], vit.encode(tokens))  # the same code path: bit-identical
        assert torch.equal(vit.norm(raw[-1]), vit.encode(tokens))  # the raw stream is taken before the final norm
        assert torch.equal(no_cls[-1], vit.encode(tokens, with_cls=False))
        assert all(torch.equal(vit.norm(r), o) for r, o in zip(raw, outs))
        assert not torch.allclose(outs[0], outs[1])


def test_block_tokens_shapes_batching_inputs_and_the_models_mode():
    vit = _vit().train()
    images = _images(7)
    tok = block_tokens(vit, images, batch_size=3)
    assert vit.training  # restored
    assert tok.blocks == (1, 2)
    assert tok.patches.shape == (2, 7, TINY.num_patches, TINY.dim) and tok.cls.shape == (2, 7, TINY.dim)
    assert tok.pooled.shape == (2, 7, TINY.dim)
    assert not tok.patches.is_inference() and not tok.cls.is_inference()
    with torch.no_grad():
        last = vit.eval()(normalize(images))  # eval mode, float input: the same tokens as the last block's
    assert torch.allclose(tok.patches[-1], last[:, 1:], atol=1e-6)
    assert torch.allclose(tok.cls[-1], last[:, 0], atol=1e-6)
    one_batch = block_tokens(vit, images, batch_size=64)
    assert torch.allclose(one_batch.patches, tok.patches, atol=1e-6)
    from_numpy = block_tokens(vit, images.numpy(), batch_size=4, blocks=[2])
    assert from_numpy.blocks == (2,) and torch.allclose(from_numpy.patches[0], tok.block(2)[0], atol=1e-6)
    assert torch.allclose(block_tokens(vit, normalize(images), batch_size=3).cls, tok.cls, atol=1e-6)
    with pytest.raises(ValueError, match="blocks"):
        block_tokens(vit, images, blocks=[3])


def test_a_probe_trains_on_a_real_backbones_tokens():
    """The tokens are ordinary tensors (not inference tensors), so a probe's backward accepts them."""
    vit = _vit()
    tok = block_tokens(vit, _images(6), batch_size=4)
    masks = _masks(6, seed=5, size=32)
    scores = segmentation_probe(tok.patches[0], masks, tok.patches[1], masks, TINY.patch_size,
                                settings=ProbeSettings(epochs=2, batch_size=4))
    assert 0.0 <= scores["miou"] <= 1.0 and 0.0 <= scores["accuracy"] <= 1.0


# ---- segmentation probe -------------------------------------------------------------------------------


def test_planted_tokens_that_encode_the_trimap_score_near_full_miou():
    train, test = _masks(200, seed=1), _masks(100, seed=2)
    scores = segmentation_probe(_planted_tokens(train), train, _planted_tokens(test), test, 4, settings=FAST)
    assert scores["miou"] > 0.99 and scores["accuracy"] > 0.99  # measured: 1.0 and 1.0


def test_constant_tokens_score_the_trivial_predictor():
    """Constant tokens leave the head only its bias: the majority class (0) at every pixel. Its IoU is the
    class's pixel share of the test set, the other two classes score 0, so mIoU = share / 3."""
    train, test = _masks(200, seed=1), _masks(100, seed=2)
    share = float((test == 0).double().mean())  # about PROBS[0]
    scores = segmentation_probe(torch.ones(200, 16, 64), train, torch.ones(100, 16, 64), test, 4, settings=FAST)
    assert scores["accuracy"] == pytest.approx(share, abs=1e-12)
    assert scores["miou"] == pytest.approx(share / 3, abs=1e-12)  # measured: 0.1684
    assert scores["iou"][1:] == [0.0, 0.0]


def test_the_same_seed_gives_bit_identical_probes():
    train = _masks(64, seed=3)
    tokens = _planted_tokens(train) + torch.randn(64, 16, 64, generator=torch.Generator().manual_seed(4))
    settings = ProbeSettings(epochs=3, batch_size=16, seed=7)
    a = train_segmentation_probe(tokens, train, 4, settings=settings)
    b = train_segmentation_probe(tokens, train, 4, settings=settings)
    assert torch.equal(a.weight, b.weight) and torch.equal(a.bias, b.bias)
    c = train_segmentation_probe(tokens, train, 4, settings=ProbeSettings(epochs=3, batch_size=16, seed=8))
    assert not torch.equal(a.weight, c.weight)
    x, y = _clusters(40, seed=0, spread=1.0)  # overlapping classes: the accuracy depends on the training path
    q, yq = _clusters(20, seed=1, spread=1.0)
    s = ProbeSettings(epochs=5, batch_size=16, seed=3)
    assert linear_probe_accuracy(x, y, q, yq, 4, s) == linear_probe_accuracy(x, y, q, yq, 4, s)


def test_segmentation_probe_refuses_masks_that_do_not_fit_the_patches():
    with pytest.raises(ValueError, match="cover"):
        train_segmentation_probe(torch.ones(4, 16, 8), torch.zeros(4, 12, 12, dtype=torch.long), 4)


# ---- classification probes ----------------------------------------------------------------------------


def _clusters(per_class, seed, classes=4, dim=32, spread=0.05):
    """Well separated planted CLS features: one random centre per class plus small noise."""
    g = torch.Generator().manual_seed(seed)
    centres = torch.randn(classes, dim, generator=torch.Generator().manual_seed(42))
    labels = torch.arange(classes).repeat_interleave(per_class)
    return centres[labels] + spread * torch.randn(len(labels), dim, generator=g), labels


def test_knn_on_separable_features_is_exact_and_on_constant_features_is_chance():
    x, y = _clusters(30, seed=0)
    q, yq = _clusters(10, seed=1)
    assert knn_accuracy(x, y, q, yq) == 1.0
    pred = knn_predict(torch.ones(120, 32), y, torch.ones(40, 32))
    assert len(set(pred.tolist())) == 1  # every query ties with every training example: one answer
    assert knn_accuracy(torch.ones(120, 32), y, torch.ones(40, 32), yq) == pytest.approx(0.25)  # balanced: 1 / 4


def test_knn_ties_go_to_the_larger_summed_similarity_then_the_smaller_class():
    train = torch.tensor([[1.0, 0.0], [0.8, 0.6], [0.0, 1.0], [-1.0, 0.0]])
    labels = torch.tensor([1, 0, 0, 1])
    query = torch.tensor([[1.0, 0.0]])
    # k = 2: neighbours 0 (label 1, sim 1.0) and 1 (label 0, sim 0.8): one vote each, label 1 has more similarity
    assert knn_predict(train, labels, query, k=2).tolist() == [1]
    # k = 4: two votes each, summed similarity 0.0 (label 1) vs 0.8 (label 0)
    assert knn_predict(train, labels, query, k=4).tolist() == [0]
    same = torch.ones(4, 2)
    assert knn_predict(same, torch.tensor([2, 1, 2, 1]), torch.ones(1, 2), k=4).tolist() == [1]  # then the smaller


def test_linear_probe_on_separable_features_is_exact_and_on_constant_features_is_the_majority():
    x, y = _clusters(30, seed=0)
    q, yq = _clusters(10, seed=1)
    s = ProbeSettings(epochs=10, batch_size=32)
    assert linear_probe_accuracy(x, y, q, yq, 4, s) == 1.0
    y_skew = torch.cat([torch.zeros(60, dtype=torch.long), torch.arange(1, 4).repeat_interleave(20)])  # 0 is half
    acc = linear_probe_accuracy(torch.ones(120, 32), y_skew, torch.ones(40, 32), yq, 4, s)
    assert acc == pytest.approx(float((yq == 0).double().mean()))  # always the majority class: 0.25 here


# ---- per-block CKA ------------------------------------------------------------------------------------


def test_a_backbone_against_itself_has_cka_one_at_every_block():
    vit, other = _vit(0), _vit(1)
    images = _images(16, seed=3)
    same = backbone_cka(vit, vit, images, batch_size=8)
    assert set(same) == {"cls", "patch"} and len(same["cls"]) == len(same["patch"]) == TINY.depth
    assert same["cls"] == pytest.approx([1.0] * TINY.depth, abs=1e-9)
    assert same["patch"] == pytest.approx([1.0] * TINY.depth, abs=1e-9)
    diff = block_cka(block_tokens(vit, images), block_tokens(other, images), debiased=False)
    assert all(c < 0.999 for c in diff["cls"] + diff["patch"])
    with pytest.raises(ValueError, match="same blocks"):
        block_cka(block_tokens(vit, images), block_tokens(vit, images[:8]))


def test_numpy_memmap_like_sources_are_read_in_slices():
    arr = np.ascontiguousarray(_images(5).numpy())
    tok = block_tokens(_vit(), arr, batch_size=2, blocks=(1,))
    assert tok.patches.shape == (1, 5, TINY.num_patches, TINY.dim)
