"""ViNy: the 4.8M-parameter vision transformer of the study, and its task heads.

The backbone follows the parameterisation of vit-pytorch's ``ViT`` (pre-norm blocks, patch
embedding LayerNorm -> Linear -> LayerNorm, learnable CLS token and positions, no bias on the
q/k/v projection), which is what gives the paper's parameter count:

    backbone           4,842,880 parameters
    + Linear(128, 2)   4,843,138 parameters  (the figure quoted in the paper)

Everything downstream (SimMIM, the classification and the segmentation head) talks to the
backbone through its public token interface only:

    tokens = backbone.embed_patches(images)   # (B, L, D) patch tokens, no positions yet
    out = backbone.encode(tokens)             # (B, 1 + L, D) CLS first, after the final norm
    outs = backbone.encode_blocks(tokens)     # depth x (B, 1 + L, D), after each block (the probes)

so a head never touches a block, a position table or the CLS parameter directly.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..config import ViNyConfig
from ..data.classes import TRIMAP_CLASSES


def patchify(images: torch.Tensor, patch_size: int) -> torch.Tensor:
    """(B, C, H, W) -> (B, L, p*p*C), patches in row-major order, values ordered (p1, p2, c)."""
    b, c, h, w = images.shape
    p = patch_size
    x = images.reshape(b, c, h // p, p, w // p, p)  # (B, C, gh, p1, gw, p2)
    x = x.permute(0, 2, 4, 3, 5, 1)  # (B, gh, gw, p1, p2, C)
    return x.reshape(b, (h // p) * (w // p), p * p * c)


def unpatchify(patches: torch.Tensor, patch_size: int, channels: int) -> torch.Tensor:
    """(B, L, p*p*C) -> (B, C, H, W); the exact inverse of :func:`patchify` for square grids."""
    b, n, _ = patches.shape
    p = patch_size
    g = int(round(n**0.5))
    if g * g != n:
        raise ValueError(f"unpatchify needs a square number of patches, got {n}")
    x = patches.reshape(b, g, g, p, p, channels)  # (B, gh, gw, p1, p2, C)
    x = x.permute(0, 5, 1, 3, 2, 4)  # (B, C, gh, p1, gw, p2)
    return x.reshape(b, channels, g * p, g * p)


class Attention(nn.Module):
    """Pre-norm multi-head self-attention.

    The product runs through ``scaled_dot_product_attention`` (a fused kernel), except in reduced
    precision on a CPU, where it is written out (scores, softmax, weighted sum): for these short
    sequences that is 2.2x faster under bf16 autocast than the CPU kernel, which in turn is 5%
    faster in fp32 (benchmarks/README.md).
    """

    def __init__(self, dim: int, heads: int, dim_head: int) -> None:
        super().__init__()
        inner = heads * dim_head
        self.heads = heads
        self.norm = nn.LayerNorm(dim)
        self.to_qkv = nn.Linear(dim, inner * 3, bias=False)
        self.to_out = nn.Linear(inner, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, _ = x.shape
        qkv = self.to_qkv(self.norm(x))  # (B, N, 3 * H * Dh)
        # unbind, not qkv[i]: its backward is one stack instead of three zero-filled full buffers
        q, k, v = qkv.reshape(b, n, 3, self.heads, -1).permute(2, 0, 3, 1, 4).unbind(0)  # (B, H, N, Dh)
        if x.device.type == "cpu" and q.dtype != torch.float32:  # bf16 autocast on a CPU
            scores = (q * q.shape[-1] ** -0.5) @ k.transpose(-1, -2)  # (B, H, N, N)
            out = scores.softmax(-1) @ v  # (B, H, N, Dh)
        else:
            out = F.scaled_dot_product_attention(q, k, v)  # (B, H, N, Dh)
        return self.to_out(out.transpose(1, 2).reshape(b, n, -1))  # (B, N, D)


class FeedForward(nn.Module):
    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.LayerNorm(dim), nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class Block(nn.Module):
    def __init__(self, cfg: ViNyConfig) -> None:
        super().__init__()
        self.attn = Attention(cfg.dim, cfg.heads, cfg.dim_head)
        self.ff = FeedForward(cfg.dim, cfg.mlp_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(x)
        return x + self.ff(x)


class ViNy(nn.Module):
    """The backbone: patch embedding, CLS token, positions, 12 pre-norm blocks, final norm."""

    def __init__(self, cfg: ViNyConfig | None = None) -> None:
        super().__init__()
        self.cfg = cfg = cfg or ViNyConfig()
        self.patch_embed = nn.Sequential(
            nn.LayerNorm(cfg.patch_dim), nn.Linear(cfg.patch_dim, cfg.dim), nn.LayerNorm(cfg.dim)
        )
        self.cls_token = nn.Parameter(torch.randn(1, 1, cfg.dim))
        self.pos_embedding = nn.Parameter(torch.randn(1, cfg.num_patches + 1, cfg.dim))
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.depth))
        self.norm = nn.LayerNorm(cfg.dim)

    @property
    def dim(self) -> int:
        return self.cfg.dim

    def embed_patches(self, images: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) normalised images -> (B, L, D) patch tokens, without positions."""
        return self.patch_embed(patchify(images, self.cfg.patch_size))

    def _with_positions(self, tokens: torch.Tensor, with_cls: bool) -> torch.Tensor:
        """(B, L, D) patch tokens -> the first block's input: CLS prepended (or not), positions added."""
        b = tokens.shape[0]
        if with_cls:
            cls = self.cls_token.expand(b, -1, -1)  # (B, 1, D)
            return torch.cat([cls, tokens], dim=1) + self.pos_embedding  # (B, 1 + L, D)
        return tokens + self.pos_embedding[:, 1:]  # (B, L, D)

    def encode(self, tokens: torch.Tensor, with_cls: bool = True) -> torch.Tensor:
        """(B, L, D) patch tokens -> (B, 1 + L, D) encoded tokens (CLS first) or (B, L, D).

        Positions are added here, after any token replacement (e.g. SimMIM's mask token).
        """
        x = self._with_positions(tokens, with_cls)
        for block in self.blocks:
            x = block(x)
        return self.norm(x)

    def encode_blocks(self, tokens: torch.Tensor, with_cls: bool = True, norm: bool = True) -> list[torch.Tensor]:
        """(B, L, D) patch tokens -> one (B, 1 + L, D) tensor per block (or (B, L, D) without CLS).

        Entry ``i`` is the residual stream after block ``i + 1``, computed as in :meth:`encode`. With
        ``norm`` (the default) each entry goes through the final LayerNorm, as DINO's
        ``get_intermediate_layers`` does, so the last entry equals ``encode(tokens, with_cls)`` exactly
        and every block is read on the scale the heads see; without it the entries are the raw residual
        stream and ``self.norm`` of the last one is ``encode``'s output.
        """
        x = self._with_positions(tokens, with_cls)
        out = []
        for block in self.blocks:
            x = block(x)
            out.append(self.norm(x) if norm else x)
        return out

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.encode(self.embed_patches(images))


