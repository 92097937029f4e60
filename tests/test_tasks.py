"""The stage kinds' tasks (diminish.core.tasks) are the one definition the runner, the benchmark and
``python -m diminish.evaluate`` use; the precision switch is one vocabulary."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from accelerate import Accelerator

from _runner import make_data, write_config
from diminish import config, evaluate
from diminish.bench import measure, options
from diminish.config import ExperimentConfig, RuntimeConfig, SimMIMConfig
from diminish.core import fastpath, tasks
from diminish.core.model import Classifier, Segmenter, ViNy, ViNyConfig
from diminish.core.simmim import SimMIM
from diminish.runner import stages
from diminish.runner.context import Context, Datasets
from diminish.runner.plan import build_plan
from diminish.runner.store import Store
from diminish.seeds import derive_seed

TINY = ViNyConfig(image_size=32, patch_size=8, dim=16, depth=1, heads=2, dim_head=8, mlp_dim=32)
CFG = ExperimentConfig(name="tiny", model=TINY, simmim=SimMIMConfig(mask_patch_size=8))


@pytest.mark.parametrize("word", ["no", "bf16", "fp16"])
def test_each_precision_word_means_itself_and_auto_is_resolved_per_device(word):
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert fastpath.resolve_precision(word, cpu) == word
    assert fastpath.resolve_precision("auto", cpu) == "no"
    want = {"no": None, "bf16": torch.bfloat16, "fp16": torch.float16}[word]
    assert fastpath.autocast_dtype(cuda, word) == want
    # on a CPU fp16 trains in fp32 under Accelerate, so it autocasts to nothing here either
    assert fastpath.autocast_dtype(cpu, word) == (None if word == "fp16" else want)
    with fastpath.autocast(cpu, word):
        assert torch.is_autocast_enabled("cpu") == (word == "bf16")


def test_an_unknown_precision_word_is_refused_naming_the_flag():
    cpu = torch.device("cpu")
    with pytest.raises(ValueError, match=r"--mixed-precision must be one of auto, no, bf16, fp16; got 'fp32'"):
        fastpath.resolve_precision("fp32", cpu)
    with pytest.raises(ValueError, match="--dtype"):
        fastpath.resolve_precision("half", cpu, flag="--dtype")
    with pytest.raises(SystemExit):  # the command lines refuse it before any work
        evaluate.main(["x.pt", "--pets-root", ".", "--mixed-precision", "fp32"])


def test_the_runner_stage_keeps_the_seeded_construction_order():
    """Backbone from the seed's "init" stream, then the head from "<kind>-head": part of every result."""
    for task, head in ((tasks.SIMMIM, lambda b: SimMIM(b, CFG.simmim)), (tasks.CLASSIFY, lambda b: Classifier(b, 6)),
                       (tasks.SEGMENT, Segmenter)):
        torch.manual_seed(derive_seed(3, "init"))
        body = ViNy(TINY)
        torch.manual_seed(derive_seed(3, f"{task.kind}-head"))
        want = head(body).state_dict()
        got = task.build(CFG, 3).state_dict()
        assert list(got) == list(want) and all(torch.equal(got[k], want[k]) for k in want), task.name


def test_every_task_writes_a_model_file_that_reads_back_whole(tmp_path):
    stage = next(iter(build_plan(CFG).finetune.values()))  # any stage gives label, key and spec
    for task in (tasks.SIMMIM, tasks.CLASSIFY, tasks.SEGMENT):
        model = task.build(CFG, 0)
        path = tmp_path / f"{task.name}.pt"
        torch.save(task.blob(model, CFG, stage), path)
        back, blob = tasks.load_model(path)
        assert blob["task"] == task.name and type(back) is type(model)
        assert all(torch.equal(v, back.state_dict()[k]) for k, v in model.state_dict().items())
        assert stages.load_model is tasks.load_model  # the runner reads them with the same function


@pytest.fixture(scope="module")
def tiny_pets(tmp_path_factory):
    base = tmp_path_factory.mktemp("tasks")
    data = make_data(base)
    cfg = config.load(write_config(base / "tiny.toml", data))
    return base, data, cfg


def test_runner_bench_and_evaluate_take_loss_and_prediction_from_the_same_task(tiny_pets, tmp_path, monkeypatch):
    """Patching the segmentation task object changes what all three compute: none has its own copy.
    And evaluate.py's scores of a saved model are the runner's segment_scores on the same images."""
    base, data, cfg = tiny_pets
    calls = {"loss": set(), "predict": set()}
    who = ["runner"]

    def spy(name):
        real = getattr(tasks.SEGMENT, name)

        def wrapped(model, batch):
            calls[name].add(who[0])
            return real(model, batch)

        return wrapped

    for name in calls:  # on the instance only; undone afterwards
        monkeypatch.setitem(vars(tasks.SEGMENT), name, spy(name))

    rt, acc = RuntimeConfig(cache_dir=base / "cache", progress=False), Accelerator(cpu=True)
    ctx = Context(cfg, rt, Store(tmp_path / "o"), acc, Datasets(cfg, rt, acc))
    plan = build_plan(cfg)
    stage = plan.finetune[0, False, 8, 0]
    _, model = stages.run_finetune(ctx, plan, stage)
    pets = ctx.data.on_device("pets")
    cm, scores = stages.segment_scores(ctx, model, pets, np.arange(len(pets)), 8)

    who[0] = "bench"
    opts = options.Options.quick(device="cpu", config=CFG, stages=("finetune",), reference=False, data=False,
                               matmul_size=64, target_seconds=0.01, tune_allocator=False)
    assert measure.run(opts, log=lambda m: None)["stages"]["finetune"]["eval_images_per_s"] > 0

    who[0] = "evaluate"
    path = tmp_path / "model.pt"
    torch.save(tasks.SEGMENT.blob(model, cfg, stage), path)
    r = evaluate.score(path, data / "oxford-iiit-pet", base / "cache", progress=False, device="cpu")

    assert calls == {"loss": {"runner", "bench"}, "predict": {"runner", "bench", "evaluate"}}
    assert r["images"] == len(pets) == int(cm.sum()) // (cfg.model.image_size ** 2)
    assert r["accuracy"] == 100 * scores["accuracy"] and r["miou"] == 100 * scores["miou"]
    assert list(r["iou"].values()) == [100 * v for v in scores["iou"]]
