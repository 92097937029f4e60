"""Batched tensor transforms: normalisation, SimMIM crops, joint segmentation flips, determinism."""

from __future__ import annotations

import pytest
import torch

from diminish.core.transforms import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    cls_augment,
    crop_boxes,
    normalize,
    resized_crop,
    seg_augment,
    simmim_augment,
)


def _batch(b=16, h=128, w=128, seed=0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (b, 3, h, w), generator=g, dtype=torch.uint8)


def test_normalize():
    x = torch.zeros(2, 3, 4, 4, dtype=torch.uint8)
    x[1] = 255
    y = normalize(x)
    assert y.dtype == torch.float32 and y.shape == x.shape
    for c in range(3):
        assert torch.allclose(y[0, c], torch.tensor(-IMAGENET_MEAN[c] / IMAGENET_STD[c]))
        assert torch.allclose(y[1, c], torch.tensor((1 - IMAGENET_MEAN[c]) / IMAGENET_STD[c]))
    with pytest.raises(TypeError, match="uint8"):
        normalize(x.float())
    with pytest.raises(ValueError, match=r"\(B, 3, H, W\)"):
        normalize(x[0])


def test_crop_boxes_follow_scale_and_ratio():
    g = torch.Generator().manual_seed(1)
    boxes = crop_boxes(4000, 128, 128, (0.67, 1.0), (3 / 4, 4 / 3), g, torch.device("cpu"))
    x0, y0, w, h = boxes.unbind(1)
    assert (x0 >= 0).all() and (y0 >= 0).all() and (x0 + w <= 128).all() and (y0 + h <= 128).all()
    area = w * h / 128**2
    ratio = w / h
    assert area.min() > 0.64 and area.max() <= 1.0 + 1e-6  # rounding to whole pixels
    assert ratio.min() > 0.74 and ratio.max() < 1.36
    assert area.std() > 0.05 and ratio.log().std() > 0.1  # really random
    assert x0.max() > 20 and y0.max() > 20  # offsets move


def test_resized_crop_samples_the_box():
    # pixel value = column index; the output's columns must walk across the box
    col = torch.arange(128, dtype=torch.float32).expand(1, 3, 128, 128).contiguous()
    box = torch.tensor([[20.0, 10.0, 64.0, 96.0]])
    out = resized_crop(col, box)
    expect = 20 + (torch.arange(128) + 0.5) * 64 / 128 - 0.5
    assert torch.allclose(out[0, 0, 5], expect, atol=1e-3)  # box edges are pixel edges
    flipped = resized_crop(col, box, flip=torch.tensor([True]))
    assert torch.allclose(flipped[0, 0, 5], out[0, 0, 5].flip(0), atol=1e-3)
    full = resized_crop(col, torch.tensor([[0.0, 0.0, 128.0, 128.0]]))
    assert torch.allclose(full, col, atol=1e-4)  # identity box is the identity


@pytest.mark.parametrize("fn", [simmim_augment, cls_augment])
def test_crop_augments_deterministic_given_generator(fn):
    x = _batch()
    a = fn(x, torch.Generator().manual_seed(7))
    b = fn(x, torch.Generator().manual_seed(7))
    c = fn(x, torch.Generator().manual_seed(8))
    assert a.shape == (16, 3, 128, 128) and a.dtype == torch.float32
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert a.min() >= normalize(torch.zeros_like(x)).min() - 1e-5  # values stay in the image range


def test_simmim_augment_flips_about_half_and_keeps_content():
    # a left-dark / right-bright image: after crop+flip the bright side is on the left for ~half
    x = torch.zeros(200, 3, 128, 128, dtype=torch.uint8)
    x[..., 64:] = 255
    y = simmim_augment(x, torch.Generator().manual_seed(0))
    left_bright = (y[:, 0, :, :8].mean((1, 2)) > y[:, 0, :, -8:].mean((1, 2))).float().mean()
    assert 0.4 < left_bright < 0.6
    # cls_augment is lighter: the crop keeps at least 0.8 of the area, so the edge moves less
    edge_shift = lambda z: ((z[:, 0, 64] > 0).float().sum(1) - 64).abs().float()  # noqa: E731
    assert edge_shift(cls_augment(x, torch.Generator().manual_seed(0))).mean() < edge_shift(y).mean()


def test_seg_augment_flips_image_and_mask_together():
    x = _batch(64)
    m = torch.randint(0, 3, (64, 128, 128), generator=torch.Generator().manual_seed(1), dtype=torch.uint8)
    xi, mi = seg_augment(x, m, torch.Generator().manual_seed(3))
    assert mi.dtype == torch.int64 and xi.dtype == torch.float32
    n = normalize(x)
    flipped = 0
    for i in range(64):
        if torch.equal(xi[i], n[i]):
            assert torch.equal(mi[i], m[i].long())
        else:
            assert torch.equal(xi[i], n[i].flip(-1)) and torch.equal(mi[i], m[i].long().flip(-1))
            flipped += 1
    assert 16 < flipped < 48
    xj, mj = seg_augment(x, m, torch.Generator().manual_seed(3))
    assert torch.equal(xi, xj) and torch.equal(mi, mj)
    with pytest.raises(ValueError, match="masks must have shape"):
        seg_augment(x, m[:, :64], None)


def test_generator_device_must_match():
    class FakeCudaGenerator:
        device = torch.device("cuda", 0)

    with pytest.raises(ValueError, match="generator is on cuda:0 but the batch is on cpu"):
        simmim_augment(_batch(2), FakeCudaGenerator())
    if torch.cuda.is_available():  # pragma: no cover - only on a GPU machine
        x = _batch(4).cuda()
        a = simmim_augment(x, torch.Generator(device="cuda").manual_seed(0))
        b = simmim_augment(x, torch.Generator(device="cuda").manual_seed(0))
        assert a.device.type == "cuda" and torch.equal(a, b)
        xs, ms = seg_augment(x, x[:, 0] % 3, torch.Generator(device="cuda").manual_seed(0))
        assert xs.device.type == "cuda" and ms.dtype == torch.int64
