"""Experiment configuration: TOML -> frozen dataclasses, validated, hashed.

What the study varies (the grid and the hyper-parameters: :class:`ExperimentConfig`) is kept apart
from runtime switches (device, output and cache folders, progress bars: :class:`RuntimeConfig`,
filled from the command line). Derived values are properties, never written back.

Unknown keys are rejected with the closest known key as a suggestion.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import re
import tomllib
import warnings
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, get_type_hints

from .seeds import stable_hash


@dataclass(frozen=True)
class ViNyConfig:
    """Architecture of ViNy; the defaults are the paper's."""

    image_size: int = 128
    patch_size: int = 16
    channels: int = 3
    dim: int = 128
    depth: int = 12
    heads: int = 8
    dim_head: int = 64
    mlp_dim: int = 512

    def __post_init__(self) -> None:
        if self.image_size % self.patch_size:
            raise ValueError(
                f"image_size {self.image_size} is not a multiple of patch_size {self.patch_size}"
            )
        for name in ("image_size", "patch_size", "channels", "dim", "depth", "heads", "dim_head", "mlp_dim"):
            if getattr(self, name) <= 0:
                raise ValueError(f"ViNyConfig.{name} must be positive, got {getattr(self, name)}")

    @property
    def grid(self) -> int:
        """Patches per side."""
        return self.image_size // self.patch_size

    @property
    def num_patches(self) -> int:
        return self.grid**2

    @property
    def patch_dim(self) -> int:
        """Values in one flattened patch (p * p * C)."""
        return self.patch_size**2 * self.channels

    @property
    def backbone_parameters(self) -> int:
        """Parameters of ``model.ViNy(self)``, counted without building it (no torch needed).

        Patch embedding LayerNorm -> Linear -> LayerNorm, CLS token, positions, ``depth`` pre-norm
        blocks (q/k/v without bias, output projection, MLP), final LayerNorm. 4,842,880 for the
        paper's ViNy; ``tests/test_model.py`` checks it against the torch module.
        """
        d, inner = self.dim, self.heads * self.dim_head
        embed = 2 * self.patch_dim + self.patch_dim * d + d + 2 * d
        attention = 2 * d + d * 3 * inner + inner * d + d
        mlp = 2 * d + d * self.mlp_dim + self.mlp_dim + self.mlp_dim * d + d
        return embed + d + (self.num_patches + 1) * d + self.depth * (attention + mlp) + 2 * d


@dataclass(frozen=True)
class SimMIMConfig:
    """SimMIM's settings (see ``simmim.py`` for what each one changes)."""

    mask_ratio: float = 0.5
    mask_patch_size: int = 16
    cls_in_pretrain: bool = True
    norm_target: bool = False

    def __post_init__(self) -> None:
        if not 0.0 < self.mask_ratio < 1.0:
            raise ValueError(f"simmim.mask_ratio must be in (0, 1), got {self.mask_ratio}")
        if self.mask_patch_size <= 0:
            raise ValueError(f"simmim.mask_patch_size must be positive, got {self.mask_patch_size}")


class ConfigError(ValueError):
    """A bad configuration: names the file, the key and the problem."""


# Accelerate's trackers and the module each needs (``trackers = [...]``; install with the `tracking` extra).
TRACKER_MODULES = {"tensorboard": "tensorboard", "wandb": "wandb", "mlflow": "mlflow", "aim": "aim",
                   "comet_ml": "comet_ml", "clearml": "clearml", "dvclive": "dvclive", "swanlab": "swanlab",
                   "trackio": "trackio"}


