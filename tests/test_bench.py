"""The benchmark's machinery: FLOP count, workload, stacked models, a tiny end-to-end run.

No timing is asserted anywhere (speed lives in benchmarks/README.md).
"""

import json
import math
import statistics

import pytest
import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode

from _runner import REPO
from diminish.bench import flops, grid, many, measure, options, table
from diminish.config import ExperimentConfig
from diminish.core import fastpath
from diminish.core.model import Classifier, Segmenter, ViNy, ViNyConfig
from diminish.core.simmim import SimMIM, SimMIMConfig

# vmap over the CPU attention kernel loops over the models (a torch performance note, not an error)
pytestmark = pytest.mark.filterwarnings("ignore:There is a performance drop:UserWarning")

TINY = ViNyConfig(image_size=32, patch_size=8, dim=16, depth=1, heads=2, dim_head=8, mlp_dim=32)


def test_viny_flops_match_the_documented_numbers():
    f = flops.flops_per_image(ViNyConfig(), "segmentation", num_classes=3)
    assert f["block"] == 59_770_880
    assert f["forward"] == 742_416_384
    assert f["train"] == 2_227_249_152 == 3 * f["forward"]
    # without the CLS token the sequence is 64 long, so every block costs less
    g = flops.flops_per_image(ViNyConfig(), "simmim", cls_token=False)
    assert g["block"] < f["block"] and g["breakdown"]["head"] == f["breakdown"]["head"]


@pytest.mark.parametrize("task", ["segmentation", "classification", "simmim"])
@pytest.mark.parametrize("cfg", [ViNyConfig(depth=2), TINY])
def test_flop_formula_equals_torch_flop_counter(task, cfg):
    # the math attention backend lowers SDPA to matmuls, so torch counts every matmul we do
    torch.manual_seed(0)
    model = {"segmentation": lambda: Segmenter(ViNy(cfg)),
             "classification": lambda: Classifier(ViNy(cfg), 6),
             "simmim": lambda: SimMIM(ViNy(cfg), SimMIMConfig(mask_patch_size=cfg.patch_size))}[task]()
    x = torch.randn(2, 3, cfg.image_size, cfg.image_size)
    expected = flops.flops_per_image(cfg, task, num_classes=3 if task == "segmentation" else 6)
    with sdpa_kernel(SDPBackend.MATH):
        with FlopCounterMode(display=False) as fwd:
            model(x)
        with FlopCounterMode(display=False) as train:
            model(x).float().sum().backward()
    if task != "simmim":  # SimMIM's forward is the loss: same matmuls
        assert fwd.get_total_flops() == 2 * expected["forward"]
    assert train.get_total_flops() == 2 * expected["train"]


def test_paper_grid_workload():
    w = grid.grid_workload(ExperimentConfig(name="paper"))
    assert w["pretrain"]["image_steps"] == (45_000 + 100_000 + 200_000) * 100 * 3
    assert w["intermediate"]["image_steps"] == 14_034 * 200 * 4 * 3
    assert w["finetune"]["image_steps"] == sum((250, 500, 1000, 2000, 4000, 6000)) * 100 * 8 * 3
    assert w["finetune"]["runs"] == 6 * 4 * 2 * 3 and w["finetune"]["eval_images"] == 1000 * 144
    assert w["pretrain"]["runs"] == 9 and w["intermediate"]["runs"] == 12


@pytest.mark.parametrize("name", ["paper", "demo", "mini-real"])
def test_the_dry_run_and_the_benchmark_count_the_same_grid(name, tmp_path, capsys, monkeypatch):
    """--dry-run's image-steps per stage kind (nothing finished yet) are the benchmark's workload."""
    from diminish.config import load
    from diminish.runner import cli as run

    config = str(REPO / "experiments" / f"{name}.toml")
    monkeypatch.chdir(tmp_path)  # no data here: both assume the published Intel size
    assert run.main(["--dry-run", "--config", config, "--out", str(tmp_path / "out")]) == 0
    out = capsys.readouterr().out
    rows = {line.split()[0]: int(line.split()[4].replace(",", "")) for line in out.splitlines() if line[:1].isalpha()
            and line.split()[0] in ("pretrain", "intermediate", "finetune", "evaluate")}
    w = grid.grid_workload(load(config))
    assert rows == {"pretrain": w["pretrain"]["image_steps"], "intermediate": w["intermediate"]["image_steps"],
                    "finetune": w["finetune"]["image_steps"], "evaluate": w["finetune"]["eval_images"]}
    total = int(out.split("training image-steps to run: ")[1].split()[0].replace(",", ""))
    assert total == grid.project_grid(load(config), {})["total_image_steps"] > 0


def test_stacked_models_are_independent_runs():
    torch.manual_seed(0)
    models = [Segmenter(ViNy(TINY)) for _ in range(3)]
    clones = [Segmenter(ViNy(TINY)) for _ in range(3)]
    for c, m in zip(clones, models):
        c.load_state_dict(m.state_dict())
    stacked = fastpath.StackedModels(models)
    x = torch.randn(3, 4, 3, 32, 32)
    y = torch.randint(0, 3, (3, 4, 32, 32))
    out = stacked(x)
    assert out.shape == (3, 4, 3, 32, 32)
    for k in range(3):
        torch.testing.assert_close(out[k], clones[k](x[k]), rtol=1e-5, atol=1e-5)
    # gradients: model k's own mean loss only (summed over k, so nothing is rescaled)
    loss = F.cross_entropy(out.flatten(0, 1), y.flatten(0, 1), reduction="none").view(3, -1).mean(1).sum()
    loss.backward()
    for k in range(3):
        F.cross_entropy(clones[k](x[k]), y[k]).backward()
    names = stacked._names
    for name, p in zip(names, stacked.params):
        for k in range(3):
            want = dict(clones[k].named_parameters())[name].grad
            torch.testing.assert_close(p.grad[k], want, rtol=1e-4, atol=1e-7)
    # one AdamW step on the stack == one step of each model (the update is element-wise)
    opt = fastpath.make_optimizer(stacked.parameters(), 1e-2, 0.05, "cpu")
    opt.step()
    for k in range(3):
        fastpath.make_optimizer(clones[k].parameters(), 1e-2, 0.05, "cpu").step()
        got = stacked.unstack(k)
        assert set(got) == set(clones[k].state_dict())
        for name, value in clones[k].state_dict().items():
            torch.testing.assert_close(got[name], value, rtol=0, atol=1e-4)


