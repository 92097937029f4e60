"""Run every analysis into one folder (the contract in analysis/README.md)."""

from __future__ import annotations

import functools
import json
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from .. import __version__
from . import outputs
from .claims import claims
from .common import METRICS, is_summary, load, missing, n_seeds, summary, write_csv
from .compare import DEFAULT_TOLERANCE, compare_paper, headline_both
from .contrasts import pools
from .curves import (
    MAX_DELTA_AICC,
    MAX_PLATEAU_WIDTH,
    MIN_SEEDS_RESAMPLE,
    N_BOOT,
    curves_to_netcdf,
    fit_curves_detailed,
)
from .headline import headline
from .paired import DZ_MIN_N, PERM_ALPHA, paired_intermediate, paired_pretrain
from .plateaus import plateaus
from .plots import plot_fits
from .pooled import effect_by_f, pooled
from .reference import load_reference
from .transfer import transfer

# The files written below, in the order report.json lists them: the registry in .outputs.
FILES = outputs.FILES


def run_all(ds: xr.Dataset, metrics=METRICS, n_boot: int = N_BOOT, seed: int = 0, **fit_kw) -> dict:
    """Every table for every metric, in memory (keys are the file stems)."""
    out: dict = {"notes": []}
    fits, curves, pi, pp, po, tr, tf, ver, bf = [], [], [], [], [], [], [], [], []
    for m in metrics:
        f, c = fit_curves_detailed(ds, m, n_boot=n_boot, seed=seed, **fit_kw)
        fits.append(f)
        curves.append(c)
        pi.append(paired_intermediate(ds, m))
        pp.append(paired_pretrain(ds, m))
        po.append(pooled(ds, m))
        bf.append(effect_by_f(ds, m))
        t, tfit = transfer(ds, m, fits=f)
        tr.append(t)
        tf.append(tfit)
        ver.append(claims(ds, m, fits=f, paired_int=pi[-1], paired_pt=pp[-1], pooled_df=po[-1], by_f=bf[-1]))
        for df in (f, pi[-1], pp[-1], po[-1], bf[-1], t, tfit, ver[-1]):
            for n in df.attrs.get("notes", []):
                if n not in out["notes"]:
                    out["notes"].append(n)

    def cat(dfs):
        return pd.concat(dfs, ignore_index=True) if any(len(d) for d in dfs) else dfs[0]

    out.update(fits=cat(fits), curves=xr.concat(curves, dim="metric"), paired_intermediate=cat(pi),
               paired_pretrain=cat(pp), pooled=cat(po), effect_by_f=cat(bf), transfer=cat(tr),
               transfer_fit=cat(tf), verdicts_all=cat(ver))
    out["plateaus"] = plateaus(out["fits"])
    return out


@functools.lru_cache(maxsize=4)
def _paper_verdicts(metrics: tuple, n_boot: int, seed: int, spread: str, fit_kw: tuple) -> dict:
    """The analysis of the paper's own tables (for headline_all.csv's "holds in the paper" column): the same for
    every results file, so computed once per process and settings (a test suite reports on many files)."""
    return {"verdicts_all": run_all(load_reference(spread=spread), metrics, n_boot=n_boot, seed=seed,
                                    **dict(fit_kw))["verdicts_all"]}


