"""Frozen-feature probes of a backbone (issue 27): the tokens after every block, a linear segmentation
probe on the patch tokens, kNN and linear classification probes on the CLS token or the mean-pooled
patch tokens, and per-block CKA between two backbones. Pure functions of tensors: no files, no grid.

    tokens = block_tokens(backbone, images, batch_size=64)     # BlockTokens: patches (K, N, L, D), cls (K, N, D)
    seg = segmentation_probe(train.patches[b], train_masks, test.patches[b], test_masks, patch_size=16)
    knn = knn_accuracy(train.cls[b], train_labels, test.cls[b], test_labels)
    lin = linear_probe_accuracy(train.pooled[b], train_labels, test.pooled[b], test_labels, num_classes=6)
    cka = block_cka(tokens_a, tokens_b)                        # {"cls": [...], "patch": [...]}, one per block

What the issue fixes: the backbone is frozen; the segmentation probe is a linear per-patch head of the
fine-tuning head's shape (D -> p * p * K, folded into pixels as ``model.Segmenter`` does) on the patch
tokens after each block, scored by the dataset-level confusion matrix (mIoU and pixel accuracy,
``core/metrics.py``); the classification probes are kNN with cosine similarity and k = 20, and a linear
probe; CKA is linear and debiased, per block, separately for the CLS and the patch tokens.

What we chose:

* Block outputs pass through the backbone's final LayerNorm (``ViNy.encode_blocks`` with ``norm``, as
  DINO's ``get_intermediate_layers`` does), so the last block's tokens are exactly ``encode``'s and every
  block is read on the scale the heads see. Tokens are computed in eval mode under
  ``torch.inference_mode`` and returned as ordinary float32 tensors on the CPU.
* The linear probes standardise each feature with the training tokens' mean and standard deviation (a
  feature constant over the training set is left unscaled), the role BatchNorm without affine plays in
  MAE's ``main_linprobe``; then AdamW on the mean cross-entropy for a fixed number of epochs, weights
  drawn N(0, 0.01^2) and bias zero, batch order from a ``torch.Generator`` seeded by the settings, so a
  probe is bit-identical on the CPU for the same seed. Learning rate, weight decay, epochs and batch
  size are our defaults in the settings classes, not the paper's (it has no probes).
* kNN is an unweighted majority vote of the k most similar training examples (a stable sort, so equal
  similarities rank by training index); a tie in votes goes to the class with the larger summed
  similarity among the voters, then to the smaller class index.
* Per-block CKA takes each image as one example: its patch tokens are flattened to L * D features, so
  n is the number of images (the debiased estimator assumes independent examples, which the patches of
  one image are not) and the Gram matrices stay N x N.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .metrics import ConfusionMatrix
from .model import ViNy, unpatchify
from .similarity import linear_cka
from .tasks import cross_entropy
from .transforms import normalize


@dataclass(frozen=True)
class BlockTokens:
    """A frozen backbone's tokens after each block, for N images.

    ``patches`` (K, N, L, D) and ``cls`` (K, N, D) for the K blocks named in ``blocks`` (1-based: block
    ``blocks[i]`` is entry ``i``; ``depth`` is the last block, whose tokens are ``encode``'s).
    """

    patches: torch.Tensor
    cls: torch.Tensor
    blocks: tuple[int, ...]

    @property
    def pooled(self) -> torch.Tensor:
        """(K, N, D) mean of the patch tokens of each image, per block."""
        return self.patches.mean(dim=2)

    def block(self, number: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(patches (N, L, D), cls (N, D)) of block ``number`` (1-based)."""
        i = self.blocks.index(number)
        return self.patches[i], self.cls[i]


def _image_batch(images, start: int, stop: int, device: torch.device) -> torch.Tensor:
    """Images ``start:stop`` of a tensor, a numpy array or memmap, or any sliceable source, as a
    float batch on ``device``; uint8 batches (a cache's arrays) are ImageNet-normalised here."""
    batch = images[start:stop]
    if isinstance(batch, np.ndarray):
        batch = torch.from_numpy(np.ascontiguousarray(batch))
    elif not isinstance(batch, torch.Tensor):
        batch = torch.stack([torch.as_tensor(np.asarray(x)) for x in batch])
    batch = batch.to(device)
    if batch.dtype == torch.uint8:
        return normalize(batch)
    return batch.float()


def block_tokens(backbone: ViNy, images: torch.Tensor | np.ndarray | Sequence, batch_size: int = 64,
                 blocks: Sequence[int] | None = None) -> BlockTokens:
    """The patch and CLS tokens of ``images`` (N, C, H, W) after each block of a frozen ``backbone``.

    ``blocks`` (1-based numbers, default all) picks the blocks kept. The model runs in eval mode under
    ``torch.inference_mode`` on its own device, ``batch_size`` images at a time; its training mode is
    restored afterwards. uint8 images are normalised as the fine-tuning evaluation does; float images
    are taken as already normalised.
    """
    depth = backbone.cfg.depth
    numbers = tuple(range(1, depth + 1)) if blocks is None else tuple(int(b) for b in blocks)
    if not numbers or any(b < 1 or b > depth for b in numbers):
        raise ValueError(f"blocks must be numbers in 1..{depth}, got {numbers}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be positive, got {batch_size}")
    device = next(backbone.parameters()).device
    was_training = backbone.training
    backbone.eval()
    patches: list[torch.Tensor] = []
    cls: list[torch.Tensor] = []
    try:
        with torch.inference_mode():
            for start in range(0, len(images), batch_size):
                x = _image_batch(images, start, min(start + batch_size, len(images)), device)
                outs = backbone.encode_blocks(backbone.embed_patches(x))  # depth x (B, 1 + L, D)
                kept = torch.stack([outs[b - 1] for b in numbers]).float().cpu()  # (K, B, 1 + L, D)
                patches.append(kept[:, :, 1:])
                cls.append(kept[:, :, 0])
    finally:
        backbone.train(was_training)
    if not patches:
        raise ValueError("no images to encode")
    # concatenated outside inference mode: ordinary tensors, usable as inputs of a trained probe
    return BlockTokens(patches=torch.cat(patches, dim=1).clone(), cls=torch.cat(cls, dim=1).clone(),
                       blocks=numbers)


@dataclass(frozen=True)
class ProbeSettings:
    """Training of a linear probe (ours; the issue fixes only that the probe is linear and seeded)."""

    epochs: int = 20
    batch_size: int = 64
    lr: float = 1e-2
    weight_decay: float = 0.01
    standardize: bool = True
    seed: int = 0

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.batch_size < 1:
            raise ValueError(f"probe epochs and batch_size must be positive, got {self.epochs}, {self.batch_size}")
        if not self.lr > 0 or self.weight_decay < 0:
            raise ValueError(f"probe lr must be positive and weight_decay not negative, got {self.lr}, "
                             f"{self.weight_decay}")


@dataclass(frozen=True)
class LinearProbe:
    """A trained linear head on standardised features: ``((x - mean) / std) @ weight.T + bias``."""

    weight: torch.Tensor  # (out, D)
    bias: torch.Tensor  # (out,)
    mean: torch.Tensor  # (D,)
    std: torch.Tensor  # (D,)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear((x - self.mean) / self.std, self.weight, self.bias)


def _standardizer(x: torch.Tensor, on: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-feature mean and std of ``x`` (..., D) over every other axis; a constant feature keeps std 1."""
    d = x.shape[-1]
    if not on:
        return torch.zeros(d), torch.ones(d)
    flat = x.reshape(-1, d).double()
    mean, std = flat.mean(0), flat.std(0, correction=0)
    std = torch.where(std > 1e-6 * (1.0 + mean.abs()), std, torch.ones_like(std))
    return mean.float(), std.float()


def train_linear_probe(features: torch.Tensor, targets: torch.Tensor, out_features: int, settings: ProbeSettings,
                       loss_of=None, device: torch.device | str | None = None) -> LinearProbe:
    """A linear head D -> ``out_features`` trained on frozen ``features`` (N, ..., D).

    ``loss_of(logits (B, ..., out), targets (B, ...))`` gives the batch's loss (default: the mean
    cross-entropy of (B, out) logits). Examples are shuffled along the first axis each epoch by the
    settings' seeded generator (on the CPU). Training runs on ``device`` (default the CPU, where it is
    bit-reproducible); the returned probe lives on the CPU.
    """
    x = features.detach().float().cpu()
    y = targets.detach().long().cpu()
    if len(x) != len(y) or len(x) == 0:
        raise ValueError(f"a probe needs as many targets as examples (and some), got {len(x)} and {len(y)}")
    g = torch.Generator().manual_seed(settings.seed)
    mean, std = _standardizer(x, settings.standardize)
    head = nn.Linear(x.shape[-1], out_features)
    with torch.no_grad():
        head.weight.copy_(torch.randn(head.weight.shape, generator=g) * 0.01)
        head.bias.zero_()
    device = torch.device(device or "cpu")
    head = head.to(device)
    opt = torch.optim.AdamW(head.parameters(), lr=settings.lr, weight_decay=settings.weight_decay, foreach=False)
    xs, y = ((x - mean) / std).to(device), y.to(device)
    loss_of = loss_of or cross_entropy
    for _ in range(settings.epochs):
        order = torch.randperm(len(xs), generator=g)
        for start in range(0, len(xs), settings.batch_size):
            idx = order[start:start + settings.batch_size].to(device)
            loss = loss_of(head(xs[idx]), y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    return LinearProbe(weight=head.weight.detach().cpu().clone(), bias=head.bias.detach().cpu().clone(), mean=mean,
                       std=std)


# ---- segmentation -------------------------------------------------------------------------------


def _segmentation_loss(patch_size: int, num_classes: int):
    def loss(logits: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
        return cross_entropy(unpatchify(logits, patch_size, num_classes), masks)  # (B, K, H, W) vs (B, H, W)
    return loss


def train_segmentation_probe(tokens: torch.Tensor, masks: torch.Tensor, patch_size: int, num_classes: int = 3,
                             settings: ProbeSettings = ProbeSettings(),
                             device: torch.device | str | None = None) -> LinearProbe:
    """A per-patch linear head D -> p * p * K on frozen patch ``tokens`` (N, L, D) against ``masks``
    (N, H, W) of class indices; logits fold into pixels as in ``model.Segmenter`` (``unpatchify``)."""
    _check_masks(tokens, masks, patch_size)
    return train_linear_probe(tokens, masks, patch_size**2 * num_classes, settings,
                              loss_of=_segmentation_loss(patch_size, num_classes), device=device)


def _check_masks(tokens: torch.Tensor, masks: torch.Tensor, patch_size: int) -> None:
    if tokens.dim() != 3 or masks.dim() != 3 or len(tokens) != len(masks):
        raise ValueError(f"patch tokens (N, L, D) and masks (N, H, W) of the same N expected, got "
                         f"{tuple(tokens.shape)} and {tuple(masks.shape)}")
    if tokens.shape[1] * patch_size**2 != masks.shape[1] * masks.shape[2]:
        raise ValueError(f"{tokens.shape[1]} patches of {patch_size}x{patch_size} do not cover "
                         f"{tuple(masks.shape[1:])} masks")


def predict_segmentation(probe: LinearProbe, tokens: torch.Tensor, patch_size: int, num_classes: int = 3,
                         batch_size: int = 256) -> torch.Tensor:
    """(N, L, D) patch tokens -> (N, H, W) int64 class maps (argmax of the folded logits)."""
    preds = []
    with torch.no_grad():
        for start in range(0, len(tokens), batch_size):
            logits = probe(tokens[start:start + batch_size].float().cpu())  # (B, L, p*p*K)
            preds.append(unpatchify(logits, patch_size, num_classes).argmax(1))
    return torch.cat(preds)


def score_segmentation(probe: LinearProbe, tokens: torch.Tensor, masks: torch.Tensor, patch_size: int,
                       num_classes: int = 3, batch_size: int = 256) -> dict:
    """``scores_from_confusion`` of the probe on held-out tokens and masks: accuracy, miou, iou."""
    _check_masks(tokens, masks, patch_size)
    cm = ConfusionMatrix(num_classes)
    for start in range(0, len(tokens), batch_size):
        pred = predict_segmentation(probe, tokens[start:start + batch_size], patch_size, num_classes, batch_size)
        cm.update(pred, masks[start:start + batch_size])
    return cm.scores()


def segmentation_probe(train_tokens: torch.Tensor, train_masks: torch.Tensor, test_tokens: torch.Tensor,
                       test_masks: torch.Tensor, patch_size: int, num_classes: int = 3,
                       settings: ProbeSettings = ProbeSettings(), device: torch.device | str | None = None) -> dict:
    """Train on one block's training tokens, score on its test tokens: {accuracy, miou, iou}."""
    probe = train_segmentation_probe(train_tokens, train_masks, patch_size, num_classes, settings, device)
    return score_segmentation(probe, test_tokens, test_masks, patch_size, num_classes)


