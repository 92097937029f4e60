"""The training state object, its checkpointer, the heartbeat callback of training.train and the
run options that --jobs workers receive on their command line."""

from __future__ import annotations

import functools
import json

import pytest
import torch
from accelerate import Accelerator

from diminish.config import StageConfig
from diminish.runner import cli as run
from diminish.runner.checkpoint import Checkpointer, TrainState
from diminish.runner.digests import file_digest
from diminish.runner.plan import Stage
from diminish.runner.schedule import RunOptions
from diminish.runner.store import Store
from diminish.runner.training import train

STAGE = Stage("finetune", "a1b2c3d4e5f60718", pretrain=0, seed=0, finetune=8)
SC = StageConfig(epochs=2, lr=0.1, weight_decay=0.0, gamma=0.5, milestones=(1,), batch_size=4)


def _state(seed: int) -> TrainState:
    torch.manual_seed(seed)
    model = torch.nn.Linear(3, 2)
    opt = torch.optim.AdamW(model.parameters(), lr=0.1)
    return TrainState(model, opt, torch.optim.lr_scheduler.MultiStepLR(opt, [1], 0.5))


def test_a_saved_train_state_loads_back_whole(tmp_path):
    a = _state(0)
    a.model(torch.ones(4, 3)).sum().backward()
    a.optimizer.step()
    a.scheduler.step()
    a.epoch, a.step, a.loss_sum, a.count, a.seconds, a.history = 1, 3, 2.5, 12, 7.0, [0.75]
    Checkpointer(tmp_path, STAGE).save(a)
    expected_draw = torch.rand(5)  # the RNG state saved is the one before this draw
    assert json.loads((tmp_path / "checkpoint.json").read_text()) == file_digest(tmp_path / "checkpoint.pt")

    b = _state(1)  # other weights, a fresh optimiser and schedule, other RNG state
    assert not torch.equal(b.model.weight, a.model.weight)
    assert Checkpointer(tmp_path, STAGE).load(b)
    assert torch.equal(b.model.weight, a.model.weight) and torch.equal(b.model.bias, a.model.bias)
    assert torch.equal(b.optimizer.state_dict()["state"][0]["exp_avg"], a.optimizer.state_dict()["state"][0]["exp_avg"])
    assert b.scheduler.last_epoch == 1 and b.optimizer.param_groups[0]["lr"] == pytest.approx(0.05)
    assert (b.epoch, b.step, b.loss_sum, b.count, b.seconds, b.history) == (1, 3, 2.5, 12, 7.0, [0.75])
    assert torch.equal(torch.rand(5), expected_draw)


def test_the_checkpointer_finds_nothing_or_refuses_another_stages_file(tmp_path):
    assert not Checkpointer(tmp_path, STAGE).load(_state(0))
    Checkpointer(tmp_path, STAGE, is_main=False).save(_state(0))
    assert not (tmp_path / "checkpoint.pt").exists()  # only the main process writes
    Checkpointer(tmp_path, STAGE).save(_state(0))
    other = Stage("finetune", "ffffffffffffffff", pretrain=0, seed=0, finetune=8)
    with pytest.raises(RuntimeError, match="belongs to stage a1b2c3d4e5f60718"):
        Checkpointer(tmp_path, other).load(_state(0))


def _train(store: Store, model, heartbeat):
    """training.train with its explicit arguments: no context object to fake."""
    return train(model, STAGE, SC, _loss, _batches, 8, accelerator=Accelerator(cpu=True),
                 checkpointer=Checkpointer(store.dir(STAGE), STAGE), log=functools.partial(store.log, STAGE),
                 heartbeat=heartbeat, progress=False)


def _batches(epoch: int) -> list:
    g = torch.Generator().manual_seed(epoch)
    return [{"x": torch.randn(4, 3, generator=g), "y": torch.randint(0, 2, (4,), generator=g)} for _ in range(2)]


def _loss(m, b):
    return torch.nn.functional.cross_entropy(m(b["x"]), b["y"]), 4


def test_train_beats_the_callers_heartbeat_at_each_checkpoint_and_resumes_a_finished_state(tmp_path):
    store = Store(tmp_path / "out")
    beats = []
    model, state = _train(store, _state(0).model, lambda: beats.append(1))
    assert len(beats) == SC.epochs  # one checkpoint per epoch on a CPU, none in between (30 s)
    assert (state.epoch, state.step, state.count) == (2, 0, 0) and len(state.history) == 2
    again_beats = []
    _, again = _train(store, _state(5).model, lambda: again_beats.append(1))
    assert again.history == state.history and again_beats == []  # restored from the last checkpoint: no step
    events = [json.loads(x)["event"] for x in (store.dir(STAGE) / "log.jsonl").read_text().splitlines()]
    assert events == ["start", "epoch", "epoch", "resume"]


def test_a_worker_command_line_gives_its_options_back():
    argv = ["--config", "c.toml", "--set", "finetune.lr=1e-3", "--set", "name=x", "--all", "--out", "o",
            "--cache-dir", "k", "--shard", "1/3", "--jobs", "2", "--poll", "0.25", "--claim-timeout", "60",
            "--save-models", "--deterministic", "--compile", "--mixed-precision", "bf16", "--checkpoint-every", "1.5",
            "--resident", "always", "--sync-every", "25", "--adamw", "fused", "--dist-timeout", "30"]
    args = run.parse_args(argv)
    opts = run.run_options(args, run.runtime(args))
    assert (opts.shard, opts.shards, opts.jobs, opts.overrides) == (1, 3, 2, ("finetune.lr=1e-3", "name=x"))
    for i in range(2):
        worker = opts.worker(i)
        back = run.parse_args(worker.argv())
        assert run.run_options(back, run.runtime(back)) == worker
        assert (worker.shard_label, worker.jobs, worker.assemble, worker.rt.progress) == (f"{2 + i}/6", 1, False, False)
        assert worker.rt.out_dir == opts.rt.out_dir and worker.rt.mixed_precision == "bf16"
        assert (worker.rt.resident, worker.rt.sync_every, worker.rt.adamw, worker.rt.dist_timeout) == (
            "always", 25, "fused", 30.0)
    plain = run.parse_args(["--all"])
    plain.config = run.DEFAULT_CONFIG  # as main() sets it
    defaults = run.run_options(plain, run.runtime(plain))
    back = run.parse_args(defaults.argv())
    assert run.run_options(back, run.runtime(back)) == defaults


def test_every_option_of_the_run_is_one_that_workers_receive():
    """An option added to the command line must be carried by RunOptions.argv (or be one that
    workers never take: the choice between --all, --dry-run and --status)."""
    carried = {"config", "overrides", "out", "cache_dir", "shard", "jobs", "poll", "claim_timeout", "save_models",
               "no_progress", "deterministic", "compile", "mixed_precision", "checkpoint_every", "no_assemble", "all",
               "resume_command", "gpu_share", "resident", "sync_every", "adamw", "dist_timeout"}
    assert set(vars(run.parse_args([]))) == carried | {"dry_run", "status"}
    assert RunOptions(config="c.toml").argv()[:3] == ["--config", "c.toml", "--all"]