@dataclass(frozen=True)
class StageConfig:
    """Optimiser, schedule and batch of one training stage (AdamW + MultiStepLR, Appendix A1)."""

    epochs: int
    lr: float
    weight_decay: float
    gamma: float
    milestones: tuple[int, ...]
    batch_size: int
    grad_clip: float = 0.0  # 0 = off
    warmup_epochs: int = 0  # the paper uses none

    def __post_init__(self) -> None:
        if self.epochs < 1:
            raise ConfigError(f"epochs must be >= 1, got {self.epochs}")
        if not (math.isfinite(self.lr) and self.lr > 0):
            raise ConfigError(f"lr must be finite and positive, got {self.lr}")
        if self.batch_size <= 0:
            raise ConfigError(f"batch_size must be positive, got {self.batch_size}")
        if not (math.isfinite(self.weight_decay) and self.weight_decay >= 0):
            raise ConfigError(f"weight_decay must be finite and >= 0, got {self.weight_decay}")
        if not 0 < self.gamma <= 1:
            raise ConfigError(f"gamma (the learning-rate factor at each milestone) must be in (0, 1], got {self.gamma}")
        if not (math.isfinite(self.grad_clip) and self.grad_clip >= 0) or self.warmup_epochs < 0:
            raise ConfigError(f"grad_clip and warmup_epochs must be >= 0, got {self.grad_clip}, {self.warmup_epochs}")
        if any(m <= 0 for m in self.milestones) or list(self.milestones) != sorted(self.milestones):
            raise ConfigError(f"milestones must be positive and increasing, got {list(self.milestones)}")


@dataclass(frozen=True)
class PretrainConfig(StageConfig):
    sizes: tuple[int, ...] = (0, 45_000, 100_000, 200_000)
    data_seed: int = 0  # fixes the nested ImageNet subsets, shared by all seeds


@dataclass(frozen=True)
class IntermediateConfig(StageConfig):
    conditions: tuple[bool, ...] = (False, True)
    num_classes: int = 6
    evaluate_test: bool = True  # report Intel test accuracy when seg_test exists


@dataclass(frozen=True)
class FinetuneConfig(StageConfig):
    sizes: tuple[int, ...] = (250, 500, 1000, 2000, 4000, 6000)
    test_size: int = 1000
    split_seed: int = 42  # the paper's torch.Generator seed for the held-out test set
    eval_batch_size: int = 256
    eval_original_resolution: bool = False  # also score at each trimap's original size (image_metrics)

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.eval_batch_size <= 0:
            raise ConfigError(f"eval_batch_size must be positive, got {self.eval_batch_size}")


@dataclass(frozen=True)
class DataConfig:
    """Dataset roots (published layouts). Relative paths are relative to the current folder."""

    pets_root: str = "data/oxford-iiit-pet"
    intel_root: str = "data/intel-image-classification"
    imagenet_root: str = "data/imagenet"
    limit: int = 0  # 0 = use every image in the folder; otherwise cap each cache at this many
    skip_bad: bool = False

    def __post_init__(self) -> None:
        if self.limit < 0:
            raise ConfigError(f"limit must be >= 0 (0: every image), got {self.limit}")


