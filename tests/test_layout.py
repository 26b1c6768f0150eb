"""The package layout: one subpackage per stage, no import cycles, lower layers never import higher.

The import graph is read from the sources (every `import`, including those inside functions), so
a lazy import cannot hide a cycle or a layer violation.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "scancap"
STAGES = ("restore", "classify", "caption", "ocr")
# Shared ground: knows nothing of stages, the pipeline or the entry points.
SHARED = (
    "io", "pages", "page_table", "metadata", "quality", "backbones", "config", "paths", "memory",
    "figures", "batch",
)  # fmt: skip
ENTRY_POINTS = ("cli", "service")  # the `scancap` command (scancap/cli/) and the HTTP service


def imported_modules(path: Path) -> set[str]:
    """Every module a source file imports, by its full name (`from a.b import c` names a.b)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module)
        elif isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
    return names


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph() -> dict[str, set[str]]:
    """Module -> the scancap modules it imports (a `from package import module` names the
    module; `from module import name` names the module)."""
    modules = {module_name(path): path for path in PACKAGE.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        imported = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("scancap"):
                for alias in node.names:
                    child = f"{node.module}.{alias.name}"
                    imported.add(child if child in modules else node.module)
            elif isinstance(node, ast.Import):
                imported |= {a.name for a in node.names if a.name.startswith("scancap")}
        graph[name] = imported - {name}
    return graph


def layer(module: str) -> str:
    """The top-level room a module lives in: 'io', 'classify', 'pipeline', ..."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as a list of modules, or None (depth-first search with colours)."""
    state: dict[str, int] = {}  # 1: on the current path, 2: finished
    path: list[str] = []

    def visit(module: str) -> list[str] | None:
        state[module] = 1
        path.append(module)
        for target in sorted(graph.get(module, ())):
            if state.get(target) == 1:
                return path[path.index(target) :] + [target]
            if target not in state and (cycle := visit(target)):
                return cycle
        path.pop()
        state[module] = 2
        return None

    for module in sorted(graph):
        if module not in state and (cycle := visit(module)):
            return cycle
    return None


def test_the_finder_sees_a_cycle() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_no_import_cycle() -> None:
    assert find_cycle(import_graph()) is None


def test_no_stage_prefixed_top_level_module() -> None:
    flat = [p.stem for p in PACKAGE.glob("*.py")]
    prefixed = [n for n in flat if n.split("_")[0] in (*STAGES, "pipeline", "engines") and "_" in n]
    assert prefixed == []
    for stage in (*STAGES, "pipeline", "engines", "backbones"):
        assert (PACKAGE / stage / "__init__.py").read_text().startswith('"""'), stage


@pytest.mark.parametrize(
    ("lower", "forbidden"),
    [
        (SHARED, (*STAGES, "pipeline", "engines", *ENTRY_POINTS)),
        (STAGES, ("pipeline", "engines", *ENTRY_POINTS)),
        (("pipeline",), ("engines", *ENTRY_POINTS)),
        (("engines",), ENTRY_POINTS),
    ],
)
def test_lower_layers_never_import_higher(lower: tuple, forbidden: tuple) -> None:
    violations = [
        f"{module} imports {target}"
        for module, targets in import_graph().items()
        if layer(module) in lower
        for target in targets
        if layer(target) in forbidden
    ]
    assert violations == []


def test_stages_know_nothing_of_each_other_except_through_backbones() -> None:
    """classify, caption, restore and ocr are independent: the pipeline composes them."""
    violations = [
        f"{module} imports {target}"
        for module, targets in import_graph().items()
        if layer(module) in STAGES
        for target in targets
        if layer(target) in STAGES and layer(target) != layer(module)
    ]
    assert violations == []


def test_only_the_command_line_parses_arguments() -> None:
    """The stages, the pipeline and the shared ground offer functions; scancap/cli/ alone
    turns a command line into their arguments."""
    outside = [p for p in PACKAGE.rglob("*.py") if "cli" not in p.relative_to(PACKAGE).parts[:1]]
    parsing = [str(p.relative_to(PACKAGE)) for p in outside if "argparse" in imported_modules(p)]
    assert outside and parsing == []


def test_the_product_never_imports_the_lab() -> None:
    """scancap_lab (report writers, benchmarks' helpers) builds on scancap, never the reverse."""
    lab = [
        f"{path.relative_to(PACKAGE)} imports {name}"
        for path in PACKAGE.rglob("*.py")
        for name in imported_modules(path)
        if name.split(".")[0] == "scancap_lab"
    ]
    assert lab == []
