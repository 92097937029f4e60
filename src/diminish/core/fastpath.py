"""Small, reusable pieces of the fast path; each is measured by ``python -m diminish.bench``.

What each helper does and when it pays (numbers in ``benchmarks/README.md``):

* :func:`setup_device` - per-process switches: TF32 matmuls on CUDA (:func:`enable_tf32`); on CPUs the thread count and
  :func:`tune_cpu_allocator` (1.7x for SimMIM pre-training at batch 256: glibc otherwise returns
  every activation buffer above 32 MB to the kernel and page-faults it back in at each step).
* :func:`resolve_precision` / :func:`autocast` - the one precision switch, in Accelerate's words
  (``no``, ``bf16``, ``fp16``; ``auto`` = bf16 on GPUs that support it, else no). Master weights,
  optimiser state and losses stay fp32.
  On CPUs with native bf16 (:func:`cpu_has_fast_bf16`) asking for bf16 doubles training speed.
* :func:`make_optimizer` - AdamW with the fused kernel on CUDA (one kernel for all parameters),
  the ``foreach`` kernels elsewhere (either on any device when asked: ``--adamw``).
* :func:`maybe_compile` - ``torch.compile`` behind a switch (``RuntimeConfig.compile``): it
  pays for long runs on a GPU, costs a compile per model shape, and is off by default.
* :func:`eval_context` - ``torch.inference_mode`` plus the same autocast as training.
* :func:`to_device_uint8` - device-resident uint8 datasets: the whole
  cache lives on the GPU (pets 7k images = 0.35 GB, Intel 14k = 0.7 GB, 200k ImageNet = 9.8 GB)
  and each step gathers its batch with one index tensor, then augments it on the device
  (``diminish.data.transforms`` work on any device), so no host work scales with the batch.
* :class:`StackedModels` - K independent copies of one architecture trained in one step through
  ``torch.func.stack_module_state`` + ``vmap`` (many small fine-tuning runs on one device).
"""

from __future__ import annotations

import contextlib
import copy
import ctypes
import warnings
from collections.abc import Iterator, Sequence

import numpy as np
import torch
from torch import nn

from ..config import ADAMW_KERNELS, PRECISIONS

# vmap over SDPA on the CPU falls back to a loop over the stacked models; correct, just not fused
warnings.filterwarnings("ignore", message="There is a performance drop because we have not yet implemented")


def resolve_device(name: str | torch.device = "auto") -> torch.device:
    """``"auto"`` -> cuda if available, else cpu; anything else is passed to ``torch.device``."""
    if isinstance(name, torch.device):
        return name
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(name)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(f"device {name!r} asked for, but torch sees no CUDA device")
    return dev


DTYPES = dict(zip(PRECISIONS, (torch.float32, torch.bfloat16, torch.float16)))  # precision word -> autocast dtype


def resolve_precision(name: str, device: torch.device, flag: str = "--mixed-precision") -> str:
    """The one precision vocabulary (Accelerate's ``mixed_precision``): ``"no"``, ``"bf16"`` or
    ``"fp16"`` as named; ``"auto"`` -> bf16 on a CUDA device that supports it, else no. Anything
    else is a ValueError naming ``flag``."""
    if name == "auto":
        return "bf16" if device.type == "cuda" and torch.cuda.is_bf16_supported() else "no"
    if name not in DTYPES:
        raise ValueError(f"{flag} must be one of auto, {', '.join(PRECISIONS)}; got {name!r}")
    return name


def autocast_dtype(device: torch.device, precision: str | None) -> torch.dtype | None:
    """The dtype autocast computes in for ``precision`` on ``device``, None for none: fp16 only
    autocasts off the CPU (as in Accelerate, which trains fp16 on a CPU in fp32)."""
    if precision in (None, "no") or (precision == "fp16" and device.type == "cpu"):
        return None
    if precision not in DTYPES:
        raise ValueError(f"mixed precision must be one of {', '.join(PRECISIONS)}; got {precision!r}")
    return DTYPES[precision]


