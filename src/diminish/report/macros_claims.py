"""numbers.tex macros about the tested claims, their verdicts and the rules that decided them.

Claims checked once per condition are gathered into one entry with a count per verdict
("supported in 1 of the 8 conditions and inconclusive in the other 7"); study-level claims keep
their own verdict sentence. :func:`claim_groups`, :func:`claim_wording` and :func:`rule_of` are
also what the tables print, so a verdict and its rule read the same in prose and tables.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from .inputs import Inputs
from .latex import Tex, escape, integer, macro_name
from .macros import Numbers, condition_label, readable
from .statements import verdict_counts, verdict_sentence
from .statements_verdicts import decision_sentence, row_decision

VERDICTS = ("supported", "inconclusive", "not supported", "not testable")  # "not testable" is its own verdict
_PER_CONDITION = re.compile(r"_(?:P(\d+)|F(\d+))_I(\d)$")
_CONDITION_TEXT = re.compile(r"\s*\((?:P|F)=[^)]*\)\s*$")

# The claims in the paper's words (the verdict says whether the data bear them out; the rules of
# the analysis check the sign of the effect too, so "a penalty shrinks" is not supported where
# there is no penalty). A kind not listed prints the analysis's own wording.
CLAIM_WORDING = {
    "FT_HELPS": "more fine-tuning data raise {m}",
    "DR_F": "each added fine-tuning image raises {m} less than the one before (the curve is concave in F)",
    "DR_P": "each added pre-training image raises {m} less than the one before",
    "H1_F": "the gain per doubling of F falls as F grows",
    "H2_F": "{m} levels off below 100% as F grows (an identified plateau)",
    "H1_P": "the gain per doubling of P falls as P grows",
    "H2_P": "{m} levels off as P grows",
    "PT_EVERY_CELL": "pre-training raises {m} in every cell",
    "PT_HELPS": "pre-training raises {m} on average",
    "PT_SHRINKS_WITH_F": "the head start from pre-training narrows as F grows",
    "PT_GROWS_WITH_P": "the gain from pre-training grows with P",
    "INT_EVERY_CELL": "the intermediate stage lowers {m} in every cell",
    "INT_HURTS": "the intermediate stage lowers {m} on average",
    "INT_SHRINKS_WITH_F": "the penalty from the intermediate stage shrinks as F grows",
    "INT_WORSE_WITH_P": "the penalty from the intermediate stage grows with P",
}
# The side of zero each directional claim is made on.
CLAIM_SIGN = {"FT_HELPS": +1, "H1_F": -1, "H1_P": -1, "PT_HELPS": +1, "PT_SHRINKS_WITH_F": -1, "PT_GROWS_WITH_P": +1,
              "INT_HURTS": -1, "INT_SHRINKS_WITH_F": +1, "INT_WORSE_WITH_P": -1}
EVERY_CELL_RULE = ("supported if every cell differs in the claimed direction with Holm $p<0.05$; not supported if "
                   "any cell's 95\\% CI lies wholly on the other side; else inconclusive")
PLATEAU_RULE = ("supported if the best saturating family's plateau is identified with its upper limit below 100\\% "
                "and the saturating families hold at least 0.9 of the Akaike weight; not supported if the "
                "log-linear curve holds at least 0.9; else inconclusive")
UNTESTABLE_RULE = "not testable with fewer than 5 pre-training sizes above 0 (its own verdict, not inconclusive)"


def rule_of(kind: str, row: object = None) -> Tex:
    """The rule that decides a claim's verdict (the analysis's `rule` column when it has one)."""
    given = getattr(row, "rule", None)
    if isinstance(given, str) and given.strip():
        return escape(given.strip())
    if kind in CLAIM_SIGN:
        above, below = ("above", "below") if CLAIM_SIGN[kind] > 0 else ("below", "above")
        return Tex(f"supported if the 95\\% CI lies {above} 0, not supported if it lies {below} 0, else inconclusive")
    if kind.endswith("EVERY_CELL"):
        return Tex(EVERY_CELL_RULE)
    if kind == "H2_F":
        return Tex(PLATEAU_RULE)
    if kind == "H2_P":
        return Tex(UNTESTABLE_RULE)
    return Tex("as stated by the analysis")


def claim_text(text: str) -> str:
    """Claim wording for print: the metric's proper name, no condition code."""
    return readable(_CONDITION_TEXT.sub("", str(text)))


