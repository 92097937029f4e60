"""``python -m diminish.report``: the paper build's steps, one command each (used by paper/paper.mk).

    numbers  --results R --analysis A --out-file numbers.tex    (and numbers.json beside it)
    tables   --results R --analysis A --out tables/
    figure   NAME --results R --analysis A --out-file NAME.pdf
    tex      --results R --analysis A [--numbers numbers.json] --out-file paper.tex
    all      --results R --analysis A --out DIR      (every step above, no LaTeX run)

The numbers are computed once, by ``numbers``; ``tex`` reads them from ``numbers.json`` (default:
beside its ``--out-file``) and refuses one computed from other inputs.

``--out`` is a folder and ``--out-file`` a file, as in every command (``--out-dir`` and a file-valued
``--out`` are still accepted).

``--examples`` defaults to ``examples.npz`` beside the results file.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..clihelp import HelpFormatter, examples, hidden_alias
from ..console import guard, one_line
from .build import build_all
from .figures import module
from .figures._common import save
from .inputs import ReportInputError, load_inputs
from .numbers import read_numbers, write_numbers
from .render import write_paper
from .tables import write_tables


def _inputs(args):
    return load_inputs(args.results, args.analysis, args.examples)


def main(argv: list[str] | None = None) -> int:
    ex = examples("python -m diminish.report all --results results/demo/results.nc --analysis analysis/demo "
                  "--out paper/build/demo",
                  "python -m diminish.report figure curves --results R.nc --analysis A --out-file curves.pdf")
    ap = argparse.ArgumentParser(prog="python -m diminish.report", description=__doc__,
                                 formatter_class=HelpFormatter, epilog=ex)
    sub = ap.add_subparsers(dest="cmd", required=True)

    def common(p):
        p.formatter_class, p.epilog = HelpFormatter, ex
        p.add_argument("--results", required=True, help="results.nc")
        p.add_argument("--analysis", required=True, help="analysis report folder")
        p.add_argument("--examples", default=None, help="examples.npz (default: beside the results)")
        return p

    def output(p, folder: bool):
        if folder:
            p.add_argument("--out", metavar="DIR", help="output folder (required)")
            hidden_alias(p, "--out-dir", "out")  # the old spelling
        else:
            p.add_argument("--out-file", metavar="FILE", help="output file (required)")
            hidden_alias(p, "--out", "out_file")  # the old spelling
        return p

    parsers = {
        "numbers": output(common(sub.add_parser("numbers", help="write numbers.tex")), False),
        "tables": output(common(sub.add_parser("tables", help="write every table")), True),
        "figure": output(common(sub.add_parser("figure", help="draw one figure")), False),
        "tex": output(common(sub.add_parser("tex", help="render paper.tex")), False),
        "all": output(common(sub.add_parser("all", help="every step except LaTeX")), True),
    }
    parsers["figure"].add_argument("name", help="the figure's module in report/figures/")
    parsers["tex"].add_argument("--numbers", metavar="FILE", default=None,
                                help="numbers.json written by the numbers step (default: beside --out-file)")
    args = ap.parse_args(argv)
    target = "out" if args.cmd in ("tables", "all") else "out_file"
    if getattr(args, target, None) is None:
        parsers[args.cmd].error(f"the following arguments are required: --{target.replace('_', '-')}")


    try:
        inp = _inputs(args)
        if args.cmd == "numbers":

            print(write_numbers(inp, args.out_file))
        elif args.cmd == "tables":

            for p in write_tables(inp, args.out):
                print(p)
        elif args.cmd == "figure":

            print(save(module(args.name).draw(inp), args.out_file))
        elif args.cmd == "tex":


            numbers = read_numbers(args.numbers or Path(args.out_file).with_name("numbers.json"), inp)
            print(write_paper(inp, args.out_file, numbers))
        elif args.cmd == "all":

            print(build_all(inp, args.out))
    except BrokenPipeError:  # output closed early: console.guard ends quietly
        raise
    except (ReportInputError, OSError, ValueError, KeyError) as e:
        print(f"error: {one_line(e)}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(guard(main))
