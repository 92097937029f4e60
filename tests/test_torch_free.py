"""The torch-free core: the plan, the results schema, the analysis and the report import without
torch, so results can be analysed and the paper rebuilt on a machine that has no torch."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

# Makes `import torch` (and any torch.* submodule) fail inside the child interpreter, as on a
# machine where torch is not installed.
_BLOCK_TORCH = textwrap.dedent("""
    import importlib.abc, sys

    class _NoTorch(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name == "torch" or name.startswith("torch.") or name.startswith("torchvision"):
                raise ModuleNotFoundError(f"No module named {name!r} (blocked by the test)")
            return None

    sys.meta_path.insert(0, _NoTorch())
""")


def _import_without_torch(module: str) -> subprocess.CompletedProcess:
    code = _BLOCK_TORCH + f"import {module}\nassert 'torch' not in sys.modules\n"
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)


TORCH_FREE = (
    "diminish.config", "diminish.runner.plan", "diminish.results", "diminish.data.classes",
    "diminish.analysis", "diminish.analysis.__main__", "diminish.report", "diminish.report.numbers",
    "diminish.report.tables", "diminish.report.figures",
)


def test_core_imports_without_torch():
    proc = _import_without_torch(", ".join(TORCH_FREE))
    assert proc.returncode == 0, proc.stderr[-2000:]


def test_the_blocker_blocks():
    """The check above would mean nothing if the blocker let torch through."""
    proc = _import_without_torch("diminish.core.model")
    assert proc.returncode != 0 and "blocked by the test" in proc.stderr


def test_the_runner_plans_and_reports_without_torch(tmp_path):
    """--help, --dry-run and --status load no torch (it loads only when a grid trains), so they answer
    at once; the lazy torch imports in the runner's modules (and in training.py, which schedule.py
    imports for StageInterrupted) are there for this."""
    code = _BLOCK_TORCH + textwrap.dedent(f"""
        import contextlib, io
        from diminish import run
        for args in (["--dry-run"], ["--status"], ["--help"]):
            with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):
                assert run.cli(["--config", "experiments/demo.toml", "--out", {str(tmp_path)!r}, *args]) == 0
        assert 'torch' not in sys.modules
    """)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          cwd=Path(__file__).resolve().parents[1])
    assert proc.returncode == 0, proc.stderr[-2000:]
