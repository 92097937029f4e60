"""Values a config file may not hold, refused at load (before any work), naming the file and the
key; and a milestone that can never take effect, loaded with a warning naming both."""

from __future__ import annotations

import pytest

from _runner import fault_tool
from diminish.config import ConfigError, load

fi = fault_tool()

# (case, (old, new) text replacement in the tiny grid's config, fragments of the error)
CASES = [
    ("fractional seed", ("seeds = [0]", "seeds = [1, 1.5]"), ["'seeds' must be a list of int", "1.5 is float"]),
    ("fractional fine-tuning size", ("sizes = [8, 16]", "sizes = [8, 16.5]"),
     ["'finetune.sizes' must be a list of int", "16.5 is float"]),
    ("fractional pre-training size", ("sizes = [0, 16]", "sizes = [0, 16.0]"), ["'pretrain.sizes' must be a list of int"]),
    ("number as a condition", ("[intermediate]\n", "[intermediate]\nconditions = [0, 1]\n"),
     ["'intermediate.conditions' must be a list of bool"]),
    ("fractional milestone", ("milestones = [1]\nbatch_size = 8\neval", "milestones = [1.5]\nbatch_size = 8\neval"),
     ["'finetune.milestones' must be a list of int"]),
    ("infinite lr", ("lr = 2e-3", "lr = inf"), ["'finetune.lr' must be a finite number, got inf"]),
    ("NaN lr", ("lr = 2e-3", "lr = nan"), ["'finetune.lr' must be a finite number, got nan"]),
    ("zero lr", ("lr = 2e-3", "lr = 0"), ["[finetune] lr must be finite and positive, got 0.0"]),
    ("negative weight decay", ("weight_decay = 0.05", "weight_decay = -0.05"),
     ["[pretrain] weight_decay must be finite and >= 0, got -0.05"]),
    ("NaN weight decay", ("weight_decay = 0.05", "weight_decay = nan"), ["'pretrain.weight_decay' must be a finite number"]),
    ("gamma 0", ("gamma = 0.5", "gamma = 0"), ["[finetune] gamma", "must be in (0, 1], got 0.0"]),
    ("gamma above 1", ("gamma = 0.5", "gamma = 2"), ["[finetune] gamma", "must be in (0, 1], got 2.0"]),
    ("no epochs", ("epochs = 2\nlr = 2e-3", "epochs = 0\nlr = 2e-3"), ["[finetune] epochs must be >= 1, got 0"]),
    ("zero batch size", ("batch_size = 12", "batch_size = 0"), ["[intermediate] batch_size must be positive, got 0"]),
    ("zero evaluation batch size", ("eval_batch_size = 8", "eval_batch_size = 0"),
     ["[finetune] eval_batch_size must be positive, got 0"]),
    ("negative evaluation batch size", ("eval_batch_size = 8", "eval_batch_size = -1"),
     ["[finetune] eval_batch_size must be positive, got -1"]),
]


@pytest.mark.parametrize("case,edit,fragments", CASES, ids=[c[0] for c in CASES])
def test_bad_values_are_refused_naming_file_and_key(case, edit, fragments, tmp_path):
    cfg = tmp_path / "bad.toml"
    text = fi.write_config(cfg, tmp_path / "data").read_text()
    assert edit[0] in text
    cfg.write_text(text.replace(edit[0], edit[1], 1))
    with pytest.raises(ConfigError) as e:
        load(cfg)
    assert str(e.value).startswith(f"{cfg}: "), str(e.value)
    for f in fragments:
        assert f in str(e.value), (f, str(e.value))


def test_a_milestone_after_the_last_epoch_loads_with_a_warning(tmp_path):
    cfg = tmp_path / "late.toml"
    text = fi.write_config(cfg, tmp_path / "data").read_text()
    cfg.write_text(text.replace("milestones = [1]\nbatch_size = 12", "milestones = [1, 5]\nbatch_size = 12"))
    with pytest.warns(UserWarning, match=r"late.toml: 'intermediate.milestones' \[5\] at or after the last epoch"):
        assert load(cfg).intermediate.milestones == (1, 5)