def cpu_has_fast_bf16() -> bool:
    """True when this CPU multiplies bf16 natively (AVX512-BF16 or AMX), where bf16 autocast pays
    (about 2x for ViNy training on an AVX512-BF16 EPYC; see benchmarks/README.md)."""
    try:
        with open("/proc/cpuinfo") as f:
            flags = f.read()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def autocast(device: torch.device, precision: str | None):
    """The mixed-precision context of a forward pass, for every caller: the runner's evaluations
    (with the run's ``--mixed-precision``; its training forward gets the same from Accelerate's
    ``prepare``), the benchmark and ``python -m diminish.evaluate``. The same context as
    ``Accelerator.autocast()``: ``torch.autocast`` in :func:`autocast_dtype`, or nothing."""
    dtype = autocast_dtype(device, precision)
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


@contextlib.contextmanager
def eval_context(device: torch.device, precision: str | None) -> Iterator[None]:
    """Evaluation: ``inference_mode`` (no autograd bookkeeping at all) with the training autocast."""
    with torch.inference_mode(), autocast(device, precision):
        yield


OPTIMIZERS = ADAMW_KERNELS  # auto = fused on CUDA, foreach elsewhere


def make_optimizer(params, lr: float, weight_decay: float, device: torch.device | str,
                   kernel: str = "auto") -> torch.optim.AdamW:
    """AdamW; ``kernel`` ``auto``: the fused single-kernel implementation on CUDA, ``foreach``
    elsewhere; ``fused`` or ``foreach`` on any device (torch >= 2.4 has a fused CPU kernel, so
    the CUDA path's optimiser and its checkpointed state can be tested on a CPU).

    The update is the same algorithm either way (differences are float rounding only).
    """
    if kernel not in OPTIMIZERS:
        raise ValueError(f"AdamW kernel must be one of {', '.join(OPTIMIZERS)}; got {kernel!r}")
    dev = torch.device(device)
    if kernel == "fused" or (kernel == "auto" and dev.type == "cuda"):
        return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay, fused=True)
    return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay, foreach=True)


def maybe_compile(model: nn.Module, enabled: bool, mode: str | None = None) -> nn.Module:
    """``torch.compile(model)`` when ``enabled``; the module itself otherwise.

    The compiled wrapper shares parameters and state-dict keys with ``model`` (keys get no
    ``_orig_mod.`` prefix as long as callers save ``model``, not the wrapper).
    """
    if not enabled:
        return model
    return torch.compile(model, mode=mode)


_COMPILED_FORWARDS: dict = {}  # (module class, mode) -> its compiled forward, shared by every instance


def compile_forward(model: nn.Module, mode: str | None = None) -> nn.Module:
    """Compile ``model``'s forward in place, once per class for the whole process: the instance's
    ``forward`` becomes the class's compiled ``forward`` function bound to it. Every stage builds a
    new model, and Accelerate's ``prepare`` under mixed precision wraps each instance's forward
    in a new autocast closure; compiling that wrapper (``torch.compile(prepared)``) recompiled at
    every stage and fell back to eager once dynamo's recompile limit (8) was hit (measured on the
    tiny grid: 18 recompiles in 19 stages). Compiled underneath the wrapper, the models of one
    class share their code; the autocast around it is guarded like any other state. Only calls
    with gradients enabled take the compiled code (evaluation, under ``inference_mode``, and the
    final-weights check, under ``no_grad``, run eagerly, as before). Returns ``model``; its
    parameters and state-dict keys are untouched."""
    cls = type(model)
    key = (cls, mode)
    if key not in _COMPILED_FORWARDS:
        _COMPILED_FORWARDS[key] = torch.compile(cls.forward, mode=mode)
    compiled, eager = _COMPILED_FORWARDS[key], cls.forward

    def forward(*args, **kwargs):  # training steps compiled; evaluation and checks (no grad) stay eager
        if torch.is_grad_enabled() and not torch.is_inference_mode_enabled():
            return compiled(model, *args, **kwargs)
        return eager(model, *args, **kwargs)

    model.forward = forward
    return model


def _libc():
    """The C library already loaded into this process (glibc on Linux), or None."""
    try:
        libc = ctypes.CDLL(None)
        libc.mallopt  # noqa: B018 - probe: glibc has it, musl/macOS do not
        return libc
    except (OSError, AttributeError):
        return None


