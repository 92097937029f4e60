"""Look inside a pre-trained model: what SimMIM reconstructs in the patches it did not see.

    python -m diminish.reconstructions MODEL --images DIR --out fig.png
    python -m diminish.reconstructions --results results/<name>/results.nc --out fig.pdf

MODEL is a pre-training stage's ``model.pt`` (``results/<name>/stages/pretrain/<key>/model.pt``),
read with ``torch.load(..., weights_only=True)``. ``--images`` is any folder of images (an
ImageFolder tree, or a Pets root whose ``images/`` folder is used) or a prepared cache folder
(``cache/<dataset>-<split>-<key>/``). With ``--results`` instead of MODEL, the model is the one of
the largest pre-training size (first seed) found under that results file's ``stages/pretrain/``,
and the images are the Pets images of the root recorded in the file (never seen in pre-training);
when no pre-trained model is there the figure says so (``make paper`` uses this form).

One row per image: the original (128 x 128, as the model sees it), the masked input (masked
units grey), the reconstruction with the visible patches pasted back, and the raw prediction of
every patch. A model pre-trained with ``simmim.norm_target`` predicts each patch's normalised pixels;
the figure then shows target and prediction on that normalised scale side by side (what the loss
compares), and last the prediction with the true patch's mean and standard deviation put back (as
MAE's figures do: there the colour of a masked patch comes from the truth, only its structure from
the model). The masks are drawn from ``--seed``, so a figure is reproducible. The masked-L1 loss
of the shown images is printed and written in the figure's title.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch
import xarray as xr
from matplotlib.figure import Figure

from .core.model import patchify, unpatchify
from .core.simmim import SimMIM
from .core.tasks import load_model, model_from_blob
from .core.transforms import IMAGENET_MEAN, IMAGENET_STD, normalize
from .data.cache import Cache
from .data.readers import DataError, decode_image, is_image_file
from .runner.reuse import largest_pretrain_model


def load_simmim(path: str | Path) -> tuple[SimMIM, dict]:
    """A pre-training stage's model file -> (SimMIM module, the file's contents); no pickle is run."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"model file not found: {path}")
    _, blob = load_model(path, build=False)  # weights_only=True; a ValueError naming the file
    if blob.get("task") != "simmim":
        raise ValueError(f"{path}: not a pre-trained SimMIM model (task {blob.get('task')!r}); pass a "
                         "stages/pretrain/<key>/model.pt file")
    return model_from_blob(blob), blob


def read_images(source: str | Path, n: int) -> tuple[torch.Tensor, list[str]]:
    """``n`` images, evenly spread over the sorted list of a folder or a cache -> uint8 (n, 3, 128, 128)."""
    source = Path(source)
    if (source / "manifest.json").is_file() and (source / "images.npy").is_file():
        cache = Cache.open(source)
        pick = np.unique(np.linspace(0, len(cache) - 1, min(n, len(cache))).round().astype(int))
        return torch.from_numpy(np.asarray(cache.images[pick])), [cache.files[i] for i in pick]
    if not source.is_dir():
        raise FileNotFoundError(f"image folder not found: {source}")
    root = source / "images" if (source / "images").is_dir() else source
    files = sorted(f for f in root.rglob("*") if f.is_file() and not f.name.startswith(".") and is_image_file(f))
    if not files:
        raise DataError(f"{root}: no image files found")
    pick = np.unique(np.linspace(0, len(files) - 1, min(n, len(files))).round().astype(int))
    arrays = [decode_image(files[i], 128).transpose(2, 0, 1) for i in pick]
    return torch.from_numpy(np.stack(arrays)), [str(files[i].relative_to(root)) for i in pick]


@torch.inference_mode()
def reconstruct(model: SimMIM, images: torch.Tensor, seed: int = 0) -> dict:
    """Masks, predictions and the pasted-back reconstruction of uint8 images, in [0, 1] RGB (N, H, W, 3)."""
    model.eval()
    x = normalize(images)
    gen = torch.Generator().manual_seed(seed)
    mask = model.random_mask(x.shape[0], generator=gen)  # (N, L) True = masked
    pred = model.predict_pixels(x, mask).float()  # (N, L, p*p*C)
    loss = float(model.masked_l1(pred, x, mask))
    p = model.backbone.cfg.patch_size
    target = patchify(x, p)
    m = mask.unsqueeze(-1).float()
    extra = {}
    if model.cfg.norm_target:  # the head predicts each patch's normalised pixels
        tnorm = model.target(x)

        def shown(patches):  # normalised patches as an image: 0 -> mid grey, +-2 sd -> the ends
            return (0.5 + unpatchify(patches, p, 3) / 4).clamp(0, 1).permute(0, 2, 3, 1).numpy()

        extra = {"target_norm": shown(tnorm), "pred_norm": shown(tnorm * (1 - m) + pred * m)}
        mean, var = target.mean(-1, keepdim=True), target.var(-1, keepdim=True)  # the true patch's
        pred = pred * (var + 1e-6).sqrt() + mean  # mean and scale put back (MAE-style display)
    pasted = target * (1 - m) + pred * m
    grey = target * (1 - m)  # 0 in normalised units = the dataset mean colour

    def rgb(patches):
        img = unpatchify(patches, p, 3)  # (N, 3, H, W) normalised
        mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
        std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
        return (img * std + mean).clamp(0, 1).permute(0, 2, 3, 1).numpy()

    return {"original": rgb(target), "masked": rgb(grey), "reconstruction": rgb(pasted), "prediction": rgb(pred),
            "masked_l1": loss, "mask": mask.numpy(), **extra}


