"""What the benchmark runs: the three stages it knows and the :class:`Options` of one run.

``Options()`` is a full measurement at each stage's configured batch; ``Options.quick()`` only
checks the machinery (small batches, two short rounds). ``cli.py`` builds one from the command line.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..config import ExperimentConfig

STAGES = ("pretrain", "intermediate", "finetune")
TASKS = {"pretrain": "simmim", "intermediate": "classification", "finetune": "segmentation"}


@dataclass
class Options:
    device: str = "auto"
    precision: str = "auto"  # fastpath.resolve_precision's words: no, bf16, auto (bf16 on CUDA if supported, else no)
    batch_size: int = 0  # 0 = each stage's configured batch
    eval_batch_size: int = 0  # 0 = finetune.eval_batch_size
    repeats: int = 5
    target_seconds: float = 1.0  # each timing lasts at least this long (whole steps)
    warmup: int = 2
    compile: bool = False
    compile_mode: str | None = None  # e.g. "reduce-overhead" (CUDA graphs) or "max-autotune"
    optimizer: str = "auto"  # auto = fastpath.make_optimizer (fused on CUDA); foreach = torch's foreach AdamW
    stages: tuple[str, ...] = STAGES
    reference: bool = True
    eval: bool = True  # also time evaluation (off: fewer compiles with --compile)
    data: bool = True
    data_images: int = 1024  # images in the temporary uint8 memmap the data path reads
    matmul_size: int = 0  # 0 = 2048 on CPU, 8192 on CUDA
    many: int = 0  # K > 1: measure K concurrent fine-tuning runs (processes and stacked models)
    many_seconds: float = 5.0
    many_processes: bool = True  # with many > 1 on a CPU: also time K worker processes
    threads: int = 0  # 0 = torch's default
    neighbours: int = 0  # K > 0 (CPU): also time fine-tuning beside K busy processes (bench/shared.py)
    tune_allocator: bool = True
    config: ExperimentConfig = field(default_factory=lambda: ExperimentConfig(name="paper"))

    @classmethod
    def quick(cls, **kw) -> Options:
        """Small and short: batch 8, two rounds, tiny matmul and data file."""
        base = {"batch_size": 8, "eval_batch_size": 8, "repeats": 2, "target_seconds": 0.05,
                "warmup": 1, "data_images": 64, "matmul_size": 1024, "many_seconds": 1.0}
        return cls(**{**base, **kw})
