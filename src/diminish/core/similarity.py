"""Representation similarity: linear centred kernel alignment (CKA) between two sets of features of
the same n examples (Kornblith et al., 2019), and its debiased form, which replaces the biased HSIC
estimator by the unbiased one (Song et al., 2012; used for CKA by Nguyen et al., 2021), so that two
independent representations score near 0 at any width instead of a positive value that grows with
the features' dimension over n.

Both take ``x`` (n, d1) and ``y`` (n, d2) (token features of one block, flattened over the tokens
compared), work in float64 and return a float in [0, 1] up to rounding (the debiased form can dip
slightly below 0). Linear CKA is invariant to orthogonal transforms and to isotropic scaling of
either side, not to arbitrary invertible linear maps.

What the paper fixes: nothing - it does not measure similarity. What we chose: linear rather than
RBF kernels (the common choice for ViTs, and cheap in feature space), and the debiased estimator
for the probes' fixed batch of test images, where n is a few hundred and d is 128.
"""

from __future__ import annotations

import torch


def _gram(x: torch.Tensor) -> torch.Tensor:
    x = x.reshape(len(x), -1).to(torch.float64)
    return x @ x.T


def _hsic_biased(k: torch.Tensor, lk: torch.Tensor) -> torch.Tensor:
    """tr(K H L H) / (n - 1)^2 with H the centring matrix."""
    n = len(k)
    h = torch.eye(n, dtype=k.dtype, device=k.device) - 1.0 / n
    return torch.trace(k @ h @ lk @ h) / (n - 1) ** 2


def _hsic_unbiased(k: torch.Tensor, lk: torch.Tensor) -> torch.Tensor:
    """The unbiased HSIC estimator of Song et al. (2012), eq. 5 (needs n > 3)."""
    n = len(k)
    if n <= 3:
        raise ValueError(f"debiased CKA needs more than 3 examples, got {n}")
    k = k - torch.diag(torch.diag(k))
    lk = lk - torch.diag(torch.diag(lk))
    ones = torch.ones(n, dtype=k.dtype, device=k.device)
    term = torch.sum(k * lk) + (ones @ k @ ones) * (ones @ lk @ ones) / ((n - 1) * (n - 2))
    term = term - 2.0 / (n - 2) * (ones @ k @ lk @ ones)
    return term / (n * (n - 3))


def linear_cka(x: torch.Tensor, y: torch.Tensor, debiased: bool = False) -> float:
    """Linear CKA between features ``x`` (n, ...) and ``y`` (n, ...) of the same n examples."""
    if len(x) != len(y):
        raise ValueError(f"CKA compares features of the same examples: {len(x)} vs {len(y)} rows")
    k, lk = _gram(x), _gram(y)
    hsic = _hsic_unbiased if debiased else _hsic_biased
    denom = torch.sqrt(hsic(k, k) * hsic(lk, lk))
    if not bool(denom > 0):
        return float("nan")  # a constant representation carries no similarity to measure
    return float(hsic(k, lk) / denom)
