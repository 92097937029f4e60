"""From measured rates to the wall time of the whole configured grid on this device.

:func:`grid_workload` is the work the grid asks for (training image-steps and evaluated images per
stage type: :func:`diminish.runner.plan.grid_cost`, the sum over the grid's stages that ``--dry-run``
prints too); :func:`project_grid` divides it by the benchmark's median rates. Start-up
costs (building models, reading caches, compiling) are not included.
"""

from __future__ import annotations

from ..config import ExperimentConfig
from ..runner.plan import INTEL_TEST_IMAGES as INTEL_TEST
from ..runner.plan import INTEL_TRAIN_IMAGES as INTEL_TRAIN
from ..runner.plan import build_plan, grid_cost


def grid_workload(cfg: ExperimentConfig, intel_train: int = INTEL_TRAIN, intel_test: int = INTEL_TEST) -> dict:
    """Runs, training image-steps and evaluated images per stage type for the configured grid
    (:func:`diminish.runner.plan.grid_cost` of its plan)."""
    return grid_cost(build_plan(cfg), intel_train, intel_test)


def project_grid(cfg: ExperimentConfig, stages: dict) -> dict:
    """Wall time of the grid on this device from the measured rates (no start-up costs)."""
    work = grid_workload(cfg)
    out: dict = {"workload": work, "seconds": {}}
    for s, w in work.items():
        st = stages.get(s)
        if st is None:
            out["seconds"][s] = None
            continue
        sec = w["image_steps"] / st["train_images_per_s"]
        if w["eval_images"] and st.get("eval_images_per_s"):  # not timed with --no-eval
            sec += w["eval_images"] / st["eval_images_per_s"]
        out["seconds"][s] = sec
    known = [v for v in out["seconds"].values() if v is not None]
    out["total_image_steps"] = sum(w["image_steps"] for w in work.values())
    out["total_hours"] = sum(known) / 3600 if len(known) == len(work) else None
    return out
