"""Shared plumbing: loading either source, per-cell summaries, missing cells, stable CSV output.

Two kinds of input reach the analysis:

* a *per-seed* results Dataset (``results.nc``: dims pretrain, intermediate, finetune, seed), and
* a *summary* Dataset (the paper's tables: ``<metric>_mean``, ``<metric>_sd``, ``n`` without a
  seed dim), see :mod:`.reference`.

Every analysis function accepts both and says in its output which statistics it could use.
"""

# ruff: noqa: E741  (P, I, F: pre-training size, intermediate flag, fine-tune size, as in the study)
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from ..results import read_results
from .reference import load_reference

METRICS = ("miou", "accuracy")
CELL = ("pretrain", "intermediate", "finetune")
FLOAT_FORMAT = "%.10g"
# Results analysed when none are named: the full study's if present, else the demo's (as `make paper`).
DEFAULT_RESULTS = (Path("results/paper/results.nc"), Path("results/demo/results.nc"))


def default_results() -> Path:
    """The first of :data:`DEFAULT_RESULTS` that exists; an error naming both (and the demo) if none."""
    for path in DEFAULT_RESULTS:
        if path.is_file():
            return path
    raise FileNotFoundError(f"no --results given and neither {DEFAULT_RESULTS[0]} (the full study) nor "
                            f"{DEFAULT_RESULTS[1]} (the demo: make demo) exists; give --results PATH "
                            "or --reference paper")


def load(source: str | Path | xr.Dataset, spread: str = "sd", n_paper: int = 3) -> xr.Dataset:
    """``"paper"`` -> the paper's published tables; a path -> a results file; a Dataset is checked."""
    if isinstance(source, xr.Dataset):
        ds = source
    elif str(source) == "paper":
        return load_reference(spread=spread, n=n_paper)
    else:

        ds = read_results(source)
        ds.attrs.setdefault("source", str(source))
    if not is_summary(ds) and "seed" not in ds.dims:
        raise ValueError("dataset has neither a seed dim nor <metric>_mean variables")
    return ds


def is_summary(ds: xr.Dataset) -> bool:
    return "seed" not in ds.dims and any(f"{m}_mean" in ds for m in METRICS)


def check_metric(ds: xr.Dataset, metric: str) -> None:
    if metric not in METRICS:
        raise ValueError(f"metric must be one of {METRICS}, got {metric!r}")
    name = f"{metric}_mean" if is_summary(ds) else metric
    if name not in ds:
        raise ValueError(f"dataset has no variable {name!r}")


def n_seeds(ds: xr.Dataset) -> int:
    if is_summary(ds):
        return int(ds["n"].max())
    return int(ds.sizes["seed"])


def _loc(ds: xr.Dataset, dim: str, value) -> int | None:
    """Position of ``value`` on ``dim`` (pandas index lookup: much cheaper than ``.sel`` per cell)."""
    index = ds.indexes[dim]
    try:
        loc = index.get_loc(value)
    except KeyError:
        return None
    return loc if isinstance(loc, (int, np.integer)) else None


def has_cell(ds: xr.Dataset, P, I, F) -> bool:
    return all(_loc(ds, d, v) is not None for d, v in zip(CELL, (P, bool(I), F)))


def seed_values(ds: xr.Dataset, metric: str, P, I, F) -> np.ndarray:
    """Finite per-seed values of one cell (empty for summary data or a cell outside the grid)."""
    if is_summary(ds):
        return np.array([])
    locs = [_loc(ds, d, v) for d, v in zip(CELL, (P, bool(I), F))]
    if any(x is None for x in locs):
        return np.array([])
    da = ds[metric]
    if da.dims[:3] == CELL:
        v = np.asarray(da.variable.values[tuple(locs)], dtype=float)
    else:
        v = da.sel(pretrain=P, intermediate=I, finetune=F).values.astype(float)
    return v[np.isfinite(v)]


