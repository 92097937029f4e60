"""Batched tensor transforms: normalisation and the training-time augmentations.

Every function takes a uint8 batch ``(B, 3, H, W)`` straight from the cache (moved to any device),
works on the whole batch at once (one ``affine_grid``/``grid_sample`` call for all crops, a
``torch.where`` for all flips) and draws its randomness from ``generator`` (a ``torch.Generator`` on
the batch's device, or ``None`` for torch's global one), so the same generator state gives the same
output. Evaluation uses :func:`normalize` alone.

Choices (ours, where the paper is silent):

* **Normalisation**: ImageNet mean/std on [0, 1] pixels, for every stage (SimMIM's default).
* **Pre-training** (SimMIM's recipe): random resized crop with area scale (0.67, 1) and aspect ratio
  (3/4, 4/3) drawn log-uniformly, then a horizontal flip with probability 1/2. As in torchvision,
  up to 10 draws are tried for a crop that fits; if none fits, the largest centred crop with the
  ratio clamped to the range is used. Crops are cut from the 128x128 cached image (not the original)
  and resampled bilinearly back to 128x128, so they are slightly upsampled.
* **Segmentation**: horizontal flip with probability 1/2, applied identically to image and mask
  (no crop: the paper mentions none, and a crop would need nearest resampling of the trimap).
* **Intermediate classification**: a light random resized crop, area scale (0.8, 1), ratio
  (3/4, 4/3), plus the horizontal flip.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

SIMMIM_SCALE = (0.67, 1.0)
CLS_SCALE = (0.8, 1.0)
RATIO = (3 / 4, 4 / 3)
_TRIES = 10


def _check_batch(x: torch.Tensor, name: str = "images") -> None:
    if x.dtype != torch.uint8:
        raise TypeError(f"{name} must be uint8 (straight from the cache), got {x.dtype}")
    if x.dim() != 4 or x.shape[1] != 3:
        raise ValueError(f"{name} must have shape (B, 3, H, W), got {tuple(x.shape)}")


def _check_generator(generator: torch.Generator | None, x: torch.Tensor) -> None:
    if generator is not None and generator.device.type != x.device.type:
        raise ValueError(f"generator is on {generator.device} but the batch is on {x.device}")


_NORM_CONSTANTS: dict[torch.device, tuple[torch.Tensor, torch.Tensor]] = {}


def _norm_constants(device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """(mean, 1 / std) in uint8 pixel units, (1, 3, 1, 1) on ``device``, made once per device.

    Building them at every call would copy host data to the device at every step, and on CUDA such
    a copy (from pageable memory, blocking) waits for all queued work: one sync per batch.
    """
    if device not in _NORM_CONSTANTS:
        with torch.inference_mode(False):  # ordinary tensors even when first asked for in evaluation
            mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1) * 255.0
            inv_std = 1.0 / (torch.tensor(IMAGENET_STD).view(1, 3, 1, 1) * 255.0)
            _NORM_CONSTANTS[device] = (mean.to(device), inv_std.to(device))
    return _NORM_CONSTANTS[device]


def normalize(x: torch.Tensor) -> torch.Tensor:
    """uint8 (B, 3, H, W) -> float32 ImageNet-normalised (B, 3, H, W)."""
    _check_batch(x)
    mean, inv_std = _norm_constants(x.device)
    return x.float().sub_(mean).mul_(inv_std)


def _flips(b: int, generator: torch.Generator | None, device: torch.device) -> torch.Tensor:
    return torch.rand(b, generator=generator, device=device) < 0.5  # (B,) bool


def crop_boxes(b: int, h: int, w: int, scale: tuple[float, float], ratio: tuple[float, float],
               generator: torch.Generator | None, device: torch.device) -> torch.Tensor:
    """Random resized crop boxes, (B, 4) float: x0, y0, width, height in pixels (torchvision's rule)."""
    area = h * w
    s = torch.empty(b, _TRIES, device=device).uniform_(scale[0], scale[1], generator=generator)
    logr = torch.empty(b, _TRIES, device=device).uniform_(math.log(ratio[0]), math.log(ratio[1]),
                                                          generator=generator)
    r = torch.exp(logr)
    cw = torch.round(torch.sqrt(s * area * r))  # (B, T)
    ch = torch.round(torch.sqrt(s * area / r))
    ok = (cw > 0) & (ch > 0) & (cw <= w) & (ch <= h)
    first = torch.where(ok.any(1), ok.float().argmax(1), torch.full((b,), -1, device=device))
    # fallback: centred crop of the whole image with the ratio clamped into range
    in_ratio = w / h
    if in_ratio < ratio[0]:
        fw, fh = w, round(w / ratio[0])
    elif in_ratio > ratio[1]:
        fw, fh = round(h * ratio[1]), h
    else:
        fw, fh = w, h
    idx = first.clamp(min=0).unsqueeze(1)
    cw = torch.where(first >= 0, cw.gather(1, idx).squeeze(1), torch.full((b,), float(fw), device=device))
    ch = torch.where(first >= 0, ch.gather(1, idx).squeeze(1), torch.full((b,), float(fh), device=device))
    u = torch.rand(b, 2, device=device, generator=generator)
    x0 = torch.floor(u[:, 0] * (w - cw + 1))
    y0 = torch.floor(u[:, 1] * (h - ch + 1))
    fallback = first < 0
    x0 = torch.where(fallback, torch.div(w - cw, 2, rounding_mode="floor"), x0)
    y0 = torch.where(fallback, torch.div(h - ch, 2, rounding_mode="floor"), y0)
    return torch.stack([x0, y0, cw, ch], 1)


def resized_crop(x: torch.Tensor, boxes: torch.Tensor, flip: torch.Tensor | None = None,
                 out_size: tuple[int, int] | None = None) -> torch.Tensor:
    """Cut ``boxes`` (B, 4: x0, y0, w, h) out of float ``x`` and resample bilinearly, optionally flipped."""
    b, _, h, w = x.shape
    oh, ow = out_size or (h, w)
    x0, y0, cw, ch = boxes.unbind(1)
    theta = torch.zeros(b, 2, 3, device=x.device, dtype=x.dtype)
    sx = cw / w
    if flip is not None:
        sx = torch.where(flip, -sx, sx)
    theta[:, 0, 0] = sx
    theta[:, 0, 2] = (2 * x0 + cw) / w - 1  # crop centre in [-1, 1] (align_corners=False)
    theta[:, 1, 1] = ch / h
    theta[:, 1, 2] = (2 * y0 + ch) / h - 1
    grid = F.affine_grid(theta, [b, x.shape[1], oh, ow], align_corners=False)  # (B, oh, ow, 2)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)


def _crop_flip(x: torch.Tensor, generator: torch.Generator | None, scale: tuple[float, float]) -> torch.Tensor:
    _check_batch(x)
    _check_generator(generator, x)
    b, _, h, w = x.shape
    boxes = crop_boxes(b, h, w, scale, RATIO, generator, x.device)
    flip = _flips(b, generator, x.device)
    return resized_crop(normalize(x), boxes, flip)


def simmim_augment(x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """SimMIM pre-training: random resized crop (0.67, 1), ratio (3/4, 4/3), h-flip; normalised."""
    return _crop_flip(x, generator, SIMMIM_SCALE)


def cls_augment(x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Intermediate classification: light random resized crop (0.8, 1) and h-flip; normalised."""
    return _crop_flip(x, generator, CLS_SCALE)


def seg_augment(x: torch.Tensor, masks: torch.Tensor,
                generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Segmentation: the same random h-flip for image and mask -> (normalised float, int64 mask)."""
    _check_batch(x)
    _check_generator(generator, x)
    if masks.shape != (x.shape[0], *x.shape[2:]):
        raise ValueError(f"masks must have shape {(x.shape[0], *x.shape[2:])}, got {tuple(masks.shape)}")
    flip = _flips(x.shape[0], generator, x.device)
    x = torch.where(flip.view(-1, 1, 1, 1), x.flip(-1), x)  # flip while still uint8: 4x less memory
    m = torch.where(flip.view(-1, 1, 1), masks.flip(-1), masks)
    return normalize(x), m.long()
