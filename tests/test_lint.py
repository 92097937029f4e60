"""The code passes ruff with the project's rules, line length (E501 at 120) included."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
RUFF = shutil.which("ruff", path=str(Path(sys.executable).parent)) or shutil.which("ruff")


@pytest.mark.skipif(RUFF is None, reason="ruff not installed (the test extra installs it)")
def test_ruff_passes_with_the_line_length_rule_on():
    done = subprocess.run([RUFF, "check", "src", "tests", "tools", "benchmarks"], cwd=REPO, capture_output=True,
                          text=True)
    assert done.returncode == 0, done.stdout[-3000:]
    assert "E501" not in (REPO / "pyproject.toml").read_text().split("ignore =")[1].split("]")[0]
