"""LaTeX text helpers: escaping, fixed number formats, macro names.

Everything the paper prints goes through these functions, so a number is always written the same
way (fixed decimals, no locale, no float repr) and two builds give byte-identical ``.tex`` files.

:class:`Tex` marks a string that is already LaTeX; anything else handed to a template is escaped.
"""

from __future__ import annotations

import math
import re

_SPECIALS = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
    "<": r"\textless{}",
    ">": r"\textgreater{}",
}
_SPECIAL_RE = re.compile("|".join(re.escape(k) for k in _SPECIALS))
DASH = "--"  # what a missing value prints as
METRIC_LABEL = {"miou": "mIoU", "accuracy": "accuracy"}  # a metric's name in prose, captions and figure labels


class Tex(str):
    """A string that is already valid LaTeX and must not be escaped again."""

    __slots__ = ()

    def __add__(self, other: str) -> Tex:
        return Tex(str(self) + (other if isinstance(other, Tex) else escape(other)))


def escape(text: object) -> Tex:
    """Escape LaTeX's special characters in plain text (a :class:`Tex` passes unchanged)."""
    if isinstance(text, Tex):
        return text
    s = str(text)
    s = _SPECIAL_RE.sub(lambda m: _SPECIALS[m.group(0)], s)
    # Characters pdflatex's default input encoding would choke on, mapped to ASCII/LaTeX.
    s = s.replace("\u00b1", r"\ensuremath{\pm}").replace("\u2013", "--").replace("\u2014", "---")
    s = s.replace("\u2212", "-").replace("\u00d7", r"\ensuremath{\times}").replace("\u0394", r"\ensuremath{\Delta}")
    s = s.encode("ascii", "replace").decode("ascii")
    return Tex(s)


def breakable_tt(text: object, run: int = 12) -> Tex:
    """Typewriter text (paths, hashes) that may break after ``/ _ - . , = :`` and inside long
    alphanumeric runs, so it never runs off the page."""
    out: list[str] = []
    alnum = 0
    for ch in str(text):
        out.append(str(escape(ch)))
        alnum = alnum + 1 if ch.isalnum() else 0
        if ch in "/_-.,=:" or alnum == run:
            out.append(r"\allowbreak{}")
            alnum = 0
    return Tex(r"\texttt{" + "".join(out) + "}")


def isnan(x: object) -> bool:
    try:
        return x is None or math.isnan(float(x))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return False


def num(x: object, digits: int = 2, *, sign: bool = False) -> Tex:
    """Fixed-point number with ``digits`` decimals; ``--`` for NaN/None; signs as math signs
    (``\\ensuremath``, so the result works in text and inside formulas alike)."""
    if isnan(x):
        return Tex(DASH)
    v = float(x)  # type: ignore[arg-type]
    if round(v, digits) == 0:
        v = 0.0  # never print -0.00
    s = f"{v:+.{digits}f}" if sign else f"{v:.{digits}f}"
    return Tex(s.replace("-", r"\ensuremath{-}").replace("+", r"\ensuremath{+}"))


def sci(x: object, sig: int = 3) -> Tex:
    """A number with ``sig`` significant figures, in scientific notation outside [0.01, 10^4)."""
    if isnan(x):
        return Tex(DASH)
    v = float(x)  # type: ignore[arg-type]
    if v == 0:
        return Tex("0")
    if 0.01 <= abs(v) < 1e4:
        digits = max(0, sig - 1 - int(math.floor(math.log10(abs(v)))))
        return num(v, digits)
    mant, exp = f"{v:.{sig - 1}e}".split("e")
    return Tex(f"\\ensuremath{{{mant}\\times 10^{{{int(exp)}}}}}")


def plain(x: object, digits: int = 2) -> str:
    """Fixed-point number as plain text (for figure labels): ``-`` stays a hyphen-minus."""
    if isnan(x):
        return "n/a"
    v = float(x)  # type: ignore[arg-type]
    return f"{0.0 if round(v, digits) == 0 else v:.{digits}f}"


def pm(mean: object, sd: object, digits: int = 2) -> Tex:
    """``mean ± sd``; ``--`` when the mean is missing, the mean alone when the SD is missing."""
    if isnan(mean):
        return Tex(DASH)
    if isnan(sd):
        return num(mean, digits)
    return Tex(f"{num(mean, digits)} \\ensuremath{{\\pm}} {num(sd, digits)}")


def pvalue(p: object) -> Tex:
    """p-values: three decimals, ``< 0.001`` below that."""
    if isnan(p):
        return Tex(DASH)
    v = float(p)  # type: ignore[arg-type]
    if v < 0.001:
        return Tex(r"\ensuremath{<}0.001")
    return Tex(f"{v:.3f}")


def interval(lo: object, hi: object, digits: int = 2) -> Tex:
    if isnan(lo) or isnan(hi):
        return Tex(DASH)
    return Tex(f"[{num(lo, digits)}, {num(hi, digits)}]")


def integer(n: object) -> Tex:
    """An integer with thin-space thousands separators (``200{,}000``)."""
    if isnan(n):
        return Tex(DASH)
    return Tex(f"{int(n):,}".replace(",", "{,}"))


def size_label(n: object) -> str:
    """Short data-size label as plain text: 250, 6000, 45k, 200k, 2M (exact values only)."""
    n = int(n)  # type: ignore[arg-type]
    if n >= 1_000_000 and n % 1_000_000 == 0:
        return f"{n // 1_000_000}M"
    if n >= 10_000 and n % 1_000 == 0:
        return f"{n // 1_000}k"
    return str(n)


def macro_name(*parts: object) -> str:
    """A valid LaTeX control-sequence name built from parts: letters only, digits spelled out."""
    words = {"0": "Zero", "1": "One", "2": "Two", "3": "Three", "4": "Four", "5": "Five",
             "6": "Six", "7": "Seven", "8": "Eight", "9": "Nine"}
    out = []
    for part in parts:
        s = str(part)
        s = "".join(words.get(c, c) for c in s)
        s = re.sub(r"[^A-Za-z]+", " ", s)
        out.append("".join(w[:1].upper() + w[1:] for w in s.split()))
    name = "".join(out)
    if not name or not name.isalpha():
        raise ValueError(f"cannot build a macro name from {parts!r}")
    return name
