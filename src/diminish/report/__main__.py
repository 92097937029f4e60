"""``python -m diminish.report``: the paper build's steps, one command each (used by paper/paper.mk).

    numbers  --results R --analysis A --out numbers.tex
    tables   --results R --analysis A --out-dir tables/
    figure   NAME --results R --analysis A --out NAME.pdf
    tex      --results R --analysis A --out paper.tex
    all      --results R --analysis A --out-dir DIR      (every step above, no LaTeX run)

``--examples`` defaults to ``examples.npz`` beside the results file.
"""

from __future__ import annotations

import argparse
import sys

from ..console import guard, one_line


def _inputs(args):
    from .inputs import load_inputs

    return load_inputs(args.results, args.analysis, args.examples)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m diminish.report", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)

    def common(p):
        p.add_argument("--results", required=True, help="results.nc")
        p.add_argument("--analysis", required=True, help="analysis report folder")
        p.add_argument("--examples", default=None, help="examples.npz (default: beside the results)")
        return p

    common(sub.add_parser("numbers", help="write numbers.tex")).add_argument("--out", required=True)
    common(sub.add_parser("tables", help="write every table")).add_argument("--out-dir", required=True)
    fp = common(sub.add_parser("figure", help="draw one figure"))
    fp.add_argument("name")
    fp.add_argument("--out", required=True)
    common(sub.add_parser("tex", help="render paper.tex")).add_argument("--out", required=True)
    common(sub.add_parser("all", help="every step except LaTeX")).add_argument("--out-dir", required=True)
    args = ap.parse_args(argv)

    from .inputs import ReportInputError

    try:
        inp = _inputs(args)
        if args.cmd == "numbers":
            from .numbers import write_numbers

            print(write_numbers(inp, args.out))
        elif args.cmd == "tables":
            from .tables import write_tables

            for p in write_tables(inp, args.out_dir):
                print(p)
        elif args.cmd == "figure":
            from .figures import module
            from .figures._common import save

            print(save(module(args.name).draw(inp), args.out))
        elif args.cmd == "tex":
            from .render import write_paper

            print(write_paper(inp, args.out))
        elif args.cmd == "all":
            from .build import build_all

            print(build_all(inp, args.out_dir))
    except BrokenPipeError:  # output closed early: console.guard ends quietly
        raise
    except (ReportInputError, OSError, ValueError, KeyError) as e:
        print(f"error: {one_line(e)}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(guard(main))
