"""The analysis folder's files: the one registry of what ``report`` writes and what each file promises.

Every other list of analysis outputs derives from :data:`OUTPUTS`:

* :mod:`.report` writes exactly these files (:data:`FILES` is their names, in this order, as
  ``report.json`` lists them); the per-metric PNG plots are extra and not registered;
* the paper build reads the files marked ``paper="required"`` (an error names a missing one) and
  ``paper="optional"`` (read when present: older analysis folders lack them), with the columns
  given here (``diminish.report.inputs`` builds its contract from :func:`paper_files`);
* ``paper/paper.mk`` lists the CSV files the paper reads in ``ANALYSIS_CSV``; a test checks that
  list against :func:`paper_files` (tests/test_registry.py).

``columns`` are the columns (for NetCDF the variables) every analysis promises and the paper
relies on; extra columns may follow. The full description of each file is in analysis/README.md.
"""

from __future__ import annotations

from dataclasses import dataclass

PAPER_KINDS = ("required", "optional", "")


@dataclass(frozen=True)
class Output:
    name: str                          # file name inside the analysis folder
    columns: tuple[str, ...] = ()      # columns (CSV) or variables (NetCDF) promised; extra may follow
    paper: str = "required"            # how the paper build reads it: "required", "optional" or "" (not read)

    def __post_init__(self):
        if self.paper not in PAPER_KINDS:
            raise ValueError(f"{self.name}: paper must be one of {PAPER_KINDS}, got {self.paper!r}")

    @property
    def stem(self) -> str:
        return self.name.rsplit(".", 1)[0]

    @property
    def is_csv(self) -> bool:
        return self.name.endswith(".csv")


CELL_STATS = ("pretrain", "intermediate", "finetune", "metric", "mean", "sd", "n")
_PAIRED = ("n", "mean_delta", "se", "t", "p_t", "p_perm", "dz", "p_holm", "ci_lo", "ci_hi", "method")
_VERDICTS = ("claim_id", "claim", "statistic", "estimate", "ci_lo", "ci_hi", "p", "verdict")
_HEADLINE = ("claim_id", "claim", "holds_in_ours", "detail")

OUTPUTS: tuple[Output, ...] = (
    # the one source of cell statistics (common.summary over common.cell_stats); the paper's cell
    # means and SDs are read from it (diminish.report.inputs.cell_table)
    Output("summary.csv", CELL_STATS),
    Output("fits.csv", ("metric", "pretrain", "intermediate", "family", "n_params", "params", "aicc", "delta_aicc",
                        "akaike_weight", "loo_error", "plateau", "plateau_lo", "plateau_hi", "identified", "f95",
                        "gain_1000", "gain_2000", "gain_4000", "best")),
    Output("curves.nc", ("fit", "lo", "hi")),
    Output("paired_intermediate.csv", ("metric", "pretrain", "finetune") + _PAIRED),
    Output("paired_pretrain.csv", ("metric", "pretrain", "intermediate", "finetune") + _PAIRED),
    Output("pooled.csv", ("metric", "effect", "term", "estimate", "se", "ci_lo", "ci_hi", "p", "model")),
    Output("verdicts.csv", _VERDICTS),
    Output("transfer.csv", ("metric", "pretrain", "intermediate", "finetune", "f_eff", "d_t", "extrapolated")),
    Output("transfer_fit.csv", ("metric", "pretrain", "intermediate", "k", "alpha", "n_points")),
    Output("compare.csv", ("metric", "pretrain", "intermediate", "finetune", "ours_mean", "ours_sd", "paper_mean",
                           "paper_sd", "diff", "z", "p", "within_tol")),
    Output("headline.csv", _HEADLINE),
    Output("missing.csv", ("pretrain", "intermediate", "finetune", "seed")),
    Output("report.json"),
    Output("plateaus.csv", ("metric", "pretrain", "intermediate", "family", "plateau", "plateau_lo", "plateau_hi",
                            "identified", "f95"), paper="optional"),
    Output("effect_by_f.csv", ("metric", "effect", "finetune", "estimate", "ci_lo", "ci_hi"), paper="optional"),
    Output("verdicts_all.csv", _VERDICTS, paper=""),
    Output("headline_all.csv", _HEADLINE, paper=""),
)
BY_NAME: dict[str, Output] = {o.name: o for o in OUTPUTS}
FILES: tuple[str, ...] = tuple(o.name for o in OUTPUTS)
if len(BY_NAME) != len(OUTPUTS):
    raise ValueError("analysis.outputs: a file is registered twice")


def paper_files(kind: str | None = None) -> tuple[Output, ...]:
    """The files the paper build reads: ``kind`` "required" or "optional", or both when None."""
    return tuple(o for o in OUTPUTS if o.paper and (kind is None or o.paper == kind))