def draw(rec: dict, names: list[str], title: str):
    if "pred_norm" in rec:  # per-patch normalised targets: compare like with like, then the MAE-style view
        cols = ("original", "masked", "target_norm", "pred_norm", "reconstruction")
        heads = ("original", "masked input", "target\n(each patch normalised)",
                 "prediction, same scale\n(visible pasted back)", "prediction with true\npatch mean, sd restored")
    else:
        cols = ("original", "masked", "reconstruction", "prediction")
        heads = ("original", "masked input", "reconstruction\n(visible patches pasted back)", "raw prediction")
    n = len(names)
    fig = Figure(figsize=(1.45 * len(cols), 1.45 * n + 0.5))  # no pyplot: no backend chosen, none needed
    axes = fig.subplots(n, len(cols), squeeze=False)
    for r in range(n):
        for c, key in enumerate(cols):
            ax = axes[r, c]
            ax.imshow(rec[key][r], interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(heads[c], fontsize=7)
    fig.suptitle(title, fontsize=7)
    fig.tight_layout(pad=0.3, h_pad=0.2, w_pad=0.2, rect=(0, 0, 1, 1 - 0.35 / fig.get_figheight()))
    return fig


def _pets_images_of(results: Path) -> str:
    with xr.open_dataset(results) as ds:
        root = ds.attrs.get("pets_root")
    if not root:
        raise ValueError(f"{results}: no pets_root attribute; pass MODEL and --images instead")
    return str(root)


def _save(fig, out: Path, dpi: int = 110) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    meta = {"CreationDate": None} if out.suffix == ".pdf" else {}
    fig.savefig(out, dpi=dpi, metadata=meta)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m diminish.reconstructions", description=__doc__.split("\n\n")[0])
    r = ap
    r.add_argument("model", nargs="?", help="a pre-training stage's model.pt")
    r.add_argument("--images", help="an image folder (ImageFolder or Pets root) or a cache folder")
    r.add_argument("--results", type=Path, help="instead of MODEL/--images: the largest pre-training "
                   "model beside this results.nc, on the Pets images it records")
    r.add_argument("--n", type=int, default=6, help="images to show (default: %(default)s)")
    r.add_argument("--seed", type=int, default=0, help="seed of the masks (default: %(default)s)")
    r.add_argument("--out", required=True, type=Path, help="figure file (.png or .pdf)")
    r.add_argument("--dpi", type=int, default=110, help="resolution of a .png (default: %(default)s)")
    a = ap.parse_args(argv)
    try:
        model_path, images = a.model, a.images
        if a.results is not None:
            if not a.results.is_file():
                raise FileNotFoundError(f"results file not found: {a.results}")
            model_path = largest_pretrain_model(a.results.parent)
            if model_path is None:
                fig = Figure(figsize=(6.3, 1.0))
                fig.text(0.5, 0.5, f"no finished pre-training model beside {a.results}", ha="center", va="center")
                _save(fig, a.out)
                print(f"{a.out} (placeholder: no pre-trained model)")
                return 0
            images = images or _pets_images_of(a.results)
        if model_path is None or images is None:
            ap.error("reconstructions needs MODEL and --images, or --results")
        model, blob = load_simmim(model_path)
        x, names = read_images(images, a.n)
        rec = reconstruct(model, x, a.seed)
        target = "per-patch normalised pixels" if model.cfg.norm_target else "pixels"
        title = (f"{blob.get('label', Path(model_path).name)}: masked L1 {rec['masked_l1']:.3f} ({target}) "
                 f"on these {len(names)} images (mask seed {a.seed})")
        _save(draw(rec, names, title), a.out, a.dpi)
    except (OSError, ValueError, DataError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"{a.out}: {title}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
