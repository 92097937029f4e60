"""What the analysis did not do, and why: the rows of the paper's "left out" table.

The analysis writes its notes into ``report.json`` as plain sentences, for every metric. The paper
keeps the notes of its own metric that say a test or fit was skipped (or not fitted, not tested,
not testable, cannot be tested), takes the condition (``P=0, I=True``, ``pretrain=0, intermediate=True``) out of each,
and gives one row per reason: the reason (numbers
that differ between conditions shown as their range) and where it applies, counted, with at most
:data:`.summaries.EXAMPLES` examples. Notes that only describe what was done stay in ``report.json``.
"""

from __future__ import annotations

import re

from .inputs import Inputs
from .macros import condition_label, readable
from .summaries import merge_numbers, where_phrase, word_key

_SKIP = re.compile(r"skipped|not fitted|not tested|not testable|cannot be tested|not reported|too few|fewer than"
                   r"|no pooled", re.IGNORECASE)
_TF = r"(True|False)"
# (pattern, kind): a prefix naming a condition, or a condition inside the note
_WHERE = (
    (re.compile(r"^\s*P\s*=\s*(\d+)\s*,\s*I\s*=\s*" + _TF + r"\s*:\s*"), "condition"),
    (re.compile(r"^\s*pretrain=(\d+), intermediate=" + _TF + r"(?:, |\s*:\s*)"), "condition"),
    (re.compile(r"\b(?:at|for) P=(\d+), I=" + _TF + r"\b"), "condition"),
    (re.compile(r"\b(?:at|for) pretrain=(\d+), intermediate=" + _TF + r"\b"), "condition"),
)
_METRIC = re.compile(r"^\s*(miou|accuracy)\s*:\s*")


def _where(text: str) -> tuple[str, str, str]:
    """(the note without its condition, the condition in words or 'whole study', 'condition' or '')."""
    for pattern, kind in _WHERE:
        m = pattern.search(text)
        if not m:
            continue
        label = condition_label(int(m.group(1)), m.group(2) == "True")
        rest = text[m.end():] if m.start() == 0 else text[:m.start()].rstrip() + text[m.end():]
        return rest.strip(), label, kind
    return text.strip(), "whole study", ""


def skipped_rows(inp: Inputs) -> list[tuple[str, str]]:
    """(where: 'whole study', one condition, or 'N conditions: A; B; and K more'; what was left out and
    why), one row per reason, in the order the analysis first gives it."""
    groups: dict[tuple[str, str], list[tuple[str, str]]] = {}
    for note in inp.analysis.report.get("notes", []):
        text = str(note)
        m = _METRIC.match(text)
        if m:
            if m.group(1) != inp.metric:
                continue
            text = text[m.end():]
        if not _SKIP.search(text):
            continue
        what, label, kind = _where(text)
        what = readable(what.rstrip("."))
        members = groups.setdefault((word_key(what), kind), [])
        if (label, what) not in members:
            members.append((label, what))
    rows = []
    for (_, kind), members in groups.items():
        labels = list(dict.fromkeys(label for label, _ in members))
        rows.append((where_phrase(labels, kind or "place"), merge_numbers([w for _, w in members])))
    return rows
