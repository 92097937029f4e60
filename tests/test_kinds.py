"""A stage kind is defined once: a toy kind registered through the registry alone (no other edit)
is planned with a key, run, stored, resumed after a failure and assembled into results.nc like the
study's own kinds."""

from __future__ import annotations

import json

import numpy as np
import pytest

from _runner import fault_tool
from conftest import one_cell_config
from diminish import config
from diminish.results import read_results
from diminish.runner import cli as run
from diminish.runner.kinds import KINDS, Kind, register, unregister
from diminish.runner.plan import build_plan, deps, units_of

CALLS = {"n": 0, "fail_first": True}


def _plan_toy(p):
    """One toy stage per pre-training stage: it reads that stage's model file."""
    return {cell: p.make("toy", {"upstream": pre.key, "what": "model size"}, pretrain=pre.pretrain, seed=pre.seed,
                         upstream=pre)
            for cell, pre in p.stages["pretrain"].items()}


def _run_toy(ctx, plan, stage):
    CALLS["n"] += 1
    with ctx.store.running(stage) as run_:
        if CALLS["fail_first"]:
            CALLS["fail_first"] = False
            raise RuntimeError("toy stage crashed")
        size = (ctx.store.dir(stage.upstream) / "model.pt").stat().st_size
        run_.record = {"pretrain": stage.pretrain, "seed": stage.seed, "model_bytes": size}
    return run_.record


def _toy_results(ds, records):
    ds["toy_model_bytes"] = (("pretrain", "seed"), np.full((ds.sizes["pretrain"], ds.sizes["seed"]), np.nan))
    for r in records:
        ds["toy_model_bytes"].loc[{"pretrain": r["pretrain"], "seed": r["seed"]}] = r["model_bytes"]
    return ds


TOY = Kind("toy", _plan_toy, _run_toy, results=_toy_results,
           schema={"toy_model_bytes": ("size of the pre-trained model file", "bytes", "the toy kind's reading")})


@pytest.fixture
def toy():
    register(TOY)
    yield TOY
    unregister("toy")


def test_registering_a_kind_adds_keyed_units_that_wait_for_their_upstream(toy, tmp_path):
    cfg = config.load(one_cell_config(tmp_path / "one.toml", tmp_path / "data"), warn=False)
    plan = build_plan(cfg)
    (stage,) = plan.stages("toy")
    assert stage.key != plan.pretrain[16, 0].key and len(stage.key) == 16
    assert units_of(plan)[-1] == stage and deps(stage) == [plan.pretrain[16, 0]]
    assert list(KINDS)[-1] == "toy"
    with pytest.raises(ValueError, match="registered already"):
        register(TOY)


def test_the_study_kinds_cannot_be_unregistered():
    with pytest.raises(ValueError, match="one of the study's"):
        unregister("pretrain")


def test_a_toy_kind_runs_is_stored_resumed_and_assembled(toy, tmp_path, capsys):
    data = fault_tool().make_data(tmp_path)
    cfg = one_cell_config(tmp_path / "one.toml", data)
    args = ["--no-progress", "--config", str(cfg), "--out", str(tmp_path / "out"), "--cache-dir", str(tmp_path / "c")]
    CALLS.update(n=0, fail_first=True)
    with pytest.raises(RuntimeError, match="toy stage crashed"):  # it fails once, and is recorded
        run.main(["--all", *args])
    (stage,) = build_plan(config.load(cfg, warn=False)).stages("toy")
    folder = tmp_path / "out" / "one-cell" / "stages" / "toy" / stage.key
    assert json.loads((folder / "failed.json").read_text())["error"] == "RuntimeError: toy stage crashed"
    assert run.main(["--status", *args]) == 0 and "failed: toy" in capsys.readouterr().out
    assert run.main(["--all", *args]) == 0  # rerun: the finished stages are reused, the toy stage runs
    assert (folder / "done").is_file() and not (folder / "failed.json").exists()
    assert json.loads((folder / "spec.json").read_text())["kind"] == "toy"
    ds = read_results(tmp_path / "out" / "one-cell" / "results.nc")
    assert float(ds.toy_model_bytes.sel(pretrain=16, seed=0)) > 0
    assert ds.toy_model_bytes.attrs["units"] == "bytes"
    events = [json.loads(x) for x in (tmp_path / "out" / "one-cell" / "executions.jsonl").read_text().splitlines()]
    assert sum(e["event"] == "done" for e in events) == 4  # pretrain, finetune, evaluate, toy: each once
    calls = CALLS["n"]
    assert run.main(["--all", *args]) == 0 and CALLS["n"] == calls  # done: not run again
