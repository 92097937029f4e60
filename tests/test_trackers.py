"""Experiment trackers: unknown names refused at load; TensorBoard gets losses and the scores."""

from __future__ import annotations

import pytest

from _runner import make_data, write_config
from diminish.config import ConfigError, loads
from diminish.runner import cli as run


def test_unknown_tracker_is_refused_at_load():
    match = r"x.toml: .*trackers: unknown tracker 'tensorbord'; did you mean 'tensorboard'"
    with pytest.raises(ConfigError, match=match):
        loads('name = "x"\ntrackers = ["tensorbord"]\n', "x.toml")
    assert loads('name = "x"\ntrackers = ["tensorboard", "wandb"]\n').trackers == ("tensorboard", "wandb")


def test_tensorboard_holds_the_scores_of_each_evaluation(tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    cfg = write_config(tmp_path / "tiny.toml", make_data(tmp_path))
    small = ["--set", "pretrain.sizes=[0]", "--set", "intermediate.conditions=[true]",
             "--set", "finetune.sizes=[8, 16]", "--set", 'trackers=["tensorboard"]', "--set", "name=tracked"]
    assert run.main(["--all", "--config", str(cfg), "--out", str(tmp_path / "out"), "--cache-dir",
                     str(tmp_path / "cache"), "--no-progress", *small]) == 0
    runs = {}
    for folder in (tmp_path / "out" / "tracked" / "trackers").iterdir():
        acc = EventAccumulator(str(folder))
        acc.Reload()
        runs[folder.name] = {t: [e.value for e in acc.Scalars(t)] for t in acc.Tags()["scalars"]}
    finetune = [v for k, v in runs.items() if k.startswith("finetune-")]
    inter = [v for k, v in runs.items() if k.startswith("intermediate-")]
    assert len(finetune) == 2 and len(inter) == 1
    for tags in finetune:
        assert len(tags["loss"]) == 2 and len(tags["test/miou"]) == 1  # two epochs (no other stage's), one evaluation
        assert 0 <= tags["test/miou"][0] <= 100 and {"test/accuracy", "test/iou_pet", "test/iou_border"} <= set(tags)
    assert len(inter[0]["loss"]) == 2 and 0 <= inter[0]["test/accuracy"][0] <= 100  # the tiny data has seg_test
    assert "test/miou" not in inter[0]  # each run holds only its own stage's values
