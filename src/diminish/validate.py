"""What a results file may hold: the checks :func:`diminish.results.read_results` makes on every file it reads.

A results file is refused, with one line naming the file, the variable, the cell in words (P, I, F,
seed) and the value, when

* a coordinate is not what the grid is made of: pre-training sizes whole numbers >= 0 (0 = random
  initialisation), fine-tuning sizes, seeds and epochs whole numbers (sizes and epochs > 0), the
  intermediate flag 0 or 1, and no value listed twice on any coordinate;
* a value lies outside the physical range of its variable, read from the variable's units in
  :data:`diminish.results.SCHEMA` (:data:`RANGES`): percentages in [0, 100], times (``s``) and
  losses (``1``) finite and not negative. NaN means "not run" and is always allowed;
* a cell's per-class IoU disagrees with its mIoU: mIoU is the mean of the classes' IoU (classes
  whose IoU is NaN, i.e. absent from the test set, are left out, as ``metrics.mean_iou`` does),
  within :data:`IOU_TOLERANCE` points, wherever both are given (a NaN mIoU is a cell not run).

Every file our runner writes passes (its values are computed from confusion matrices, losses and
clocks); the checks catch files assembled or edited by hand. Torch-free.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import xarray as xr

# units of SCHEMA -> (lowest, highest, the rule in words); "1" bounds only the losses. Every data variable of SCHEMA
# has a range here (tests/test_validate.py checks it), so a new variable must be given one.
RANGES: dict[str, tuple[float, float, str]] = {
    "percent": (0.0, 100.0, "a percentage lies in [0, 100]"),
    "s": (0.0, math.inf, "a time is finite and not negative"),
    "1": (0.0, math.inf, "a loss is finite and not negative"),
}
# coordinates -> (smallest allowed value, what the values are, in words)
SIZES: dict[str, tuple[int, str]] = {
    "pretrain": (0, "pre-training sizes are whole numbers of images, 0 or more"),
    "finetune": (1, "fine-tuning sizes are whole numbers of images, 1 or more"),
    "pretrain_epoch": (1, "epochs are numbered 1, 2, ..."),
    "intermediate_epoch": (1, "epochs are numbered 1, 2, ..."),
    "finetune_epoch": (1, "epochs are numbered 1, 2, ..."),
}
SLACK = 1e-9  # rounding of float arithmetic (100 * (1 - x) may give -1e-15): not a value outside the range
IOU_TOLERANCE = 0.05  # points: mIoU and the mean of class IoUs rounded to 2 decimals each differ by < 0.01


class ResultsError(ValueError):
    """A results file holds something no measurement can be; the message is one line."""


def where_words(dims: tuple[str, ...], coords: dict[str, object]) -> str:
    """A cell (or stage, or epoch) in words: ``P = 100, intermediate on, F = 20, seed 2``."""
    words = []
    for d in dims:
        v = coords[d]
        if d == "pretrain":
            words.append(f"P = {v}")
        elif d == "intermediate":
            words.append("intermediate " + ("on" if bool(v) else "off"))
        elif d == "finetune":
            words.append(f"F = {v}")
        elif d == "seed":
            words.append(f"seed {v}")
        elif d == "class":
            words.append(f"class {v}")
        elif d.endswith("_epoch"):
            words.append(f"epoch {v}")
        else:
            words.append(f"{d} = {v}")
    return ", ".join(words)


def _value(v) -> str:
    return f"{float(v):.6g}" if isinstance(v, (float, np.floating)) else repr(v.item() if hasattr(v, "item") else v)


def _coord(ds: xr.Dataset, source, name: str) -> np.ndarray:
    values = ds[name].values
    if values.size == 0 and not name.endswith("_epoch"):  # epochs: none when a stage kind is not in the grid
        raise ResultsError(f"{source}: coordinate {name} has no values (a grid needs at least one)")
    if name in ("class",):
        uniq, counts = np.unique(values.astype(str), return_counts=True)
    else:
        if values.dtype.kind not in "biuf":
            raise ResultsError(f"{source}: coordinate {name} holds {values.dtype} values ({_value(values[0])}); "
                               "it must hold whole numbers")
        if values.dtype.kind == "f":
            bad = [v for v in values if not (math.isfinite(v) and float(v).is_integer())]
            if bad:
                raise ResultsError(f"{source}: coordinate {name} = {_value(bad[0])}: not a whole number")
            values = values.astype(np.int64)
        if name == "intermediate":
            bad = [v for v in values if int(v) not in (0, 1)]
            if bad:
                raise ResultsError(f"{source}: coordinate intermediate = {_value(bad[0])}: the intermediate flag "
                                   "is 0 (off) or 1 (on)")
        elif name in SIZES:
            low, words = SIZES[name]
            bad = [v for v in values if int(v) < low]
            if bad:
                raise ResultsError(f"{source}: coordinate {name} = {_value(bad[0])}: {words}")
        uniq, counts = np.unique(values, return_counts=True)
    if (counts > 1).any():
        raise ResultsError(f"{source}: coordinate {name} lists {_value(uniq[counts > 1][0])} "
                           f"{int(counts[counts > 1][0])} times; each value may appear once")
    return values


def check_coords(ds: xr.Dataset, source) -> xr.Dataset:
    """The grid's coordinates checked (see the module docstring); whole-number floats become int64 and
    ``intermediate`` bool. Returns the Dataset with those coordinates."""
    new = {}
    for name in ("pretrain", "intermediate", "finetune", "seed", "class", *(d for d in SIZES if d in ds.dims)):
        if name not in ds.coords:
            if name == "class" and "class" not in ds.dims:
                continue
            raise ResultsError(f"{source}: no {name} coordinate (dimension {name} has no values along it)")
        values = _coord(ds, source, name)
        if name == "intermediate":
            values = values.astype(bool)
        if values.dtype != ds[name].dtype:
            new[name] = values
    return ds.assign_coords(new) if new else ds


def _first_bad(ds: xr.Dataset, var: str, bad: np.ndarray, value: np.ndarray) -> str:
    idx = tuple(int(i) for i in np.argwhere(bad)[0])
    dims = ds[var].dims
    coords = {d: ds[d].values[i].item() if d in ds.coords else i for d, i in zip(dims, idx)}
    return f"{_value(value[idx])} at {where_words(dims, coords)}"


def has_range(var: str, schema: dict[str, tuple[str, str, str]]) -> bool:
    """Whether :data:`RANGES` bounds ``var``: its units are listed there, and a unitless ("1") variable is a loss."""
    units = schema[var][1] if var in schema else None
    return units in RANGES and (units != "1" or "loss" in var)


def check_values(ds: xr.Dataset, source, schema: dict[str, tuple[str, str, str]]) -> None:
    """Each variable of ``schema`` in ``ds`` within the range of its units, and IoU consistent with mIoU."""
    for var in ds.data_vars:
        if not has_range(str(var), schema):
            continue
        x = np.asarray(ds[var].values)
        if x.dtype.kind not in "biuf":
            raise ResultsError(f"{source}: {var} holds {x.dtype} values; it must hold numbers")
        x = x.astype(float)
        low, high, words = RANGES[schema[var][1]]
        bad = ~np.isnan(x) & ~((x >= low - SLACK) & (x <= high + SLACK) & np.isfinite(x))
        if bad.any():
            more = int(bad.sum()) - 1
            also = f" (and {more} more value{'s' if more != 1 else ''} of {var} out of range)" if more else ""
            raise ResultsError(f"{source}: {var} = {_first_bad(ds, var, bad, x)}: {words}{also}")
    if "iou" in ds and "miou" in ds and "class" in ds["iou"].dims:
        _check_iou(ds, source)


def _check_iou(ds: xr.Dataset, source) -> None:
    iou = ds["iou"].transpose(*ds["miou"].dims, "class").values.astype(float)
    miou = ds["miou"].values.astype(float)
    some = ~np.isnan(iou).all(axis=-1)
    with np.errstate(invalid="ignore"):
        mean = np.where(some, np.nanmean(np.where(some[..., None], iou, 0.0), axis=-1), np.nan)
    off = some & ~np.isnan(miou) & (np.abs(mean - miou) > IOU_TOLERANCE)
    if off.any():
        more = int(off.sum()) - 1
        also = f" ({more} more cell{'s' if more != 1 else ''} disagree)" if more else ""
        raise ResultsError(f"{source}: miou = {_first_bad(ds, 'miou', off, miou)} but the mean of its per-class "
                           f"IoU is {_value(mean[off][0])}: mIoU is the mean of the classes' IoU "
                           f"(within {IOU_TOLERANCE:g} points){also}")


def check_results(ds: xr.Dataset, source: str | Path, schema: dict[str, tuple[str, str, str]]) -> xr.Dataset:
    """Coordinates, then values (see the module docstring); returns ``ds`` with its coordinates normalised
    (``intermediate`` bool, whole-number float sizes int64). Raises :class:`ResultsError`."""
    ds = check_coords(ds, source)
    check_values(ds, source, schema)
    return ds
