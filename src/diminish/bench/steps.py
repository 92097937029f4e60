"""The work being timed: each stage's model, a synthetic batch, and its train and eval steps.

Inputs are random tensors that are already normalised, so a step measures the model and the
optimiser only (the data path has rows of its own, see ``extras.py``). The step functions never
synchronise with the host: the loss stays on the device, and the timer synchronises around
whole runs of steps.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from .. import fastpath
from ..config import ExperimentConfig
from ..model import Classifier, Segmenter, ViNy
from ..simmim import SimMIM
from .options import Options


def build_model(stage: str, cfg: ExperimentConfig) -> torch.nn.Module:
    backbone = ViNy(cfg.model)
    if stage == "pretrain":
        return SimMIM(backbone, cfg.simmim)
    if stage == "intermediate":
        return Classifier(backbone, cfg.intermediate.num_classes)
    if stage == "finetune":
        return Segmenter(backbone)
    raise ValueError(f"unknown stage {stage!r}")


def stage_config(stage: str, cfg: ExperimentConfig):
    return getattr(cfg, stage)


def num_classes(stage: str, cfg: ExperimentConfig) -> int:
    """Classes of the stage's head (SimMIM's value is unused by the FLOP count)."""
    return cfg.intermediate.num_classes if stage == "intermediate" else 3


def stage_optimizer(opts: Options, params, sc, device: torch.device) -> torch.optim.Optimizer:
    """The optimiser ``--optimizer`` asks for, with the stage's learning rate and weight decay."""
    if opts.optimizer == "auto":
        return fastpath.make_optimizer(params, sc.lr, sc.weight_decay, device)
    if opts.optimizer == "foreach":
        return torch.optim.AdamW(params, lr=sc.lr, weight_decay=sc.weight_decay, foreach=True)
    raise ValueError(f"optimizer must be auto or foreach, got {opts.optimizer!r}")


def make_batch(stage: str, cfg: ExperimentConfig, batch: int, device: torch.device, seed: int = 0) -> dict:
    """Synthetic, already-normalised inputs (the data path is timed separately)."""
    g = torch.Generator().manual_seed(seed)
    s = cfg.model.image_size
    x = torch.randn(batch, cfg.model.channels, s, s, generator=g).to(device)  # (B, C, H, W)
    out = {"x": x}
    if stage == "intermediate":
        out["y"] = torch.randint(0, cfg.intermediate.num_classes, (batch,), generator=g).to(device)
    elif stage == "finetune":
        out["y"] = torch.randint(0, 3, (batch, s, s), generator=g).to(device)  # (B, H, W)
    return out


def simmim_loss(model, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """The SimMIM loss with the mask drawn outside the (possibly compiled) model, as the runner does."""
    mask = getattr(model, "_orig_mod", model).random_mask(x.shape[0], x.device, generator)  # (B, L)
    return model(x, mask=mask)


def loss_of(stage: str, model, batch: dict, generator: torch.Generator | None = None) -> torch.Tensor:
    if stage == "pretrain":
        return simmim_loss(model, batch["x"], generator)
    return F.cross_entropy(model(batch["x"]), batch["y"])


def train_step_fn(stage: str, model, opt, batch: dict, device, dtype, grad_clip: float = 0.0,
                  generator: torch.Generator | None = None) -> Callable[[], None]:
    """One optimisation step; no host synchronisation inside (the loss stays on the device)."""

    def step() -> None:
        model.train()
        with fastpath.autocast(device, dtype):
            loss = loss_of(stage, model, batch, generator)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
        opt.step()

    return step


def eval_step_fn(stage: str, model, batch: dict, device, dtype, generator=None) -> Callable[[], object]:
    def step():
        model.eval()
        with fastpath.eval_context(device, dtype):
            if stage == "pretrain":
                return simmim_loss(model, batch["x"], generator)
            return model(batch["x"]).argmax(1)

    return step
