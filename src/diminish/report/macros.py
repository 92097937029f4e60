"""What every group of numbers.tex macros shares: the collector and the wording helpers.

:class:`Numbers` gathers ``macros`` (name -> LaTeX) and ``flags`` (plain values the paper template
branches on) and refuses a macro name that is not all letters or is set twice. The helpers turn
counts into English ("in 4 of the 6 cells", "3 seeds", "a, b and c"), print signed differences,
and pick rows of an analysis table by column values. The macros themselves are filled in by the
``macros_*`` modules; :mod:`.numbers` runs them in order and writes the file.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from .latex import Tex, escape, num

METRIC_LABEL = {"miou": "mIoU", "accuracy": "accuracy"}
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


def join_words(items: list[str]) -> str:
    items = [str(i) for i in items]
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


def plural(k: int, word: str) -> str:
    """'1 seed' / '3 seeds'."""
    return f"{k} {word}" if k == 1 else f"{k} {word}s"


def count_phrase(k: int, n: int, unit: str = "cells") -> str:
    """'in every one of the 6 cells' / 'in 4 of the 6 cells' / 'in none of the 6 cells'."""
    one = unit[:-1] if unit.endswith("s") else unit
    if n == 0:
        return f"in no {one} (nothing to compare)"
    if k == n:
        return f"in the only {one}" if n == 1 else f"in every one of the {n} {unit}"
    if k == 0:
        return f"in none of the {n} {unit}"
    return f"in {k} of the {n} {unit}"


def snum(x: object) -> Tex:
    """A signed difference in points: +13.41 / $-$0.52."""
    return num(x, sign=True)


def rows_where(df: pd.DataFrame, **eq) -> pd.DataFrame:
    """The rows of ``df`` whose columns equal the given values, e.g. ``rows_where(df, metric="miou")``."""
    mask = np.ones(len(df), dtype=bool)
    for k, v in eq.items():
        mask &= (df[k] == v).to_numpy()
    return df[mask]