@dataclass(frozen=True)
class ExperimentConfig:
    name: str
    seeds: tuple[int, ...] = (0, 1, 2)
    synthetic: bool = False  # results come from synthetic stand-in data (demo mark in the paper)
    description: str = ""
    trackers: tuple[str, ...] = ()  # experiment trackers for Accelerate (e.g. "tensorboard"); logging only
    model: ViNyConfig = field(default_factory=ViNyConfig)
    simmim: SimMIMConfig = field(default_factory=SimMIMConfig)
    data: DataConfig = field(default_factory=DataConfig)
    pretrain: PretrainConfig = field(
        default_factory=lambda: PretrainConfig(100, 1e-4, 0.05, 0.1, (50, 85), 256)
    )
    intermediate: IntermediateConfig = field(
        default_factory=lambda: IntermediateConfig(200, 8e-4, 0.0, 0.1, (180, 190), 128)
    )
    finetune: FinetuneConfig = field(
        default_factory=lambda: FinetuneConfig(100, 2e-3, 1e-4, 0.5, (70, 90, 95), 64)
    )
    source_text: str = field(default="", compare=False, repr=False)

    def __post_init__(self) -> None:
        _check_name(self.name)
        if not self.seeds or len(set(self.seeds)) != len(self.seeds):
            raise ConfigError(f"seeds must be a non-empty list of distinct integers, got {list(self.seeds)}")
        if any(s < 0 for s in self.pretrain.sizes):
            raise ConfigError(f"pretrain.sizes must be >= 0, got {list(self.pretrain.sizes)}")
        if any(s <= 0 for s in self.finetune.sizes):
            raise ConfigError(f"finetune.sizes must be positive, got {list(self.finetune.sizes)}")
        for t in self.trackers:
            if t not in TRACKER_MODULES:
                close = difflib.get_close_matches(t, sorted(TRACKER_MODULES), n=1)
                hint = f"did you mean '{close[0]}'?" if close else f"known: {', '.join(sorted(TRACKER_MODULES))}"
                raise ConfigError(f"trackers: unknown tracker {t!r}; {hint}")
        if self.finetune.test_size <= 0:
            raise ConfigError(f"finetune.test_size must be positive, got {self.finetune.test_size}")
        for name, vals in (("pretrain.sizes", self.pretrain.sizes), ("finetune.sizes", self.finetune.sizes),
                           ("intermediate.conditions", self.intermediate.conditions)):
            if len(set(vals)) != len(vals) or not vals:
                raise ConfigError(f"{name} must be non-empty and without repeats, got {list(vals)}")

    # -- derived ----------------------------------------------------------------------------
    @property
    def trained_kinds(self) -> tuple[str, ...]:
        """The training stage kinds the grid runs, as :func:`diminish.runner.plan.build_plan` builds them:
        pretrain when a size is above 0, intermediate when a condition is on, finetune always."""
        kinds = ["pretrain"] if any(p > 0 for p in self.pretrain.sizes) else []
        if True in self.intermediate.conditions:
            kinds.append("intermediate")
        return (*kinds, "finetune")

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d.pop("source_text")
        return d

    @property
    def hash(self) -> str:
        """Hash of everything that determines the results (not the runtime switches)."""
        d = self.to_dict()
        d.pop("trackers")  # logging only: does not change results
        return stable_hash(d)


PRECISIONS = ("no", "bf16", "fp16")  # the one vocabulary of mixed precision (Accelerate's words), torch-free
RESIDENT = ("auto", "always", "never")  # caches on the device: auto = on CUDA when they fit its budget
ADAMW_KERNELS = ("auto", "fused", "foreach")  # AdamW kernels: auto = fused on CUDA, foreach elsewhere
FP16_REFUSED = ("fp16 training is not supported: it needs a gradient scaler whose state a checkpoint "
                "keeps, and no test covers that; use --mixed-precision bf16 (or no)")


@dataclass(frozen=True)
class RuntimeConfig:
    """Switches that do not change results: where things go and how they are shown."""

    out_dir: Path = Path("results")
    cache_dir: Path = Path("cache")
    progress: bool = True
    save_models: bool = False
    deterministic: bool = False
    compile: bool = False
    mixed_precision: str | None = None  # one of PRECISIONS; None: Accelerate's own setting
    checkpoint_every: float | None = None  # min seconds between epoch-end checkpoints; None: 0 on CPU, 30 else
    resident: str = "auto"  # one of RESIDENT: dataset caches held on the device (any device with "always")
    sync_every: int | None = None  # steps between host reads of the losses; None: 1 on CPU, 25 else
    adamw: str = "auto"  # one of ADAMW_KERNELS
    dist_timeout: float | None = None  # seconds a collective of several processes may wait; None: torch's (10 min)


_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.+=,-]*")  # override_name's characters


def _check_name(name: str) -> None:
    """The experiment's folder is ``<out>/<name>``: the name must be one plain path component."""
    if not isinstance(name, str) or not _NAME.fullmatch(name) or ".." in name or len(name) > 128:
        raise ConfigError(f"name must be one plain folder name (letters, digits and _ - . + = ,; no '/', "
                          f"'..' or leading '.'), since results go to <out>/<name>; got {name!r}")


