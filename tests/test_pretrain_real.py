"""A CI-sized version of experiments/pretrain-real.toml: does SimMIM pre-training learn?

The study's own config, shrunk (tiny ViNy, capped caches, one seed, a few epochs), run through the
runner; then the pre-trained model's masked-L1 loss on held-out Pets images (never seen in
pre-training) must be below the untrained model's (the same seed's initialisation, same masks).
Skipped when ../shared/realdata is absent.
"""

from __future__ import annotations

import tomllib

import numpy as np
import pytest
import torch

from _runner import REPO
from diminish import config
from diminish.core.simmim import SimMIM
from diminish.core.tasks import backbone
from diminish.core.transforms import normalize
from diminish.data.cache import Cache
from diminish.reconstructions import load_simmim
from diminish.reconstructions import main as inspect_main
from diminish.results import read_results
from diminish.runner import cli as run
from diminish.runner.reuse import largest_pretrain_model
from test_realdata_mini import _dump, absolute_roots

REAL = REPO.parent / "shared" / "realdata"

pytestmark = [
    pytest.mark.realdata,
    pytest.mark.skipif(not REAL.is_dir(), reason="../shared/realdata is absent"),
]


def _shrink(text: str) -> str:
    d = absolute_roots(tomllib.loads(text))
    d["data"]["limit"] = 200
    d["name"] = "pretrain-real-ci"
    d["seeds"] = [0]
    d["model"].update(depth=1, dim=32, heads=2, dim_head=16, mlp_dim=64)
    d["pretrain"].update(sizes=[0, 160], epochs=4, milestones=[], warmup_epochs=1, batch_size=16)
    d["finetune"].update(sizes=[25], test_size=40, epochs=1, milestones=[], eval_batch_size=40)
    return _dump(d)


def test_pretrain_real_config_points_at_the_shared_subsets():
    cfg = config.load(REPO / "experiments" / "pretrain-real.toml")
    assert not cfg.synthetic and len(cfg.seeds) >= 3
    assert cfg.pretrain.sizes == (0, 1000, 3000) and cfg.intermediate.conditions == (False,)
    assert min(cfg.finetune.sizes) >= 25 and max(cfg.finetune.sizes) <= 300
    for root in (cfg.data.pets_root, cfg.data.imagenet_root):
        assert (REPO / root).is_dir(), root


def _heldout_loss(model: SimMIM, images: torch.Tensor) -> float:
    gen = torch.Generator().manual_seed(7)
    model.eval()
    with torch.inference_mode():
        x = normalize(images)
        return float(model(x, mask=model.random_mask(len(x), generator=gen)))


def test_ci_sized_pretraining_lowers_heldout_reconstruction_loss(tmp_path):
    cfg_path = tmp_path / "pretrain-real-ci.toml"
    cfg_path.write_text(_shrink((REPO / "experiments" / "pretrain-real.toml").read_text()))
    out, cache = tmp_path / "out", tmp_path / "cache"
    assert run.main(["--all", "--config", str(cfg_path), "--out", str(out), "--cache-dir", str(cache),
                     "--no-progress"]) == 0
    root = out / "pretrain-real-ci"
    ds = read_results(root / "results.nc")
    curve = ds["pretrain_loss_curve"].sel(pretrain=160, seed=0).values
    assert curve.shape == (4,) and np.isfinite(curve).all()
    assert np.isnan(ds["pretrain_loss_curve"].sel(pretrain=0).values).all()
    assert np.isfinite(ds["miou_image"].values).all() and np.isfinite(ds["finetune_loss_curve"].values).all()

    trained, _ = load_simmim(largest_pretrain_model(root))
    cfg = config.load(cfg_path)
    untrained = SimMIM(backbone(cfg, 0), cfg.simmim)  # the seed's initialisation; a fresh head
    pets = Cache.open(next(cache.glob("pets-train-*")))
    held = torch.from_numpy(np.asarray(pets.images[:64]).copy())
    before, after = _heldout_loss(untrained, held), _heldout_loss(trained, held)
    assert after < 0.95 * before, (before, after)

    png = tmp_path / "rec.png"
    assert inspect_main(["--results", str(root / "results.nc"), "--n", "2", "--out", str(png)]) == 0
    assert png.stat().st_size > 1000