def cell_stats(ds: xr.Dataset, metric: str, P, I, F) -> tuple[float, float, int]:
    """(mean, sd, n) of one cell; sd NaN when n < 2; (NaN, NaN, 0) when the cell is empty."""
    if not has_cell(ds, P, I, F):
        return np.nan, np.nan, 0
    if is_summary(ds):
        sel = dict(pretrain=P, intermediate=I, finetune=F)
        m = float(ds[f"{metric}_mean"].sel(sel))
        if not np.isfinite(m):
            return np.nan, np.nan, 0
        return m, float(ds[f"{metric}_sd"].sel(sel)), int(ds["n"].sel(sel))
    v = seed_values(ds, metric, P, I, F)
    if len(v) == 0:
        return np.nan, np.nan, 0
    return float(v.mean()), float(v.std(ddof=1)) if len(v) > 1 else np.nan, len(v)


def summary(ds: xr.Dataset, metrics=METRICS) -> pd.DataFrame:
    """summary.csv: one row per cell and metric, every cell of the grid (n = 0 where missing)."""
    rows = []
    for m in metrics:
        check_metric(ds, m)
        for P in ds.pretrain.values:
            for I in ds.intermediate.values:
                for F in ds.finetune.values:
                    mean, sd, n = cell_stats(ds, m, P, I, F)
                    rows.append(dict(pretrain=int(P), intermediate=bool(I), finetune=int(F),
                                     metric=m, mean=mean, sd=sd, n=n))
    return pd.DataFrame(rows, columns=["pretrain", "intermediate", "finetune", "metric", "mean", "sd", "n"])


def missing(ds: xr.Dataset, metrics=METRICS) -> pd.DataFrame:
    """missing.csv: every (cell, seed) whose value is NaN in any analysed metric.

    For summary data the seed is left empty and the cell is listed once.
    """
    rows = []
    if is_summary(ds):
        for P in ds.pretrain.values:
            for I in ds.intermediate.values:
                for F in ds.finetune.values:
                    bad = [m for m in metrics
                           if not np.isfinite(float(ds[f"{m}_mean"].sel(pretrain=P, intermediate=I, finetune=F)))]
                    if bad:
                        rows.append(dict(pretrain=int(P), intermediate=bool(I), finetune=int(F),
                                         seed=pd.NA, variables=";".join(bad)))
    else:
        isnan = {m: ds[m].isnull() for m in metrics}
        for P in ds.pretrain.values:
            for I in ds.intermediate.values:
                for F in ds.finetune.values:
                    for s in ds.seed.values:
                        sel = dict(pretrain=P, intermediate=I, finetune=F, seed=s)
                        bad = [m for m in metrics if bool(isnan[m].sel(sel))]
                        if bad:
                            rows.append(dict(pretrain=int(P), intermediate=bool(I), finetune=int(F),
                                             seed=int(s), variables=";".join(bad)))
    out = pd.DataFrame(rows, columns=["pretrain", "intermediate", "finetune", "seed", "variables"])
    out["seed"] = out["seed"].astype("Int64")
    return out


def conditions(ds: xr.Dataset, metric: str) -> list[tuple[int, bool]]:
    """(pretrain, intermediate) pairs that hold at least one finite value."""
    out = []
    for P in ds.pretrain.values:
        for I in ds.intermediate.values:
            if any(cell_stats(ds, metric, P, I, F)[2] > 0 for F in ds.finetune.values):
                out.append((int(P), bool(I)))
    return out


def write_csv(df: pd.DataFrame, path: str | Path) -> Path:
    """CSV with a fixed float format, so identical numbers give byte-identical files."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    df.to_csv(path, index=False, float_format=FLOAT_FORMAT, lineterminator="\n")
    return path


@dataclass
class Notes:
    """Messages that must reach the user (missing cells, skipped fits, degraded statistics)."""
    items: list[str]

    def __init__(self):
        self.items = []

    def add(self, msg: str) -> None:
        if msg not in self.items:
            self.items.append(msg)


def attach(df: pd.DataFrame, notes: Notes | list[str]) -> pd.DataFrame:
    df.attrs["notes"] = list(notes.items if isinstance(notes, Notes) else notes)
    return df


def source_label(ds: xr.Dataset) -> str:
    return "paper tables (summary statistics)" if is_summary(ds) else str(ds.attrs.get("source", "results"))
