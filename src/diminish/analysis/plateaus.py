"""One plateau per condition (plateaus.csv): the value every table and sentence uses.

For each (metric, P, I) the condition's plateau comes from its best saturating family in fits.csv
(lowest AICc; by the leave-largest-out error where AICc is undefined). It counts as identified
only under the rule of :mod:`.curves` (not on a parameter bound, a finite bootstrap interval no
wider than the limit, the family within the AICc limit of the condition's best). Otherwise
``plateau``, ``plateau_lo``, ``plateau_hi`` and ``f95`` are NaN and the row says "not identified"
with the reason in words: a plateau on a bound (100 %, the ceiling of the parameter search) or with
an unbounded interval is not a measured plateau anywhere in the outputs.

The H2_F verdict (a plateau below 100 % in F) is decided here too, so verdicts.csv and any plateau
table cannot disagree: supported when the plateau is identified, its upper limit is below 100 and
the saturating families hold >= 0.9 of the Akaike weight; not supported when the log-linear family
(no plateau) holds >= 0.9; else inconclusive.
"""

# ruff: noqa: E741  (P, I: pre-training size, intermediate flag, as in the study)
from __future__ import annotations

import numpy as np
import pandas as pd

from .families import SATURATING

W_DECISIVE = 0.9
COLS = ["metric", "pretrain", "intermediate", "family", "plateau", "plateau_lo", "plateau_hi", "identified",
        "status", "reason", "f95", "w_saturating", "w_log2", "verdict", "rule"]
RULE = ("supported: plateau identified, its 95% upper limit below 100% and the saturating curves hold at least "
        f"{W_DECISIVE:.0%} of the Akaike weight; not supported: the log-linear curve (no plateau) holds at least "
        f"{W_DECISIVE:.0%}; otherwise inconclusive")


def _reason_words(reason: str) -> str:
    """The fit's reason string in words a reader can check."""
    out = []
    for part in (p.strip() for p in str(reason or "").split(";") if p.strip()):
        if part.startswith("on bound"):
            out.append("the fit sits on a bound of its parameters (" + part.split(":", 1)[-1].strip() + ")")
        elif part.startswith("interval width"):
            width, limit = (x.strip() for x in part.replace("interval width", "").split(">"))
            out.append(f"its 95% interval is {width} points wide, more than the {limit} allowed")
        elif part.startswith("interval reaches"):
            out.append("its 95% interval runs up to the 100% ceiling, so it has no upper limit")
        elif part.startswith("no bootstrap"):
            out.append("no bootstrap interval could be computed")
        elif part.startswith("rejected"):
            out.append("the data reject this curve (" + part.split(":", 1)[-1].strip() + ")")
        else:
            out.append(part)
    return "; ".join(out)


def condition_plateau(fits: pd.DataFrame, metric: str, P: int, I: bool) -> dict:
    """The plateaus.csv row of one condition."""
    sub = fits[(fits.metric == metric) & (fits.pretrain == P) & (fits.intermediate.astype(bool) == bool(I))
               & (fits.status == "ok")]
    sat = sub[sub.family.isin(SATURATING)]
    row = dict(metric=metric, pretrain=int(P), intermediate=bool(I), family="", plateau=np.nan, plateau_lo=np.nan,
               plateau_hi=np.nan, identified=False, status="not identified", reason="", f95=np.nan,
               w_saturating=np.nan, w_log2=np.nan, verdict="inconclusive", rule=RULE)
    if sat.empty:
        row["reason"] = "no saturating curve could be fitted"
        return row
    if np.isfinite(sat.aicc.to_numpy(float)).any():
        best = sat.loc[sat.aicc.astype(float).idxmin()]
    elif sat.loo_error.notna().any():
        best = sat.loc[sat.loo_error.abs().astype(float).idxmin()]
    else:
        best = sat.iloc[0]
    ident = bool(best.identified) and np.isfinite(float(best.plateau))
    w_sat = float(sat.akaike_weight.fillna(0).sum())
    w_log = float(sub[sub.family == "log2"].akaike_weight.fillna(0).sum())
    aic_ok = bool(np.isfinite(sub.aicc.to_numpy(float)).any())
    row.update(family=str(best.family), identified=ident, w_saturating=w_sat if aic_ok else np.nan,
               w_log2=w_log if aic_ok else np.nan)
    if ident:
        row.update(plateau=float(best.plateau), plateau_lo=float(best.plateau_lo), plateau_hi=float(best.plateau_hi),
                   f95=float(best.f95), status="identified")
    else:
        row["reason"] = _reason_words(best.reason) or "not identified"
    if not aic_ok:
        row["reason"] = "; ".join(x for x in (row["reason"], "too few points for AICc") if x)
    elif w_log >= W_DECISIVE:
        row["verdict"] = "not supported"
    elif ident and row["plateau_hi"] < 100 and w_sat >= W_DECISIVE:
        row["verdict"] = "supported"
    return row


def plateaus(fits: pd.DataFrame, metric: str | None = None) -> pd.DataFrame:
    """plateaus.csv: one row per (metric, P, I) present in ``fits``."""
    f = fits if metric is None else fits[fits.metric == metric]
    keys = f[["metric", "pretrain", "intermediate"]].drop_duplicates().itertuples(index=False)
    rows = [condition_plateau(fits, m, int(p), bool(i)) for m, p, i in keys]
    return pd.DataFrame(rows, columns=COLS)