def claim_wording(kind: str, text: str, metric_label: str) -> str:
    w = CLAIM_WORDING.get(kind)
    return w.format(m=metric_label) if w else claim_text(text)


def condition_of(claim_id: str) -> str:
    """'no pre-training, without the intermediate stage' / 'F = 250, with the intermediate stage' / ''."""
    m = _PER_CONDITION.search(str(claim_id))
    if not m:
        return ""
    inter = m.group(3) == "1"
    if m.group(1) is not None:
        return condition_label(int(m.group(1)), inter)
    return f"F = {int(m.group(2))}, " + ("with" if inter else "without") + " the intermediate stage"


def claim_groups(verdicts: pd.DataFrame, metric_label: str = "mIoU") -> list[dict]:
    """Claims tested once per condition (ids ending in _P<n>_I<k> or _F<n>_I<k>) grouped into one
    entry each; study-level claims stay single. Order follows verdicts.csv."""
    groups: dict[str, dict] = {}
    for r in verdicts.itertuples():
        cid = str(r.claim_id)
        key = _PER_CONDITION.sub("", cid)
        g = groups.setdefault(key, dict(key=key, per_condition=key != cid, rows=[],
                                        claim=claim_wording(key, str(r.claim), metric_label)))
        g["rows"].append(r)
    for g in groups.values():
        vs = [str(r.verdict).strip() for r in g["rows"]]
        g["counts"] = {v: vs.count(v) for v in VERDICTS if vs.count(v)}
        g["n"] = len(vs)
    return list(groups.values())


def shows_estimate(kind: str, statistic: object) -> bool:
    """Whether a study-level claim's estimate is printed: directional claims only, and not a slope per
    100k pre-training images (the text restates that one over the measured span of P)."""
    return kind in CLAIM_SIGN and "pretrain_100k" not in str(statistic)


def estimate_unit(kind: str) -> str:
    if kind.startswith(("H1_",)):
        return "points per doubling, per doubling"
    if kind in ("FT_HELPS", "PT_SHRINKS_WITH_F", "INT_SHRINKS_WITH_F"):
        return "points per doubling of F"
    if kind in ("PT_GROWS_WITH_P", "INT_WORSE_WITH_P"):
        return "points per doubling of P"
    if kind == "H2_F":
        return "% plateau"
    return "points"


def add_verdicts(n: Numbers, inp: Inputs) -> None:
    v = inp.analysis.verdicts
    if "metric" in v.columns:
        v = v[v["metric"] == inp.metric]
    label = "mIoU" if inp.metric == "miou" else inp.metric
    counts = v["verdict"].astype(str).str.strip().value_counts()
    n.set("NClaims", integer(len(v)))
    n.set("ClaimCounts", verdict_counts({k: int(counts.get(k, 0)) for k in VERDICTS}, "tests"))
    n.flags["verdicts"] = {str(r.claim_id): str(r.verdict).strip() for r in v.itertuples()}
    n.flags["groups"] = {}
    for g in claim_groups(v, label):
        n.set(macro_name("Claim", g["key"]), escape(g["claim"]))
        if g["per_condition"]:
            n.set(macro_name("Group", g["key"]), verdict_counts(g["counts"]))
            n.flags["groups"][g["key"]] = g["counts"]
        else:
            r = g["rows"][0]
            verdict = str(r.verdict).strip()
            d = row_decision(r)
            if d["by"]:
                text = decision_sentence(g["claim"], verdict, d["by"], d["est"], d["lo"], d["hi"], d["unit"],
                                         d["need"])
            else:
                est = r.estimate if shows_estimate(g["key"], r.statistic) else np.nan
                text = verdict_sentence(g["claim"], verdict, est, r.ci_lo, r.ci_hi, estimate_unit(g["key"]))
            n.set(macro_name("Statement", g["key"]), text)
            n.flags["groups"][g["key"]] = verdict
