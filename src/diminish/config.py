"""Experiment configuration: TOML -> frozen dataclasses, validated, hashed.

What the study varies (the grid and the hyper-parameters: :class:`ExperimentConfig`) is kept apart
from runtime switches (device, output and cache folders, progress bars: :class:`RuntimeConfig`,
filled from the command line). Derived values are properties, never written back.

Unknown keys are rejected with the closest known key as a suggestion.
"""

from __future__ import annotations

import dataclasses
import difflib
import hashlib
import json
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, get_type_hints

from .model import ViNyConfig
from .simmim import SimMIMConfig


class ConfigError(ValueError):
    """A bad configuration: names the file, the key and the problem."""


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
        if self.epochs < 0:
            raise ConfigError(f"epochs must be >= 0, got {self.epochs}")
        if self.lr <= 0 or self.batch_size <= 0:
            raise ConfigError(f"lr and batch_size must be positive, got {self.lr}, {self.batch_size}")
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


@dataclass(frozen=True)
class DataConfig:
    """Dataset roots (published layouts). Relative paths are relative to the current folder."""

    pets_root: str = "data/oxford-iiit-pet"
    intel_root: str = "data/intel-image-classification"
    imagenet_root: str = "data/imagenet"
    limit: int = 0  # 0 = use every image in the folder; otherwise cap each cache at this many
    skip_bad: bool = False


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
        if not self.seeds or len(set(self.seeds)) != len(self.seeds):
            raise ConfigError(f"seeds must be a non-empty list of distinct integers, got {list(self.seeds)}")
        if any(s < 0 for s in self.pretrain.sizes):
            raise ConfigError(f"pretrain.sizes must be >= 0, got {list(self.pretrain.sizes)}")
        if any(s <= 0 for s in self.finetune.sizes):
            raise ConfigError(f"finetune.sizes must be positive, got {list(self.finetune.sizes)}")
        if self.finetune.test_size <= 0:
            raise ConfigError(f"finetune.test_size must be positive, got {self.finetune.test_size}")
        for name, vals in (("pretrain.sizes", self.pretrain.sizes), ("finetune.sizes", self.finetune.sizes),
                           ("intermediate.conditions", self.intermediate.conditions)):
            if len(set(vals)) != len(vals) or not vals:
                raise ConfigError(f"{name} must be non-empty and without repeats, got {list(vals)}")

    # -- derived ----------------------------------------------------------------------------
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

    def section_hash(self, *names: str) -> str:
        d = self.to_dict()
        return stable_hash({n: d[n] for n in names})


@dataclass(frozen=True)
class RuntimeConfig:
    """Switches that do not change results: where things go and how they are shown."""

    out_dir: Path = Path("results")
    cache_dir: Path = Path("cache")
    progress: bool = True
    save_models: bool = False
    deterministic: bool = False
    compile: bool = False
    mixed_precision: str | None = None  # "no" | "bf16" | "fp16"; None: Accelerate's own setting
    num_workers: int = 0
    checkpoint_every: float | None = None  # min seconds between epoch-end checkpoints; None: 0 on CPU, 30 else


def stable_hash(obj: Any, length: int = 16) -> str:
    text = json.dumps(obj, sort_keys=True, default=_json_default, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:length]


def _json_default(o: Any) -> Any:
    if isinstance(o, Path):
        return str(o)
    if isinstance(o, tuple):
        return list(o)
    raise TypeError(f"not JSON-serialisable: {type(o).__name__}")


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
            value = tuple(value)
        elif hint is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
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


def loads(text: str, source: str = "<string>") -> ExperimentConfig:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{source}: not valid TOML: {e}") from None
    if "name" not in data:
        raise ConfigError(f"{source}: missing required key 'name'")
    cfg = _build(ExperimentConfig, data, "", source)
    return dataclasses.replace(cfg, source_text=text)


def load(path: str | Path) -> ExperimentConfig:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    return loads(path.read_text(), str(path))
