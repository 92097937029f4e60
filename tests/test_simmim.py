import pytest
import torch

from diminish.core.model import ViNy, ViNyConfig
from diminish.core.simmim import SimMIM, SimMIMConfig


@pytest.mark.parametrize("unit", [16, 32])
def test_exactly_half_the_patches_masked_per_image(unit):
    m = SimMIM(ViNy(), SimMIMConfig(mask_patch_size=unit))
    g = torch.Generator().manual_seed(0)
    mask = m.random_mask(64, generator=g)
    assert mask.shape == (64, 64) and mask.dtype == torch.bool
    assert (mask.sum(1) == 32).all()
    # drawn independently per image: not all images share one mask
    assert len({tuple(r.tolist()) for r in mask}) > 60
    if unit == 32:  # 2x2 blocks of patches are masked together
        grid = mask.view(64, 8, 8)
        assert torch.equal(grid[:, ::2, ::2], grid[:, 1::2, 1::2])


def test_loss_ignores_visible_patches():
    m = SimMIM(ViNy())
    x = torch.randn(2, 3, 128, 128)
    mask = m.random_mask(2, generator=torch.Generator().manual_seed(1))
    pred = torch.randn(2, 64, 768)
    loss = m.masked_l1(pred, x, mask)
    pred2 = pred.clone()
    pred2[~mask] = 1e3  # change every visible-patch prediction
    assert torch.equal(loss, m.masked_l1(pred2, x, mask))
    pred3 = pred.clone()
    pred3[mask] += 1.0
    assert not torch.equal(loss, m.masked_l1(pred3, x, mask))


def test_mask_token_replaces_masked_inputs():
    # a masked patch's content cannot reach the prediction
    torch.manual_seed(0)
    m = SimMIM(ViNy(ViNyConfig(depth=2))).eval()
    x = torch.randn(1, 3, 128, 128)
    mask = m.random_mask(1, generator=torch.Generator().manual_seed(2))
    y = x.clone()
    idx = int(mask[0].nonzero()[0])
    r, c = divmod(idx, 8)
    y[:, :, r * 16:(r + 1) * 16, c * 16:(c + 1) * 16] += 5.0
    with torch.no_grad():
        assert torch.allclose(m.predict_pixels(x, mask), m.predict_pixels(y, mask))


@pytest.mark.parametrize("cls_in", [True, False])
def test_overfits_a_tiny_batch(cls_in):
    torch.manual_seed(0)
    m = SimMIM(ViNy(ViNyConfig(depth=2)), SimMIMConfig(cls_in_pretrain=cls_in))
    x = torch.randn(4, 3, 128, 128)
    mask = m.random_mask(4, generator=torch.Generator().manual_seed(3))
    opt = torch.optim.AdamW(m.parameters(), lr=1e-3)
    first = None
    for _ in range(200):
        loss = m(x, mask)
        opt.zero_grad()
        loss.backward()
        opt.step()
        first = first if first is not None else loss.item()
    assert loss.item() < 0.5 * first


def test_forward_with_a_given_mask_compiles_to_one_graph():
    """The runner draws masks in the batch source and passes them in, so --compile sees one graph
    (handing the model a Generator instead breaks the graph in two)."""
    import torch._dynamo as dynamo

    model = SimMIM(ViNy(ViNyConfig(depth=1, dim=32, heads=2, dim_head=16, mlp_dim=64)), SimMIMConfig())
    x = torch.randn(2, 3, 128, 128)
    mask = model.random_mask(2, generator=torch.Generator().manual_seed(0))
    dynamo.reset()
    e = dynamo.explain(model)(x, mask=mask)
    assert (e.graph_count, e.graph_break_count) == (1, 0)
