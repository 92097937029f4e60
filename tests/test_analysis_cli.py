import json

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from diminish.analysis.__main__ import main
from diminish.results import example_results, write_results

CONTRACT = {
    "summary.csv": "pretrain,intermediate,finetune,metric,mean,sd,n",
    "fits.csv": "metric,pretrain,intermediate,family,n_params,params,aicc,delta_aicc,akaike_weight,loo_error,"
                "plateau,plateau_lo,plateau_hi,identified,f95,gain_1000,gain_2000,gain_4000,best",
    "paired_intermediate.csv": "metric,pretrain,finetune,n,mean_delta,se,t,p_t,p_perm,dz,p_holm,ci_lo,ci_hi,method",
    "paired_pretrain.csv": "metric,pretrain,intermediate,finetune,n,mean_delta,se,t,p_t,p_perm,dz,p_holm,ci_lo,ci_hi,"
                           "method",
    "pooled.csv": "metric,effect,term,estimate,se,ci_lo,ci_hi,p,model,n_obs,df_resid,unit,arms,formula",
    "verdicts.csv": "claim_id,claim,statistic,estimate,ci_lo,ci_hi,p,verdict,metric,detail,kind,rule,n_seeds",
    "transfer.csv": "metric,pretrain,intermediate,finetune,f_eff,d_t,extrapolated",
    "transfer_fit.csv": "metric,pretrain,intermediate,k,alpha,n_points",
    "compare.csv": "metric,pretrain,intermediate,finetune,ours_mean,ours_sd,paper_mean,paper_sd,diff,z,p,within_tol",
    "headline.csv": "claim_id,claim,holds_in_ours,detail",
    "missing.csv": "pretrain,intermediate,finetune,seed",
    "plateaus.csv": "metric,pretrain,intermediate,family,plateau,plateau_lo,plateau_hi,identified,status,reason",
    "effect_by_f.csv": "metric,effect,finetune,estimate,se,ci_lo,ci_hi",
}


@pytest.fixture(scope="module")
def results_nc(tmp_path_factory):
    ds = example_results(0)
    ds["miou"].loc[dict(pretrain=45_000, intermediate=True, finetune=500, seed=2)] = np.nan
    return write_results(ds, tmp_path_factory.mktemp("res") / "results.nc")


def check_contract(out):
    for name, cols in CONTRACT.items():
        header = (out / name).read_text().splitlines()[0].split(",")
        assert header[: len(cols.split(","))] == cols.split(","), name
    curves = xr.open_dataset(out / "curves.nc")
    for v in ("fit", "lo", "hi"):
        assert curves[v].dims == ("metric", "pretrain", "intermediate", "family", "f")
    curves.close()
    info = json.loads((out / "report.json").read_text())
    for k in ("metric", "results", "config_hash", "synthetic", "n_seeds"):
        assert k in info
    return info


@pytest.mark.parametrize("cmd", ["fit-curves", "paired-tests", "claims", "verdicts", "transfer", "compare-paper",
                                 "report"])
