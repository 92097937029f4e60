"""The paper's headline claims, combined from the verdicts (headline.csv).

HL1 more pre-training and more fine-tuning data help (FT_HELPS_*, PT_EVERY_CELL, PT_HELPS).
HL2 both show diminishing returns in the paper's sense: each added image is worth less (DR_F_*,
DR_P_*: concave on a linear axis). HL2S the same in the strong sense: each doubling buys less,
towards a plateau below 100 % (H1_F_*, H1_P_*, H2_F_*). The two are named apart because a
log-linear curve satisfies the first and not the second. HL3 intermediate fine-tuning hurts
(INT_HURTS, INT_EVERY_CELL). Rows without intermediate fine-tuning only, except HL3. How the parts
combine is :data:`RULE` (:func:`combine`): "yes", "no", "not testable" or "inconclusive"; "not
testable" is its own verdict and never counts as inconclusive.
"""

from __future__ import annotations

import pandas as pd

HEADLINES = {
    "HL1": "more pre-training and more fine-tuning data improve the downstream metric",
    "HL2": "both pre-training and fine-tuning show diminishing returns (each added image is worth less)",
    "HL2S": "both show diminishing returns in the strong sense (each doubling buys less, towards a plateau)",
    "HL3": "intermediate fine-tuning on Intel classification lowers the downstream metric",
}


RULE = ("a headline claim holds (yes) when every testable component is supported; it fails (no) when any "
        "component is not supported; it is not testable when, with none not supported, one of its parts has no "
        "testable component; otherwise it is inconclusive")


def combine(*groups) -> str:
    """The headline verdict from its parts (each an iterable of component verdicts), by :data:`RULE`:
    "no" if any component is not supported; else "not testable" if a part is empty or has only "not testable"
    components; else "yes" if every testable component is supported; else "inconclusive"."""
    parts = [[str(x).strip() for x in g] for g in groups]
    flat = [x for g in parts for x in g]
    if "not supported" in flat:
        return "no"
    if not parts or any(all(x == "not testable" for x in g) for g in parts):
        return "not testable"
    if all(x in ("supported", "not testable") for x in flat):
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
        rows.append(dict(claim_id="HL1", claim=HEADLINES["HL1"], holds_in_ours=combine(ft.verdict, pt.verdict),
                         detail=f"{m}; fine-tuning gains (no intermediate): {count(ft)}; pre-training gains: "
                                f"{count(pt)}", metric=m))
        rows.append(dict(claim_id="HL2", claim=HEADLINES["HL2"], holds_in_ours=combine(drf.verdict, drp.verdict),
                         detail=f"{m}; gain per added fine-tuning image falls (no intermediate): {count(drf)}; "
                                f"gain per added pre-training image falls: {count(drp)}", metric=m))
        rows.append(dict(claim_id="HL2S", claim=HEADLINES["HL2S"],
                         holds_in_ours=combine(pd.concat([h1f, h2]).verdict, h1p.verdict),
                         detail=f"{m}; falling per-doubling gains in F (no intermediate): {count(h1f)}; "
                                f"plateau in F identified: {count(h2)}; falling per-doubling gains in P: {count(h1p)}",
                         metric=m))
        int_cells = sel("INT_EVERY_CELL")
        rows.append(dict(claim_id="HL3", claim=HEADLINES["HL3"], holds_in_ours=combine(hl3.verdict, int_cells.verdict),
                         detail=f"{m}; pooled intermediate effect: {count(hl3)}; every cell: {count(int_cells)}",
                         metric=m))
    return pd.DataFrame(rows, columns=["claim_id", "claim", "holds_in_ours", "detail", "metric"])
