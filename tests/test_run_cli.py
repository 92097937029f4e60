"""What the runner says before any work: the config in use, missing data with the demo, launcher exits."""

from __future__ import annotations

import json

from _runner import REPO
from diminish import run


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