def test_fastpath_choices_on_cpu():
    dev = torch.device("cpu")
    m = torch.nn.Linear(2, 2)
    assert fastpath.maybe_compile(m, False) is m
    opt = fastpath.make_optimizer(m.parameters(), 1e-3, 0.0, dev)
    assert isinstance(opt, torch.optim.AdamW) and not opt.defaults.get("fused")


def test_quick_run_end_to_end(tmp_path):
    cfg = ExperimentConfig(name="tiny", model=TINY, simmim=SimMIMConfig(mask_patch_size=8))
    # tune_allocator=False: the glibc setting is process-wide and would outlive this test
    opts = options.Options.quick(device="cpu", config=cfg, many=2, many_processes=False, data_images=16,
                               matmul_size=64, target_seconds=0.01, tune_allocator=False)
    res = measure.run(opts, log=lambda m: None)
    text = json.dumps(res, default=str)  # JSON-ready
    assert set(res["stages"]) == set(options.STAGES)
    for s, st in res["stages"].items():
        assert len(st["train_rates"]) == opts.repeats and all(r > 0 for r in st["train_rates"])
        assert st["eval_images_per_s"] > 0 and st["peak_memory_mib"] is not None
        mfu = [t * st["train_flops_per_image"] / m for t, m in zip(st["train_rates"], res["matmul"]["rates"])]
        assert st["mfu"] == pytest.approx(statistics.median(mfu))
        assert st["train_flops_per_image"] == flops.flops_per_image(
            TINY, options.TASKS[s], num_classes=6 if s == "intermediate" else 3)["train"]
    # the projection is workload / measured rate, stage by stage
    pr = res["projection"]
    for s, w in pr["workload"].items():
        st = res["stages"][s]
        want = w["image_steps"] / st["train_images_per_s"] + w["eval_images"] / st["eval_images_per_s"]
        assert pr["seconds"][s] == pytest.approx(want)
    assert pr["total_hours"] == pytest.approx(sum(pr["seconds"].values()) / 3600)
    assert math.isfinite(res["many"]["stacked"]["speedup_vs_single"])
    assert "processes" not in res["many"]
    rows = res["data"]["rows"]
    assert set(rows) == {f"data/{s}/memmap" for s in options.STAGES}
    assert all(r["images_per_s"] > 0 and r["ratio_to_train"] > 0 for r in rows.values())
    ref = res["reference"]
    if "skipped" in ref:
        assert "vit-pytorch" in ref["skipped"]
    else:
        assert ref["same_settings"]["ratio"] > 0
    printed = table.format_table(res)
    assert all(s in printed for s in options.STAGES) and "paper grid" in printed
    assert json.loads(text)["settings"]["model"]["depth"] == 1


def test_worker_processes_run_concurrently():
    cfg = ExperimentConfig(name="tiny", model=TINY)
    opts = options.Options.quick(device="cpu", config=cfg, many_seconds=0.2)
    out = many._run_workers(2, 1, opts, cfg)
    assert out["processes"] == 2 and len(out["rates"]) == 2
    assert all(r > 0 for r in out["rates"]) and out["images_per_s"] == pytest.approx(sum(out["rates"]))


def test_shared_cpu_row_times_alone_and_beside_spinners_in_each_round(monkeypatch):
    from diminish.bench import shared

    assert shared.fair_share(2, 1, 2) == pytest.approx(2 / 3) and shared.fair_share(1, 1, 2) == 1.0
    assert shared.fair_share(2, 2, 2) == pytest.approx(0.5)
    started = []
    monkeypatch.setattr(shared, "start_neighbours",
                        lambda k, _start=shared.start_neighbours: started.extend(_start(k)) or started[-k:])
    cfg = ExperimentConfig(name="tiny", model=TINY, simmim=SimMIMConfig(mask_patch_size=8))
    opts = options.Options.quick(device="cpu", config=cfg, stages=("finetune",), reference=False, data=False,
                               eval=False, matmul_size=64, target_seconds=0.01, tune_allocator=False, neighbours=1)
    res = measure.run(opts, log=lambda m: None)
    sh = res["shared_cpu"]
    assert len(started) == opts.repeats and all(p.poll() is not None for p in started)  # one per round, all gone
    assert len(sh["alone_rates"]) == len(sh["shared_rates"]) == len(sh["ratio_rounds"]) == opts.repeats
    ratios = [b / a for a, b in zip(sh["alone_rates"], sh["shared_rates"])]
    assert sh["ratio"] == pytest.approx(statistics.median(ratios))
    assert sh["neighbours"] == 1 and "OpenMP wait" in table.format_table(res)
    assert len(res["stages"]["finetune"]["train_rates"]) == opts.repeats  # the main rounds are not mixed in
