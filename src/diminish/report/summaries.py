"""Sentences that summarise many items (cells, points, conditions) instead of listing them one by one.

Pure functions, like :mod:`.statements`: each takes the items it speaks of and returns the sentence
as :class:`~.latex.Tex`. A list of skipped items becomes counts by reason and at most
:data:`EXAMPLES` examples; a spread over cells becomes its two ends. tests/test_summaries.py checks
each against the items it was given.
"""

from __future__ import annotations

import re

from .latex import Tex, escape, num

EXAMPLES = 2  # examples printed per reason at most


def spread_sentence(noun: str, cells: list[tuple[float, str]], unit: str = "points") -> Tex:
    """'Cell means of the difference range from -1.20 points (P=0, 20 fine-tuning images) to +0.40 points
    (...).' from (value, where) pairs; NaN values are left out; one value -> 'The only cell mean ... is';
    none -> '' (nothing to say)."""
    cells = [(float(v), w) for v, w in cells if v == v]
    if not cells:
        return Tex("")
    lo, hi = min(cells, key=lambda c: c[0]), max(cells, key=lambda c: c[0])
    if len(cells) == 1:
        return Tex(f"The only cell mean {escape(noun)} is {num(lo[0], sign=True)} {unit} ({escape(lo[1])}).")
    return Tex(f"Cell means {escape(noun)} range from {num(lo[0], sign=True)} {unit} ({escape(lo[1])}) to "
               f"{num(hi[0], sign=True)} {unit} ({escape(hi[1])}).")


def counted(items: list[tuple[str, str]], total: int, noun: str = "values", examples: int = EXAMPLES) -> Tex:
    """Items left out, as counts by reason with at most ``examples`` examples each, from (reason, example) pairs;
    a reason qualifies the noun ('with no finite effective data'). One reason: '34 of the 42 values with no
    finite ...: P = 0, F = 20; P = 100, F = 20; and 32 more'; several: '5 of the 40 values: 3 with ... (...),
    2 with ... (...)'. '' for none."""
    if not items:
        return Tex("")
    by: dict[str, list[str]] = {}
    for reason, example in items:
        by.setdefault(str(reason), []).append(str(example))

    def shown(ex: list[str]) -> str:
        more = len(ex) - examples
        return "; ".join(ex[:examples]) + (f"; and {more} more" if more > 0 else "")

    head = f"{len(items)} of the {total} {noun}" if total > len(items) else f"all {total} {noun}"
    if len(items) == 1 and total > 1:
        head = f"1 of the {total} {noun}"
    if len(by) == 1:
        (reason, ex), = by.items()
        return Tex(escape(f"{head} {reason}: {shown(ex)}"))
    return Tex(escape(f"{head}: " + ", ".join(f"{len(ex)} {reason} ({shown(ex)})" for reason, ex in by.items())))


def where_phrase(labels: list[str], noun: str, examples: int = EXAMPLES) -> str:
    """'no pre-training, with ...' for one; '5 conditions: A; B; and 3 more' for several (plain text)."""
    if len(labels) == 1:
        return labels[0]
    more = len(labels) - examples
    return f"{len(labels)} {noun}s: " + "; ".join(labels[:examples]) + (f"; and {more} more" if more > 0 else "")


_NUMBER = re.compile(r"(\d+(?:\.\d+)?)")


def merge_numbers(texts: list[str]) -> str:
    """Sentences that differ only in their numbers, as one: each number that varies becomes its range
    ('skipped: 1 to 3 fine-tune sizes < 4 needed'). The texts must share their words (:func:`word_key`)."""
    parts = [_NUMBER.split(t) for t in texts]
    out = list(parts[0])
    for k in range(1, len(out), 2):  # odd positions hold the numbers
        values = sorted({p[k] for p in parts}, key=float)
        out[k] = values[0] if len(values) == 1 else f"{values[0]} to {values[-1]}"
    return "".join(out)


def word_key(text: str) -> str:
    """A sentence with its numbers left out: the key of :func:`merge_numbers`."""
    return _NUMBER.sub("#", text)