class Classifier(nn.Module):
    """Backbone + linear head on the CLS token (the intermediate Intel task: 6 classes)."""

    def __init__(self, backbone: ViNy, num_classes: int = 6) -> None:
        super().__init__()
        self.backbone = backbone
        self.head = nn.Linear(backbone.dim, num_classes)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        tokens = self.backbone.encode(self.backbone.embed_patches(images))  # (B, 1 + L, D)
        return self.head(tokens[:, 0])  # (B, K)


class Segmenter(nn.Module):
    """Backbone + linear head on every patch token, folded back into a per-pixel logit map.

    Each patch token predicts p * p * K logits (16 * 16 * 3 = 768 for the tri-maps).
    """

    def __init__(self, backbone: ViNy, num_classes: int = len(TRIMAP_CLASSES)) -> None:
        super().__init__()
        self.backbone = backbone
        self.num_classes = num_classes
        self.head = nn.Linear(backbone.dim, backbone.cfg.patch_size**2 * num_classes)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        tokens = self.backbone.encode(self.backbone.embed_patches(images))  # (B, 1 + L, D)
        logits = self.head(tokens[:, 1:])  # (B, L, p*p*K)
        return unpatchify(logits, self.backbone.cfg.patch_size, self.num_classes)  # (B, K, H, W)


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def backbone_state(model: nn.Module) -> dict[str, torch.Tensor]:
    """The backbone's weights from any wrapper (Classifier, Segmenter, SimMIM) or a bare ViNy."""
    sd = model.state_dict()
    if isinstance(model, ViNy):
        return sd
    return {k[len("backbone."):]: v for k, v in sd.items() if k.startswith("backbone.")}


def load_backbone(model: nn.Module, state: dict[str, torch.Tensor]) -> set[str]:
    """Load a full state dict of another stage's model into ``model``'s backbone, MAE-style.

    ``state`` is a wrapper's state dict (keys ``backbone.*`` plus that stage's own head keys).
    Only the backbone is taken; the function asserts that the keys ``model`` does not receive
    are exactly its own non-backbone keys (its new head), and returns the dropped source keys.
    """
    own = model.state_dict()
    incoming = {k: v for k, v in state.items() if k.startswith("backbone.")}
    dropped = set(state) - set(incoming)
    if not incoming:
        raise KeyError("no 'backbone.*' keys in the state dict to transfer")
    result = model.load_state_dict(incoming, strict=False)
    expected_new = {k for k in own if not k.startswith("backbone.")}
    if result.unexpected_keys:
        raise KeyError(f"unexpected backbone keys: {sorted(result.unexpected_keys)}")
    if set(result.missing_keys) != expected_new:
        raise KeyError(
            f"keys left uninitialised {sorted(result.missing_keys)} differ from the new head "
            f"{sorted(expected_new)}"
        )
    return dropped
