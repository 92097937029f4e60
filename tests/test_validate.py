"""Results files are checked when read (diminish.validate, called by results.read_results).

Each kind of value no measurement can have is refused with one line naming the file, the variable,
the cell in words and the value, by read_results and by every command line that reads results;
every file the runner writes (the tiny grids', the demo's) is accepted, and NaN ("not run") is allowed.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from diminish import results, validate
from diminish.results import SCHEMA, example_results, read_results, write_results

REPO = Path(__file__).resolve().parents[1]
AT = dict(pretrain=45_000, intermediate=True, finetune=500, seed=1)


def small() -> xr.Dataset:
    return example_results(seeds=(0, 1, 2))


def _set(var, value, **where):
    def edit(ds):
        ds[var].loc[{d: v for d, v in {**AT, **where}.items() if d in ds[var].dims}] = value
        return ds
    return edit


def _raw(path: Path, edit) -> Path:
    """Rewrite a written results file with ``edit`` applied to the raw Dataset (int8 intermediate)."""
    with xr.open_dataset(path) as raw:
        raw = raw.load()
    out = path.with_name("edited.nc")
    edit(raw).to_netcdf(out)
    return out


def _coords(**new):
    return lambda raw: raw.assign_coords(**new)


# (case, edit of the Dataset before writing, or ("raw", edit of the written file), fragments of the message)
BAD = {
    "miou above 100": (_set("miou", 104.5), ["miou = 104.5", "P = 45000, intermediate on, F = 500, seed 1",
                                             "[0, 100]"]),
    "negative accuracy": (_set("accuracy", -0.5), ["accuracy = -0.5", "seed 1", "percentage"]),
    "iou above 100": (_set("iou", 100.5, **{"class": "background"}), ["iou = 100.5", "class background"]),
    "infinite loss": (_set("final_loss", np.inf), ["final_loss = inf", "F = 500", "finite"]),
    "negative time": (_set("train_seconds", -3.0), ["train_seconds = -3", "time", "not negative"]),
    "negative pre-training loss": (_set("pretrain_loss", -0.1, pretrain=100_000, seed=2),
                                   ["pretrain_loss = -0.1", "P = 100000, seed 2", "loss"]),
    "intermediate accuracy above 100": (_set("intermediate_accuracy", 170.0, pretrain=0, seed=0),
                                        ["intermediate_accuracy = 170", "P = 0, seed 0"]),
    "miou variant below 0": (_set("miou_image", -2.0), ["miou_image = -2", "F = 500"]),
    "iou disagrees with miou": (_set("miou", 50.0), ["miou = 50 at P = 45000", "mean of its per-class IoU"]),
    "fine-tuning size 0": (("raw", _coords(finetune=[0, 500, 1000, 2000, 4000, 6000])),
                           ["coordinate finetune = 0", "1 or more"]),
    "negative pre-training size": (("raw", _coords(pretrain=[-5, 45_000, 100_000, 200_000])),
                                   ["coordinate pretrain = -5", "0 or more"]),
    "fractional size": (("raw", _coords(finetune=[250.5, 500, 1000, 2000, 4000, 6000])),
                        ["coordinate finetune = 250.5", "not a whole number"]),
    "fractional seed": (("raw", _coords(seed=[0.0, 1.5, 2.0])), ["coordinate seed = 1.5", "whole number"]),
    "intermediate flag 2": (("raw", _coords(intermediate=np.array([0, 2], np.int8))),
                            ["coordinate intermediate = 2", "0 (off) or 1 (on)"]),
    "duplicated fine-tuning size": (("raw", _coords(finetune=[250, 500, 500, 2000, 4000, 6000])),
                                    ["coordinate finetune lists 500 2 times"]),
    "duplicated seed": (("raw", _coords(seed=[0, 1, 1])), ["coordinate seed lists 1 2 times"]),
    "text seed": (("raw", _coords(seed=["a", "b", "c"])), ["coordinate seed holds", "whole numbers"]),
    "no seed coordinate": (("raw", lambda raw: raw.drop_vars("seed")), ["no seed coordinate"]),
}


def _bad_file(tmp_path: Path, case: str) -> Path:
    edit, _ = BAD[case]
    if isinstance(edit, tuple):
        return _raw(write_results(small(), tmp_path / "results.nc"), edit[1])
    return write_results(edit(small()), tmp_path / "results.nc")


@pytest.mark.parametrize("case", list(BAD))
def test_each_kind_of_bad_value_is_refused_in_one_line_naming_file_variable_cell_and_value(case, tmp_path):
    path = _bad_file(tmp_path, case)
    with pytest.raises(validate.ResultsError) as err:
        read_results(path)
    msg = str(err.value)
    assert "\n" not in msg and msg.startswith(f"{path}: ")
    for fragment in BAD[case][1]:
        assert fragment in msg, (fragment, msg)


def test_the_count_of_further_violations_is_given(tmp_path):
    ds = small()
    ds["miou"][:] = ds["miou"] + 200.0
    with pytest.raises(ValueError, match=r"miou = 2\d\d\.\d+ at .*\(and 143 more values of miou out of range\)"):
        read_results(write_results(ds, tmp_path / "results.nc"))


@pytest.mark.parametrize("cli", ["analysis", "report", "merge"])
def test_command_lines_print_the_one_line_and_exit_2(cli, tmp_path, capsys):
    from diminish.analysis.__main__ import main as analysis_main
    from diminish.console import guard
    from diminish.report.__main__ import main as report_main

    path = _bad_file(tmp_path, "miou above 100")
    argv = {"analysis": ["report", "--results", str(path), "--out", str(tmp_path / "a"), "--no-plot"],
            "report": ["numbers", "--results", str(path), "--analysis", str(tmp_path / "a"),
                       "--out-file", str(tmp_path / "n.tex")],
            "merge": ["merge", str(path), "--out-file", str(tmp_path / "m.nc")]}[cli]
    main = {"analysis": analysis_main, "report": report_main, "merge": results.main}[cli]
    assert guard(main, argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "Traceback" not in err
    assert err.startswith("error: ") and str(path) in err and "miou = 104.5" in err and "seed 1" in err


def test_nan_means_not_run_and_is_accepted(tmp_path):
    ds = small()
    for v in ("accuracy", "miou", "iou", "train_seconds", "final_loss"):
        ds[v].loc[dict(pretrain=0)] = np.nan
    ds["iou"].loc[dict(AT, **{"class": "border"})] = np.nan  # a class absent from the test set: mean of the others
    ds["miou"].loc[AT] = float(ds["iou"].sel(AT).mean(skipna=True))
    back = read_results(write_results(ds, tmp_path / "results.nc"))
    assert back["intermediate"].dtype == bool and int(back["miou"].isnull().sum()) == 2 * 6 * 3


def test_whole_number_float_sizes_are_read_as_integers(tmp_path):
    path = _raw(write_results(small(), tmp_path / "results.nc"),
                _coords(finetune=np.array([250.0, 500, 1000, 2000, 4000, 6000])))
    back = read_results(path)
    assert back["finetune"].dtype == np.int64 and int(back["finetune"][0]) == 250


def test_every_schema_variable_has_a_range():
    coords = {"pretrain", "intermediate", "finetune", "seed", "class", *validate.SIZES}
    for name in SCHEMA:
        assert name in coords or validate.has_range(name, SCHEMA), name
    assert not validate.has_range("mystery_ratio", {"mystery_ratio": ("a ratio", "1", "not a loss")})


def test_the_tiny_grids_results_are_accepted(grid, cell):
    _, _, ref = grid
    for path in (ref / "results.nc", cell[2] / "one-cell" / "results.nc"):
        ds = read_results(path)
        assert int(ds["miou"].notnull().sum()) > 0


@pytest.mark.skipif(not (REPO / "results" / "demo" / "results.nc").is_file(), reason="no demo results (make demo)")
def test_the_demo_results_are_accepted():
    ds = read_results(REPO / "results" / "demo" / "results.nc")
    assert int(ds["miou"].notnull().sum()) == ds["miou"].size
