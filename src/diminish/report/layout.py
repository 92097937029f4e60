"""The layout check of the paper build: LaTeX's float and overfull warnings above a small threshold fail it.

``python -m diminish.report check-log paper/build/<name>/paper.log`` reads the log of the last
pdflatex run and lists, with the page each occurs on, every

* overfull vertical box while a page is shipped out (a figure, table or caption that runs into the
  footer or off the page) taller than :data:`VBOX_PT`,
* overfull horizontal box wider than :data:`HBOX_PT` (text or a table running into the margin),
* float too large for its page, float lost, or float specifier LaTeX had to change,

and exits 1 when there is any (``paper/paper.mk`` runs it after LaTeX, so the build fails).
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

VBOX_PT = 1.0   # a footer collision is tens of points; rounding noise is below 1 pt
HBOX_PT = 5.0   # a few points into the margin is invisible; more is a table or a word running out

_VBOX = re.compile(r"^Overfull \\vbox \((?P<pt>[\d.]+)pt too high\) has occurred while \\output is active")
_HBOX = re.compile(r"^Overfull \\hbox \((?P<pt>[\d.]+)pt too wide\)(?P<where>.*)")
_FLOAT = re.compile(r"LaTeX Warning: (Float too large for page by [\d.]+pt|Float\(s\) lost|"
                    r"`[htbp!]+' float specifier changed to `[htbp!]+')")
_PAGE = re.compile(r"\[(\d+)(?=[\s\]{<]|$)")


def problems(log: str, vbox_pt: float = VBOX_PT, hbox_pt: float = HBOX_PT) -> list[str]:
    """The layout problems in a pdflatex log, each as 'page N: what' (N: the page being built when LaTeX
    reported it, i.e. the last page shipped out plus one)."""
    out = []
    page = 0
    for line in log.splitlines():
        for m in _PAGE.finditer(line):
            page = max(page, int(m.group(1)))
        here = f"page {page + 1}"
        if m := _VBOX.match(line):
            if float(m.group("pt")) > vbox_pt:
                out.append(f"{here}: a page's content runs {float(m.group('pt')):.1f}pt past its text area "
                           "(a float or caption into the footer)")
        elif m := _HBOX.match(line):
            if float(m.group("pt")) > hbox_pt:
                out.append(f"{here}: a line runs {float(m.group('pt')):.1f}pt into the margin{m.group('where')}")
        elif m := _FLOAT.search(line):
            out.append(f"{here}: {m.group(1)}")
    return out


def check(path: str | Path, vbox_pt: float = VBOX_PT, hbox_pt: float = HBOX_PT) -> list[str]:
    return problems(Path(path).read_text(errors="replace"), vbox_pt, hbox_pt)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m diminish.report.layout", description=__doc__.split("\n\n")[0])
    ap.add_argument("log", help="paper.log of the last pdflatex run")
    ap.add_argument("--vbox-pt", type=float, default=VBOX_PT, help="largest overfull vbox allowed (pt)")
    ap.add_argument("--hbox-pt", type=float, default=HBOX_PT, help="largest overfull hbox allowed (pt)")
    a = ap.parse_args(argv)
    found = check(a.log, a.vbox_pt, a.hbox_pt)
    for p in found:
        print(f"paper: layout: {p}", file=sys.stderr)
    if found:
        print(f"paper: layout check failed ({len(found)} problem{'s' if len(found) != 1 else ''}; "
              f"log: {a.log})", file=sys.stderr)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
