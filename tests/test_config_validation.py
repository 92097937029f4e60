"""Values a config file may not hold, refused at load (before any work), naming the file and the
key; and a milestone that can never take effect, loaded with a warning naming both (only for the
stage kinds the grid runs, once for a config with --set)."""

from __future__ import annotations

import warnings

import pytest

from _runner import REPO, fault_tool
from diminish.bench import cli as bench_cli
from diminish.config import ConfigError, load
from diminish.overrides import apply_overrides, load_with_overrides
from diminish.runner.plan import build_plan

fi = fault_tool()

# (case, (old, new) text replacement in the tiny grid's config, fragments of the error)
CASES = [
    ("fractional seed", ("seeds = [0]", "seeds = [1, 1.5]"), ["'seeds' must be a list of int", "1.5 is float"]),
    ("fractional fine-tuning size", ("sizes = [8, 16]", "sizes = [8, 16.5]"),
     ["'finetune.sizes' must be a list of int", "16.5 is float"]),
    ("fractional pre-training size", ("sizes = [0, 16]", "sizes = [0, 16.0]"),
     ["'pretrain.sizes' must be a list of int"]),
    ("number as a condition", ("[intermediate]\n", "[intermediate]\nconditions = [0, 1]\n"),
     ["'intermediate.conditions' must be a list of bool"]),
    ("fractional milestone", ("milestones = [1]\nbatch_size = 8\neval", "milestones = [1.5]\nbatch_size = 8\neval"),
     ["'finetune.milestones' must be a list of int"]),
    ("infinite lr", ("lr = 2e-3", "lr = inf"), ["'finetune.lr' must be a finite number, got inf"]),
    ("NaN lr", ("lr = 2e-3", "lr = nan"), ["'finetune.lr' must be a finite number, got nan"]),
    ("zero lr", ("lr = 2e-3", "lr = 0"), ["[finetune] lr must be finite and positive, got 0.0"]),
    ("negative weight decay", ("weight_decay = 0.05", "weight_decay = -0.05"),
     ["[pretrain] weight_decay must be finite and >= 0, got -0.05"]),
    ("NaN weight decay", ("weight_decay = 0.05", "weight_decay = nan"),
     ["'pretrain.weight_decay' must be a finite number"]),
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


# -- late milestones: only for the stage kinds the grid runs -----------------------------------
def _tiny(tmp_path, name: str, *edits: tuple[str, str]):
    path = tmp_path / name
    text = fi.write_config(path, tmp_path / "data").read_text()
    for old, new in edits:
        assert old in text, old
        text = text.replace(old, new, 1)
    path.write_text(text)
    return path


OFF_INTERMEDIATE = [("[intermediate]\n", "[intermediate]\nconditions = [false]\n"),
                    ("milestones = [1]\nbatch_size = 12", "milestones = [1, 5]\nbatch_size = 12")]


def test_a_late_milestone_of_a_stage_kind_the_grid_never_runs_draws_no_warning(tmp_path):
    no_inter = _tiny(tmp_path, "no-inter.toml", *OFF_INTERMEDIATE)
    no_pre = _tiny(tmp_path, "no-pre.toml", ("sizes = [0, 16]", "sizes = [0]"),
                   ("milestones = [1]\nbatch_size = 8\n\n[intermediate]",
                    "milestones = [9]\nbatch_size = 8\n\n[intermediate]"))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # any warning fails the test
        assert load(no_inter).intermediate.milestones == (1, 5)
        assert load(no_pre).pretrain.milestones == (9,)
        load(REPO / "experiments" / "pretrain-real.toml")  # its unused [intermediate] keeps A1's schedule
    # the same sections, run after all (--set): warned about, naming the effective config
    with pytest.warns(UserWarning, match=r"with --set intermediate.conditions=\[false,true\]: "
                                         r"'intermediate.milestones' \[5\] at or after the last epoch"):
        apply_overrides(load(no_inter), ["intermediate.conditions=[false,true]"], str(no_inter))


def test_a_late_milestone_is_warned_about_once_with_set(tmp_path):
    """A --set run warns about the config it runs, not a second time about the file it started from."""
    late = _tiny(tmp_path, "late.toml", ("milestones = [1]\nbatch_size = 12", "milestones = [1, 5]\nbatch_size = 12"))
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        load_with_overrides(late, ["finetune.lr=1e-3"])
    assert [str(w.message).split(": '")[0] for w in seen] == [f"{late} with --set finetune.lr=1e-3"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        load_with_overrides(late, ["intermediate.milestones=[1]"])  # the --set fixes it: nothing to say


@pytest.mark.parametrize("edits", [(), (("sizes = [0, 16]", "sizes = [0]"),), OFF_INTERMEDIATE[:1],
                                   (("[intermediate]\n", "[intermediate]\nconditions = [true]\n"),)])
def test_trained_kinds_are_the_kinds_the_plan_builds(tmp_path, edits):
    cfg = load(_tiny(tmp_path, "grid.toml", *edits))
    assert set(cfg.trained_kinds) == {s.kind for s in build_plan(cfg).stages()} - {"evaluate"}


def test_trained_kinds_of_the_shipped_configs():
    for path in sorted((REPO / "experiments").glob("*.toml")):
        cfg = load(path, warn=False)
        assert set(cfg.trained_kinds) == {s.kind for s in build_plan(cfg).stages()} - {"evaluate"}, path


def test_the_benchmark_warns_about_a_late_milestone_once_with_set(tmp_path):
    """bench --set: one warning, about the config it times (it used to warn for the file, then again)."""
    late = _tiny(tmp_path, "late.toml", ("milestones = [1]\nbatch_size = 12", "milestones = [1, 5]\nbatch_size = 12"))
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        bench_cli.parse_args(["--config", str(late), "--set", "finetune.lr=1e-3"])
    assert [str(w.message).split(": '")[0] for w in seen] == [f"{late} with --set finetune.lr=1e-3"]
