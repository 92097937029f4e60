"""The paper's headline claims, combined from the verdicts (headline.csv).

HL1 more pre-training and more fine-tuning data help (FT_HELPS_*, PT_EVERY_CELL, PT_HELPS).
HL2 both show diminishing returns in the paper's sense: each added image is worth less (DR_F_*,
DR_P_*: concave on a linear axis). HL2S the same in the strong sense: each doubling buys less,
towards a plateau below 100 % (H1_F_*, H1_P_*, H2_F_*). The two are named apart because a
log-linear curve satisfies the first and not the second. HL3 intermediate fine-tuning hurts
(INT_HURTS). Rows without intermediate fine-tuning only, except HL3. A headline holds ("yes") when
every component is supported, fails ("no") when any component is not supported, else
"inconclusive".
"""

from __future__ import annotations

import pandas as pd

HEADLINES = {
    "HL1": "more pre-training and more fine-tuning data improve the downstream metric",
    "HL2": "both pre-training and fine-tuning show diminishing returns (each added image is worth less)",
    "HL2S": "both show diminishing returns in the strong sense (each doubling buys less, towards a plateau)",
    "HL3": "intermediate fine-tuning on Intel classification lowers the downstream metric",
}


def _combine(*groups) -> str:
    """yes if every component of every group is supported (and no group is empty), no if any is
    not supported, else inconclusive."""
    v = [x for g in groups for x in g]
    if any(x == "not supported" for x in v):
        return "no"
    if v and all(len(list(g)) for g in groups) and all(x == "supported" for x in v):
        return "yes"
    return "inconclusive"


def headline(verdicts: pd.DataFrame) -> pd.DataFrame:
    """headline.csv: whether each headline claim holds (yes/no/inconclusive): HL1, HL2, HL2S, HL3."""
    v = verdicts
    rows = []
    for m in dict.fromkeys(v.metric):
        vm = v[v.metric == m]

        def sel(prefix, only_i0=False, vm=vm):
            keep = vm.claim_id.str.startswith(prefix)
            if only_i0:
                keep &= ~vm.claim_id.str.endswith("_I1")
            return vm[keep]

        def count(df):
            return ", ".join(f"{k}: {n}" for k, n in df.verdict.value_counts().sort_index().items()) or "none"

        ft, pt = sel("FT_HELPS", True), pd.concat([sel("PT_EVERY_CELL"), sel("PT_HELPS")])
        h1f, h1p, h2 = sel("H1_F", True), sel("H1_P", True), sel("H2_F", True)
        drf, drp = sel("DR_F", True), sel("DR_P", True)
        hl3 = sel("INT_HURTS")
        rows.append(dict(claim_id="HL1", claim=HEADLINES["HL1"], holds_in_ours=_combine(ft.verdict, pt.verdict),
                         detail=f"{m}; fine-tuning gains (no intermediate): {count(ft)}; pre-training gains: "
                                f"{count(pt)}", metric=m))
        rows.append(dict(claim_id="HL2", claim=HEADLINES["HL2"], holds_in_ours=_combine(drf.verdict, drp.verdict),
                         detail=f"{m}; gain per added fine-tuning image falls (no intermediate): {count(drf)}; "
                                f"gain per added pre-training image falls: {count(drp)}", metric=m))
        rows.append(dict(claim_id="HL2S", claim=HEADLINES["HL2S"],
                         holds_in_ours=_combine(pd.concat([h1f, h2]).verdict, h1p.verdict),
                         detail=f"{m}; falling per-doubling gains in F (no intermediate): {count(h1f)}; "
                                f"plateau in F identified: {count(h2)}; falling per-doubling gains in P: {count(h1p)}",
                         metric=m))
        rows.append(dict(claim_id="HL3", claim=HEADLINES["HL3"], holds_in_ours=_combine(hl3.verdict),
                         detail=f"{m}; pooled intermediate effect: {count(hl3)}; every cell: "
                                f"{count(sel('INT_EVERY_CELL'))}", metric=m))
    return pd.DataFrame(rows, columns=["claim_id", "claim", "holds_in_ours", "detail", "metric"])
