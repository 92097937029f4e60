"""What the runner says before any work: the config in use, missing data with the demo, launcher
exits, and config warnings (said once per run, not by each --jobs worker)."""

from __future__ import annotations

import json
import warnings

import pytest

from _runner import REPO, run_cli, write_config
from diminish.runner import cli as run
from diminish.runner import launch


def test_bare_all_names_the_default_config_and_the_demo(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(REPO)  # experiments/paper.toml; its data folders are absent here
    monkeypatch.delenv("ACCELERATE_DYNAMO_BACKEND", raising=False)
    monkeypatch.delenv("TORCHELASTIC_RUN_ID", raising=False)
    assert run.cli(["--all", "--out", str(tmp_path / "out"), "--cache-dir", str(tmp_path / "cache")]) == 1
    out, err = capsys.readouterr()
    assert out.splitlines()[0].startswith("config: experiments/paper.toml (the default --config: the full study")
    assert "missing datasets" in err and "--config experiments/demo.toml --all" in err and "make demo" in err
    assert "not a crash" not in err and "Traceback" not in err
    assert not (tmp_path / "out").exists()


def test_error_exits_under_a_launcher_say_they_are_not_crashes(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("ACCELERATE_DYNAMO_BACKEND", "NO")
    monkeypatch.setenv("TORCHELASTIC_ERROR_FILE", str(tmp_path / "error.json"))
    assert run.cli(["--all", "--config", str(tmp_path / "missing.toml")]) == 2
    err = capsys.readouterr().err
    assert "config file not found" in err and "exited with status 2" in err and "not a crash" in err
    summary = json.loads((tmp_path / "error.json").read_text())["message"]["message"]
    assert "status 2" in summary


def _late(tmp_path):
    """The tiny grid with a fine-tuning milestone after its last epoch; its data folders are absent."""
    cfg = write_config(tmp_path / "late.toml", tmp_path / "no-data")
    text = cfg.read_text().replace("milestones = [1]\nbatch_size = 8\neval", "milestones = [5]\nbatch_size = 8\neval")
    cfg.write_text(text)
    return cfg


def _said(seen) -> list[str]:
    return [str(w.message) for w in seen if "never take effect" in str(w.message)]


def test_a_late_milestone_is_warned_about_by_the_run_not_by_its_jobs_workers(tmp_path, monkeypatch):
    """--jobs J: the parent warns; the J workers it starts (with the command lines run_jobs gives
    them), which load the same config again, do not; nor does a process of rank > 0 of a launch."""
    common = ["--config", str(_late(tmp_path)), "--out", str(tmp_path / "out")]
    workers = []
    monkeypatch.setattr(launch, "run_jobs", lambda opts, *_: workers.extend(opts.worker(i).argv() for i in range(2)))
    monkeypatch.setattr(launch, "run_all", lambda *_: 0)
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        run.main(["--all", "--jobs", "2", *common])
        assert len(_said(seen)) == 1 and "'finetune.milestones' [5]" in _said(seen)[0]
        seen.clear()
        for argv in workers:
            assert "--no-assemble" in argv and run.main(argv) == 0
        monkeypatch.setenv("RANK", "1")
        assert run.main(["--all", *common]) == 0
        assert _said(seen) == []


@pytest.mark.slow
def test_a_jobs_run_prints_a_config_warning_once(tmp_path):
    """End to end: a --jobs 2 run (its workers stop at the missing data) shows the warning once."""
    code, _, err = run_cli("--all", "--jobs", "2", "--config", str(_late(tmp_path)), "--out", str(tmp_path / "out"),
                           "--cache-dir", str(tmp_path / "cache"))
    assert code == 1 and err.count("missing datasets") == 2, err
    assert err.count("never take effect") == 1, err
