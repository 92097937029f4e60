"""A host-sync detector for tests: a TorchDispatchMode that records every operation which, on a GPU,
makes the host wait for the device's value - a scalar read (``aten._local_scalar_dense``: ``.item()``,
``float(t)``, ``bool(t)``, ``int(t)``), a data-dependent shape (``nonzero``, ``masked_select``,
``unique``), a comparison answered on the host (``equal``, ``is_nonzero``), and an explicit copy to
the host (``_to_copy`` to the CPU; on a CPU only the explicit form ``t.to("cpu", copy=True)`` is
seen, which is how :class:`diminish.core.loop.LossWindow` reads its window).

On a CPU nothing waits, but the same operations run, so a test on the CPU sees every host read that
the CUDA path would make. Values that stay on the host on a GPU as well are exempt when the test
says so (``host_held``: the step counters of a non-fused optimiser, which torch keeps on the CPU).
``where`` is set by the test (e.g. by a batch source) and recorded with each read.
"""

from __future__ import annotations

import torch
from torch.utils._python_dispatch import TorchDispatchMode

aten = torch.ops.aten
SCALAR_READS = {aten._local_scalar_dense.default, aten.equal.default, aten.is_nonzero.default}
SHAPE_READS = {aten.nonzero.default, aten.masked_select.default, aten._unique2.default, aten.unique_dim.default,
               aten.unique_consecutive.default}


class HostReads(TorchDispatchMode):
    """``with HostReads() as rec: ...``; ``rec.reads`` lists ``(where, op name)`` of each host read."""

    def __init__(self, host_held=None) -> None:
        super().__init__()
        self.reads: list[tuple[object, str]] = []
        self.where: object = None
        self.host_held = host_held or (lambda t: False)

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        first = args[0] if args else None
        is_read = func in SCALAR_READS or func in SHAPE_READS
        if func is aten._to_copy.default and kwargs.get("device") is not None:
            is_read = torch.device(kwargs["device"]).type == "cpu"
        if is_read and not (isinstance(first, torch.Tensor) and self.host_held(first)):
            self.reads.append((self.where, str(func.overloadpacket.__name__)))
        return func(*args, **kwargs)


def optimizer_steps(*optimizers):
    """``host_held`` for :class:`HostReads`: the step counters of these optimisers (read by data
    pointer, since the optimiser creates them at its first step)."""

    def held(t: torch.Tensor) -> bool:
        ptrs = {st["step"].data_ptr() for opt in optimizers for st in opt.state.values()
                if isinstance(st.get("step"), torch.Tensor)}
        return t.data_ptr() in ptrs

    return held
