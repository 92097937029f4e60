"""Issue 15's pieces in isolation: per-image and original-resolution mIoU, the training curves in
results.nc, the appendix's macros, SimMIM's normalised target, and the reconstruction figure."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import xarray as xr
from PIL import Image

from diminish.core.image_metrics import image_confusions, per_image_miou, variant_scores
from diminish.core.metrics import mean_iou
from diminish.core.model import ViNy, ViNyConfig, patchify
from diminish.core.simmim import SimMIM, SimMIMConfig
from diminish.reconstructions import main as inspect_main
from diminish.reconstructions import reconstruct
from diminish.report.macros_pretraining import curve_summary, variant_gap
from diminish.results import describe, from_records

TINY = ViNyConfig(depth=1, dim=32, heads=2, dim_head=16, mlp_dim=64)


def test_per_image_miou_weighs_images_equally_unlike_the_dataset_level_score():
    truth = torch.zeros(2, 4, 4, dtype=torch.long)
    truth[1, :, :2] = 1  # image 1: half pet, half background
    pred = truth.clone()
    pred[0, 0, 0] = 1  # one wrong pixel in image 0, which has no background at all
    cms = image_confusions(pred, truth)
    assert cms.sum().item() == 32 and cms[1].trace().item() == 16
    per = per_image_miou(cms)
    assert per[1] == 1.0 and per[0] == pytest.approx((15 / 16 + 0.0) / 2)  # background IoU 0 in image 0
    dataset = mean_iou(cms.sum(0))
    assert dataset == pytest.approx((23 / 24 + 8 / 9) / 2)
    assert np.mean(per) != pytest.approx(dataset)


class _Constant(torch.nn.Module):
    """A 'segmenter' whose logits favour one class on the left half of the image and another on the right."""

    def forward(self, x):
        b, _, h, w = x.shape
        logits = torch.zeros(b, 3, h, w)
        logits[:, 0, :, : w // 2] = 1.0
        logits[:, 1, :, w // 2:] = 1.0
        return logits


def test_original_resolution_scores_against_the_trimap_file_itself(tmp_path):
    # trimap 40 x 20 (W x H): left half pet (1), right half background (2) -> a perfect prediction
    tri = np.full((20, 40), 2, dtype=np.uint8)
    tri[:, :20] = 1
    Image.fromarray(tri).save(tmp_path / "a.png")
    images = torch.zeros(1, 3, 128, 128, dtype=torch.uint8)
    masks = torch.ones(1, 128, 128, dtype=torch.long)  # the cached mask says all background
    out = variant_scores(_Constant(), images, masks, [tmp_path / "a.png"])
    assert out["miou_original"] == pytest.approx(1.0) and out["miou_image_original"] == pytest.approx(1.0)
    assert out["miou_image"] == pytest.approx(0.25)  # at 128 px: background IoU 0.5, pet IoU 0 (predicted, absent)
    assert "miou_original" not in variant_scores(_Constant(), images, masks)


def test_curves_in_results_have_an_epoch_dimension_per_stage_kind():
    cell = {"pretrain": 0, "intermediate": False, "finetune": 10, "seed": 0, "accuracy": 0.5, "miou": 0.4,
            "iou": [0.4, 0.4, 0.4], "miou_image": 0.3}
    pre = [{"pretrain": 5, "seed": 0, "final_loss": 0.7, "history": [0.9, 0.8, 0.7]}]
    fine = [{"pretrain": 0, "intermediate": False, "finetune": 10, "seed": 0, "history": [1.0, 0.5]}]
    ds = from_records([0, 5], [False], [10], [0], [cell], pre, (), {}, finetune_records=fine)
    assert ds.sizes["pretrain_epoch"] == 3 and ds.sizes["finetune_epoch"] == 2
    assert ds.pretrain_loss_curve.sel(pretrain=5, seed=0).values.tolist() == [0.9, 0.8, 0.7]
    assert np.isnan(ds.pretrain_loss_curve.sel(pretrain=0)).all()
    assert ds.finetune_loss_curve.sel(pretrain=0, finetune=10, seed=0, intermediate=False).values.tolist() == [1.0, 0.5]
    assert float(ds.miou_image.sel(pretrain=0, finetune=10, seed=0, intermediate=False)) == pytest.approx(30.0)
    described = describe(ds)  # what write_results writes: the schema's attributes on every name
    assert described.miou_image.attrs["units"] == "percent"
    assert "epoch" in described.pretrain_loss_curve.attrs["long_name"]
    assert described.pretrain_epoch.attrs["long_name"] == "pre-training epoch"
    with pytest.raises(ValueError, match="not in the grid"):
        from_records([0], [False], [10], [0], [], [{"pretrain": 7, "seed": 0, "history": [1.0]}])

    s = curve_summary(ds.pretrain_loss_curve)
    assert s == {"pretrain": 5, "epochs": 3, "first": 0.9, "last": 0.7, "ratio": pytest.approx(0.7 / 0.9),
                 "seeds": 1, "tail_epochs": 1, "tail_share": pytest.approx(0.5)}
    g = variant_gap(ds, "miou_image")
    assert g["n"] == 1 and g["mean"] == pytest.approx(-10.0)
    assert variant_gap(ds, "miou_original") is None  # all NaN: not recorded


def test_normalised_target_is_zero_mean_unit_variance_per_patch_and_off_by_default():
    x = torch.randn(2, 3, 128, 128) * 3 + 1
    raw = SimMIM(ViNy(TINY))
    assert torch.equal(raw.target(x), patchify(x, 16))  # the paper's raw pixels
    norm = SimMIM(ViNy(TINY), SimMIMConfig(norm_target=True))
    t = norm.target(x)
    assert t.mean(-1).abs().max() < 1e-4 and (t.var(-1) - 1).abs().max() < 1e-3
    assert not torch.allclose(raw.target(x), t)


@pytest.mark.parametrize("norm", [False, True])
def test_reconstruction_pastes_visible_patches_back_exactly(norm):
    torch.manual_seed(0)
    model = SimMIM(ViNy(TINY), SimMIMConfig(norm_target=norm))
    images = torch.randint(0, 256, (2, 3, 128, 128), dtype=torch.uint8)
    rec = reconstruct(model, images, seed=3)
    visible = ~rec["mask"][0].reshape(8, 8)
    r, c = np.argwhere(visible)[0]
    block = (slice(16 * r, 16 * r + 16), slice(16 * c, 16 * c + 16))
    np.testing.assert_allclose(rec["reconstruction"][0][block], rec["original"][0][block], atol=1e-5)
    assert ("pred_norm" in rec) == norm and math.isfinite(rec["masked_l1"])


def test_inspect_refuses_a_model_that_is_not_a_pretraining_model(tmp_path, capsys):
    path = tmp_path / "seg.pt"
    torch.save({"format": 1, "task": "segment", "state_dict": {}}, path)
    assert inspect_main([str(path), "--images", str(tmp_path), "--out", str(tmp_path / "f.png")]) == 2
    assert "not a pre-trained SimMIM model" in capsys.readouterr().err


def _curve(values_per_seed):
    """A (pretrain, seed, pretrain_epoch) loss curve with one pre-training size of 1000 images."""
    v = np.asarray(values_per_seed, dtype=float)[None]  # (1, seed, epoch)
    return xr.DataArray(v, dims=("pretrain", "seed", "pretrain_epoch"),
                        coords={"pretrain": [1000], "seed": list(range(v.shape[1]))})


@pytest.mark.parametrize("rate, epochs, state", [
    (0.05, 20, "falling"),    # slow decay: far from its floor after 20 epochs
    (0.9, 20, "levelled"),    # fast decay: flat long before the end
    (-0.02, 8, "no drop"),    # a loss that creeps up
    (0.5, 3, "unknown"),      # three epochs: no last quarter to judge by
])
def test_planted_pretraining_curves_are_read_as_planted(rate, epochs, state):
    from diminish.report.statements import convergence_sentence, convergence_state

    t = np.arange(epochs)
    seeds = [0.6 + 0.3 * np.exp(-rate * t) + 0.001 * k for k in range(3)]  # three seeds, the same shape
    s = curve_summary(_curve(seeds))
    assert s["tail_epochs"] == max(1, -(-epochs // 4))
    got = convergence_state(s["epochs"], s["first"], s["last"], s["tail_share"])
    assert got == state
    text = str(convergence_sentence(got, "1000", s["epochs"], s["first"], s["last"], s["tail_epochs"], s["tail_share"]))
    assert ("was still falling when" in text) == (state == "falling")
    assert ("levelled off before" in text) == (state == "levelled")
    assert ("did not fall" in text) == (state == "no drop")
