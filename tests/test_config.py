from pathlib import Path

import pytest

from diminish import config
from diminish.config import ConfigError
from diminish.runner.plan import build_plan


def test_defaults_are_the_papers_appendix_a1():
    cfg = config.loads('name = "x"')
    assert (cfg.pretrain.epochs, cfg.pretrain.lr, cfg.pretrain.weight_decay) == (100, 1e-4, 0.05)
    assert (cfg.pretrain.gamma, cfg.pretrain.milestones) == (0.1, (50, 85))
    assert (cfg.intermediate.epochs, cfg.intermediate.lr, cfg.intermediate.milestones) == (200, 8e-4, (180, 190))
    assert (cfg.finetune.epochs, cfg.finetune.lr, cfg.finetune.weight_decay) == (100, 2e-3, 1e-4)
    assert (cfg.finetune.gamma, cfg.finetune.milestones) == (0.5, (70, 90, 95))
    assert cfg.finetune.sizes == (250, 500, 1000, 2000, 4000, 6000)
    assert cfg.pretrain.sizes == (0, 45_000, 100_000, 200_000)


def test_partial_tables_merge_with_defaults_and_hash_changes():
    a = config.loads('name = "x"\n[finetune]\nepochs = 3\n')
    assert a.finetune.epochs == 3 and a.finetune.lr == 2e-3
    b = config.loads('name = "x"\n[finetune]\nepochs = 4\n')
    assert a.hash != b.hash
    pa, pb = build_plan(a), build_plan(b)  # a fine-tuning change keeps every pre-training key
    assert [s.key for s in pa.pretrain.values()] == [s.key for s in pb.pretrain.values()]
    assert {s.key for s in pa.finetune.values()}.isdisjoint(s.key for s in pb.finetune.values())


@pytest.mark.parametrize(
    "text, match",
    [
        ('name = "x"\nseedz = [1]', "did you mean 'seeds'"),
        ('name = "x"\n[finetune]\nepoch = 3', "finetune.epoch.*did you mean 'epochs'"),
        ('name = "x"\n[finetune]\nsizes = [-5]', "finetune.sizes must be positive"),
        ('name = "x"\n[finetune]\nepochs = "ten"', "finetune.epochs' must be int"),
        ('seeds = [0]', "missing required key 'name'"),
        ('name = "x"\nseeds = [0, 0]', "distinct"),
        ('name = = 1', "not valid TOML"),
    ],
)
def test_bad_configs_name_the_key(text, match):
    with pytest.raises(ConfigError, match=match):
        config.loads(text, "bad.toml")


REPO = Path(__file__).resolve().parents[1]
SHIPPED = sorted(p for d in ("experiments", "benchmarks") for p in (REPO / d).glob("*.toml"))


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_shipped_config_loads_and_plans(path):
    from diminish.runner.plan import build_plan

    cfg = config.load(path)
    plan = build_plan(cfg)
    assert cfg.name and plan.evaluate, path
