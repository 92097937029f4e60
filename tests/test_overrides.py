"""``--set key.path=value``: parsing, validation, the stage keys it changes and the results folder."""

from __future__ import annotations

import pytest

from _runner import make_data, write_config
from diminish.bench import cli as bench_cli
from diminish.config import ConfigError, load, loads
from diminish.overrides import apply_overrides, load_with_overrides, parse_override
from diminish.runner import cli as run
from diminish.runner.plan import build_plan


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    base = tmp_path_factory.mktemp("over")
    return write_config(base / "tiny.toml", make_data(base))


def test_values_are_read_as_toml():
    assert parse_override("finetune.lr=1e-3") == ("finetune.lr", 1e-3)
    assert parse_override("seeds = [0, 1]") == ("seeds", [0, 1])
    assert parse_override("simmim.cls_in_pretrain=false") == ("simmim.cls_in_pretrain", False)
    assert parse_override('data.pets_root="/d/pets"') == ("data.pets_root", "/d/pets")
    assert parse_override("name=lr-sweep") == ("name", "lr-sweep")  # a bare word is a string
    with pytest.raises(ConfigError, match="KEY.PATH=VALUE"):
        parse_override("finetune.lr")


def test_overrides_are_validated_like_the_file(tiny):
    cfg = load_with_overrides(tiny, ["finetune.lr=1e-3", "finetune.batch_size=4", "intermediate.conditions=[false]",
                                     "simmim.mask_ratio=0.6"])
    assert (cfg.finetune.lr, cfg.finetune.batch_size, cfg.intermediate.conditions) == (1e-3, 4, (False,))
    assert cfg.simmim.mask_ratio == 0.6 and type(cfg.finetune.lr) is float
    assert cfg.pretrain == load(tiny).pretrain  # the rest as in the file
    with pytest.raises(ConfigError, match=r"unknown key 'finetune.lrr'; did you mean 'lr'\?") as e:
        load_with_overrides(tiny, ["finetune.lrr=1e-3"])
    assert "tiny.toml" in str(e.value) and "--set finetune.lrr=1e-3" in str(e.value)
    with pytest.raises(ConfigError, match=r"'finetune.lr' must be float, got 'fast'"):
        load_with_overrides(tiny, ["finetune.lr=fast"])
    with pytest.raises(ConfigError, match="lr must be finite and positive"):
        load_with_overrides(tiny, ["finetune.lr=-1"])
    with pytest.raises(ConfigError, match="'seeds' is a value, not a table"):
        load_with_overrides(tiny, ["seeds.first=1"])


def test_overrides_enter_hash_name_and_config_text(tiny):
    base = load(tiny)
    cfg = apply_overrides(base, ["finetune.lr=1e-3"], str(tiny))
    assert cfg.name == "tiny+finetune.lr=1e-3" and cfg.hash != base.hash
    again = loads(cfg.source_text)  # the text stored in config.toml and results.nc reproduces it
    assert again == cfg and again.hash == cfg.hash and "--set finetune.lr=1e-3" in cfg.source_text
    assert apply_overrides(base, ["finetune.lr=1e-3", "name=sweep"]).name == "sweep"
    odd = apply_overrides(base, ['data.pets_root="../a b/c"', "seeds=[0, 1]"]).name
    assert "/" not in odd and " " not in odd and ".." not in odd and odd.startswith("tiny+data.pets_root=")
    assert apply_overrides(base, []) is base


def test_finetuning_override_reuses_upstream_stages(tiny):
    a = build_plan(load(tiny))
    b = build_plan(load_with_overrides(tiny, ["finetune.lr=1e-3"]))
    keys = lambda plan, kind: {s.cell if kind in ("finetune", "evaluate") else (s.pretrain, s.seed): s.key  # noqa: E731
                               for s in plan.stages(kind)}
    assert keys(a, "pretrain") == keys(b, "pretrain") and keys(a, "intermediate") == keys(b, "intermediate")
    fa, fb = keys(a, "finetune"), keys(b, "finetune")
    assert fa.keys() == fb.keys() and not set(fa.values()) & set(fb.values())
    assert all(s.spec["train"]["lr"] == 1e-3 for s in b.stages("finetune"))
    c = build_plan(load_with_overrides(tiny, ["simmim.mask_ratio=0.7"]))  # upstream change: new keys
    assert not set(keys(c, "pretrain").values()) & set(keys(a, "pretrain").values())


def test_dry_run_and_status_use_the_override_folder(tiny, tmp_path, capsys):
    args = ["--config", str(tiny), "--out", str(tmp_path), "--set", "finetune.lr=1e-3"]
    assert run.main(["--dry-run", *args]) == 0
    assert str(tmp_path / "tiny+finetune.lr=1e-3") in capsys.readouterr().out
    assert run.main(["--status", *args, "--set", "name=mine"]) == 0
    assert str(tmp_path / "mine") in capsys.readouterr().out
    assert run.main(["--dry-run", "--config", str(tiny), "--set", "finetune.lrr=1"]) == 2
    assert "did you mean 'lr'" in capsys.readouterr().err


def test_bench_takes_overrides(tiny, capsys):
    opts, _ = bench_cli.parse_args(["--config", str(tiny), "--set", "finetune.batch_size=3"])
    assert opts.config.finetune.batch_size == 3
    with pytest.raises(SystemExit) as e:
        bench_cli.parse_args(["--config", str(tiny), "--set", "finetune.batchsize=3"])
    assert e.value.code == 2 and "did you mean 'batch_size'" in capsys.readouterr().err


def test_an_override_run_adopts_the_base_folders_finished_stages(tiny, tmp_path, capsys):
    from diminish.runner.reuse import adopt_finished
    from diminish.runner.store import Store

    base_plan = build_plan(load(tiny))
    base = Store(tmp_path / "tiny")
    for stage in base_plan.stages("pretrain") + base_plan.stages("intermediate"):
        (base.begin(stage) / "model.pt").write_bytes(b"weights")
        base.finish(stage, {"final_loss": 0.5})
    args = ["--config", str(tiny), "--out", str(tmp_path), "--set", "finetune.lr=1e-3"]
    assert run.main(["--dry-run", *args]) == 0
    rows = {line.split()[0]: line.split()[1:4] for line in capsys.readouterr().out.splitlines() if line[:1].isalpha()}
    assert rows["pretrain"] == ["1", "1", "0"] and rows["intermediate"] == ["2", "2", "0"]
    assert rows["finetune"] == ["8", "0", "8"]

    plan = build_plan(load_with_overrides(tiny, ["finetune.lr=1e-3"]))
    mine = Store(tmp_path / "tiny+finetune.lr=1e-3")
    assert adopt_finished(plan.stages(), mine, base) == 3 and adopt_finished(plan.stages(), mine, base) == 0
    for stage in plan.stages("pretrain") + plan.stages("intermediate"):
        assert mine.is_done(stage) and mine.record(stage)["final_loss"] == 0.5
        assert (mine.dir(stage) / "model.pt").stat().st_ino == (base.dir(stage) / "model.pt").stat().st_ino
    assert not any(mine.is_done(s) for s in plan.stages("finetune"))
