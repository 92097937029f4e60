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
* ``steps.py``    the timed calls: a task's (:mod:`diminish.core.tasks`) training steps through the
                  runner's loop (:func:`diminish.core.loop.train_one_epoch`) on a synthetic batch,
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

The package imports none of its modules (``from diminish.bench import cli`` etc.), so that its
command line sets OpenMP's wait policy (:func:`diminish.host.quiet_openmp`) before torch loads.
"""
