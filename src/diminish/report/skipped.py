"""What the analysis did not do, and why: the rows of the paper's "left out" table.

The analysis writes its notes into ``report.json`` as plain sentences, for every metric. The paper
keeps the notes of its own metric that say a test or fit was skipped (or not fitted, not tested,
not testable), turns a condition code such as ``P=0, I=True`` into words, and lists each once.
Notes that only describe what was done stay in ``report.json``.
"""

from __future__ import annotations

import re

from .inputs import Inputs
from .macros import condition_label, readable

_SKIP = re.compile(r"skipped|not fitted|not tested|not testable|not reported|too few|fewer than|no pooled",
                   re.IGNORECASE)
_COND = re.compile(r"^\s*P\s*=\s*(\d+)\s*,\s*I\s*=\s*(True|False)\s*:\s*")
_AT = re.compile(r"\bat P=(\d+), I=(True|False)\b")
_METRIC = re.compile(r"^\s*(miou|accuracy)\s*:\s*")


def skipped_rows(inp: Inputs) -> list[tuple[str, str]]:
    """(condition or 'whole study', what was left out and why), in the analysis's order, no repeats."""
    out: list[tuple[str, str]] = []
    for note in inp.analysis.report.get("notes", []):
        text = str(note)
        m = _METRIC.match(text)
        if m:
            if m.group(1) != inp.metric:
                continue
            text = text[m.end():]
        if not _SKIP.search(text):
            continue
        where = "whole study"
        c = _COND.match(text) or _AT.search(text)
        if c:
            where = condition_label(int(c.group(1)), c.group(2) == "True")
            text = text[c.end():] if c.re is _COND else text[:c.start()].rstrip() + text[c.end():]
        row = (where, readable(text.strip().rstrip(".")))
        if row not in out:
            out.append(row)
    return out
