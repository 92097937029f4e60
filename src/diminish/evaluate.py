"""Score a saved segmentation model on any folder in the Oxford-IIIT Pet layout.

    python -m diminish.evaluate results/demo/models/P=800_I=0_F=320_seed=0.pt --pets-root data/synth/oxford-iiit-pet

Every image of the folder that has a trimap is scored (no split is applied), with the same
definitions as the study: one dataset-level confusion matrix, pixel accuracy, per-class IoU and
their mean (:mod:`diminish.metrics`). Models are written by ``python -m diminish.run --save-models``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .clihelp import HelpFormatter, examples
from .console import guard
from .data.classes import TRIMAP_CLASSES


def score(checkpoint: str | Path, pets_root: str | Path, cache_dir: str | Path = "cache",
          batch_size: int = 128, progress: bool = True, device: str | None = None) -> dict:
    """Scores (percent) of the model in ``checkpoint`` on every image of ``pets_root``."""
    import numpy as np
    import torch

    from .data.cache import prepare
    from .data.transforms import normalize
    from .metrics import ConfusionMatrix, scores_from_confusion
    from .stages import load_model

    model, blob = load_model(Path(checkpoint))
    if blob["task"] != "segment":
        raise SystemExit(f"{checkpoint}: a {blob['task']} model, not a segmentation model")
    dev = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    model.to(dev).eval()
    cache = prepare("pets", pets_root, cache_dir, progress=progress)
    cm = ConfusionMatrix(len(TRIMAP_CLASSES), device=dev)
    with torch.inference_mode():
        for start in range(0, len(cache), batch_size):
            sl = slice(start, start + batch_size)
            x = torch.from_numpy(np.array(cache.images[sl])).to(dev)
            y = torch.from_numpy(np.array(cache.masks[sl])).to(dev)
            cm.update(model(normalize(x)).argmax(1), y)
    s = scores_from_confusion(cm.matrix.cpu())
    return {"checkpoint": str(checkpoint), "model": blob.get("label", ""), "pets_root": str(pets_root),
            "images": len(cache), "accuracy": 100 * s["accuracy"], "miou": 100 * s["miou"],
            "iou": {c: 100 * v for c, v in zip(TRIMAP_CLASSES, s["iou"])}}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m diminish.evaluate", description=__doc__.split("\n\n")[0], formatter_class=HelpFormatter,
        epilog=examples("python -m diminish.evaluate results/demo/models/P=800_I=0_F=320_seed=0.pt "
                        "--pets-root data/synth/oxford-iiit-pet",
                        "python -m diminish.evaluate MODEL.pt --pets-root data/oxford-iiit-pet --json"))
    p.add_argument("checkpoint", help="a model file written by --save-models (OUT/<name>/models/*.pt)")
    p.add_argument("--pets-root", required=True, help="folder in the Oxford-IIIT Pet layout (images/, annotations/trimaps/)")
    p.add_argument("--cache-dir", default="cache", help="where the decoded images are cached (default: %(default)s)")
    p.add_argument("--batch-size", type=int, default=128, help="images per forward pass")
    p.add_argument("--device", default=None, help="cpu, cuda, ... (default: cuda if available)")
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
        r = score(a.checkpoint, a.pets_root, a.cache_dir, a.batch_size, not a.no_progress, a.device)
    except (ValueError, OSError) as e:  # a file that is not a model (never unpickled as code), bad data
        print(f"error: {e}", file=sys.stderr)
        return 2
    if a.json:
        print(json.dumps(r, indent=1))
        return 0
    print(f"{r['model'] or r['checkpoint']} on {r['pets_root']} ({r['images']} images)")
    print(f"pixel accuracy  {r['accuracy']:6.2f}%")
    print(f"mIoU            {r['miou']:6.2f}%")
    for c, v in r["iou"].items():
        print(f"IoU {c:<12}{v:6.2f}%")
    return 0


if __name__ == "__main__":
    sys.exit(guard(main))
