"""Stage keys (what is reused when a setting changes), atomic files and claims."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest

from diminish import config
from diminish.runner.atomic import atomic_write_json
from diminish.runner.plan import build_plan
from diminish.runner.store import Store

BASE = 'name = "x"\nseeds = [0, 1]\n'


def plan(extra: str = ""):
    return build_plan(config.loads(BASE + extra))


def keys(p, kind):
    return {s.cell if kind in ("finetune", "evaluate") else (s.pretrain, s.seed): s.key for s in p.stages(kind)}


def test_plan_is_the_full_factorial_grid():
    p = plan()
    assert len(p.stages("pretrain")) == 3 * 2  # P > 0 only; P = 0 is a random initialisation
    assert len(p.stages("intermediate")) == 4 * 2  # including P = 0
    assert len(p.stages("finetune")) == len(p.stages("evaluate")) == 4 * 2 * 6 * 2
    all_keys = [s.key for s in p.stages()]
    assert len(set(all_keys)) == len(all_keys)
    assert p.examples_cell == (200_000, False, 6000, 0)
    ft = p.finetune[45_000, True, 250, 1]
    assert ft.upstream is p.intermediate[45_000, 1] and ft.upstream.upstream is p.pretrain[45_000, 1]
    assert p.finetune[0, False, 250, 0].upstream is None and p.intermediate[0, 0].upstream is None


def test_finetune_settings_leave_upstream_keys_alone():
    a, b = plan(), plan("[finetune]\nlr = 1e-3\n")
    assert keys(a, "pretrain") == keys(b, "pretrain") and keys(a, "intermediate") == keys(b, "intermediate")
    assert not set(keys(a, "finetune").values()) & set(keys(b, "finetune").values())
    # growing the grid keeps every existing stage's key
    c = plan("[finetune]\nsizes = [250, 500, 1000, 2000, 4000, 6000, 7000]\n")
    assert set(keys(a, "evaluate").items()) < set(keys(c, "evaluate").items())
    # eval batch size does not change what is computed
    d = plan("[finetune]\neval_batch_size = 7\n")
    assert keys(a, "evaluate") == keys(d, "evaluate")


def test_pretraining_settings_reach_only_stages_downstream_of_pretraining():
    a, b = plan(), plan("[pretrain]\nepochs = 99\n")
    assert not set(keys(a, "pretrain").values()) & set(keys(b, "pretrain").values())
    ka, kb = keys(a, "finetune"), keys(b, "finetune")
    for cell in ka:
        assert (ka[cell] == kb[cell]) == (cell[0] == 0), cell  # P = 0 cells do not depend on pre-training
    e = plan("[intermediate]\nlr = 1e-3\n")
    ke = keys(e, "finetune")
    assert all((ka[c] == ke[c]) == (not c[1]) for c in ka)  # only I = True cells change


def test_atomic_json_leaves_no_temporary_file(tmp_path):
    atomic_write_json(tmp_path / "a" / "r.json", {"x": 1})
    assert json.loads((tmp_path / "a" / "r.json").read_text()) == {"x": 1}
    assert [p.name for p in (tmp_path / "a").iterdir()] == ["r.json"]


def test_claims_are_exclusive_and_stale_ones_are_taken_over(tmp_path):
    store, stage = Store(tmp_path), plan().stages("pretrain")[0]
    assert store.claims.take(stage, timeout=60)
    assert not store.claims.take(stage, timeout=60)  # held by a live process (us)
    assert store.claims.state(stage, 60) == "live"
    store.claims.release(stage)
    assert store.claims.state(stage, 60) is None
    # a claim left by a process that died is stale at once
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    path = store.claims.path(stage)
    path.write_text(json.dumps({"pid": dead.pid, "host": os.uname().nodename, "time": 0}))
    assert store.claims.state(stage, 3600) == "stale"
    assert store.claims.take(stage, timeout=3600)
    assert json.loads(path.read_text())["pid"] == os.getpid()
    # a claim from another host counts as stale only after the timeout without a heartbeat
    path.write_text(json.dumps({"pid": 1, "host": "elsewhere", "time": 0}))
    assert not store.claims.take(stage, timeout=3600)
    old = time.time() - 100
    os.utime(path, (old, old))
    assert store.claims.state(stage, 50) == "stale" and store.claims.take(stage, timeout=50)
    assert not [p for p in path.parent.iterdir() if p.name.startswith(".stale-")]


def test_release_never_removes_someone_elses_claim(tmp_path):
    store, stage = Store(tmp_path), plan().stages("pretrain")[0]
    path = store.claims.path(stage)
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"pid": 1, "host": "elsewhere", "time": 0}))
    store.claims.release(stage)
    assert path.exists()


@pytest.mark.parametrize("kind", ["pretrain", "intermediate", "finetune", "evaluate"])
def test_labels_name_the_cell(kind):
    s = plan().stages(kind)[-1]
    assert s.label.startswith(kind) and f"seed={s.seed}" in s.label