def test_every_subcommand_has_help(cmd, capsys):
    with pytest.raises(SystemExit) as e:
        main([cmd, "--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    assert "--results" in out and "--reference" in out and "--metric" in out


def test_subcommands_run_on_the_paper_tables(capsys, tmp_path):
    boot = ["--n-boot", "10"]
    assert main(["fit-curves", "--reference", "paper", *boot, "--plot", str(tmp_path / "f.png")]) == 0
    out = capsys.readouterr().out
    assert "plateau [95% CI]" in out and "log2" in out
    assert (tmp_path / "f.png").read_bytes()[:4] == b"\x89PNG"
    assert main(["paired-tests", "--reference", "paper", "--metric", "accuracy"]) == 0
    assert "Welch t from summary statistics" in capsys.readouterr().out
    assert main(["claims", "--reference", "paper", *boot]) == 0
    assert "INT_HURTS" in capsys.readouterr().out
    assert main(["transfer", "--reference", "paper"]) == 0
    assert "extrapolated" in capsys.readouterr().out
    assert main(["compare-paper", "--reference", "paper", "--tolerance", "0.5", *boot]) == 0
    assert "within tolerance: 42 of 42" in capsys.readouterr().out


def test_report_on_results_writes_the_contract(results_nc, tmp_path, capsys):
    out = tmp_path / "rep"
    assert main(["report", "--results", str(results_nc), "--out", str(out), "--n-boot", "10", "--no-plot"]) == 0
    info = check_contract(out)
    assert info["n_seeds"] == 3 and info["synthetic"] is True and info["config_hash"] == "example"
    miss = pd.read_csv(out / "missing.csv")
    assert len(miss) == 1 and miss.iloc[0].tolist()[:4] == [45_000, True, 500, 2]
    err = capsys.readouterr().err
    assert "missing" in err and "missing.csv" in err
    fits = pd.read_csv(out / "fits.csv")
    assert set(fits.metric) == {"miou", "accuracy"} and fits.identified.dtype == bool
    v = pd.read_csv(out / "verdicts.csv")
    assert set(v.verdict) <= {"supported", "not supported", "inconclusive", "not testable"}
    assert set(v.metric) == {"miou"}
    h = pd.read_csv(out / "headline.csv")
    assert list(h.claim_id) == ["HL1", "HL2", "HL2S", "HL3"]
    assert set(h.holds_in_ours) <= {"yes", "no", "inconclusive", "not testable"}
    pi = pd.read_csv(out / "paired_intermediate.csv")
    cell = pi[(pi.metric == "miou") & (pi.pretrain == 45_000) & (pi.finetune == 500)].iloc[0]
    assert cell.n == 2  # the NaN seed is dropped from the pair, and reported


def test_report_is_deterministic_on_the_paper_tables(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    for d in (a, b):
        assert main(["report", "--reference", "paper", "--out", str(d), "--n-boot", "10", "--no-plot"]) == 0
    info = check_contract(a)
    assert info["results"] == "paper" and "SD" in info["paper_spread"]
    for name in ("fits.csv", "verdicts.csv", "summary.csv", "transfer.csv", "report.json"):
        assert (a / name).read_bytes() == (b / name).read_bytes(), name
    miss = pd.read_csv(a / "missing.csv")
    assert len(miss) == 6 and (miss.pretrain == 0).all() and miss.intermediate.all()


def test_demo_sized_single_seed_results_degrade_gracefully(tmp_path, capsys):
    ds = example_results(0, seeds=(0,)).sel(pretrain=[45_000, 100_000])
    ds = ds.assign_coords(finetune=[16, 32, 64, 128, 256, 512]).isel(finetune=slice(0, 4))
    nc = write_results(ds, tmp_path / "demo.nc")
    out = tmp_path / "rep"
    assert main(["report", "--results", str(nc), "--out", str(out), "--n-boot", "5", "--no-plot"]) == 0
    check_contract(out)
    err = capsys.readouterr().err
    assert "no from-scratch" in err and "single seed" in err and "skipped" in err
    assert main(["fit-curves", "--results", str(tmp_path / "nope.nc")]) == 2
    assert "not found" in capsys.readouterr().err


def test_without_results_it_picks_what_make_paper_picks(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["fit-curves", "--n-boot", "5"]) == 2
    err = capsys.readouterr().err
    assert "results/paper/results.nc" in err and "results/demo/results.nc" in err and "make demo" in err
    write_results(example_results(0), tmp_path / "results" / "demo" / "results.nc")
    assert main(["fit-curves", "--n-boot", "5"]) == 0
    assert "using results/demo/results.nc" in capsys.readouterr().err
    write_results(example_results(1), tmp_path / "results" / "paper" / "results.nc")
    assert main(["paired-tests"]) == 0
    assert "using results/paper/results.nc" in capsys.readouterr().err