def report(source, out_dir, metric: str = "miou", metrics=METRICS, n_boot: int = N_BOOT, seed: int = 0,
           tolerance: float = DEFAULT_TOLERANCE, spread: str = "sd", plot: bool = True,
           max_plateau_width: float = MAX_PLATEAU_WIDTH, max_delta_aicc: float = MAX_DELTA_AICC) -> dict:
    """Write every output into ``out_dir`` (the files of :data:`.outputs.OUTPUTS`, plus a PNG plot
    per metric with ``plot``); returns the report.json content.

    ``metric`` is the primary metric of verdicts.csv and headline.csv; the other tables carry every
    metric in ``metrics`` (with a ``metric`` column); verdicts_all.csv / headline_all.csv hold all.
    """
    ds = load(source, spread=spread)
    if metric not in metrics:
        metrics = (metric,) + tuple(m for m in metrics if m != metric)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    fit_kw = dict(max_plateau_width=max_plateau_width, max_delta_aicc=max_delta_aicc)
    res = run_all(ds, metrics, n_boot=n_boot, seed=seed, **fit_kw)
    notes = res["notes"]
    ref = load_reference(spread=spread)
    if is_summary(ds) and ds.attrs.get("source") == "paper":
        paper_res = res
    else:
        paper_res = _paper_verdicts(tuple(metrics), n_boot, seed, spread, tuple(sorted(fit_kw.items())))
    head_all = headline_both(headline(res["verdicts_all"]), headline(paper_res["verdicts_all"]))
    comp = []
    for m in metrics:
        c = compare_paper(ds, m, tolerance=tolerance, reference=ref)
        comp.append(c)
        notes.extend(n for n in c.attrs.get("notes", []) if n not in notes)
    comp = pd.concat(comp, ignore_index=True) if any(len(c) for c in comp) else comp[0]
    miss = missing(ds, metrics)
    if len(miss):
        what = "" if is_summary(ds) else " (cell, seed)"
        notes.insert(0, f"{len(miss)} missing (NaN) entries{what}; listed in missing.csv")
    write_csv(summary(ds, metrics), out_dir / "summary.csv")
    write_csv(res["fits"], out_dir / "fits.csv")
    curves_to_netcdf(res["curves"], out_dir / "curves.nc")
    for k in ("paired_intermediate", "paired_pretrain", "pooled", "effect_by_f", "plateaus", "transfer",
              "transfer_fit"):
        write_csv(res[k], out_dir / f"{k}.csv")
    va = res["verdicts_all"]
    write_csv(va[va.metric == metric], out_dir / "verdicts.csv")
    write_csv(va, out_dir / "verdicts_all.csv")
    write_csv(head_all[head_all.metric == metric], out_dir / "headline.csv")
    write_csv(head_all, out_dir / "headline_all.csv")
    write_csv(comp, out_dir / "compare.csv")
    write_csv(miss, out_dir / "missing.csv")
    figures = []
    if plot:

        for m in metrics:
            p = plot_fits(ds, res["fits"][res["fits"].metric == m], res["curves"], m, out_dir / f"curves_{m}.png")
            figures.append(p.name)
    summ = is_summary(ds)
    info = {
        "metric": metric,
        "metrics": list(metrics),
        "results": "paper" if str(source) == "paper" else str(source),
        "source_kind": "paper tables (summary statistics)" if summ else "per-seed results",
        "config_hash": str(ds.attrs.get("config_hash", "")),
        "config_name": str(ds.attrs.get("config_name", "")),
        "synthetic": bool(int(ds.attrs.get("synthetic", 0))),
        "n_seeds": n_seeds(ds),
        "pretrain": [int(x) for x in ds.pretrain.values],
        "intermediate": [bool(x) for x in ds.intermediate.values],
        "finetune": [int(x) for x in ds.finetune.values],
        "n_missing": int(len(miss)),
        "n_boot": n_boot,
        "seed": seed,
        "tolerance": tolerance,
        "max_plateau_width": max_plateau_width,
        "max_delta_aicc": max_delta_aicc,
        "paper_spread": ref.attrs["spread_assumption"],
        "statistics": ("Welch t from summary statistics (no per-seed values)" if summ
                       else "paired by seed: t, exact sign-flip permutation, Holm"),
        "small_n": small_n(ds),
        "headline": {r.claim_id: r.holds_in_ours for r in head_all[head_all.metric == metric].itertuples()},
        "headline_paper": {r.claim_id: r.holds_in_paper for r in head_all[head_all.metric == metric].itertuples()},
        "verdict_counts": {k: int(v) for k, v in va[va.metric == metric].verdict.value_counts().sort_index().items()},
        "files": list(FILES) + figures,
        "notes": notes,
        "version": __version__,
    }
    (out_dir / "report.json").write_text(json.dumps(_clean(info), indent=2, sort_keys=False) + "\n")
    return info


def small_n(ds: xr.Dataset) -> dict:
    """What the number of seeds allows, for the methods text (one source: the analysis modules' rules)."""
    if is_summary(ds):
        return {"per_seed": False}
    n = n_seeds(ds)
    return {
        "per_seed": True,
        "n_seeds": n,
        "p_perm_min": 2.0 / 2**n if n else None,
        "perm_informative": bool(n and 2.0 / 2**n <= PERM_ALPHA),
        "dz_reported": n >= DZ_MIN_N,
        "contrast_variance": "pooled over all cells" if pools(ds) else "each cell's own",
        "curve_bootstrap": ("residual bootstrap of each fit" if n < MIN_SEEDS_RESAMPLE
                            else "seeds resampled within each cell"),
    }


def _clean(o):
    if isinstance(o, dict):
        return {k: _clean(v) for k, v in o.items()}
    if isinstance(o, list):
        return [_clean(v) for v in o]
    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, (np.floating,)):
        return float(o)
    return o
