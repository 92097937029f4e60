"""Linear CKA (core/similarity.py): the invariances it must have, the debiased estimator's zero for
independent features, and agreement with the feature-space formula of Kornblith et al. (2019)."""

from __future__ import annotations

import math

import pytest
import torch

from diminish.core.similarity import linear_cka


def _features(n=200, d=32, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, d, generator=g, dtype=torch.float64) @ torch.randn(d, d, generator=g, dtype=torch.float64)


def _feature_space(x, y):
    """||Y^T X||_F^2 / (||X^T X||_F ||Y^T Y||_F) on column-centred features: the paper's eq. for linear CKA."""
    x, y = x - x.mean(0), y - y.mean(0)
    return float(torch.linalg.norm(y.T @ x) ** 2 / (torch.linalg.norm(x.T @ x) * torch.linalg.norm(y.T @ y)))


@pytest.mark.parametrize("debiased", [False, True])
def test_itself_an_orthogonal_transform_and_a_scaling_give_one(debiased):
    x = _features()
    q, _ = torch.linalg.qr(torch.randn(32, 32, generator=torch.Generator().manual_seed(1), dtype=torch.float64))
    assert linear_cka(x, x, debiased) == pytest.approx(1.0, abs=1e-9)
    assert linear_cka(x, x @ q, debiased) == pytest.approx(1.0, abs=1e-9)
    assert linear_cka(x, 7.5 * x, debiased) == pytest.approx(1.0, abs=1e-9)
    assert linear_cka(x, x + 3.0, debiased) == pytest.approx(1.0, abs=1e-9)  # a shift: centring removes it


def test_the_biased_form_equals_the_feature_space_formula():
    x, y = _features(seed=0), _features(d=16, seed=2)[:, :16]
    assert linear_cka(x, y) == pytest.approx(_feature_space(x, y), rel=1e-9)


def test_independent_features_debiased_near_zero_biased_not():
    x, y = _features(n=2000, d=64, seed=3), _features(n=2000, d=64, seed=4)
    assert abs(linear_cka(x, y, debiased=True)) < 0.02
    wide_x, wide_y = _features(n=100, d=64, seed=5), _features(n=100, d=64, seed=6)
    assert linear_cka(wide_x, wide_y) > 0.2  # the bias the debiased form removes: d close to n
    assert abs(linear_cka(wide_x, wide_y, debiased=True)) < 0.1


def test_a_constant_representation_and_mismatched_rows():
    assert math.isnan(linear_cka(torch.ones(10, 4), _features(n=10)))
    with pytest.raises(ValueError, match="same examples"):
        linear_cka(_features(n=10), _features(n=11))
    with pytest.raises(ValueError, match="more than 3"):
        linear_cka(_features(n=3), _features(n=3), debiased=True)
