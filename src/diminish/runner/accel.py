"""The accelerator and trackers of a ``--all`` run: :func:`make_accelerator` builds Accelerate's
``Accelerator`` from the config and the runtime switches (mixed precision, DDP over gloo for
several CPU processes, the unused-parameter setting SimMIM needs, the process group's timeout,
the installed trackers; fp16 is refused), and
:class:`Trackers` gives each stage its own tracker run, named ``<kind>-<key>``, with the flattened
stage spec as its config.
"""

from __future__ import annotations

import datetime
import importlib.util
import os
import sys

import torch
from accelerate import Accelerator
from accelerate.utils import DistributedDataParallelKwargs, InitProcessGroupKwargs

from ..config import FP16_REFUSED, TRACKER_MODULES, RuntimeConfig
from .plan import Stage
from .store import Store


def make_accelerator(cfg, store: Store, rt: RuntimeConfig):
    kw = {"mixed_precision": rt.mixed_precision} if rt.mixed_precision else {}
    if int(os.environ.get("WORLD_SIZE", "1")) > 1 and not torch.cuda.is_available():
        kw["cpu"] = True  # several processes on CPUs (torchrun/accelerate launch): DDP over gloo
    handlers = []
    if not cfg.simmim.cls_in_pretrain:  # SimMIM leaves the CLS token out: DDP must allow an unused parameter
        handlers.append(DistributedDataParallelKwargs(find_unused_parameters=True))
    if rt.dist_timeout is not None:  # how long a rank may wait in a collective (NCCL/gloo) before the job ends
        handlers.append(InitProcessGroupKwargs(timeout=datetime.timedelta(seconds=rt.dist_timeout)))
    if handlers:
        kw["kwargs_handlers"] = handlers
    trackers = [t for t in cfg.trackers if _tracker_available(t)]
    if trackers:
        kw.update(log_with=trackers, project_dir=str(store.root / "trackers"))
    acc = Accelerator(**kw)
    if acc.mixed_precision == "fp16":  # asked for by `accelerate launch --mixed_precision fp16` or its config
        raise SystemExit(f"error: {FP16_REFUSED}")
    return acc


def _tracker_available(name: str) -> bool:
    module = TRACKER_MODULES.get(name, name)
    x_instead = name == "tensorboard" and importlib.util.find_spec("tensorboardX")
    if importlib.util.find_spec(module) is None and not x_instead:
        print(f"tracker {name!r} is not installed; skipping it", file=sys.stderr)
        return False
    return True


class Trackers:
    """Per-stage runs on Accelerate's trackers (one project per stage)."""

    def __init__(self, acc) -> None:
        self.acc, self.active = acc, None

    def log(self, stage: Stage, values: dict, step: int) -> None:
        if self.active != stage.key:
            self.close()
            self.acc.init_trackers(f"{stage.kind}-{stage.key}", config=_flat(stage.spec))
            self.active = stage.key
        self.acc.log(values, step=step)

    def close(self) -> None:
        if self.active is not None:
            self.acc.end_training()
            self.acc.trackers = []  # end_training keeps them: the next stage's values would reach them too
            self.active = None


def _flat(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(_flat(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v if isinstance(v, (int, float, str, bool)) else str(v)
    return out
