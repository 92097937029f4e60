"""A hand-made analysis folder with the contracted files and columns (no real statistics).

Lets the report be tested without running the analysis; the real analysis is exercised by
test_report_build.py when it is installed.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

FAMILIES = ("pow3", "exp3", "mmf4", "wbl4", "log2")


def _csv(df: pd.DataFrame, path: Path) -> None:
    df.to_csv(path, index=False, float_format="%.6g")


def write_fake_analysis(ds: xr.Dataset, out: Path, metric: str = "miou") -> Path:
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    P, I, F = (ds[d].values for d in ("pretrain", "intermediate", "finetune"))  # noqa: E741
    rows = []
    for m in ("accuracy", "miou"):
        mean = ds[m].mean("seed")
        sd = ds[m].std("seed", ddof=1)
        for p in P:
            for i in I:
                for f in F:
                    sel = dict(pretrain=p, intermediate=i, finetune=f)
                    rows.append(dict(pretrain=p, intermediate=bool(i), finetune=f, metric=m,
                                     mean=float(mean.sel(sel)), sd=float(sd.sel(sel)), n=len(ds.seed)))
    _csv(pd.DataFrame(rows), out / "summary.csv")

    fgrid = np.geomspace(F.min(), F.max(), 40)
    fit = np.zeros((2, len(P), len(I), len(FAMILIES), len(fgrid)))
    fits = []
    for mi, m in enumerate(("accuracy", "miou")):
        for pi, p in enumerate(P):
            for ii, i in enumerate(I):
                y = ds[m].sel(pretrain=p, intermediate=i).mean("seed").values
                coef = np.polyfit(np.log(F), y, 2)
                weights = np.array([0.5, 0.2, 0.15, 0.1, 0.05])
                for fi, fam in enumerate(FAMILIES):
                    fit[mi, pi, ii, fi] = np.polyval(coef, np.log(fgrid)) + 0.1 * fi
                    ident = fam != "log2" and not (pi == 0 and fam == "wbl4")
                    plateau = float(y.max() + 2 + pi) if ident else np.nan
                    fits.append(dict(metric=m, pretrain=p, intermediate=bool(i), family=fam,
                                     n_params=4 if fam in ("mmf4", "wbl4") else (2 if fam == "log2" else 3),
                                     params=json.dumps({"a": round(float(coef[2]), 3)}),
                                     aicc=10.0 + fi, delta_aicc=float(fi), akaike_weight=weights[fi],
                                     loo_error=0.5 + 0.1 * fi, plateau=plateau,
                                     plateau_lo=plateau - 1.5 if ident else np.nan,
                                     plateau_hi=plateau + 1.5 if ident else np.nan, identified=ident,
                                     f95=3000.0 if ident else np.nan, gain_1000=3.0 - 0.1 * pi,
                                     gain_2000=2.0 - 0.1 * pi, gain_4000=1.0 - 0.1 * pi, best=fi == 0))
    _csv(pd.DataFrame(fits), out / "fits.csv")
    coords = dict(metric=["accuracy", "miou"], pretrain=P, intermediate=I.astype(bool), family=list(FAMILIES),
                  f=fgrid)
    dims = ("metric", "pretrain", "intermediate", "family", "f")
    xr.Dataset({"fit": (dims, fit), "lo": (dims, fit - 1.0), "hi": (dims, fit + 1.0)},
               coords=coords).to_netcdf(out / "curves.nc")

    pi_rows, pp_rows, tr_rows, cmp_rows = [], [], [], []
    for m in ("accuracy", "miou"):
        for p in P:
            for f in F:
                d = (ds[m].sel(pretrain=p, finetune=f, intermediate=True)
                     - ds[m].sel(pretrain=p, finetune=f, intermediate=False)).values
                se = d.std(ddof=1) / np.sqrt(len(d))
                pi_rows.append(dict(metric=m, pretrain=p, finetune=f, n=len(d), mean_delta=d.mean(), se=se,
                                    t=d.mean() / se, p_t=0.01, p_perm=0.25, dz=d.mean() / d.std(ddof=1),
                                    p_holm=0.04, ci_lo=d.mean() - 4 * se, ci_hi=d.mean() + 4 * se,
                                    method="paired"))
            for i in I:
                for f in F:
                    if p == 0:
                        continue
                    d = (ds[m].sel(pretrain=p, finetune=f, intermediate=i)
                         - ds[m].sel(pretrain=0, finetune=f, intermediate=i)).values
                    se = d.std(ddof=1) / np.sqrt(len(d))
                    pp_rows.append(dict(metric=m, pretrain=p, intermediate=bool(i), finetune=f, n=len(d),
                                        mean_delta=d.mean(), se=se, t=d.mean() / se, p_t=0.001, p_perm=0.25,
                                        dz=1.0, p_holm=0.01, ci_lo=d.mean() - 4 * se, ci_hi=d.mean() + 4 * se,
                                        method="paired"))
                    tr_rows.append(dict(metric=m, pretrain=p, intermediate=bool(i), finetune=f,
                                        f_eff=f * (1 + p / 40000), d_t=f * p / 40000, extrapolated=f > 3000))
        for p in P:
            for i in I:
                for f in F:
                    ours = float(ds[m].sel(pretrain=p, intermediate=i, finetune=f).mean())
                    cmp_rows.append(dict(metric=m, pretrain=p, intermediate=bool(i), finetune=f, ours_mean=ours,
                                         ours_sd=0.3, paper_mean=ours + 0.7, paper_sd=0.2, diff=-0.7, z=-1.2,
                                         p=0.23, within_tol=True))
    _csv(pd.DataFrame(pi_rows), out / "paired_intermediate.csv")
    _csv(pd.DataFrame(pp_rows), out / "paired_pretrain.csv")
    _csv(pd.DataFrame(tr_rows), out / "transfer.csv")
    _csv(pd.DataFrame(cmp_rows), out / "compare.csv")
    _csv(pd.DataFrame([dict(metric=metric, pretrain=p, intermediate=bool(i), k=2.0, alpha=0.8, n_points=len(F))
                       for p in P if p for i in I]), out / "transfer_fit.csv")
    _csv(pd.DataFrame([
        dict(metric=metric, effect="intermediate", term="intermediate", estimate=-1.2, se=0.2, ci_lo=-1.6,
             ci_hi=-0.8, p=1e-5, model="mixedlm"),
        dict(metric=metric, effect="intermediate", term="intermediate:log_f", estimate=0.4, se=0.1, ci_lo=0.2,
             ci_hi=0.6, p=0.002, model="mixedlm"),
        dict(metric=metric, effect="pretrain", term="pretrain", estimate=5.0, se=0.5, ci_lo=4.0, ci_hi=6.0,
             p=1e-8, model="mixedlm"),
    ]), out / "pooled.csv")
    _csv(pd.DataFrame([
        dict(claim_id="H1_finetune", claim="Gain per doubling of fine-tune size shrinks with size",
             statistic="slope", estimate=-0.9, ci_lo=-1.2, ci_hi=-0.6, p=0.001, verdict="supported"),
        dict(claim_id="H2_plateau", claim="A plateau below 100% is identified", statistic="plateau",
             estimate=68.0, ci_lo=66.0, ci_hi=70.0, p=np.nan, verdict="inconclusive"),
        dict(claim_id="intermediate_hurts", claim="Intermediate fine-tuning lowers mIoU & accuracy",
             statistic="mean delta", estimate=-1.2, ci_lo=-1.6, ci_hi=-0.8, p=1e-5, verdict="supported"),
    ]), out / "verdicts.csv")
    _csv(pd.DataFrame([
        dict(claim_id="pretrain_helps", claim="Pre-training helps, most at small fine-tune sizes",
             holds_in_ours="yes", detail="all cells positive"),
        dict(claim_id="diminishing", claim="Diminishing returns", holds_in_ours="inconclusive", detail="n/a"),
        dict(claim_id="intermediate_hurts", claim="Intermediate fine-tuning hurts", holds_in_ours="yes",
             detail="every cell"),
    ]), out / "headline.csv")
    miss = ds.miou.isnull()
    mrows = [dict(pretrain=int(c["pretrain"]), intermediate=bool(c["intermediate"]), finetune=int(c["finetune"]),
                  seed=int(c["seed"])) for c in (miss.where(miss, drop=True).to_dataframe().reset_index()
                                                 .to_dict("records") if miss.any() else [])]
    _csv(pd.DataFrame(mrows, columns=["pretrain", "intermediate", "finetune", "seed"]), out / "missing.csv")
    (out / "report.json").write_text(json.dumps({"metric": metric, "results": "example", "config_hash": "example",
                                                 "synthetic": True, "n_seeds": len(ds.seed)}, indent=1))
    return out


if __name__ == "__main__":  # stand-in for `python -m diminish.analysis report` while developing
    import argparse

    from diminish.results import read_results

    ap = argparse.ArgumentParser()
    ap.add_argument("--results", required=True)
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    print(write_fake_analysis(read_results(a.results), Path(a.out)))
