"""The one results format: an xarray Dataset (``results.nc``).

Dims and coords
    pretrain      int    pre-training images (0 = random initialisation)
    intermediate  bool   intermediate Intel fine-tuning off/on (stored as int8 0/1 in the file, with
                         CF ``flag_values``/``flag_meanings``; ``.sel(intermediate=1)`` works on the raw file)
    finetune      int    fine-tuning pets images
    seed          int
    class         str    tri-map class: pet, background, border

Variables (metrics in percent, NaN where a cell was not run)
    accuracy(pretrain, intermediate, finetune, seed)       pixel accuracy on the held-out test set
    miou(pretrain, intermediate, finetune, seed)           mean IoU (dataset-level confusion matrix)
    iou(pretrain, intermediate, finetune, seed, class)     per-class IoU
    train_seconds(pretrain, intermediate, finetune, seed)  wall time of the fine-tuning stage
    final_loss(pretrain, intermediate, finetune, seed)     last fine-tuning epoch's mean loss
    pretrain_loss(pretrain, seed)                          final SimMIM loss (NaN for P = 0)
    intermediate_accuracy(pretrain, seed)                  Intel accuracy after the intermediate stage
    miou_image(pretrain, intermediate, finetune, seed)     mean over test images of each image's own mIoU
    miou_original(pretrain, intermediate, finetune, seed)  dataset-level mIoU at each test image's original
                                                           trimap resolution (logits upsampled); NaN unless
                                                           ``finetune.eval_original_resolution``
    miou_image_original(...)                               the per-image mean at original resolution (ditto)

Training curves (one epoch dimension per stage kind, since their epoch counts differ; coordinate
1..E; NaN where a stage has not run or ran fewer epochs)
    pretrain_loss_curve(pretrain, seed, pretrain_epoch)    mean SimMIM masked-L1 loss of each epoch
    intermediate_loss_curve(pretrain, seed, intermediate_epoch)   mean cross-entropy of each epoch
    intermediate_accuracy_curve(pretrain, seed, intermediate_epoch)  training accuracy of each epoch (%)
    finetune_loss_curve(pretrain, intermediate, finetune, seed, finetune_epoch)  mean cross-entropy

Every variable and coordinate gets ``long_name``, ``units`` and ``description`` from :data:`SCHEMA`
when written (a name missing from the table is an error); the file says ``Conventions = "CF-1.10"``.

attrs: config text and hash, package/torch/accelerate versions, git commit, device, data roots,
cache hashes, creation time, ``synthetic`` (1 when made from synthetic stand-in data).

Only this module writes results files; analysis and report only read them.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np
import xarray as xr

from .clihelp import HelpFormatter, examples, hidden_alias
from .data.classes import TRIMAP_CLASSES
from .validate import check_results

CELL_DIMS = ("pretrain", "intermediate", "finetune", "seed")
CELL_VARS = ("accuracy", "miou", "train_seconds", "final_loss")
STAGE_VARS = ("pretrain_loss", "intermediate_accuracy")
# metric variants beside the dataset-level mIoU (item 5 of issue 15): record key -> (variable, long_name)
MIOU_VARIANTS = {
    "miou_image": "mean over test images of the per-image mIoU (128 px)",
    "miou_original": "dataset-level mIoU at the original trimap resolution (logits upsampled)",
    "miou_image_original": "mean per-image mIoU at the original trimap resolution (logits upsampled)",
}
# training curves: variable -> (record kind, record key, dims before the epoch dim, epoch dim, long_name, units)
CURVES = {
    "pretrain_loss_curve": ("pretrain", "history", ("pretrain", "seed"), "pretrain_epoch",
                            "SimMIM masked-L1 training loss per epoch", "1"),
    "intermediate_loss_curve": ("intermediate", "history", ("pretrain", "seed"), "intermediate_epoch",
                                "intermediate cross-entropy training loss per epoch", "1"),
    "intermediate_accuracy_curve": ("intermediate", "accuracy_history", ("pretrain", "seed"),
                                    "intermediate_epoch", "intermediate training accuracy per epoch "
                                    "(augmented batches, main process's share)", "percent"),
    "finetune_loss_curve": ("finetune", "history", CELL_DIMS, "finetune_epoch",
                            "fine-tuning cross-entropy training loss per epoch", "1"),
}

CONVENTIONS = "CF-1.10"
INTERMEDIATE_FLAGS = "no_intermediate intel_intermediate_finetuning"  # meanings of 0 and 1

# The one table of what each name in results.nc means: (long_name, units, description).
# write_results applies it to every variable and coordinate and refuses a name it lacks.
# Time is in "s", not "seconds": xarray decodes a variable whose units are "seconds" into timedelta64
# when asked to decode time deltas (the default before xarray 2025.01).
SCHEMA: dict[str, tuple[str, str, str]] = {
    "pretrain": ("pre-training images", "images",
                 "ImageNet images used for SimMIM pre-training (0 = random initialisation)"),
    "intermediate": ("intermediate fine-tuning", "1",
                     "0 = none, 1 = supervised fine-tuning on Intel scene classification before Pets"),
    "finetune": ("fine-tuning images", "images", "Oxford-IIIT Pet images used for tri-map fine-tuning"),
    "seed": ("seed", "1", "random seed of initialisation, subsets, masks and augmentation"),
    "class": ("tri-map class", "1", "segmentation class of the Pets tri-map"),
    "accuracy": ("pixel accuracy", "percent", "share of correctly labelled pixels on the held-out Pets test set"),
    "miou": ("mean IoU", "percent",
             "mean over tri-map classes of intersection over union, from the test set's summed confusion matrix"),
    "iou": ("per-class IoU", "percent", "intersection over union of each tri-map class on the held-out test set"),
    "train_seconds": ("fine-tuning wall time", "s", "wall-clock time of the fine-tuning stage"),
    "final_loss": ("final fine-tuning loss", "1", "mean cross-entropy of the last fine-tuning epoch"),
    "pretrain_loss": ("final pre-training loss", "1",
                      "mean masked-pixel L1 loss of the last SimMIM epoch (NaN for random initialisation)"),
    "intermediate_accuracy": ("intermediate test accuracy", "percent",
                              "Intel scene classification accuracy after the intermediate stage"),
    **{v: (long_name, "percent", long_name + " on the held-out Pets test set; NaN where not measured")
       for v, long_name in MIOU_VARIANTS.items()},
    **{v: (long_name, units, long_name + "; NaN where a stage has not run or ran fewer epochs")
       for v, (_, _, _, _, long_name, units) in CURVES.items()},
    "pretrain_epoch": ("pre-training epoch", "1", "epoch number of the SimMIM stage (1 = first)"),
    "intermediate_epoch": ("intermediate epoch", "1", "epoch number of the intermediate stage (1 = first)"),
    "finetune_epoch": ("fine-tuning epoch", "1", "epoch number of the fine-tuning stage (1 = first)"),
}


def empty_results(
    pretrain: Iterable[int],
    intermediate: Iterable[bool],
    finetune: Iterable[int],
    seeds: Iterable[int],
    attrs: Mapping | None = None,
) -> xr.Dataset:
    coords = {
        "pretrain": np.asarray(sorted(pretrain), dtype=np.int64),
        "intermediate": np.asarray(sorted(intermediate), dtype=bool),
        "finetune": np.asarray(sorted(finetune), dtype=np.int64),
        "seed": np.asarray(sorted(seeds), dtype=np.int64),
        "class": np.asarray(TRIMAP_CLASSES),
    }
    shape = tuple(len(coords[d]) for d in CELL_DIMS)
    data = {v: (CELL_DIMS, np.full(shape, np.nan)) for v in CELL_VARS}
    data["iou"] = (CELL_DIMS + ("class",), np.full(shape + (len(TRIMAP_CLASSES),), np.nan))
    for v in STAGE_VARS:
        data[v] = (("pretrain", "seed"), np.full((shape[0], shape[3]), np.nan))
    for v in MIOU_VARIANTS:
        data[v] = (CELL_DIMS, np.full(shape, np.nan))
    return xr.Dataset(data, coords=coords, attrs=dict(attrs or {}))


def describe(ds: xr.Dataset, extra: Mapping[str, tuple[str, str, str]] | None = None) -> xr.Dataset:
    """A copy with ``long_name``, ``units`` and ``description`` from :data:`SCHEMA` (and ``extra``:
    the variables of a registered stage kind) on every variable and coordinate, CF flags on
    ``intermediate`` (stored as int8) and ``Conventions``."""
    schema = {**SCHEMA, **(extra or {})}
    out = ds.copy()
    out = out.assign_coords(intermediate=out["intermediate"].astype(np.int8))
    missing = [str(n) for n in list(out.variables) if n not in schema]
    if missing:
        raise ValueError(f"results.py SCHEMA has no entry for {missing}: add long_name, units and "
                         "description there before writing these to results.nc")
    for name in out.variables:
        long_name, units, description = schema[str(name)]
        out[name].attrs.update(long_name=long_name, units=units, description=description)
    out["intermediate"].attrs.update(flag_values=np.array([0, 1], dtype=np.int8),
                                     flag_meanings=INTERMEDIATE_FLAGS)
    out.attrs = {k: _attr(v) for k, v in out.attrs.items()}
    out.attrs["Conventions"] = CONVENTIONS
    return out


def _add_curves(ds: xr.Dataset, records: Mapping[str, list]) -> None:
    """Add the per-epoch training curves from the records' histories (see :data:`CURVES`)."""
    for var, (kind, key, dims, edim, _long_name, units) in CURVES.items():
        recs = [r for r in records.get(kind, ()) if r.get(key) is not None]
        n = max([len(r[key]) for r in recs], default=0)
        if edim not in ds.coords:
            ds.coords[edim] = np.arange(1, n + 1, dtype=np.int64)
        n = len(ds[edim])
        shape = tuple(len(ds[d]) for d in dims) + (n,)
        ds[var] = (dims + (edim,), np.full(shape, np.nan))
        scale = 100.0 if units == "percent" else 1.0
        for rec in recs:
            where = {d: bool(rec[d]) if d == "intermediate" else int(rec[d]) for d in dims}
            if any(v not in ds[d].values for d, v in where.items()):
                raise ValueError(f"{kind} record {where}: not in the grid")
            hist = [scale * (np.nan if v is None else float(v)) for v in rec[key]][:n]
            row = np.full(n, np.nan)
            row[:len(hist)] = hist
            ds[var].loc[where] = row


