"""docs/architecture.md stays a true map: every module of the package has a row in its module
table and every row names a module that exists, and the four files it names for one fine-tuning
step exist and are the ones the loop's docstring names."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PKG = REPO / "src" / "diminish"
DOC = (REPO / "docs" / "architecture.md").read_text()


def _table() -> str:
    start = DOC.index("## 3. Modules")
    return DOC[start:DOC.index("\n## ", start + 1)]


def test_every_module_has_a_row_and_every_row_a_module():
    modules = {p.relative_to(PKG).as_posix() for p in PKG.rglob("*.py") if p.name != "__init__.py"}
    rows = {line.split("|")[1] for line in _table().splitlines() if line.startswith("| `")}
    in_rows = {m for row in rows for m in re.findall(r"`([\w/]+\.py)`", row)}
    assert sorted(modules - in_rows) == [], "modules without a row in docs/architecture.md"
    assert sorted(in_rows - modules) == [], "rows naming modules that do not exist"


def test_the_step_is_four_files_in_order():
    part = DOC[DOC.index("**One fine-tuning step**"):DOC.index("## 2. Data flow")]
    files = re.findall(r"^\d\. `([\w/]+\.py)`", part, flags=re.M)
    assert files == ["core/batches.py", "core/tasks.py", "core/model.py", "core/loop.py"]
    assert all((PKG / f).is_file() for f in files)
    loop_doc = (PKG / "core" / "loop.py").read_text()
    assert all(f"diminish.core.{Path(f).stem}" in loop_doc or Path(f).stem == "loop" for f in files)
