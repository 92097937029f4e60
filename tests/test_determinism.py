"""Determinism and numerical guards: the same config and seed give identical numbers on CPU run to
run; a non-finite loss stops the stage naming stage, epoch and step, and a rerun resumes from the
last good checkpoint; gradient clipping bounds the update; --deterministic on a GPU (when present)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from _runner import fault_tool

REPO = Path(__file__).resolve().parents[1]


fi = fault_tool()
RECORD_KEYS = ("history", "final_loss", "accuracy", "miou", "iou", "confusion", "cache_hash")


def run(config, out, cache, log, *extra, env=None, fault=None):
    p = fi.start(config, out, cache, log, *extra, env=env, fault=fault)
    p.wait(timeout=300)
    return p.returncode, log.read_text()


def records(root: Path) -> dict:
    return {(d.parent.name, d.name): json.loads((d / "record.json").read_text())
            for d in (root / "stages").glob("*/*") if (d / "record.json").is_file()}


@pytest.mark.slow
def test_same_config_and_seed_give_identical_numbers_run_to_run(grid, tmp_path):
    """A second, independent run: its own cache (every image decoded again), its own output folder,
    and --deterministic (which must not change CPU results)."""
    work, config, ref = grid
    code, log = run(config, tmp_path / "out", tmp_path / "cache", tmp_path / "r.log", "--deterministic")
    assert code == 0, log
    root = tmp_path / "out" / fi.NAME
    assert fi.differences(root, ref) == []
    a, b = records(ref), records(root)
    assert a.keys() == b.keys() and len(a) == 1 + 2 + 8 + 8
    for key in a:  # per-epoch losses, confusion matrices and cache hashes, exactly
        for k in RECORD_KEYS:
            assert a[key].get(k) == b[key].get(k), (key, k)
    assert any(len(r.get("history") or []) == 2 for r in a.values())


@pytest.mark.slow
def test_non_finite_loss_stops_the_stage_and_a_rerun_resumes_from_the_last_good_checkpoint(grid, tmp_path, capsys):
    from diminish.runner import cli as runner

    work, config, ref = grid
    out, cache = tmp_path / "out", work / "reference-cache"
    root = out / fi.NAME
    code, log = run(config, out, cache, tmp_path / "nan.log", fault="nan@pretrain:1:0")
    assert code == 1, log
    assert "error: non-finite loss (nan) in pretrain P=16 seed=0: epoch 1, step 0" in log
    assert "Traceback" not in log
    (stage,) = root.glob("stages/pretrain/*")
    assert "non-finite loss" in json.loads((stage / "failed.json").read_text())["error"]
    assert not (stage / "done").exists() and not (stage / "model.pt").exists()
    ck = torch.load(stage / "checkpoint.pt", map_location="cpu", weights_only=True)
    assert (ck["state"]["epoch"], ck["state"]["step"]) == (1, 0)  # the end of epoch 0, saved before the NaN
    assert all(torch.isfinite(v).all() for v in ck["model"].values() if v.is_floating_point())
    assert runner.main(["--status", "--config", str(config), "--out", str(out)]) == 0
    status = capsys.readouterr().out
    assert "failed: pretrain P=16 seed=0: NonFiniteLossError: non-finite loss (nan)" in status
    # the cause gone, the same command resumes at epoch 1 and ends as if nothing had happened
    code, log = run(config, out, cache, tmp_path / "again.log")
    assert code == 0, log
    resumed = [e for e in fi.events(root) if e["event"] == "resume"]
    assert [(e["kind"], e["epoch"], e["step"]) for e in resumed] == [("pretrain", 1, 0)]
    assert not (stage / "failed.json").exists()
    assert fi.differences(root, ref) == [] and fi.duplicate_stages(root) == [] and fi.stray_files(out) == []


class RecordingSGD(torch.optim.SGD):
    """SGD that records the gradient norm it is asked to apply."""

    norms: list

    def step(self, closure=None):
        g = [p.grad for group in self.param_groups for p in group["params"] if p.grad is not None]
        self.norms.append(float(torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(x) for x in g]))))
        return super().step(closure)


def _train(grad_clip: float):
    from accelerate import Accelerator

    from diminish.core.loop import train_one_epoch

    torch.manual_seed(0)
    model = torch.nn.Linear(4, 3)
    opt = RecordingSGD(model.parameters(), lr=0.5)
    opt.norms = []
    g = torch.Generator().manual_seed(1)
    batches = [(100 * torch.randn(8, 4, generator=g), torch.randint(0, 3, (8,), generator=g)) for _ in range(5)]

    def loss_fn(m, b):
        return torch.nn.functional.cross_entropy(m(b[0]), b[1]), len(b[1])

    train_one_epoch(model, opt, loss_fn, batches, accelerator=Accelerator(cpu=True), kind="finetune", epoch=0,
                    where="test", grad_clip=grad_clip)
    return opt.norms, model.weight.detach().clone()


def test_gradient_clipping_bounds_every_update_and_is_a_config_key():
    free, w_free = _train(0.0)
    clipped, w_clipped = _train(0.5)
    assert max(free) > 0.5  # the unclipped run has large gradients ...
    assert max(clipped) <= 0.5 + 1e-5  # ... the clipped one never applies more than grad_clip
    assert not torch.equal(w_free, w_clipped)
    from diminish import config
    from diminish.runner.plan import build_plan

    base = 'name = "x"\nseeds = [0]\n'
    a = build_plan(config.loads(base))
    b = build_plan(config.loads(base + "[finetune]\ngrad_clip = 1.0\n"))
    assert b.cfg.finetune.grad_clip == 1.0 and a.cfg.finetune.grad_clip == 0.0
    # a clipped fine-tuning is a different stage (never confused with an unclipped one's results)
    assert {s.key for s in a.stages("finetune")}.isdisjoint({s.key for s in b.stages("finetune")})
    assert {s.key for s in a.stages("pretrain")} == {s.key for s in b.stages("pretrain")}


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_deterministic_switch_gives_identical_gpu_runs(grid, tmp_path):
    work, config, _ = grid
    roots = []
    for i in range(2):
        out = tmp_path / f"gpu{i}"
        code, log = run(config, out, work / "reference-cache", tmp_path / f"gpu{i}.log", "--deterministic",
                        env={"CUDA_VISIBLE_DEVICES": "0"})
        assert code == 0, log
        roots.append(out / fi.NAME)
    assert fi.differences(roots[0], roots[1]) == []
    a, b = records(roots[0]), records(roots[1])
    assert all(a[k].get("history") == b[k].get("history") for k in a)
    assert np.isfinite([r["final_loss"] for r in a.values() if r.get("final_loss") is not None]).all()