# ---- classification -----------------------------------------------------------------------------


def knn_predict(train: torch.Tensor, train_labels: torch.Tensor, query: torch.Tensor, k: int = 20,
                num_classes: int | None = None, chunk: int = 1024) -> torch.Tensor:
    """Labels of ``query`` (M, D) by a majority vote of the ``k`` training examples (N, D) of highest
    cosine similarity; vote ties go to the larger summed similarity, then to the smaller class."""
    x = F.normalize(train.detach().double().cpu(), dim=1)
    y = train_labels.detach().long().cpu()
    if len(x) != len(y) or len(x) == 0:
        raise ValueError(f"kNN needs as many labels as training examples (and some), got {len(x)} and {len(y)}")
    if k < 1:
        raise ValueError(f"k must be positive, got {k}")
    c = int(num_classes if num_classes is not None else int(y.max()) + 1)
    k = min(k, len(x))
    out = []
    for start in range(0, len(query), chunk):
        q = F.normalize(query[start:start + chunk].detach().double().cpu(), dim=1)
        sims = q @ x.T  # (m, N)
        top, idx = torch.sort(sims, dim=1, descending=True, stable=True)
        top, idx = top[:, :k], idx[:, :k]
        labels = y[idx]  # (m, k)
        votes = torch.zeros(len(q), c, dtype=torch.float64).scatter_add_(1, labels, torch.ones_like(top))
        mass = torch.zeros(len(q), c, dtype=torch.float64).scatter_add_(1, labels, top)
        # votes first, summed similarity second (|mass| <= k < 2k + 1), lower class third (argmax takes the first)
        out.append((votes * (2 * k + 1) + mass).argmax(1))
    return torch.cat(out) if out else torch.zeros(0, dtype=torch.int64)


