"""Throughput benchmark of the training pipeline: ``python -m diminish.bench`` (``make bench``).

On one device and at the configured batch sizes it measures, after warm-up, every row timed once
per round and the median over ``--repeats`` rounds reported:

* training and evaluation images/s of the three stages (SimMIM pre-training, the intermediate
  classification task, the segmentation fine-tuning), their peak memory, and their model FLOP
  utilisation against a square matrix multiply in the same dtype;
* the cached data path alone (memmap -> device -> batched augmentation), against training speed;
* vit-pytorch's ``ViT`` at the same configuration, as a reference (needs the ``bench`` extra);
* with ``--many K``, K fine-tuning runs at once, as stacked models and as K processes;

and from these rates it projects the wall time of the whole configured grid on this device.

One concern per module:

* ``options.py``  the stages and :class:`Options` of one benchmark run
* ``flops.py``    exact matrix-multiply FLOPs per image (the formula is in its docstring)
* ``steps.py``    the timed calls: a task's (:mod:`diminish.tasks`) training steps through the
                  runner's loop (:func:`diminish.engine.train_one_epoch`) on a synthetic batch,
                  its prediction, the optimiser choice
* ``timing.py``   :class:`Job` (one timed row), :class:`MemoryProbe`, device description
* ``measure.py``  :func:`run`: builds the rows, times them in rounds, collects the JSON result
* ``extras.py``   the vit-pytorch reference rows and the data-path rows
* ``many.py``     concurrent fine-tuning runs: stacked models and worker processes
* ``shared.py``   fine-tuning alone and beside busy processes (``--neighbours K``): a shared CPU
* ``grid.py``     workload of the configured grid and its projected wall time
* ``table.py``    :func:`format_table`, the printed report
* ``cli.py``      argument parsing and :func:`main` (``__main__.py`` calls it)

Measured numbers and how to read them: ``benchmarks/README.md``.
"""

from __future__ import annotations

from .cli import main
from .flops import flops_per_image
from .grid import INTEL_TEST, INTEL_TRAIN, grid_workload, project_grid
from .many import _run_workers, _worker, many_processes
from .measure import run
from .options import STAGES, TASKS, Options
from .steps import eval_step_fn, stage_config, task_of, train_step_fn
from .table import format_table
from .timing import Job, MemoryProbe, device_info

__all__ = [
    "INTEL_TEST", "INTEL_TRAIN", "STAGES", "TASKS", "Job", "MemoryProbe", "Options", "_run_workers",
    "_worker", "device_info", "eval_step_fn", "flops_per_image", "format_table", "grid_workload", "main",
    "many_processes", "project_grid", "run", "stage_config", "task_of", "train_step_fn",
]
