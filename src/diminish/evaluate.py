"""Score a saved segmentation model on any folder in the Oxford-IIIT Pet layout.

    python -m diminish.evaluate results/demo/models/P=800_I=0_F=320_seed=0.pt --pets-root data/synth/oxford-iiit-pet

Every image of the folder that has a trimap is scored (no split is applied), with the same
definitions as the study: one dataset-level confusion matrix, pixel accuracy, per-class IoU and
their mean (:mod:`diminish.core.metrics`), from the segmentation task's prediction
(:data:`diminish.core.tasks.SEGMENT`, the one the runner scores its test set with). The forward passes
run in fp32 unless ``--mixed-precision`` (``no``, ``bf16``, ``fp16``, ``auto``: the runner's
words) says otherwise; the default matches the runner's default, so the scores are the runner's.
Models are written by ``python -m diminish.run --save-models``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from .clihelp import HelpFormatter, examples
from .config import PRECISIONS
from .console import guard
from .core import fastpath
from .core.batches import DeviceData
from .core.loop import SingleProcess
from .core.metrics import scores_from_confusion
from .core.tasks import SEGMENT, load_model
from .data.cache import prepare
from .data.classes import TRIMAP_CLASSES


def score(checkpoint: str | Path, pets_root: str | Path, cache_dir: str | Path = "cache",
          batch_size: int = 128, progress: bool = True, device: str | None = None,
          mixed_precision: str = "no") -> dict:
    """Scores (percent) of the model in ``checkpoint`` on every image of ``pets_root``: the
    segmentation task's prediction and confusion matrix, exactly as the runner's test scores
    (:meth:`diminish.core.tasks.Task.confusion`), in one process."""
    model, blob = load_model(Path(checkpoint))
    if blob["task"] != SEGMENT.name:
        raise SystemExit(f"{checkpoint}: a {blob['task']} model, not a segmentation model")
    dev = fastpath.resolve_device(device or "auto")
    accelerator = SingleProcess(dev, fastpath.resolve_precision(mixed_precision, dev))
    cache = prepare("pets", pets_root, cache_dir, progress=progress)
    idx = np.arange(len(cache))
    data = DeviceData(cache, dev, max_bytes=0)  # each batch read from the memory map
    cm = SEGMENT.confusion(model, data, [idx[i : i + batch_size] for i in range(0, len(idx), batch_size)],
                           accelerator)
    s = scores_from_confusion(cm)
    return {"checkpoint": str(checkpoint), "model": blob.get("label", ""), "pets_root": str(pets_root),
            "images": len(cache), "mixed_precision": accelerator.mixed_precision,
            "accuracy": 100 * s["accuracy"], "miou": 100 * s["miou"],
            "iou": {c: 100 * v for c, v in zip(TRIMAP_CLASSES, s["iou"])}}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m diminish.evaluate", description=__doc__.split("\n\n")[0], formatter_class=HelpFormatter,
        epilog=examples("python -m diminish.evaluate results/demo/models/P=800_I=0_F=320_seed=0.pt "
                        "--pets-root data/synth/oxford-iiit-pet",
                        "python -m diminish.evaluate MODEL.pt --pets-root data/oxford-iiit-pet --json"))
    p.add_argument("checkpoint", help="a model file written by --save-models (OUT/<name>/models/*.pt)")
    p.add_argument("--pets-root", required=True,
                   help="folder in the Oxford-IIIT Pet layout (images/, annotations/trimaps/)")
    p.add_argument("--cache-dir", default="cache", help="where the decoded images are cached (default: %(default)s)")
    p.add_argument("--batch-size", type=int, default=128, help="images per forward pass")
    p.add_argument("--device", default=None, help="cpu, cuda, ... (default: cuda if available)")
    p.add_argument("--mixed-precision", default="no", choices=(*PRECISIONS, "auto"),
                   help="autocast precision of the forward passes, as in diminish.run (default: %(default)s, "
                        "the study's; auto: bf16 on CUDA where supported, else no)")
    p.add_argument("--json", action="store_true", help="print the scores as JSON")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    a = p.parse_args(argv)
    if not Path(a.checkpoint).is_file():
        print(f"error: checkpoint not found: {a.checkpoint}", file=sys.stderr)
        return 2
    if a.batch_size < 1:
        print(f"error: --batch-size must be >= 1, got {a.batch_size}", file=sys.stderr)
        return 2
    try:
        r = score(a.checkpoint, a.pets_root, a.cache_dir, a.batch_size, not a.no_progress, a.device,
                  a.mixed_precision)
    except (ValueError, OSError) as e:  # a file that is not a model (never unpickled as code), bad data
        print(f"error: {e}", file=sys.stderr)
        return 2
    if a.json:
        print(json.dumps(r, indent=1))
        return 0
    precision = "" if r["mixed_precision"] == "no" else f", {r['mixed_precision']} autocast"
    print(f"{r['model'] or r['checkpoint']} on {r['pets_root']} ({r['images']} images{precision})")
    print(f"pixel accuracy  {r['accuracy']:6.2f}%")
    print(f"mIoU            {r['miou']:6.2f}%")
    for c, v in r["iou"].items():
        print(f"IoU {c:<12}{v:6.2f}%")
    return 0


if __name__ == "__main__":
    sys.exit(guard(main))