# -- loading --------------------------------------------------------------------------------
def _build(cls: type, data: dict[str, Any], where: str, source: str) -> Any:
    hints = get_type_hints(cls)
    known = {f.name for f in fields(cls) if f.name != "source_text"}
    for key in data:
        if key not in known:
            close = difflib.get_close_matches(key, sorted(known), n=1)
            hint = f"; did you mean '{close[0]}'?" if close else f"; known keys: {', '.join(sorted(known))}"
            raise ConfigError(f"{source}: unknown key '{where}{key}'{hint}")
    kwargs: dict[str, Any] = {}
    for f in fields(cls):
        if f.name not in data:
            continue
        value, hint = data[f.name], hints[f.name]
        if dataclasses.is_dataclass(hint):
            if not isinstance(value, dict):
                raise ConfigError(f"{source}: '{where}{f.name}' must be a table")
            base = getattr(ExperimentConfig(name="_"), f.name) if cls is ExperimentConfig else None
            merged = {**(dataclasses.asdict(base) if base is not None else {}), **value}
            value = _build(hint, merged, f"{where}{f.name}.", source)
        elif getattr(hint, "__origin__", None) is tuple:
            if not isinstance(value, (list, tuple)):
                raise ConfigError(f"{source}: '{where}{f.name}' must be a list, got {value!r}")
            value = tuple(_item(v, hint.__args__[0], f"{where}{f.name}", source, value) for v in value)
        elif hint is float and isinstance(value, (int, float)) and not isinstance(value, bool):
            value = _finite(value, f"{where}{f.name}", source)
        elif hint in (int, float, bool, str) and not isinstance(value, hint):
            raise ConfigError(f"{source}: '{where}{f.name}' must be {hint.__name__}, got {value!r}")
        elif hint is int and isinstance(value, bool):
            raise ConfigError(f"{source}: '{where}{f.name}' must be int, got {value!r}")
        kwargs[f.name] = value
    try:
        return cls(**kwargs)
    except ConfigError as e:
        raise ConfigError(f"{source}: [{where.rstrip('.') or 'top'}] {e}") from None
    except (TypeError, ValueError) as e:
        raise ConfigError(f"{source}: [{where.rstrip('.') or 'top'}] {e}") from None


def _item(v: Any, kind: type, key: str, source: str, whole: Any) -> Any:
    """One element of a list-valued key, of the list's element type (an int is accepted as a float)."""
    if kind is float and isinstance(v, int) and not isinstance(v, bool):
        v = float(v)
    if not isinstance(v, kind) or (kind is int and isinstance(v, bool)):
        raise ConfigError(f"{source}: '{key}' must be a list of {kind.__name__}, got {list(whole)!r} "
                          f"({v!r} is {type(v).__name__})")
    return _finite(v, key, source) if kind is float else v


def _finite(v: float, key: str, source: str) -> float:
    if not math.isfinite(v):
        raise ConfigError(f"{source}: '{key}' must be a finite number, got {v}")
    return float(v)


def warn_late_milestones(cfg: ExperimentConfig, source: str) -> None:
    """A milestone at or after the last epoch never lowers the learning rate: allowed (a short test
    run keeps its full-length schedule), but said, for the stage kinds the grid trains (an unused
    section, such as ``[intermediate]`` with ``conditions = [false]``, is not). The warning points at
    the line that called :func:`load`, :func:`loads` or :func:`apply_overrides`."""
    for kind in cfg.trained_kinds:
        sc = getattr(cfg, kind)
        late = [m for m in sc.milestones if m >= sc.epochs]
        if late:
            warnings.warn(f"{source}: '{kind}.milestones' {late} at or after the last epoch ({sc.epochs} epochs) "
                          "never take effect", UserWarning, stacklevel=3)


def _parse(text: str, source: str) -> ExperimentConfig:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{source}: not valid TOML: {e}") from None
    if "name" not in data:
        raise ConfigError(f"{source}: missing required key 'name'")
    cfg = _build(ExperimentConfig, data, "", source)
    return dataclasses.replace(cfg, source_text=text)


def loads(text: str, source: str = "<string>", *, warn: bool = True) -> ExperimentConfig:
    """The config in ``text`` (``source`` names it in messages), validated; ``warn``: warn about late
    milestones (:func:`warn_late_milestones`)."""
    cfg = _parse(text, source)
    if warn:
        warn_late_milestones(cfg, source)
    return cfg


def load(path: str | Path, *, warn: bool = True) -> ExperimentConfig:
    """:func:`loads` of a file."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    cfg = _parse(path.read_text(), str(path))
    if warn:
        warn_late_milestones(cfg, str(path))
    return cfg
