"""Our results beside the paper's, cell by cell, and the paper's headline claims in both.

Per common cell (pretrain, intermediate, finetune): both means and SDs, diff = ours - paper, a Welch
t from the summary statistics (column ``z``; Satterthwaite df in ``df``, two-sided ``p``), and
``within_tol`` = |diff| <= tolerance (percentage points, from the command line). The paper's
spread is read as an SD over n = 3 unless the reference was loaded with ``spread="se"``.
Cells present in only one of the two are listed in the notes, never silently dropped.
"""

# ruff: noqa: E741  (P, I, F: pre-training size, intermediate flag, fine-tune size, as in the study)
from __future__ import annotations

import numpy as np
import pandas as pd
import xarray as xr
from scipy import stats

from .common import Notes, attach, cell_stats, check_metric
from .reference import load_reference

DEFAULT_TOLERANCE = 2.0
COLS = ["metric", "pretrain", "intermediate", "finetune", "ours_mean", "ours_sd", "paper_mean", "paper_sd",
        "diff", "z", "p", "within_tol", "ours_n", "paper_n", "df"]


def compare_paper(ds: xr.Dataset, metric: str = "miou", tolerance: float = DEFAULT_TOLERANCE,
                  reference: xr.Dataset | None = None) -> pd.DataFrame:
    """compare.csv rows for one metric."""
    check_metric(ds, metric)
    if tolerance < 0:
        raise ValueError(f"tolerance must be >= 0, got {tolerance}")
    ref = reference if reference is not None else load_reference()
    notes = Notes()
    rows = []
    only_ours, only_paper = [], []
    keys = sorted({(int(P), bool(I), int(F)) for P in ds.pretrain.values for I in ds.intermediate.values
                   for F in ds.finetune.values}
                  | {(int(P), bool(I), int(F)) for P in ref.pretrain.values for I in ref.intermediate.values
                     for F in ref.finetune.values})
    for P, I, F in keys:
        in_ours = P in ds.pretrain.values and I in ds.intermediate.values and F in ds.finetune.values
        in_ref = P in ref.pretrain.values and I in ref.intermediate.values and F in ref.finetune.values
        mo, so, no = cell_stats(ds, metric, P, I, F) if in_ours else (np.nan, np.nan, 0)
        mp, sp, n_p = cell_stats(ref, metric, P, I, F) if in_ref else (np.nan, np.nan, 0)
        if no == 0 and n_p == 0:
            continue
        if no == 0:
            only_paper.append((P, I, F))
            continue
        if n_p == 0:
            only_ours.append((P, I, F))
            continue
        diff = mo - mp
        z = p = df = np.nan
        if no >= 2 and np.isfinite(so) and np.isfinite(sp):
            vo, vp = so**2 / no, sp**2 / n_p
            se = np.sqrt(vo + vp)
            if se > 0:
                z = diff / se
                df = (vo + vp) ** 2 / (vo**2 / (no - 1) + vp**2 / (n_p - 1))
                p = float(2 * stats.t.sf(abs(z), df))
        rows.append(dict(metric=metric, pretrain=P, intermediate=I, finetune=F, ours_mean=mo, ours_sd=so,
                         paper_mean=mp, paper_sd=sp, diff=diff, z=z, p=p, within_tol=bool(abs(diff) <= tolerance),
                         ours_n=no, paper_n=n_p, df=df))
    if only_paper:
        notes.add(f"{metric}: {len(only_paper)} paper cells have no counterpart in ours (e.g. P,I,F = "
                  f"{only_paper[0]}); ours has F in {sorted(int(f) for f in ds.finetune.values)}")
    if only_ours:
        notes.add(f"{metric}: {len(only_ours)} of our cells are not in the paper (e.g. P,I,F = {only_ours[0]})")
    if not rows:
        notes.add(f"{metric}: no cells in common with the paper: nothing to compare cell by cell")
    if any(r["ours_n"] < 2 for r in rows):
        notes.add(f"{metric}: cells with a single seed have no SD: z and p are left empty there")
    out = pd.DataFrame(rows, columns=COLS)
    out["within_tol"] = out["within_tol"].astype(bool)
    return attach(out, notes)


def headline_both(ours: pd.DataFrame, paper: pd.DataFrame) -> pd.DataFrame:
    """headline.csv with ``holds_in_paper`` beside ``holds_in_ours`` (both from headline.headline)."""
    p = paper.rename(columns={"holds_in_ours": "holds_in_paper", "detail": "detail_paper"})
    out = ours.merge(p[["claim_id", "metric", "holds_in_paper", "detail_paper"]], on=["claim_id", "metric"], how="left")
    return out[["claim_id", "claim", "holds_in_ours", "detail", "metric", "holds_in_paper", "detail_paper"]]