def knn_accuracy(train: torch.Tensor, train_labels: torch.Tensor, test: torch.Tensor, test_labels: torch.Tensor,
                 k: int = 20, num_classes: int | None = None) -> float:
    """Fraction of ``test`` examples whose kNN label (``knn_predict``) is right."""
    pred = knn_predict(train, train_labels, test, k, num_classes)
    return float((pred == test_labels.long().cpu()).double().mean())


def linear_probe_accuracy(train: torch.Tensor, train_labels: torch.Tensor, test: torch.Tensor,
                          test_labels: torch.Tensor, num_classes: int,
                          settings: ProbeSettings = ProbeSettings(epochs=50, batch_size=256),
                          device: torch.device | str | None = None) -> float:
    """Accuracy on ``test`` (M, D) of a linear classifier trained on frozen ``train`` (N, D) features."""
    probe = train_linear_probe(train, train_labels, num_classes, settings, device=device)
    with torch.no_grad():
        pred = probe(test.detach().float().cpu()).argmax(1)
    return float((pred == test_labels.long().cpu()).double().mean())


# ---- representation similarity ------------------------------------------------------------------


def block_cka(a: BlockTokens, b: BlockTokens, debiased: bool = True) -> dict[str, list[float]]:
    """Linear CKA per block between two backbones' tokens of the same images, for the CLS tokens
    (N, D) and for the patch tokens (N, L * D: one example per image); blocks are paired in order."""
    if a.patches.shape[:2] != b.patches.shape[:2] or len(a.blocks) != len(b.blocks):
        raise ValueError(f"CKA pairs the same blocks of the same images: {tuple(a.patches.shape[:2])} vs "
                         f"{tuple(b.patches.shape[:2])}")
    return {"cls": [linear_cka(a.cls[i], b.cls[i], debiased) for i in range(len(a.blocks))],
            "patch": [linear_cka(a.patches[i], b.patches[i], debiased) for i in range(len(a.blocks))]}


def backbone_cka(a: ViNy, b: ViNy, images, batch_size: int = 64, blocks: Sequence[int] | None = None,
                 debiased: bool = True) -> dict[str, list[float]]:
    """``block_cka`` of two frozen backbones on the same ``images``."""
    return block_cka(block_tokens(a, images, batch_size, blocks), block_tokens(b, images, batch_size, blocks),
                     debiased)
