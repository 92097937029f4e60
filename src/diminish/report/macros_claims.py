"""numbers.tex macros about the tested claims and their verdicts.

Claims checked once per condition are gathered into one entry with a count per verdict
("supported in 2, inconclusive in 5 of the 8 conditions"); study-level claims keep their own
verdict and estimate. How firmly the verdicts back the direction of the cell means ("significantly
in each cell", "significantly on average", "not significantly") is chosen here too. The tables
module uses the same grouping, so prose and tables agree.
"""

from __future__ import annotations

import re

import pandas as pd

from .inputs import Inputs
from .latex import Tex, escape, integer, interval, macro_name, num
from .macros import Numbers

_PER_CONDITION = re.compile(r"_(?:P\d+|F\d+)_I\d+$")
_CONDITION_TEXT = re.compile(r"\s*\((?:P|F)=[^)]*\)\s*$")


def claim_text(text: str) -> str:
    """Claim wording for print: the metric's proper name."""
    return re.sub(r"\bmiou\b", "mIoU", str(text))


def claim_groups(verdicts: pd.DataFrame) -> list[dict]:
    """Claims tested once per condition (ids ending in _P<n>_I<k> or _F<n>_I<k>) grouped into one
    entry each; study-level claims stay single. Order follows verdicts.csv."""
    groups: dict[str, dict] = {}
    for r in verdicts.itertuples():
        cid = str(r.claim_id)
        key = _PER_CONDITION.sub("", cid)
        per = key != cid
        g = groups.setdefault(key, dict(key=key, per_condition=per, claim=claim_text(_CONDITION_TEXT.sub("", str(r.claim))),
                                        rows=[]))
        g["rows"].append(r)
    for g in groups.values():
        verdicts_ = [str(r.verdict).strip() for r in g["rows"]]
        g["counts"] = {v: verdicts_.count(v) for v in ("supported", "not supported", "inconclusive")}
        g["n"] = len(verdicts_)
    return list(groups.values())


def group_phrase(g: dict) -> str:
    """'supported in 8 of the 8 conditions' / 'supported in 2, inconclusive in 5, not supported in 1 of the 8 conditions'."""
    n = g["n"]
    parts = [(v, k) for v, k in g["counts"].items() if k]
    if len(parts) == 1:
        v, k = parts[0]
        return f"{v} (in the only condition)" if n == 1 else f"{v} (in all {n} conditions)"
    return ", ".join(f"{v} in {k}" for v, k in parts) + f" of the {n} conditions"


def _firmness(strength: str, claimed_side: bool) -> str:
    """'significantly in each cell' / 'significantly on average' / 'not significantly', for a sentence
    whose direction is the claimed one (claimed_side) or the opposite one."""
    if claimed_side:
        return {"every": "significantly in each cell", "average": "significantly on average"}.get(
            strength, "not significantly")
    return "significantly on average" if strength == "reversed" else "not significantly"


def add_verdicts(n: Numbers, inp: Inputs) -> None:
    v = inp.analysis.verdicts
    counts = v["verdict"].astype(str).str.strip().value_counts()
    n.set("NClaims", integer(len(v)))
    n.set("NSupported", integer(int(counts.get("supported", 0))))
    n.set("NNotSupported", integer(int(counts.get("not supported", 0))))
    n.set("NInconclusive", integer(int(counts.get("inconclusive", 0))))
    n.flags["verdicts"] = {str(r.claim_id): str(r.verdict).strip() for r in v.itertuples()}
    n.flags["groups"] = {}
    ids = n.flags["verdicts"]

    def strength(every: str, average: str, fallback: bool) -> str:
        """How firmly the analysis backs the claimed direction: 'every' (the every-cell claim is
        supported), 'average' (the pooled claim is supported), 'reversed' (the pooled claim is not
        supported: significant the other way), 'means' (only the cell means point that way), 'none'."""
        if ids.get(every) == "supported":
            return "every"
        if ids.get(average) == "supported":
            return "average"
        if ids.get(average) == "not supported":
            return "reversed"
        return "means" if fallback else "none"

    pt = strength("PT_EVERY_CELL", "PT_HELPS", bool(n.flags.get("pretrain_all_positive")))
    it = strength("INT_EVERY_CELL", "INT_HURTS", bool(n.flags.get("intermediate_mostly_negative")))
    n.flags["pretrain_strength"], n.flags["intermediate_strength"] = pt, it
    # a parenthesis for the sentences that state the majority direction of the cell means
    pt_up = bool(n.flags.get("pretrain_majority_positive"))
    it_down = bool(n.flags.get("intermediate_mostly_negative"))
    n.set("PretrainFirmness", _firmness(pt, pt_up))
    n.set("IntermediateFirmness", _firmness(it, it_down))

    for g in claim_groups(v):
        if not g["per_condition"]:
            r = g["rows"][0]
            verdict = str(r.verdict).strip()
            n.set(macro_name("Verdict", g["key"]), Tex(r"\textit{" + str(escape(verdict)) + "}"))
            n.set(macro_name("Claim", g["key"]), escape(g["claim"]))
            n.set(macro_name("Estimate", g["key"]), Tex(f"{num(r.estimate)}, 95\\% CI {interval(r.ci_lo, r.ci_hi)}"))
            n.flags["groups"][g["key"]] = verdict
        else:
            n.set(macro_name("Group", g["key"]), group_phrase(g))
            n.set(macro_name("Claim", g["key"]), escape(g["claim"]))
            n.flags["groups"][g["key"]] = g["counts"]
