"""What every group of numbers.tex macros shares: the collector and the wording helpers.

:class:`Numbers` gathers ``macros`` (name -> LaTeX) and ``flags`` (plain values the paper template
branches on) and refuses a macro name that is not all letters or is set twice. The wording
helpers live in :mod:`.statements` (re-exported here); this module adds the display names of
curve families and pooled-model terms, signed differences, and row selection. The macros themselves are filled in by the
``macros_*`` modules; :mod:`.numbers` runs them in order and writes the file.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from .latex import METRIC_LABEL, Tex, escape, num, size_label  # noqa: F401 - METRIC_LABEL re-exported
from .statements import count_phrase, join_words, plural  # noqa: F401 - re-exported

ALPHA = 0.05  # significance level for counting "significant" cells (Holm-adjusted p)


@dataclass
class Numbers:
    macros: dict[str, Tex] = field(default_factory=dict)
    flags: dict[str, object] = field(default_factory=dict)

    def set(self, name: str, value: object) -> None:
        if not name.isalpha():
            raise ValueError(f"macro name must be letters only: {name!r}")
        if name in self.macros:
            raise ValueError(f"macro {name} defined twice")
        self.macros[name] = value if isinstance(value, Tex) else escape(value)


def snum(x: object) -> Tex:
    """A signed difference in points: +13.41 / $-$0.52."""
    return num(x, sign=True)


def rows_where(df: pd.DataFrame, **eq) -> pd.DataFrame:
    """The rows of ``df`` whose columns equal the given values, e.g. ``rows_where(df, metric="miou")``."""
    mask = np.ones(len(df), dtype=bool)
    for k, v in eq.items():
        mask &= (df[k] == v).to_numpy()
    return df[mask]


# Curve families: display name and formula (y in percent, F fine-tune images, a the plateau), and the
# short name used as a column header in the fits table.
# tests/test_report_planted.py checks that every family of diminish.analysis has an entry.
FAMILY_TEX: dict[str, tuple[str, str]] = {
    "pow3": ("power law", r"y = a - b\,(F/1000)^{-c}"),
    "exp3": ("exponential", r"y = a - b\,e^{-F/s}"),
    "mmf4": ("Morgan--Mercer--Flodin", r"y = a - \frac{a-b}{1+(F/k)^{d}}"),
    "wbl4": ("Weibull", r"y = a - (a-b)\,e^{-(F/k)^{d}}"),
    "log2": ("log-linear", r"y = a + b \ln F"),
}


FAMILY_SHORT = {"pow3": "power", "exp3": "exp.", "mmf4": "MMF", "wbl4": "Weibull", "log2": "log-lin."}


def family_short(code: object) -> str:
    return FAMILY_SHORT.get(str(code), str(code))


def family_name(code: object) -> str:
    """A family's display name ('power law'); unknown codes print as they are."""
    return FAMILY_TEX.get(str(code), (str(code), ""))[0]


# Pooled-model terms: what the coefficient measures, in words.
TERM_TEXT = {
    "mean": "mean paired difference",
    "log2_finetune": "change per doubling of F",
    "log2_pretrain": "change per doubling of P",
    "pretrain_100k": "change per 100k pre-training images",
    "intermediate": "shift when the intermediate stage is on",
}


def readable(text: object) -> str:
    """Analysis wording for print: mIoU's proper name, pooled-model terms in words, no code quotes."""
    s = re.sub(r"\bmiou\b", "mIoU", str(text))
    s = re.sub(r"pooled model term '(\w+)'", lambda m: "pooled model: " + TERM_TEXT.get(m.group(1), m.group(1)), s)
    s = s.replace("pp/doubling^2", "points per doubling, per doubling").replace("(pp)", "(points)")
    return s


def condition_label(pretrain: object, intermediate: object | None = None) -> str:
    """'no pre-training, without the intermediate stage' / '45k pre-training images, with ...'."""
    p = int(pretrain)  # type: ignore[arg-type]
    head = "no pre-training" if p == 0 else f"{size_label(p)} pre-training images"
    if intermediate is None:
        return head
    return head + (", with the intermediate stage" if bool(intermediate) else ", without the intermediate stage")
