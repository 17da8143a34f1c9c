"""The package's layers (README, "Architecture"): the top level holds only the layer packages,
each layer imports only from the layers above it, and no module imports itself back through
others — counting imports inside functions and under ``TYPE_CHECKING``."""

from __future__ import annotations

import ast
from pathlib import Path

from conftest import REPO

PACKAGE = REPO / "src" / "langarith"
# each layer may import from the layers before it in this order (and from itself)
ORDER = ("core", "io", "model", "experiments", "analysis", "figures", "workflow")


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports() -> dict[str, set[str]]:
    """``{module: {langarith modules it imports anywhere in its source}}``."""
    modules = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        found = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("langarith"):
                for alias in node.names:  # `from langarith.model import sites` names a module
                    sub = f"{node.module}.{alias.name}"
                    found.add(sub if sub in modules else node.module)
            elif isinstance(node, ast.Import):
                found |= {a.name for a in node.names if a.name.startswith("langarith.")}
        graph[name] = {m for m in found if m in modules and m != name}
    return graph


def layer(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else None


def test_the_top_level_holds_only_the_layers():
    entries = {p.name for p in PACKAGE.iterdir() if p.name != "__pycache__"}
    assert entries == {"__init__.py", *ORDER}


def test_each_layer_imports_only_from_the_layers_above_it():
    wrong = [
        f"{module} -> {target}"
        for module, targets in imports().items()
        if layer(module) is not None
        for target in targets
        if layer(target) is not None and ORDER.index(layer(target)) > ORDER.index(layer(module))
    ]
    assert not wrong, "\n".join(sorted(wrong))


def test_core_needs_neither_torch_nor_files():
    for path in (PACKAGE / "core").rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        names = {
            alias.name.split(".")[0]
            for node in ast.walk(tree)
            if isinstance(node, (ast.Import, ast.ImportFrom))
            for alias in (
                node.names if isinstance(node, ast.Import) else [ast.alias(node.module or "")]
            )
        }
        assert not names & {"torch", "transformers", "safetensors"}, path
        calls = {
            node.func.attr
            for node in ast.walk(tree)
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
        }
        assert not calls & {"read_text", "read_parquet", "write_parquet", "open"}, path


def test_every_langarith_import_of_the_package_scripts_and_tests_resolves():
    """A name imported from a moved module fails here, not in a workflow job minutes later."""
    import importlib

    sources = [
        p
        for folder in ("src", "tests", "workflow/scripts", "benchmarks")
        for p in (REPO / folder).rglob("*.py")
    ]
    missing = []
    for path in sources:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not (
                isinstance(node, ast.ImportFrom) and (node.module or "").startswith("langarith")
            ):
                continue
            module = importlib.import_module(node.module)
            for alias in node.names:
                if hasattr(module, alias.name):
                    continue
                try:
                    importlib.import_module(f"{node.module}.{alias.name}")
                except ModuleNotFoundError:
                    missing.append(f"{path.relative_to(REPO)}: {node.module}.{alias.name}")
    assert not missing, "\n".join(missing)


def test_no_import_circle():
    graph = imports()
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(module: str, path: list[str]) -> list[str] | None:
        state[module] = 1
        for target in sorted(graph[module]):
            if state.get(target) == 1:
                return [*path[path.index(target) :], target] if target in path else [target]
            if target not in state:
                circle = visit(target, [*path, target])
                if circle:
                    return circle
        state[module] = 2
        return None

    for module in sorted(graph):
        if module not in state:
            circle = visit(module, [module])
            assert circle is None, " -> ".join(circle)
