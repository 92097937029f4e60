"""Everything the paper is made from, loaded once and checked against the contracts.

* ``results.nc`` (:func:`diminish.results.read_results`; metrics in percent),
* ``examples.npz`` beside it (optional: without it the qualitative figure is left out),
* the analysis report folder written by ``python -m diminish.analysis report`` (CSV files, one
  NetCDF of fitted curves, ``report.json``).

A missing file or column raises :class:`ReportInputError` naming the file and what is missing.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from ..analysis.common import CELL
from ..analysis.families import SATURATING
from ..analysis.outputs import BY_NAME, paper_files
from ..config import ConfigError, ExperimentConfig, loads
from ..results import read_results


class ReportInputError(ValueError):
    """An input of the paper build is missing or does not follow its contract."""


# The analysis folder's contract: the files the paper reads and the columns it needs, from the one
# registry of analysis outputs (diminish.analysis.outputs; described in analysis/README.md).
ANALYSIS_FILES: dict[str, tuple[str, ...]] = {o.stem: o.columns for o in paper_files("required") if o.is_csv}
# Read when present (newer analyses write them; the report falls back to the files above).
OPTIONAL_FILES: dict[str, tuple[str, ...]] = {o.stem: o.columns for o in paper_files("optional") if o.is_csv}
CURVE_VARIABLES = BY_NAME["curves.nc"].columns
BOOL_COLUMNS = ("intermediate", "identified", "best", "extrapolated", "within_tol", "perm_informative")


def _to_bool(series: pd.Series, where: str) -> pd.Series:
    if series.dtype == bool:
        return series
    mapping = {"true": True, "false": False, "1": True, "0": False, "1.0": True, "0.0": False}
    out = series.map(lambda v: mapping.get(str(v).strip().lower()) if not pd.isna(v) else None)
    bad = series[out.isna() & series.notna()]
    if len(bad):
        raise ReportInputError(f"{where}: expected True/False, got {bad.iloc[0]!r}")
    return out.astype(object).where(out.notna(), None) if out.isna().any() else out.astype(bool)


def read_csv(path: Path, columns: tuple[str, ...]) -> pd.DataFrame:
    if not path.is_file():
        raise ReportInputError(f"analysis file missing: {path} (run `python -m diminish.analysis report`)")
    df = pd.read_csv(path, keep_default_na=True)
    lacking = [c for c in columns if c not in df.columns]
    if lacking:
        raise ReportInputError(f"{path}: missing column(s) {', '.join(lacking)}; has {', '.join(df.columns)}")
    for c in BOOL_COLUMNS:
        if c in df.columns:
            df[c] = _to_bool(df[c], f"{path} column '{c}'")
    return df


@dataclass
class Analysis:
    folder: Path
    tables: dict[str, pd.DataFrame]
    curves: xr.Dataset
    report: dict

    def __getattr__(self, name: str) -> pd.DataFrame:
        tables = self.__dict__.get("tables", {})
        if name in tables:
            return tables[name]
        raise AttributeError(name)


def load_analysis(folder: str | Path) -> Analysis:
    folder = Path(folder)
    if not folder.is_dir():
        raise ReportInputError(f"analysis folder not found: {folder}")
    tables = {name: read_csv(folder / f"{name}.csv", cols) for name, cols in ANALYSIS_FILES.items()}
    tables.update({name: read_csv(folder / f"{name}.csv", cols) for name, cols in OPTIONAL_FILES.items()
                   if (folder / f"{name}.csv").is_file()})
    curves_path = folder / "curves.nc"
    if not curves_path.is_file():
        raise ReportInputError(f"analysis file missing: {curves_path}")
    with xr.open_dataset(curves_path) as ds:
        curves = ds.load()
    for v in CURVE_VARIABLES:
        if v not in curves:
            raise ReportInputError(f"{curves_path}: missing variable '{v}'")
    if "intermediate" in curves.coords:
        curves = curves.assign_coords(intermediate=curves["intermediate"].astype(bool))
    report = read_json(folder / "report.json", "analysis file")
    return Analysis(folder=folder, tables=tables, curves=curves, report=report)


def read_json(path: Path, what: str, advice: str = ""):
    """A JSON file the report reads; a missing or malformed one is a :class:`ReportInputError`
    naming the file (``what`` it is, and ``advice`` on how to make it)."""
    tail = f"; {advice}" if advice else ""
    if not path.is_file():
        raise ReportInputError(f"{what} missing: {path}{tail}")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise ReportInputError(f"{path}: not valid JSON ({e}){tail}") from None


def load_examples(path: str | Path | None) -> dict | None:
    """examples.npz -> dict(image (n,H,W,3) uint8, truth (n,H,W), pred (n,H,W), cell str); None if absent."""
    if path is None:
        return None
    path = Path(path)
    if not path.is_file():
        return None
    with np.load(path, allow_pickle=False) as z:
        lacking = [k for k in ("image", "truth", "pred") if k not in z.files]
        if lacking:
            raise ReportInputError(f"{path}: missing array(s) {', '.join(lacking)}")
        out = {k: z[k] for k in ("image", "truth", "pred")}
        out["cell"] = str(z["cell"]) if "cell" in z.files else ""
    n = len(out["image"])
    if out["image"].ndim != 4 or out["truth"].shape[:1] != (n,) or out["pred"].shape != out["truth"].shape:
        raise ReportInputError(f"{path}: inconsistent shapes image {out['image'].shape}, "
                               f"truth {out['truth'].shape}, pred {out['pred'].shape}")
    return out


@dataclass
class Inputs:
    results: xr.Dataset
    analysis: Analysis
    examples: dict | None = None
    results_path: Path | None = None
    config: ExperimentConfig | None = None
    config_error: str = ""
    metric: str = "miou"
    notes: list[str] = field(default_factory=list)

    @property
    def attrs(self) -> dict:
        return dict(self.results.attrs)

    @property
    def synthetic(self) -> bool:
        v = self.results.attrs.get("synthetic", 0)
        if isinstance(v, str):
            return v.strip().lower() not in ("", "0", "false", "no")
        return bool(v)


def parse_config(attrs: dict) -> tuple[ExperimentConfig | None, str]:
    text = attrs.get("config_text")
    if not text:
        return None, "the results file records no configuration text"
    try:
        return loads(str(text), source="results.nc attrs['config_text']"), ""
    except ConfigError as e:
        return None, str(e)


def load_inputs(results: str | Path | xr.Dataset, analysis: str | Path | Analysis,
                examples: str | Path | None = None) -> Inputs:
    """Load the results, the analysis folder and (if not given) ``examples.npz`` beside the results."""
    if isinstance(results, xr.Dataset):
        ds, rpath = results, None
    else:
        rpath = Path(results)
        ds = read_results(rpath)
    if examples is None and rpath is not None:
        examples = rpath.parent / "examples.npz"
    an = analysis if isinstance(analysis, Analysis) else load_analysis(analysis)
    cfg, err = parse_config(ds.attrs)
    metric = str(an.report.get("metric", "miou"))
    if metric not in ("miou", "accuracy"):
        raise ReportInputError(f"{an.folder / 'report.json'}: unknown metric {metric!r}")
    return Inputs(results=ds, analysis=an, examples=load_examples(examples), results_path=rpath,
                  config=cfg, config_error=err, metric=metric)


def cell_table(inp: Inputs, metric: str) -> xr.Dataset:
    """Mean, sample SD and count over seeds of one metric for every cell of the results' grid, as the
    analysis computed them: read from ``summary.csv``, the one source of cell statistics (each row is
    ``analysis.common.cell_stats`` of one cell: NaN seeds skipped, SD with ddof 1 and NaN below 2
    seeds, n = 0 for an empty cell). Dims and coordinates are the results' own (pretrain,
    intermediate, finetune)."""
    ds, where, dims = inp.results, inp.analysis.folder / "summary.csv", CELL
    summary = inp.analysis.summary
    rows = summary[summary["metric"].astype(str) == metric]
    if not len(rows):
        raise ReportInputError(f"{where}: no rows for metric {metric!r}; the paper's cell tables print both metrics, "
                               "as `python -m diminish.analysis report` writes them")
    keys = pd.MultiIndex.from_arrays([rows["pretrain"].astype("int64"), rows["intermediate"].astype(bool),
                                      rows["finetune"].astype("int64")], names=dims)
    if keys.has_duplicates:
        raise ReportInputError(f"{where}: cell {_cell(keys[keys.duplicated()][0])} listed twice for metric {metric!r}")
    grid = pd.MultiIndex.from_product([ds[d].values for d in dims], names=dims)
    lacking = grid.difference(keys)
    if len(lacking):
        raise ReportInputError(f"{where}: {len(lacking)} cell(s) of the results' grid missing for metric {metric!r}, "
                               f"e.g. {_cell(lacking[0])}; the analysis is of other results "
                               "(rerun `python -m diminish.analysis report`)")
    pos = keys.get_indexer(grid)
    shape = tuple(ds.sizes[d] for d in dims)
    coords = {d: ds[d].values for d in dims}

    def var(col: str, dtype) -> tuple:
        return dims, rows[col].to_numpy(dtype=dtype)[pos].reshape(shape)

    return xr.Dataset({"mean": var("mean", float), "sd": var("sd", float), "n": var("n", "int64")}, coords=coords)


def _cell(key: tuple) -> str:
    return " ".join(f"{d}={v.item() if hasattr(v, 'item') else v}" for d, v in zip(CELL, key))


def best_fit(fits: pd.DataFrame, metric: str, pretrain: int, intermediate: bool) -> pd.Series | None:
    rows = fits[(fits['metric'] == metric) & (fits['pretrain'] == pretrain) & (fits['intermediate'] == intermediate)]
    if not len(rows):
        return None
    best = rows[rows["best"] == True]  # noqa: E712
    if not len(best):
        best = rows.sort_values(["aicc", "family"]).head(1)
    return best.iloc[0]


def condition_plateau(fits: pd.DataFrame, metric: str, pretrain: int, intermediate: bool,
                      plateaus: pd.DataFrame | None = None) -> dict | None:
    """The one plateau of a condition that every table and sentence prints, with its interval and
    whether it is identified. From the analysis's ``plateaus.csv`` when given (one row per
    condition); else the best saturating family of ``fits.csv`` (lowest AICc; by leave-one-out error
    where AICc is undefined), the row the analysis's H2_F verdict reads. None when there is none."""
    if plateaus is not None:
        rows = plateaus[(plateaus["metric"] == metric) & (plateaus["pretrain"] == pretrain)
                        & (plateaus["intermediate"] == intermediate)]
        if not len(rows):
            return None
        r = rows.iloc[0]
        return dict(family=str(r["family"]), plateau=float(r["plateau"]), plateau_lo=float(r["plateau_lo"]),
                    plateau_hi=float(r["plateau_hi"]), identified=bool(r["identified"]), f95=float(r["f95"]))
    rows = fits[(fits["metric"] == metric) & (fits["pretrain"] == pretrain) & (fits["intermediate"] == intermediate)
                & fits["family"].astype(str).isin(SATURATING)]
    if "status" in rows.columns:
        rows = rows[rows["status"].astype(str) == "ok"]
    if not len(rows):
        return None
    aicc = rows["aicc"].astype(float)
    if np.isfinite(aicc).any():
        r = rows.loc[aicc.idxmin()]
    elif rows["loo_error"].notna().any():
        r = rows.loc[rows["loo_error"].astype(float).abs().idxmin()]
    else:
        r = rows.iloc[0]
    value = r["plateau_est"] if "plateau_est" in r and not pd.isna(r["plateau_est"]) else r["plateau"]
    return dict(family=str(r["family"]), plateau=float(value), plateau_lo=float(r["plateau_lo"]),
                plateau_hi=float(r["plateau_hi"]), identified=bool(r["identified"]), f95=float(r["f95"]))


def plateau_of(inp: Inputs, pretrain: int, intermediate: bool) -> dict | None:
    """:func:`condition_plateau` for the paper's metric, from plateaus.csv when the analysis wrote it."""
    return condition_plateau(inp.analysis.fits, inp.metric, int(pretrain), bool(intermediate),
                             inp.analysis.tables.get("plateaus"))
