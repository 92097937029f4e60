"""One vocabulary across the commands: --help shows defaults and examples; old spellings still work."""

from __future__ import annotations

import re

import pytest

from diminish import evaluate, results
from diminish.analysis.__main__ import main as analysis_main
from diminish.bench import cli as bench_cli
from diminish.data.__main__ import main as data_main
from diminish.report.__main__ import main as report_main
from diminish.runner import cli as run

HELPS = {
    "run": lambda: run.parse_args(["--help"]),
    "bench": lambda: bench_cli.parse_args(["--help"]),
    "results merge": lambda: results.main(["merge", "--help"]),
    "analysis fit-curves": lambda: analysis_main(["fit-curves", "--help"]),
    "analysis report": lambda: analysis_main(["report", "--help"]),
    "data synth": lambda: data_main(["synth", "--help"]),
    "data prepare": lambda: data_main(["prepare", "--help"]),
    "evaluate": lambda: evaluate.main(["--help"]),
    "report tables": lambda: report_main(["tables", "--help"]),
}


@pytest.mark.parametrize("name", list(HELPS))
def test_help_lists_defaults_and_ends_with_examples(name, capsys):
    with pytest.raises(SystemExit) as e:
        HELPS[name]()
    assert e.value.code == 0
    text = capsys.readouterr().out
    tail = text.rstrip().split("examples:\n")[-1].splitlines()
    assert "examples:\n" in text and 2 <= len(tail) <= 3, text[-400:]
    assert all(re.match(r"  (python -m diminish\.|accelerate launch -m diminish\.)", line) for line in tail)
    assert "(default: " in text or "(default " in text or name == "results merge"  # merge has no defaults
    assert "--workers" not in text and "--dtype" not in text and "--out-dir" not in text  # aliases stay hidden


def test_defaults_are_shown_for_options_with_one(capsys):
    with pytest.raises(SystemExit):
        bench_cli.parse_args(["--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "--mixed-precision {no,bf16,auto}" in text and "(default: no)" in text
    assert "(default: 5)" in text and "(default: 0)" in text  # --repeats, --many: a 0 default is shown too


def test_old_spellings_are_hidden_aliases(tmp_path):
    opts, a = bench_cli.parse_args(["--dtype", "fp32", "--out", str(tmp_path / "b.json")])
    assert opts.precision == "no" and a.out_file == tmp_path / "b.json"  # the old words, in the one vocabulary
    assert bench_cli.parse_args(["--dtype", "bf16"])[0].precision == "bf16"
    assert bench_cli.parse_args(["--mixed-precision", "bf16"])[0].precision == "bf16"
    assert bench_cli.parse_args([])[0].precision == "no"  # the runner's default: no mixed precision

    a_nc, b_nc = (results.write_results(results.example_results(seeds=(s,)), tmp_path / f"{s}.nc") for s in (0, 1))
    assert results.main(["merge", str(a_nc), str(b_nc), "--out", str(tmp_path / "old.nc")]) == 0
    assert results.main(["merge", str(a_nc), str(b_nc), "--out-file", str(tmp_path / "new.nc")]) == 0
    assert results.read_results(tmp_path / "new.nc").sizes["seed"] == 2 and (tmp_path / "old.nc").is_file()
    with pytest.raises(SystemExit):
        results.main(["merge", str(a_nc)])  # an output file is still required
