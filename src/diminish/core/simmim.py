"""SimMIM pre-training on the ViNy token interface.

Algorithm, per batch:
    1. draw a random mask: exactly ``mask_ratio`` of the mask units of each image, independently
    2. embed patches, replace masked patch tokens by one learnable mask token (before positions)
    3. encode with the backbone
    4. predict the raw (normalised) pixels of every patch with one Linear(D, p*p*C)
    5. L1 loss averaged over the pixel values of masked patches only
       (with ``norm_target``: against each patch's pixels normalised by their own mean and standard
       deviation, as MAE's ``norm_pix_loss``)

Two published implementations differ on details the paper does not pin down; both are options:
  * ``mask_patch_size``: the masking unit. 16 (one ViNy patch, default: the paper masks "patches")
    or 32 (2x2 patch blocks, as in the original SimMIM code's ``mask_patch_size=32``).
  * ``cls_in_pretrain``: whether the CLS token is in the sequence during pre-training. Default
    True: the backbone is used exactly as in fine-tuning (vit-pytorch style); SimMIM's ViT code
    also keeps it.
  * ``norm_target`` (ours, default False = the paper's raw pixels): ViNy's patch embedding starts
    with ``LayerNorm(p*p*C)`` (vit-pytorch), which removes each patch's mean and scale before the
    backbone sees it, so the mean colour of a masked patch cannot be inferred from what the
    backbone is given and a raw-pixel target is mostly out of reach. With ``norm_target`` the target is each patch's own
    normalised pixels, which the backbone's input does carry (issue 15's pilot; experiments/README.md).
"""

from __future__ import annotations

import torch
from torch import nn

from ..config import SimMIMConfig, ViNyConfig
from .model import ViNy, patchify


def units_per_side(cfg: SimMIMConfig, model: ViNyConfig) -> int:
    return model.image_size // cfg.mask_patch_size


def masked_units(cfg: SimMIMConfig, model: ViNyConfig) -> int:
    return int(round(cfg.mask_ratio * units_per_side(cfg, model) ** 2))


def random_mask(cfg: SimMIMConfig, model: ViNyConfig, batch: int, device=None,
                generator: torch.Generator | None = None) -> torch.Tensor:
    """(B, L) bool, True = masked; exactly ``masked_units`` units per image, drawn per image. A
    function of the configuration only, so a batch source can draw it before any model exists
    (:mod:`diminish.core.tasks`); on ``generator``'s device, then moved to ``device`` when given."""
    u = units_per_side(cfg, model)
    noise = torch.rand(batch, u * u, generator=generator, device=generator.device if generator else device)
    order = noise.argsort(dim=1)  # (B, U)
    unit_mask = torch.zeros(batch, u * u, dtype=torch.bool, device=order.device)
    unit_mask.scatter_(1, order[:, : masked_units(cfg, model)], True)
    # expand units (u x u) to patches (grid x grid)
    scale = cfg.mask_patch_size // model.patch_size
    unit_mask = unit_mask.view(batch, u, u)
    patch_mask = unit_mask.repeat_interleave(scale, 1).repeat_interleave(scale, 2)
    return patch_mask.reshape(batch, -1).to(device if device is not None else order.device)


class SimMIM(nn.Module):
    def __init__(self, backbone: ViNy, cfg: SimMIMConfig | None = None) -> None:
        super().__init__()
        self.cfg = cfg = cfg or SimMIMConfig()
        bcfg = backbone.cfg
        if cfg.mask_patch_size % bcfg.patch_size or bcfg.image_size % cfg.mask_patch_size:
            raise ValueError(
                f"simmim.mask_patch_size {cfg.mask_patch_size} must be a multiple of the patch "
                f"size {bcfg.patch_size} and divide the image size {bcfg.image_size}"
            )
        self.backbone = backbone
        self.mask_token = nn.Parameter(torch.zeros(1, 1, bcfg.dim))
        nn.init.trunc_normal_(self.mask_token, std=0.02)
        self.head = nn.Linear(bcfg.dim, bcfg.patch_dim)

    @property
    def units_per_side(self) -> int:
        return units_per_side(self.cfg, self.backbone.cfg)

    @property
    def masked_units(self) -> int:
        return masked_units(self.cfg, self.backbone.cfg)

    def random_mask(self, batch: int, device=None, generator: torch.Generator | None = None) -> torch.Tensor:
        """(B, L) bool, True = masked: :func:`random_mask` for this model's configuration."""
        return random_mask(self.cfg, self.backbone.cfg, batch, device, generator)

    def predict_pixels(self, images: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Encode the masked images and predict every patch's pixels: (B, L, p*p*C)."""
        tokens = self.backbone.embed_patches(images)  # (B, L, D)
        m = mask.unsqueeze(-1).to(tokens.dtype)  # (B, L, 1)
        tokens = tokens * (1 - m) + self.mask_token.to(tokens.dtype) * m  # (B, L, D)
        encoded = self.backbone.encode(tokens, with_cls=self.cfg.cls_in_pretrain)
        if self.cfg.cls_in_pretrain:
            encoded = encoded[:, 1:]  # (B, L, D)
        return self.head(encoded)  # (B, L, p*p*C)

    def target(self, images: torch.Tensor) -> torch.Tensor:
        """What the head predicts: every patch's pixels (B, L, p*p*C), normalised per patch with ``norm_target``."""
        t = patchify(images, self.backbone.cfg.patch_size)
        if not self.cfg.norm_target:
            return t
        mean, var = t.mean(dim=-1, keepdim=True), t.var(dim=-1, keepdim=True)
        return (t - mean) / (var + 1e-6).sqrt()

    def masked_l1(self, pred: torch.Tensor, images: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Mean absolute error over the pixel values of masked patches only."""
        target = self.target(images)  # (B, L, p*p*C)
        err = (pred.float() - target.float()).abs().mean(dim=-1)  # (B, L)
        m = mask.to(err.dtype)
        return (err * m).sum() / m.sum().clamp_min(1.0)

    def forward(
        self, images: torch.Tensor, mask: torch.Tensor | None = None, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """Return the SimMIM loss for a batch of normalised images (B, C, H, W)."""
        if mask is None:
            mask = self.random_mask(images.shape[0], images.device, generator)
        pred = self.predict_pixels(images, mask)
        return self.masked_l1(pred, images, mask)
