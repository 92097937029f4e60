"""The package's layers import one way, checked on the import graph read from the source (every
``import`` statement, at any depth, resolved to modules). docs/architecture.md, section 2, names
the layers:

0. torch-free: configuration, seeds, the results schema, the data readers, analysis and report;
1. ``core/``: torch; knows no files, no grid, no processes;
2. ``runner/``: the grid, the store, the processes (its light part, which ``--help``, ``--dry-run``
   and ``--status`` use, is torch-free as well);
3. the tools on top: the benchmark, ``evaluate``, ``reconstructions`` and the entry points.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
PKG = SRC / "diminish"
HEAVY = {"torch", "torchvision", "accelerate"}

# the runner's torch-free part: what `python -m diminish.run --help/--dry-run/--status` loads
RUNNER_LIGHT = {"diminish.runner", "diminish.runner.cli", "diminish.runner.plan", "diminish.runner.kinds",
                "diminish.runner.store", "diminish.runner.claims", "diminish.runner.atomic",
                "diminish.runner.digests", "diminish.runner.schedule", "diminish.runner.overview",
                "diminish.runner.reuse"}
TOP = {"diminish.evaluate", "diminish.reconstructions", "diminish.inspect", "diminish.run"}
TORCH_USERS_IN_DATA = {"diminish.data.splits"}  # torch's generator draws the subsets (results depend on it)
# The one import made inside a function outside optional packages: the runner's training part,
# loaded by the command line only when a grid runs (docs/architecture.md, section 2).
INNER_ALLOWED = {("diminish.runner.cli", "diminish.runner.launch"), ("diminish.bench.extras", "vit_pytorch")}


def _name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _graph() -> tuple[dict[str, set[str]], set[tuple[str, str]]]:
    """module -> the modules it imports (package modules by full name, others by top-level name),
    and the (module, import) pairs made inside a function."""
    modules = {_name(p): p for p in PKG.rglob("*.py")}
    graph, inner = {}, set()
    for mod, path in modules.items():
        is_pkg = path.name == "__init__.py"
        tree = ast.parse(path.read_text())
        in_function = {id(n) for f in ast.walk(tree) if isinstance(f, (ast.FunctionDef, ast.AsyncFunctionDef))
                       for n in ast.walk(f) if n is not f}
        deps = set()
        for node in ast.walk(tree):
            found = []
            if isinstance(node, ast.Import):
                found = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = mod.split(".") if is_pkg else mod.split(".")[:-1]
                    anchor = anchor[: len(anchor) - node.level + 1]
                    base = ".".join(anchor + ([base] if base else []))
                found = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names]
            for name in found:
                if id(node) in in_function:
                    inner.add((mod, name))
                    if (mod, name) in INNER_ALLOWED:
                        continue  # loaded on demand, by design: not an edge of the import-time graph
                target = name if name in modules or not name.startswith("diminish") else name.rsplit(".", 1)[0]
                deps.add(target if target.startswith("diminish") else target.split(".")[0])
        graph[mod] = deps - {mod}
    return graph, inner


GRAPH, INNER = _graph()


def _closure(mod: str) -> set[str]:
    seen, todo = set(), [mod]
    while todo:
        m = todo.pop()
        for d in GRAPH.get(m, ()):
            if d not in seen:
                seen.add(d)
                todo.append(d)
    return seen


def layer(mod: str) -> int:
    if mod in TOP or mod.startswith("diminish.bench"):
        return 3
    if mod.startswith("diminish.runner"):
        return 2
    if mod.startswith("diminish.core") or mod in TORCH_USERS_IN_DATA:
        return 1
    return 0


def torch_free(mod: str) -> bool:
    return layer(mod) == 0 or mod in RUNNER_LIGHT


def test_the_graph_sees_the_whole_package():
    assert {"diminish.core.loop", "diminish.runner.stages", "diminish.report.statements"} <= set(GRAPH)
    assert "diminish.core.batches" in GRAPH["diminish.core.tasks"]  # relative imports resolve
    assert "torch" in GRAPH["diminish.core.loop"]


@pytest.mark.parametrize("mod", sorted(GRAPH))
def test_no_module_imports_a_higher_layer(mod):
    higher = sorted(d for d in GRAPH[mod] if d.startswith("diminish") and layer(d) > layer(mod))
    assert not higher, f"{mod} (layer {layer(mod)}) imports {higher}"


def test_core_knows_no_runner_and_analysis_knows_no_torch_code():
    for mod in GRAPH:
        deps = _closure(mod)
        if mod.startswith("diminish.core"):
            assert not [d for d in deps if d.startswith(("diminish.runner", "diminish.bench"))], mod
        if mod.startswith(("diminish.analysis", "diminish.report")):
            assert not [d for d in deps if d.startswith(("diminish.core", "diminish.runner"))], mod
        if mod.startswith("diminish.analysis"):
            assert not [d for d in deps if d.startswith("diminish.report")], mod


@pytest.mark.parametrize("mod", sorted(m for m in GRAPH if torch_free(m)))
def test_torch_free_modules_never_reach_torch(mod):
    """Directly or through anything they import (the inner import of the runner's command line is
    its documented way to the training part and is not followed)."""
    heavy = {d for d in _closure(mod) if d in HEAVY}
    assert not heavy, f"{mod} reaches {sorted(heavy)}: " + ", ".join(
        sorted(m for m in _closure(mod) | {mod} if GRAPH.get(m, set()) & HEAVY))


def test_imports_inside_functions_are_the_documented_few():
    assert INNER <= INNER_ALLOWED, sorted(INNER - INNER_ALLOWED)


def test_the_graph_test_can_fail():
    """A planted violation is found: core importing the runner."""
    GRAPH["diminish.core.loop"].add("diminish.runner.store")
    try:
        with pytest.raises(AssertionError):
            test_no_module_imports_a_higher_layer("diminish.core.loop")
    finally:
        GRAPH["diminish.core.loop"].discard("diminish.runner.store")