def tune_cpu_allocator() -> bool:
    """Keep freed memory inside the process (glibc ``mallopt``), so that the large activation
    buffers of every step are not handed back to the kernel and faulted in again (zeroed page by
    page) on the next step. Returns True when applied; a no-op without glibc."""
    libc = _libc()
    if libc is None:
        return False
    m_trim_threshold, m_mmap_max = -1, -4
    return libc.mallopt(m_trim_threshold, 1 << 30) == 1 and libc.mallopt(m_mmap_max, 0) == 1


def release_cpu_memory() -> None:
    """Give freed heap memory back to the kernel now (``malloc_trim``); for memory measurements."""
    libc = _libc()
    if libc is not None and hasattr(libc, "malloc_trim"):
        libc.malloc_trim(0)


def enable_tf32() -> None:
    """TF32 for fp32 matmuls and convolutions on CUDA. Torch >= 2.9 has one switch per backend
    (``fp32_precision``) and deprecates ``allow_tf32``/``set_float32_matmul_precision``; mixing
    the two APIs makes inductor raise under ``--compile``, so the new one is used where torch has it."""
    matmul, conv = torch.backends.cuda.matmul, getattr(torch.backends.cudnn, "conv", None)
    if hasattr(matmul, "fp32_precision") and conv is not None and hasattr(conv, "fp32_precision"):
        matmul.fp32_precision = "tf32"
        conv.fp32_precision = "tf32"
    else:  # older torch
        matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
        torch.set_float32_matmul_precision("high")


def setup_device(device: torch.device, threads: int | None = None, tune_allocator: bool = True) -> None:
    """Per-process speed switches; call once before building models."""
    if device.type == "cuda":
        enable_tf32()
    else:
        if threads:
            torch.set_num_threads(threads)
        if tune_allocator:
            tune_cpu_allocator()


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def to_device_uint8(array: np.ndarray, device: torch.device) -> torch.Tensor:
    """A cache array (uint8 memmap) as one tensor on ``device`` (pinned and copied once)."""
    if array.dtype != np.uint8:
        raise TypeError(f"expected a uint8 array, got {array.dtype}")
    t = torch.from_numpy(np.ascontiguousarray(array))
    if device.type == "cuda":
        return t.pin_memory().to(device, non_blocking=True)
    return t


class StackedModels(nn.Module):
    """K independent models of one architecture evaluated as one batched model.

    ``forward(x)`` takes ``(K, B, ...)`` and returns ``(K, B, ...)``; model k sees only ``x[k]``.
    The stacked parameters are ordinary leaves of shape ``(K, ...)``, so one AdamW over them is
    exactly K independent AdamW runs (the update is element-wise; only the losses must be summed,
    not averaged, over k so that each model gets its own unscaled gradient). ``unstack(k)`` returns
    model k's state dict with the original keys.
    """

    def __init__(self, models: Sequence[nn.Module]) -> None:
        super().__init__()
        if not models:
            raise ValueError("StackedModels needs at least one model")
        params, buffers = torch.func.stack_module_state(list(models))
        self.k = len(models)
        self._names = list(params)
        self._buffer_names = list(buffers)
        self.params = nn.ParameterList(nn.Parameter(params[n]) for n in self._names)
        for i, name in enumerate(self._buffer_names):
            self.register_buffer(f"_b{i}", buffers[name])
        base = copy.deepcopy(models[0]).to("meta")
        object.__setattr__(self, "_base", base)  # not a submodule: no parameters of its own

    def _dicts(self) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
        p = dict(zip(self._names, self.params))
        b = {n: getattr(self, f"_b{i}") for i, n in enumerate(self._buffer_names)}
        return p, b

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[0] != self.k:
            raise ValueError(f"expected {self.k} stacked batches in dim 0, got {x.shape[0]}")
        p, b = self._dicts()

        def one(pk, bk, xk):
            return torch.func.functional_call(self._base, (pk, bk), (xk,))

        return torch.vmap(one)(p, b, x)

    def unstack(self, k: int) -> dict[str, torch.Tensor]:
        p, b = self._dicts()
        return {n: t[k].detach().clone() for n, t in {**p, **b}.items()}


