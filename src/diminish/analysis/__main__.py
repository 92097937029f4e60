"""Command line: python -m diminish.analysis <subcommand> (--results PATH | --reference paper) ..."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from ..clihelp import HelpFormatter, examples
from .claims import claims
from .common import DEFAULT_RESULTS, METRICS, default_results, load, missing, write_csv
from .compare import DEFAULT_TOLERANCE, compare_paper, headline_both
from .curves import (
    FAMILIES,
    MAX_DELTA_AICC,
    MAX_PLATEAU_WIDTH,
    N_BOOT,
    curves_to_netcdf,
    fit_curves_detailed,
)
from .headline import headline
from .paired import paired_intermediate, paired_pretrain, pooled
from .pipeline import report
from .plots import plot_fits
from .reference import load_reference
from .transfer import transfer

EPILOG = ("Metrics are in percent (0-100). Outputs are described in analysis/README.md.\n\n"
          + examples("python -m diminish.analysis fit-curves --plot curves.png",
                     "python -m diminish.analysis paired-tests --reference paper",
                     "python -m diminish.analysis report --results results/demo/results.nc --out analysis/demo"))


def _fmt(col: str):
    if col in ("p", "p_t", "p_perm", "p_holm", "akaike_weight"):
        return lambda x: "" if pd.isna(x) else f"{x:.3g}"
    if col in ("f95", "f_eff", "d_t", "k"):
        return lambda x: "" if pd.isna(x) else ("inf" if np.isinf(x) else f"{x:,.0f}")
    return lambda x: "" if pd.isna(x) else f"{x:.2f}"


def show(df: pd.DataFrame, cols: list[str], title: str, out=None) -> None:
    out = out or sys.stdout
    print(f"\n== {title} ==", file=out)
    if df.empty:
        print("(no rows)", file=out)
        return
    d = df[[c for c in cols if c in df.columns]].copy()
    fm = {c: _fmt(c) for c in d.columns if d[c].dtype.kind == "f"}
    print(d.to_string(index=False, formatters=fm, na_rep=""), file=out)


def notes(*dfs) -> None:
    seen = []
    for df in dfs:
        for n in df.attrs.get("notes", []):
            if n not in seen:
                seen.append(n)
                print(f"warning: {n}", file=sys.stderr)


def _plateau_text(r) -> str:
    if r.family == "log2" or r.get("status") != "ok":
        return "-"
    ci = f"[{r.plateau_lo:.2f}, {r.plateau_hi:.2f}]"
    return f"{r.plateau:.2f} {ci}" if r.identified else f"n/a {ci}"


def _fit_kw(args) -> dict:
    return dict(max_plateau_width=args.max_plateau_width, max_delta_aicc=args.max_delta_aicc)


def _load(args):
    src = "paper" if args.reference else args.results
    ds = load(src, spread=args.paper_spread)
    kind = ("the paper's published tables (summary statistics: means, SDs, n = 3)" if args.reference
            else f"{args.results}")
    print(f"source: {kind}; metric: {args.metric}")
    if not args.reference:
        _warn_missing(ds)
    return ds


def _warn_missing(ds, show: int = 10) -> None:
    """Name the (cell, seed) entries that are NaN: they are left out of every statistic, never silently."""
    miss = missing(ds)
    if len(miss):
        cells = "; ".join(f"P={r.pretrain} I={r.intermediate} F={r.finetune} seed={r.seed} ({r.variables})"
                          for r in miss.head(show).itertuples())
        more = f"; and {len(miss) - show} more" if len(miss) > show else ""
        print(f"warning: {len(miss)} missing (NaN) entries, left out of every statistic: {cells}{more}",
              file=sys.stderr)


def cmd_fit_curves(args) -> int:
    ds = _load(args)
    fams = tuple(args.family) if args.family else tuple(FAMILIES)
    table, curves = fit_curves_detailed(ds, args.metric, families=fams, n_boot=args.n_boot, seed=args.seed,
                                        **_fit_kw(args))
    d = table.copy()
    d["plateau [95% CI]"] = [_plateau_text(r) for _, r in d.iterrows()]
    d["w"] = d.akaike_weight
    show(d, ["pretrain", "intermediate", "family", "params", "aicc", "w", "loo_error", "plateau [95% CI]",
             "f95", "gain_1000", "gain_2000", "gain_4000", "best", "reason"],
         f"curve fits of {args.metric} over fine-tune size F (gains: pp per doubling of F)")
    if args.out:

        write_csv(table, Path(args.out) / "fits.csv")
        curves_to_netcdf(curves, Path(args.out) / "curves.nc")
        print(f"wrote {args.out}/fits.csv and curves.nc")
    if args.plot:

        p = plot_fits(ds, table, curves, args.metric, args.plot, family=args.plot_family)
        print(f"wrote {p}")
    notes(table)
    return 0


def cmd_paired(args) -> int:
    ds = _load(args)
    pi, pp, po = paired_intermediate(ds, args.metric), paired_pretrain(ds, args.metric), pooled(ds, args.metric)
    cols = ["n", "mean_treated", "mean_baseline", "mean_delta", "se", "ci_lo", "ci_hi", "t", "p_t", "p_perm", "dz",
            "d_pooled", "p_holm"]
    show(pi, ["pretrain", "finetune"] + cols, "intermediate effect: I=True - I=False (pp)")
    show(pp, ["pretrain", "intermediate", "finetune"] + cols, "pre-training effect: P - (P = 0) (pp)")
    show(po, ["effect", "term", "estimate", "se", "ci_lo", "ci_hi", "p"], "pooled models (pp)")
    methods = sorted(set(pi.get("method", pd.Series(dtype=str))) | set(pp.get("method", pd.Series(dtype=str))))
    for m in methods:
        print(f"method: {m}")
    if len(po):
        print(f"pooled model: {po.model.iloc[0]}")
    if args.out:
        for name, df in (("paired_intermediate", pi), ("paired_pretrain", pp), ("pooled", po)):
            write_csv(df, Path(args.out) / f"{name}.csv")
        print(f"wrote {args.out}/paired_intermediate.csv, paired_pretrain.csv, pooled.csv")
    notes(pi, pp, po)
    return 0


def cmd_claims(args) -> int:
    ds = _load(args)
    v = claims(ds, args.metric, n_boot=args.n_boot, seed=args.seed, **_fit_kw(args))
    show(v, ["claim_id", "statistic", "estimate", "ci_lo", "ci_hi", "p", "verdict"], f"verdicts ({args.metric})")
    h = headline(v)
    show(h, ["claim_id", "claim", "holds_in_ours"], "the paper's headline claims")
    for r in h.itertuples():
        print(f"  {r.claim_id}: {r.detail}")
    if args.out:
        write_csv(v, Path(args.out) / "verdicts.csv")
        write_csv(h, Path(args.out) / "headline.csv")
        print(f"wrote {args.out}/verdicts.csv and headline.csv")
    notes(v)
    return 0


def cmd_transfer(args) -> int:
    ds = _load(args)
    t, tf = transfer(ds, args.metric, family=args.family, n_boot=0, seed=args.seed)
    show(t, ["pretrain", "intermediate", "finetune", "score", "f_eff", "d_t", "extrapolated"],
         "effective data transferred: F_eff from the from-scratch curve, D_T = F_eff - F")
    show(tf, ["pretrain", "intermediate", "k", "alpha", "alpha_ci_lo", "alpha_ci_hi", "n_points", "n_extrapolated"],
         "fit D_T = k F^alpha (log space, points with D_T > 0)")
    if args.out:
        write_csv(t, Path(args.out) / "transfer.csv")
        write_csv(tf, Path(args.out) / "transfer_fit.csv")
        print(f"wrote {args.out}/transfer.csv and transfer_fit.csv")
    notes(t, tf)
    return 0


def cmd_compare(args) -> int:
    ds = _load(args)
    ref = load_reference(spread=args.paper_spread)
    c = compare_paper(ds, args.metric, tolerance=args.tolerance, reference=ref)
    show(c, ["pretrain", "intermediate", "finetune", "ours_mean", "ours_sd", "paper_mean", "paper_sd", "diff", "z",
             "p", "within_tol"], f"ours vs paper, {args.metric} (tolerance {args.tolerance:g} pp; z = Welch t)")
    if len(c):
        print(f"within tolerance: {int(c.within_tol.sum())} of {len(c)} cells")
    v_ours = claims(ds, args.metric, n_boot=args.n_boot, seed=args.seed, **_fit_kw(args))
    v_paper = v_ours if args.reference else claims(ref, args.metric, n_boot=args.n_boot, seed=args.seed,
                                                   **_fit_kw(args))
    h = headline_both(headline(v_ours), headline(v_paper))
    show(h, ["claim_id", "claim", "holds_in_ours", "holds_in_paper"], "the paper's headline claims")
    if args.out:
        write_csv(c, Path(args.out) / "compare.csv")
        write_csv(h, Path(args.out) / "headline.csv")
        print(f"wrote {args.out}/compare.csv and headline.csv")
    notes(c)
    return 0


def cmd_report(args) -> int:
    src = "paper" if args.reference else args.results
    info = report(src, args.out, metric=args.metric, n_boot=args.n_boot, seed=args.seed, tolerance=args.tolerance,
                  spread=args.paper_spread, plot=not args.no_plot, **_fit_kw(args))
    out = Path(args.out)
    print(f"source: {info['source_kind']} ({info['results']}); primary metric {info['metric']}")
    v = pd.read_csv(out / "verdicts.csv")
    show(v, ["claim_id", "estimate", "ci_lo", "ci_hi", "p", "verdict"], f"verdicts ({info['metric']})")
    h = pd.read_csv(out / "headline.csv")
    show(h, ["claim_id", "claim", "holds_in_ours", "holds_in_paper"], "headline claims")
    print(f"\nwrote {len(info['files'])} files into {out}")
    for n in info["notes"]:
        print(f"warning: {n}", file=sys.stderr)
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m diminish.analysis", description=__doc__, epilog=EPILOG,
                                formatter_class=HelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    add_parser = sub.add_parser
    sub.add_parser = lambda *a, **kw: add_parser(*a, formatter_class=HelpFormatter, **kw)  # every subcommand

    def common(sp, boot=True):
        g = sp.add_mutually_exclusive_group()
        g.add_argument("--results", type=Path,
                       help=f"a results.nc file (default: {DEFAULT_RESULTS[0]} if present, else {DEFAULT_RESULTS[1]})")
        g.add_argument("--reference", choices=["paper"], help="the paper's published tables instead of results")
        sp.add_argument("--metric", choices=METRICS, default="miou", help="metric to analyse (default miou)")
        sp.add_argument("--paper-spread", choices=["sd", "se"], default="sd",
                        help="read the paper's +/- as an SD (default) or a standard error over n = 3 runs")
        sp.add_argument("--seed", type=int, default=0, help="RNG seed for restarts and the bootstrap (default 0)")
        if boot:
            sp.add_argument("--n-boot", type=int, default=N_BOOT, help=f"bootstrap draws (default {N_BOOT})")
        sp.add_argument("--out", type=Path, help="also write this subcommand's CSV files into this folder")
        if boot:
            sp.add_argument("--max-plateau-width", type=float, default=MAX_PLATEAU_WIDTH,
                            help="widest plateau interval (pp) still called identified "
                                 f"(default {MAX_PLATEAU_WIDTH:g})")
            sp.add_argument("--max-delta-aicc", type=float, default=MAX_DELTA_AICC,
                            help=f"a family more than this AICc above the condition's best cannot identify a "
                                 f"plateau (default {MAX_DELTA_AICC:g})")

    sp = sub.add_parser("fit-curves", help="fit learning-curve families per condition", epilog=EPILOG)
    common(sp)
    sp.add_argument("--family", nargs="+", choices=list(FAMILIES), help="families to fit (default all)")
    sp.add_argument("--plot", type=Path, help="write a figure (png/pdf/svg) of data, curves and bands")
    sp.add_argument("--plot-family", choices=list(FAMILIES), help="family drawn in the plot (default: each best)")
    sp.set_defaults(func=cmd_fit_curves)

    sp = sub.add_parser("paired-tests", help="intermediate and pre-training effects, per cell and pooled",
                        epilog=EPILOG)
    common(sp, boot=False)
    sp.set_defaults(func=cmd_paired)

    for name in ("claims", "verdicts"):
        sp = sub.add_parser(name, help="diminishing-returns and effect verdicts (supported / not / inconclusive)",
                            epilog=EPILOG)
        common(sp)
        sp.set_defaults(func=cmd_claims)

    sp = sub.add_parser("transfer", help="effective data transferred (Hernandez et al. 2021)", epilog=EPILOG)
    common(sp, boot=False)
    sp.add_argument("--family", choices=list(FAMILIES), help="from-scratch family to invert (default: best)")
    sp.set_defaults(func=cmd_transfer)

    sp = sub.add_parser("compare-paper", help="our cells beside the paper's, and its headline claims", epilog=EPILOG)
    common(sp)
    sp.add_argument("--tolerance", type=float, default=DEFAULT_TOLERANCE,
                    help=f"largest |difference| in pp counted as agreement (default {DEFAULT_TOLERANCE:g})")
    sp.set_defaults(func=cmd_compare)

    sp = sub.add_parser("report", help="run everything and write all outputs into --out", epilog=EPILOG)
    common(sp)
    out_action = next(a for a in sp._actions if a.dest == "out")
    out_action.required, out_action.help = True, "output folder (required)"
    sp.add_argument("--tolerance", type=float, default=DEFAULT_TOLERANCE, help="compare-paper tolerance (pp)")
    sp.add_argument("--no-plot", action="store_true", help="skip the curves_<metric>.png figures")
    sp.set_defaults(func=cmd_report)
    return p


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.results is None and not args.reference:
            args.results = default_results()
            print(f"no --results given: using {args.results} (the full study's results if present, "
                  "else the demo's, as make paper does)", file=sys.stderr)
        return args.func(args)
    except (FileNotFoundError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # output piped into head and closed early
        sys.stderr.close()
        return 0


if __name__ == "__main__":
    sys.exit(main())
