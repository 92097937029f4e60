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

import functools
import re
from pathlib import Path

import jinja2

from ..analysis.families import FAMILIES
from .figures import FIGURES
from .figures.examples import shown
from .figures.transfer import left_out
from .inputs import Inputs
from .latex import (
    METRIC_LABEL,
    Tex,
    breakable_tt,
    escape,
    integer,
    interval,
    macro_name,
    num,
    pm,
    pvalue,
    size_label,
)
from .macros import FAMILY_SHORT, FAMILY_TEX, condition_label
from .numbers import PREFIX, Numbers
from .skipped import skipped_rows
from .summaries import counted

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


def table_tex(caption: str | Tex, label: str, colspec: str, header: list[list], groups: list[list[list]], *,
              size: str = r"\small", note: str | Tex = "", rules: list[str] | None = None,
              float_env: str = "table") -> str:
    """One booktabs table from ``templates/table.tex.j2`` (a \\midrule between row groups)."""
    return render("table.tex.j2", caption=escape(caption), label=Tex(label), colspec=Tex(colspec),
                  header=header, groups=groups, size=Tex(size), note=escape(note) if note else "",
                  rules=[Tex(r) for r in (rules or [""] * len(header))], float=Tex(float_env))


@functools.lru_cache(maxsize=1)
def environment() -> jinja2.Environment:
    """The one jinja2 environment (made once: it caches the compiled templates, which are reloaded when changed)."""
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


def examples_label(cell: str) -> str:
    """The examples' cell in words: 'P=800 I=False F=320 seed=0' or 'pretrain=800 intermediate=False
    finetune=320 seed=0 (...)' -> '800 pre-training images, without the intermediate stage, 320
    fine-tuning images, seed 0'; text in another form is returned as it is."""
    m = re.match(r"\s*(?:P|pretrain)=(\d+)\s+(?:I|intermediate)=(\w+)\s+(?:F|finetune)=(\d+)\s+seed=(\d+)", str(cell))
    if not m:
        return str(cell)
    inter = m.group(2).lower() in ("true", "1", "yes")
    return f"{condition_label(int(m.group(1)), inter)}, {m.group(3)} fine-tuning images, seed {m.group(4)}"


def _pooled_p(inp: Inputs) -> tuple[Tex, Tex, bool]:
    """The pooled model's extra terms as fitted: (formula part, words, whether the intermediate model
    has a pre-trained-or-not term)."""
    pooled = inp.analysis.pooled
    terms = set(pooled["term"].astype(str))
    has_pre = "pretrained" in terms
    if "log2_pretrain" in terms:
        return (Tex(r"\beta_P\,(\log_2 P_c - \overline{\log_2 P})"),
                Tex(r"$\beta_P$ the change per doubling of $P$ (over the sizes $P>0$)"), has_pre)
    if "pretrain_100k" in terms:
        return (Tex(r"\beta_P\,(P_c - \bar P)/10^{5}"),
                Tex(r"$\beta_P$ the change per $10^5$ pre-training images (the text restates it over the "
                    r"measured span of $P$)"), has_pre)
    return Tex(""), Tex(r"there is no term in $P$"), has_pre


SYNTHETIC_NAMES = dict(imagenet_name=("a synthetic stand-in for the ImageNet-1K training images",
                                      "the ImageNet-1K training images"),
                       intel_name=("a synthetic stand-in for the Intel natural-scene set",
                                   "the Intel natural-scene set (buildings, forest, glacier, mountain, sea, street)"),
                       pets_name=("a synthetic stand-in for Oxford-IIIT Pet", "Oxford-IIIT Pet"),
                       syn_of_imagenet=(" (synthetic stand-ins for ImageNet-1K)", ""),
                       syn_of_pets=(" (synthetic stand-ins for Oxford-IIIT Pet)", ""))


def paper_context(inp: Inputs, numbers: Numbers) -> dict:
    """What paper.tex.j2 renders: ``numbers`` as computed by the numbers step (read back from
    numbers.json; this module never computes them) and a few values of the inputs."""
    m = {name: Tex(f"\\{PREFIX}{name}{{}}") for name in numbers.macros}
    syn = inp.synthetic
    formula, words, has_i = _pooled_p(inp)
    rep = inp.analysis.report

    def statement(key: str) -> Tex:
        return m.get(macro_name("Statement", key), Tex(""))

    families = [dict(name=escape(FAMILY_TEX[k][0]), short=escape(FAMILY_SHORT.get(k, k)), formula=Tex(FAMILY_TEX[k][1]),
                     k=len(FAMILIES[k].params))
                for k in FAMILIES if k in FAMILY_TEX]
    return dict(f=numbers.flags, n=m, attrs=inp.attrs, metric=inp.metric,
                metric_label=METRIC_LABEL[inp.metric],
                synthetic=syn, has_examples=inp.examples is not None,
                examples_cell=examples_label(inp.examples["cell"]) if inp.examples is not None else "",
                examples_shown=shown(inp) if inp.examples is not None else 0,
                examples_stored=len(inp.examples["image"]) if inp.examples is not None else 0,
                title=Tex(TITLE + (SYNTHETIC_TITLE if syn else "")),
                synmark=Tex(r"\textbf{[Synthetic demo data]} ") if syn else Tex(""),
                statement=statement, families=families, pooled_p_term=formula, pooled_p_words=words,
                pooled_has_pre=has_i, has_pvp="pretrain" in FIGURES, has_skipped=bool(skipped_rows(inp)),
                pooled_arms=_arms(inp), transfer_left_out=counted(*left_out(inp)),
                plateau_boot=_boot(inp),
                contrast_pooled=str(rep.get("small_n", {}).get("contrast_variance", "")) == "pooled over all cells",
                plateau_width=Tex(f"{float(rep.get('max_plateau_width', 10)):g}"),
                plateau_aicc=Tex(f"{float(rep.get('max_delta_aicc', 10)):g}"),
                **{k: v[0] if syn else v[1] for k, v in SYNTHETIC_NAMES.items()})


def _boot(inp: Inputs) -> str:
    """How the plateau intervals were resampled, in the analysis's words (fits.csv `boot`)."""
    fits = inp.analysis.fits
    if "boot" in fits.columns:
        kinds = sorted({str(b) for b in fits[fits["metric"] == inp.metric]["boot"].dropna()})
        if kinds:
            return "; ".join(kinds)
    return "bootstrap over seeds"  # older analyses record no method


def _arms(inp: Inputs) -> dict[str, str]:
    """Which paired differences each pooled model uses, in the analysis's words ('' when not recorded)."""
    pooled = inp.analysis.pooled
    out = {}
    for effect in ("pretrain", "intermediate"):
        rows = pooled[(pooled["effect"] == effect) & (pooled["metric"] == inp.metric)]
        arms = rows["arms"].iloc[0] if "arms" in rows.columns and len(rows) else ""
        out[effect] = str(arms) if isinstance(arms, str) else ""
    return out


TITLE = r"Small Data, Tiny Transformer: Re-measuring Diminishing Returns of Pre-training and Intermediate Fine-tuning"
SYNTHETIC_TITLE = r"\\[4pt] \large (synthetic demonstration data: not results about real images)"


def write_paper(inp: Inputs, path: str | Path, numbers: Numbers) -> Path:
    """paper.tex from the template, citing ``numbers`` (:func:`.numbers.read_numbers` of numbers.json)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render("paper.tex.j2", **paper_context(inp, numbers)))
    return path
