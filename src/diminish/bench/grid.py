"""From measured rates to the wall time of the whole configured grid on this device.

:func:`grid_workload` counts the work the grid asks for (training image-steps and evaluated
images per stage type); :func:`project_grid` divides it by the benchmark's median rates. Start-up
costs (building models, reading caches, compiling) are not included.
"""

from __future__ import annotations

from ..config import ExperimentConfig

INTEL_TRAIN = 14_034  # Intel seg_train images (the intermediate stage's epoch)
INTEL_TEST = 3_000  # Intel seg_test images (evaluated once per intermediate run)


def grid_workload(cfg: ExperimentConfig, intel_train: int = INTEL_TRAIN, intel_test: int = INTEL_TEST) -> dict:
    """Training image-steps and evaluated images per stage type for the configured grid.

    pretrain: every non-zero size x epochs x seeds; intermediate: Intel train x epochs for every
    pre-training size (with the intermediate condition on) x seeds; fine-tuning: every size x
    epochs x pre-training sizes x intermediate conditions x seeds. Evaluation: the Intel test set
    once per intermediate run, the Pets test set once per fine-tuning run.
    """
    seeds, n_pre = len(cfg.seeds), len(cfg.pretrain.sizes)
    n_inter = n_pre * (True in cfg.intermediate.conditions) * seeds
    n_fine = len(cfg.finetune.sizes) * n_pre * len(cfg.intermediate.conditions) * seeds
    return {
        "pretrain": {"runs": sum(1 for s in cfg.pretrain.sizes if s) * seeds,
                     "image_steps": sum(cfg.pretrain.sizes) * cfg.pretrain.epochs * seeds, "eval_images": 0},
        "intermediate": {"runs": n_inter, "image_steps": intel_train * cfg.intermediate.epochs * n_inter,
                         "eval_images": intel_test * n_inter if cfg.intermediate.evaluate_test else 0},
        "finetune": {"runs": n_fine,
                     "image_steps": sum(cfg.finetune.sizes) * cfg.finetune.epochs * n_pre
                     * len(cfg.intermediate.conditions) * seeds,
                     "eval_images": cfg.finetune.test_size * n_fine},
    }


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
