"""A CI-sized version of experiments/mini-real.toml: the whole chain on the shared real subsets.

Same config file, shrunk (tiny model, capped caches, one epoch per stage) so it takes a minute or
two; skipped when ../shared/realdata is absent.
"""

from __future__ import annotations

import tomllib

import numpy as np
import pytest

from _runner import REPO
from diminish import config
from diminish.results import read_results
from diminish.runner import cli as run

REAL = REPO.parent / "shared" / "realdata"

pytestmark = [
    pytest.mark.realdata,
    pytest.mark.skipif(not REAL.is_dir(), reason="../shared/realdata is absent"),
]


def absolute_roots(d: dict) -> dict:
    """A parsed config whose data roots (relative to the repository) are made absolute."""
    for key in ("pets_root", "intel_root", "imagenet_root"):
        d["data"][key] = str((REPO / d["data"][key]).resolve())
    return d


def _shrink(text: str) -> str:
    """mini-real.toml with tiny sizes; keeps its roots (made absolute) and its stage settings."""
    d = absolute_roots(tomllib.loads(text))
    d["data"]["limit"] = 240
    d["name"] = "mini-real-ci"
    d["seeds"] = [0]
    d["model"].update(depth=1, dim=32, heads=2, dim_head=16, mlp_dim=64)
    d["pretrain"].update(sizes=[0, 64], epochs=1, milestones=[1])
    d["intermediate"].update(epochs=1, milestones=[1])
    d["finetune"].update(sizes=[25, 100], test_size=60, epochs=2, milestones=[1], eval_batch_size=60)
    return _dump(d)


def _dump(d: dict, prefix: str = "") -> str:
    def val(v):
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, str):
            return '"' + v.replace("\\", "\\\\").replace('"', '\\"').replace("\n", " ") + '"'
        if isinstance(v, list):
            return "[" + ", ".join(val(x) for x in v) + "]"
        return repr(v)

    flat = [f"{k} = {val(v)}" for k, v in d.items() if not isinstance(v, dict)]
    tables = [f"\n[{k}]\n" + _dump(v) for k, v in d.items() if isinstance(v, dict)]
    return "\n".join(flat) + "\n" + "".join(tables)


def test_mini_real_config_points_at_the_shared_subsets():
    cfg = config.load(REPO / "experiments" / "mini-real.toml")
    assert not cfg.synthetic
    for root in (cfg.data.pets_root, cfg.data.intel_root, cfg.data.imagenet_root):
        assert (REPO / root).is_dir(), root
    assert min(cfg.finetune.sizes) <= 25 and max(cfg.finetune.sizes) >= 300 and len(cfg.seeds) >= 2


def test_ci_sized_mini_real_study_fills_every_cell(tmp_path):
    cfg_path = tmp_path / "mini-real-ci.toml"
    cfg_path.write_text(_shrink((REPO / "experiments" / "mini-real.toml").read_text()))
    args = ["--config", str(cfg_path), "--out", str(tmp_path / "out"), "--cache-dir", str(tmp_path / "cache"),
            "--no-progress"]
    assert run.main(["--all", *args]) == 0
    ds = read_results(tmp_path / "out" / "mini-real-ci" / "results.nc")
    assert {d: ds.sizes[d] for d in ("pretrain", "intermediate", "finetune", "seed", "class")} == \
        {"pretrain": 2, "intermediate": 2, "finetune": 2, "seed": 1, "class": 3}
    for v in ("accuracy", "miou", "iou", "final_loss", "intermediate_accuracy"):
        assert np.isfinite(ds[v].values).all(), v
    assert ds.attrs["synthetic"] == 0 and "realdata" in ds.attrs["pets_root"]
    # real pets have all three tri-map classes in the test images
    ex = np.load(tmp_path / "out" / "mini-real-ci" / "examples.npz")
    assert set(np.unique(ex["truth"])) == {0, 1, 2}
