"""LaTeX failures reported as ours: the generated file and line that stopped LaTeX, and what wrote that file.

``make paper`` runs latexmk on files this package generated. When LaTeX stops, the cause is in one of
them (a number, a caption, a table cell), so :func:`explain` reads ``paper.log`` and says, in a few
lines: the generated file and line (``paper/build/<name>/paper.tex:301``), LaTeX's message, the text
of that line, which step of the build wrote the file and from which template or function, and the
results file the build was made from (``results-path.txt``, as paper.mk writes it).

``python -m diminish.report.latexlog BUILD_DIR`` prints that (paper.mk calls it when latexmk fails);
:func:`diminish.report.build.compile_pdf` raises it as a :class:`LatexError`.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

# with -file-line-error: "./tables/fits.tex:12: Undefined control sequence."
_FILE_LINE = re.compile(r"^(?:\./)?([^\s:()]+\.(?:tex|sty|cls|bbl|aux)):(\d+): (.*)$", re.M)
_BANG = re.compile(r"^! (.*)$", re.M)      # without it: "! Dimension too large." ... "l.301 ..."
_LINE = re.compile(r"^l\.(\d+) ?(.*)$", re.M)
SHOWN = 160  # characters of the offending line printed


class LatexError(RuntimeError):
    """LaTeX stopped on a generated file; the message names the file, the line and what wrote it."""


@dataclass(frozen=True)
class Failure:
    file: str      # as the log names it, relative to the build folder ("paper.tex", "tables/fits.tex")
    line: int      # 0 when the log gives none
    message: str   # LaTeX's message


def first_failure(log: str) -> Failure | None:
    """The first error in a LaTeX log (``-file-line-error`` form first, then ``! ...`` with ``l.N``)."""
    m = _FILE_LINE.search(log)
    if m:
        return Failure(m.group(1), int(m.group(2)), m.group(3).strip())
    b = _BANG.search(log)
    if b:
        n = _LINE.search(log, b.end())
        return Failure("paper.tex", int(n.group(1)) if n else 0, b.group(1).strip())
    return None


def producer(name: str) -> str:
    """Which step of the build wrote a generated file, and from what."""
    p = Path(name)
    if p.name == "paper.tex":
        return ("paper.tex is rendered by `python -m diminish.report tex` from "
                "src/diminish/report/templates/paper.tex.j2 and numbers.json")
    if p.name == "numbers.tex":
        return "numbers.tex is written by `python -m diminish.report numbers` (report/numbers.py, report/macros_*.py)"
    if p.parent.name == "tables":
        return (f"tables/{p.name} is written by `python -m diminish.report tables`: the table function "
                f"{p.stem!r} of report/tables.py or report/tables_claims.py, through templates/table.tex.j2")
    if p.suffix in (".bbl", ".aux"):
        return f"{p.name} is written by LaTeX/BibTeX from paper.tex and references.bib"
    return f"{p.name} is not a file of this package's build (a LaTeX package: is the TeX installation complete?)"


def _line_text(folder: Path, f: Failure) -> str:
    path = folder / f.file
    if not f.line or not path.is_file():
        return ""
    lines = path.read_text(errors="replace").splitlines()
    if f.line > len(lines):
        return ""
    text = " ".join(lines[f.line - 1].split())
    return text[:SHOWN] + (" ..." if len(text) > SHOWN else "")


def _float_label(folder: Path, f: Failure) -> str:
    """'figure fig:transfer' when the failing line lies inside a figure or table environment (its label), else ''."""
    path = folder / f.file
    if not f.line or not path.is_file():
        return ""
    lines = path.read_text(errors="replace").splitlines()
    begin = next((k for k in range(min(f.line, len(lines)) - 1, -1, -1)
                  if re.search(r"\\(begin|end)\{(figure|table)\*?\}", lines[k])), None)
    if begin is None or "\\end{" in lines[begin]:
        return ""
    kind = re.search(r"\\begin\{(figure|table)", lines[begin]).group(1)
    for k in range(begin, len(lines)):
        m = re.search(r"\\label\{([^}]*)\}", lines[k])
        if m:
            return f"{kind} {m.group(1)}"
        if re.search(r"\\end\{(figure|table)", lines[k]):
            break
    return kind


def explain(folder: str | Path, log_name: str = "paper.log") -> str:
    """What stopped LaTeX in ``folder`` (a build folder holding ``paper.log``), in a few lines."""
    folder = Path(folder)
    log_path = folder / log_name
    if not log_path.is_file():
        return f"LaTeX failed and wrote no log ({log_path} is missing); see {folder / 'latexmk.out'}"
    f = first_failure(log_path.read_text(errors="replace"))
    if f is None:
        return f"LaTeX failed without an error line in its log; full log in {log_path}"
    where = f"{folder / f.file}:{f.line}" if f.line else str(folder / f.file)
    out = [f"LaTeX failed at {where}: {f.message}"]
    text = _line_text(folder, f)
    if text:
        out.append(f"  that line: {text}")
    inside = _float_label(folder, f)
    if inside:
        out.append(f"  inside {inside}")
    out.append(f"  {producer(f.file)}")
    results = folder / "results-path.txt"
    if results.is_file():
        out.append(f"  from the results {results.read_text().strip()} and its analysis")
    out.append(f"  full log: {log_path}")
    return "\n".join(out)



# the latexmk call of paper/paper.mk
LATEXMK = ["latexmk", "-pdf", "-interaction=nonstopmode", "-halt-on-error", "-file-line-error", "-silent",
           "paper.tex"]


def compile_pdf(out_dir: str | Path, bib: str | Path | None = None, timeout: float = 300) -> Path:
    """latexmk on ``out_dir/paper.tex`` as paper.mk runs it (``bib``: references.bib to copy beside it, if
    missing). Returns paper.pdf; a failure raises :class:`LatexError` naming the generated file and
    line, what wrote it and the log (:func:`explain`)."""

    out_dir = Path(out_dir)
    if bib is not None and not (out_dir / "references.bib").exists():
        shutil.copy(bib, out_dir / "references.bib")
    # the figures are included by name from figures/ (paper.tex sets \graphicspath)
    proc = subprocess.run(LATEXMK, cwd=out_dir, capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        raise LatexError(explain(out_dir))
    return out_dir / "paper.pdf"


def main(argv: list[str] | None = None) -> int:
    """``python -m diminish.report.latexlog BUILD_DIR``: print :func:`explain` of that folder to stderr."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m diminish.report.latexlog BUILD_DIR", file=sys.stderr)
        return 2
    print("paper: " + explain(args[0]), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
