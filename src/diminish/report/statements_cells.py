"""A note on an average that rests on one cell, computed from the cell values it cites.

An average over a few cells can be carried by a single one: the sentence that quotes the average
then says so, naming that cell and the range of the others, so a reader does not take one cell's
result for a pattern.
"""

from __future__ import annotations

from .latex import Tex, escape, isnan, num


def rests_on_one(values: dict[str, float]) -> str | None:
    """The label of the cell an average rests on, or None: with at least 3 finite values, the cell of largest
    size whose removal turns the average's sign or shrinks it to under half."""
    vals = {k: float(v) for k, v in values.items() if not isnan(v)}
    if len(vals) < 3:
        return None
    mean = sum(vals.values()) / len(vals)
    top = max(vals, key=lambda k: abs(vals[k]))
    rest = [v for k, v in vals.items() if k != top]
    rest_mean = sum(rest) / len(rest)
    if mean == 0 or vals[top] * mean <= 0:
        return None
    return top if rest_mean * mean <= 0 or abs(rest_mean) < abs(mean) / 2 else None


def one_cell_note(where: str, values: dict[str, float]) -> Tex:
    """' (the average at F = 320 rests on one cell, P = 800 at +4.76; the other 3 lie between -0.20 and +0.10)'
    or '' when no single cell carries it."""
    top = rests_on_one(values)
    if top is None:
        return Tex("")
    rest = [float(v) for k, v in values.items() if k != top and not isnan(v)]
    return Tex(f" (the average {escape(where)} rests on one cell, {escape(top)} at {num(values[top], sign=True)}; "
               f"the other {len(rest)} lie between {num(min(rest), sign=True)} and {num(max(rest), sign=True)})")
