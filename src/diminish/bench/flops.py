"""Exact FLOP count of one ViNy image, the numerator of the benchmark's MFU.

Only matrix multiplies are counted, each as 2*m*n*k; LayerNorm, GELU, softmax, residual adds and
the optimiser are left out. With L patches, P = p*p*C values per patch, width D, H heads of size
Dh (I = H*Dh), MLP width M, depth Nb, and N tokens in the sequence (L + 1 with the CLS token,
L without)::

    patch embedding      2 * L * P * D
    per block, qkv       2 * N * D * 3I
               scores    2 * H * N * N * Dh
               values    2 * H * N * N * Dh
               out proj  2 * N * I * D
               MLP       2 * N * D * M  +  2 * N * M * D
    head  classification 2 * D * K
          segmentation   2 * L * D * (p*p*K)
          SimMIM pixels  2 * L * D * P

    forward = patch + Nb * block + head;  training = 3 * forward (backward = 2 * forward:
    gradients with respect to inputs and to weights).

For ViNy (L=64, P=768, D=128, H=8, Dh=64, M=512, Nb=12, N=65) one block is 59,770,880 FLOPs, the
segmentation forward 742,416,384 and a training image-step 2,227,249,152 (about 2.2 GFLOP).
``tests/test_bench.py`` checks the formula against torch's ``FlopCounterMode``.
"""

from __future__ import annotations

from ..core.model import ViNyConfig


def flops_per_image(cfg: ViNyConfig, task: str, num_classes: int = 6, cls_token: bool = True) -> dict:
    """Matrix-multiply FLOPs of one image: ``{"breakdown": {...}, "forward": int, "train": int}``.

    ``task`` is ``simmim``, ``classification`` or ``segmentation``; ``cls_token`` says whether
    the CLS token is in the sequence (always for the heads; SimMIM's ``cls_in_pretrain``).
    """
    L, P, D = cfg.num_patches, cfg.patch_dim, cfg.dim
    H, Dh, M = cfg.heads, cfg.dim_head, cfg.mlp_dim
    inner = H * Dh
    n = L + 1 if cls_token else L
    block = {
        "qkv": 2 * n * D * 3 * inner,
        "attention_scores": 2 * H * n * n * Dh,
        "attention_values": 2 * H * n * n * Dh,
        "out_proj": 2 * n * inner * D,
        "mlp": 2 * n * D * M + 2 * n * M * D,
    }
    if task == "classification":
        head = 2 * D * num_classes
    elif task == "segmentation":
        head = 2 * L * D * cfg.patch_size**2 * num_classes
    elif task == "simmim":
        head = 2 * L * D * P
    else:
        raise ValueError(f"unknown task {task!r}")
    breakdown = {"patch_embed": 2 * L * P * D}
    breakdown.update({k: cfg.depth * v for k, v in block.items()})
    breakdown["head"] = head
    fwd = sum(breakdown.values())
    return {"breakdown": breakdown, "block": sum(block.values()), "forward": fwd, "train": 3 * fwd}
