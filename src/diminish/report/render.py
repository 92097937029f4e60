"""jinja2 with LaTeX-safe delimiters, and the rendering of ``paper.tex``.

Template syntax (so braces and percent signs stay LaTeX's own)::

    \\VAR{expr}            a value: plain strings are escaped, :class:`Tex` is inserted as is,
                          ints are printed, floats are refused (format them first)
    \\BLOCK{for x in xs}   a statement (``if``/``for``/``set`` ...)
    \\#{ comment }         a comment

Undefined names are errors (``StrictUndefined``), so a typo fails the build instead of leaving
a silent gap in the paper.
"""

from __future__ import annotations

from pathlib import Path

import jinja2

from .inputs import Inputs
from .latex import Tex, breakable_tt, escape, integer, interval, num, pm, pvalue, size_label
from .numbers import PREFIX, Numbers, compute

TEMPLATES = Path(__file__).with_name("templates")
LEFTOVER_SYNTAX = ("\\VAR{", "\\BLOCK{", "\\#{")


def _finalize(value: object) -> str:
    if isinstance(value, Tex):
        return str(value)
    if isinstance(value, bool):
        raise TypeError(f"refusing to print a bool ({value}) in LaTeX; use a phrase")
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        raise TypeError(f"refusing to print an unformatted float ({value!r}); use num()/pm()")
    if value is None:
        raise TypeError("refusing to print None in LaTeX")
    return str(escape(value))


def cells(row: list) -> Tex:
    """One table row: cells escaped (unless already :class:`Tex`) and joined with ``&``."""
    out = []
    for c in row:
        if isinstance(c, float):
            raise TypeError(f"refusing to print an unformatted float ({c!r}) in a table")
        out.append(str(c) if isinstance(c, int) and not isinstance(c, bool) else str(escape(c)))
    return Tex(" & ".join(out))


def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES)),
        block_start_string="\\BLOCK{",
        block_end_string="}",
        variable_start_string="\\VAR{",
        variable_end_string="}",
        comment_start_string="\\#{",
        comment_end_string="}",
        line_statement_prefix=None,
        line_comment_prefix=None,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        autoescape=False,
        undefined=jinja2.StrictUndefined,
        finalize=_finalize,
    )
    env.filters.update(cells=cells, num=num, pm=pm, pvalue=pvalue, interval=interval, integer=integer,
                       size=size_label, tt=breakable_tt, tex=Tex, e=escape)
    return env


def render(template: str, **context: object) -> str:
    text = environment().get_template(template).render(**context)
    check_rendered(text, template)
    return text


def check_rendered(text: str, where: str) -> None:
    for s in LEFTOVER_SYNTAX:
        if s in text:
            raise ValueError(f"{where}: unrendered template syntax {s!r} left in the output")


def paper_context(inp: Inputs, numbers: Numbers | None = None) -> dict:
    numbers = numbers or compute(inp)
    m = {name: Tex(f"\\{PREFIX}{name}{{}}") for name in numbers.macros}
    return dict(f=numbers.flags, n=m, attrs=inp.attrs, metric=inp.metric,
                metric_label={"miou": "mIoU", "accuracy": "accuracy"}[inp.metric],
                synthetic=inp.synthetic, has_examples=inp.examples is not None,
                notes=[escape(str(x)) for x in inp.analysis.report.get("notes", [])],
                attrs_examples_cell=str(inp.examples["cell"]) if inp.examples is not None else "",
                title=Tex(TITLE), date=Tex(numbers.macros.get("ResultsDate", Tex(""))))


TITLE = r"Small Data, Tiny Transformer: Re-measuring Diminishing Returns of Pre-training and Intermediate Fine-tuning"


def write_paper(inp: Inputs, path: str | Path, numbers: Numbers | None = None) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render("paper.tex.j2", **paper_context(inp, numbers)))
    return path