def write_results(ds: xr.Dataset, path: str | Path, extra: Mapping[str, tuple[str, str, str]] | None = None) -> Path:
    """Write atomically (temporary file in the same folder, then rename); ``extra`` describes
    variables beyond :data:`SCHEMA` (:func:`describe`)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    out = describe(ds, extra)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".nc", dir=path.parent)
    os.close(fd)
    try:
        out.to_netcdf(tmp)
        os.replace(tmp, path)
    except (OSError, RuntimeError) as e:  # netCDF reports a full disk as "HDF error": name the file
        raise OSError(f"{path}: could not write the results file ({type(e).__name__}: {e}); "
                      "is the disk full or the folder read-only?") from e
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return path


def read_results(path: str | Path) -> xr.Dataset:
    """Open a results file with ``intermediate`` as bool again (and without the file's ``Conventions``
    attribute, so the report's provenance lists what it did before); loads it into memory.

    The file is checked first (:mod:`diminish.validate`: coordinates, each variable's range from its
    :data:`SCHEMA` units, IoU against mIoU); a violation raises ``validate.ResultsError`` (a
    ``ValueError``) in one line naming the file, the variable, the cell and the value."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"results file not found: {path}")
    try:
        with xr.open_dataset(path) as ds:
            ds = ds.load()
    except Exception as e:  # noqa: BLE001 - name the file, whatever the engine raised
        raise ValueError(f"{path}: not a readable results file ({e})") from None
    missing = [v for v in ("accuracy", "miou") if v not in ds]
    if missing or any(d not in ds.dims for d in CELL_DIMS):
        raise ValueError(f"{path}: not a diminish results file (missing {missing or list(CELL_DIMS)})")
    ds.attrs.pop("Conventions", None)  # a property of the file (write_results adds it), not of the results
    return check_results(ds, path, SCHEMA)


def from_records(
    pretrain: Iterable[int],
    intermediate: Iterable[bool],
    finetune: Iterable[int],
    seeds: Iterable[int],
    cells: Iterable[Mapping] = (),
    pretrain_records: Iterable[Mapping] = (),
    intermediate_records: Iterable[Mapping] = (),
    attrs: Mapping | None = None,
    finetune_records: Iterable[Mapping] = (),
) -> xr.Dataset:
    """Assemble a results Dataset from the runner's per-stage records.

    ``cells``: dicts with ``pretrain, intermediate, finetune, seed`` and ``accuracy, miou`` and
    ``iou`` (a list per class) as FRACTIONS in [0, 1] (as :mod:`diminish.core.metrics` returns them),
    plus ``train_seconds`` and ``final_loss``. ``pretrain_records`` carry ``pretrain, seed,
    final_loss``; ``intermediate_records`` carry ``pretrain, seed, accuracy`` (fraction). Scores
    are stored in percent. A record for a coordinate outside the grid is an error; cells without a
    record stay NaN. Optional cell keys ``miou_image``, ``miou_original``, ``miou_image_original``
    (fractions) fill the metric variants. The ``history`` lists of the pretrain, intermediate and
    ``finetune_records`` (and ``accuracy_history`` of intermediate records) fill the curves.
    """
    cells, pretrain_records = list(cells), list(pretrain_records)
    intermediate_records, finetune_records = list(intermediate_records), list(finetune_records)
    ds = empty_results(pretrain, intermediate, finetune, seeds, attrs=attrs)

    def at(rec: Mapping, dims: tuple[str, ...]) -> dict:
        where = {}
        for d in dims:
            value = bool(rec[d]) if d == "intermediate" else int(rec[d])
            if value not in ds[d].values:
                raise ValueError(f"record {dict((k, rec[k]) for k in dims)}: {d}={value} is not in the grid")
            where[d] = value
        return where

    def num(v) -> float:
        return float("nan") if v is None else float(v)

    for rec in cells:
        w = at(rec, CELL_DIMS)
        ds["accuracy"].loc[w] = 100.0 * num(rec["accuracy"])
        ds["miou"].loc[w] = 100.0 * num(rec["miou"])
        ds["iou"].loc[w] = [100.0 * num(v) for v in rec["iou"]]
        ds["train_seconds"].loc[w] = num(rec.get("train_seconds"))
        ds["final_loss"].loc[w] = num(rec.get("final_loss"))
        for v in MIOU_VARIANTS:
            ds[v].loc[w] = 100.0 * num(rec.get(v))
    for rec in pretrain_records:
        ds["pretrain_loss"].loc[at(rec, ("pretrain", "seed"))] = num(rec.get("final_loss"))
    for rec in intermediate_records:
        ds["intermediate_accuracy"].loc[at(rec, ("pretrain", "seed"))] = 100.0 * num(rec["accuracy"])
    _add_curves(ds, {"pretrain": pretrain_records, "intermediate": intermediate_records,
                     "finetune": finetune_records})
    return ds


def merge_results(datasets: Iterable[xr.Dataset], allow_mixed: bool = False) -> xr.Dataset:
    """Combine results sets over the union of their coordinates; earlier sets win where both have a value.

    Sets from different configurations (``config_hash`` attrs differ) are refused unless
    ``allow_mixed``; the merged attrs are the first set's, with ``merged_from`` listing all hashes.
    """
    datasets = list(datasets)
    if not datasets:
        raise ValueError("nothing to merge")
    hashes = [str(d.attrs.get("config_hash", "unknown")) for d in datasets]
    if len(set(hashes)) > 1 and not allow_mixed:
        raise ValueError(f"results from different configurations (config_hash {sorted(set(hashes))}); "
                         "refusing to merge them (pass allow_mixed=True to force)")
    out = datasets[0]
    for d in datasets[1:]:
        out = out.combine_first(d)
    out.attrs = {**datasets[0].attrs, "merged_from": ",".join(hashes)}
    return out


def _attr(v):
    if isinstance(v, bool):
        return int(v)
    if isinstance(v, (str, int, float, np.number)):
        return v
    return str(v)


def example_results(seed: int = 0, seeds: Iterable[int] = (0, 1, 2), noise: float = 0.4) -> xr.Dataset:
    """A plausible, fully filled results set for tests and docs (not real results).

    mIoU follows a saturating curve in the fine-tune size whose plateau and head start rise with
    pre-training, and intermediate fine-tuning costs a little, as in the paper.
    """
    rng = np.random.default_rng(seed)
    ds = empty_results((0, 45_000, 100_000, 200_000), (False, True), (250, 500, 1000, 2000, 4000, 6000),
                       seeds, attrs={"synthetic": 1, "config_name": "example", "config_hash": "example"})
    P = ds.pretrain.values[:, None, None, None]
    inter = ds.intermediate.values[None, :, None, None]
    Fs = ds.finetune.values[None, None, :, None].astype(float)
    boost = np.log1p(P / 45_000.0)
    plateau = 66.0 + 2.0 * boost
    miou = plateau - (24.0 - 8.0 * boost) * (Fs / 250.0) ** -0.55 - inter * (3.0 / (1 + Fs / 2000.0))
    miou = miou + rng.normal(0.0, noise, size=ds.miou.shape)
    ds["miou"][:] = miou
    ds["accuracy"][:] = 40.0 + 0.7 * miou + rng.normal(0.0, noise / 2, size=miou.shape)
    jitter = rng.normal(0, noise, miou.shape + (3,))  # centred per cell: mIoU stays the mean of the classes' IoU
    ds["iou"][:] = miou[..., None] + np.array([4.0, 15.0, -19.0]) + jitter - jitter.mean(-1, keepdims=True)
    ds["train_seconds"][:] = Fs * 0.01 + 0 * miou
    ds["final_loss"][:] = 0.3 + 10.0 / Fs + 0 * miou
    ds["pretrain_loss"][:] = np.where(ds.pretrain.values[:, None] > 0, 0.5, np.nan) + 0 * ds.seed.values
    ds["intermediate_accuracy"][:] = 70.0 + rng.normal(0, 1, size=(4, len(ds.seed)))
    return ds


# -- command line -----------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    """``python -m diminish.results merge A.nc B.nc ... --out-file C.nc [--allow-mixed]``.

    Combines results files (e.g. from shards run on different machines into different folders).
    Files from different configurations are refused, naming each file and its ``config_hash``,
    unless ``--allow-mixed``; the merged file's ``merged_from`` attribute lists the hashes.
    """
    merge_examples = examples(
        "python -m diminish.results merge run-a/paper/results.nc run-b/paper/results.nc --out-file merged.nc",
        "python -m diminish.results merge old.nc new.nc --out-file both.nc --allow-mixed")
    p = argparse.ArgumentParser(prog="python -m diminish.results", formatter_class=HelpFormatter,
                                description="Merge results.nc files of one configuration.", epilog=merge_examples)
    sub = p.add_subparsers(dest="command", required=True)
    m = sub.add_parser("merge", help="combine results files over the union of their cells (earlier files win)",
                       formatter_class=HelpFormatter, epilog=merge_examples)
    m.add_argument("files", nargs="+", type=Path, help="results.nc files")
    m.add_argument("--out-file", type=Path, metavar="FILE", help="the merged results file (required)")
    hidden_alias(m, "--out", "out_file", type=Path)  # the old spelling
    m.add_argument("--allow-mixed", action="store_true",
                   help="merge files from different configurations anyway (recorded in merged_from)")
    args = p.parse_args(argv)
    if args.out_file is None:
        m.error("the following arguments are required: --out-file")
    try:
        sets = [read_results(f) for f in args.files]
        hashes = [str(d.attrs.get("config_hash", "unknown")) for d in sets]
        if len(set(hashes)) > 1 and not args.allow_mixed:
            which = "; ".join(f"{f} (config {d.attrs.get('config_name', '?')!r}, config_hash {h})"
                              for f, d, h in zip(args.files, sets, hashes))
            raise ValueError(f"results from different configurations: {which}; refusing to merge them "
                             "(--allow-mixed to force)")
        merged = merge_results(sets, allow_mixed=args.allow_mixed)
        write_results(merged, args.out_file)
    except (OSError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    filled = int(merged["miou"].notnull().sum())
    print(f"merged {len(sets)} files -> {args.out_file} ({filled} of {merged['miou'].size} cell-seeds filled)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
