"""Every package that src/ imports is declared in pyproject.toml."""

import ast
import re
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DIST_OF = {"PIL": "pillow"}  # import name -> distribution name, where they differ


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "_", name).lower()


def imported_top_level() -> dict[str, str]:
    found = {}
    for path in sorted((ROOT / "src").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                found.setdefault(name.split(".")[0], str(path.relative_to(ROOT)))
    return found


def test_every_imported_package_is_declared():
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    specs = list(meta["dependencies"]) + [d for ds in meta["optional-dependencies"].values() for d in ds]
    declared = {_norm(re.split(r"[<>=!~\[; ]", s, maxsplit=1)[0]) for s in specs}
    imports = imported_top_level()
    assert "pandas" in imports and "torch" in imports  # the scan sees real imports
    undeclared = {mod: where for mod, where in imports.items()
                  if mod not in sys.stdlib_module_names and mod not in ("diminish", "__future__")
                  and _norm(DIST_OF.get(mod, mod)) not in declared}
    assert not undeclared, f"imported but not in pyproject.toml: {undeclared}"


def test_openmp_threads_spin_briefly_at_barriers_unless_the_user_chose():
    """The runner's entry point sets the spin count before torch loads; importing the package for
    analysis leaves the environment alone."""
    import os
    import subprocess

    show = "print(os.environ.get('OMP_WAIT_POLICY'), os.environ.get('GOMP_SPINCOUNT'))"
    code = f"import os, sys; sys.argv = ['x', '--help']; import diminish.run, torch; {show}"

    def ask(**env):
        e = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")}
        e.update(env, PYTHONPATH=str(ROOT / "src"))
        done = subprocess.run([sys.executable, "-c", code], env=e, capture_output=True, text=True, check=True)
        return done.stdout.split()

    assert ask() == ["None", "10000"]
    assert ask(OMP_WAIT_POLICY="ACTIVE") == ["ACTIVE", "None"]
    assert ask(GOMP_SPINCOUNT="300000") == ["None", "300000"]
    code = f"import os, diminish, diminish.analysis, diminish.report, diminish.results; {show}"
    assert ask() == ["None", "None"]  # no side effect on import
