"""The package's shape (docs/design.md, "Data flows one way"): no import cycle among the modules of
cardiopheno, and no module importing from a layer above its own. Read from the source with ``ast``,
function-level imports included (imports under ``if TYPE_CHECKING:`` never run and are left out)."""

from __future__ import annotations

import ast
import functools
import graphlib
from pathlib import Path

import cardiopheno

PACKAGE_DIR = Path(cardiopheno.__file__).parent

# docs/design.md: cardiopheno (labels), definitions, errors, views -> io -> synth, segment, motion
# -> qc, phenotypes -> stats -> plots, report; the workflow's door and the commands above them all.
LAYERS = {
    "cardiopheno": 0,
    "cardiopheno.definitions": 0,
    "cardiopheno.errors": 0,
    "cardiopheno.views": 0,
    "cardiopheno.workflow_log": 0,
    "cardiopheno.io": 1,
    "cardiopheno.synth": 2,
    "cardiopheno.segment": 2,
    "cardiopheno.motion": 2,
    "cardiopheno.qc": 3,
    "cardiopheno.phenotypes": 3,
    "cardiopheno.stats": 4,
    "cardiopheno.plots": 5,
    "cardiopheno.report": 5,
}
TOP = 6  # batching, cohort_check, config_checks, summary, cli and every package's cli module


def module_files() -> dict[str, Path]:
    """Dotted module name -> file, for every module of the package."""
    out = {}
    for path in PACKAGE_DIR.rglob("*.py"):
        parts = list(path.relative_to(PACKAGE_DIR.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


def _type_checking_only(tree: ast.AST) -> set[int]:
    """ids of the import nodes under ``if TYPE_CHECKING:``."""
    skipped = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skipped |= {id(n) for stmt in node.body for n in ast.walk(stmt)}
    return skipped


def _imported_names(node: ast.AST, package: str) -> list[str]:
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if isinstance(node, ast.ImportFrom):
        base = node.module or ""
        if node.level:
            parent = package.split(".")[: len(package.split(".")) - node.level + 1]
            base = ".".join([*parent, base] if base else parent)
        return [f"{base}.{alias.name}" for alias in node.names]
    return []


@functools.cache
def import_graph() -> dict[str, set[str]]:
    """Module -> the package's modules it imports (``from a import b`` names module ``a.b``
    when there is one, else ``a``)."""
    files = module_files()

    def resolve(name: str) -> str:
        while name and name not in files:
            name = name.rpartition(".")[0]
        return name

    graph: dict[str, set[str]] = {}
    for module, path in files.items():
        package = module if path.name == "__init__.py" else module.rpartition(".")[0]
        tree = ast.parse(path.read_text(), str(path))
        skipped = _type_checking_only(tree)
        targets = {
            resolve(name)
            for node in ast.walk(tree)
            if id(node) not in skipped
            for name in _imported_names(node, package)
            if name.split(".")[0] == "cardiopheno"
        }
        graph[module] = targets - {module, ""}
    return graph


def layer(module: str) -> int:
    if module.endswith(".cli") or module.rpartition(".")[0] == "cardiopheno.cli":
        return TOP
    name = module
    while name != "cardiopheno":  # the root package's own __init__ only is layer 0
        if name in LAYERS:
            return LAYERS[name]
        name = name.rpartition(".")[0]
    return LAYERS[module] if module == "cardiopheno" else TOP


def test_the_graph_sees_function_level_and_relative_imports():
    graph = import_graph()
    assert "cardiopheno.phenotypes.registry" in graph["cardiopheno.phenotypes.lv_function"]
    assert len(graph) > 100


def test_no_import_cycle_among_modules():
    try:
        graphlib.TopologicalSorter(import_graph()).prepare()
    except graphlib.CycleError as err:
        raise AssertionError(f"import cycle: {' -> '.join(err.args[1])}") from None


def test_data_flows_one_way_no_module_imports_from_a_layer_above():
    upward = [
        f"{module} (layer {layer(module)}) imports {target} (layer {layer(target)})"
        for module, targets in import_graph().items()
        for target in sorted(targets)
        if layer(target) > layer(module)
    ]
    assert not upward, "\n".join(upward)


MAX_FILE_LINES = 500  # issue #33: a module a newcomer can read in one sitting
MAX_FUNCTION_LINES = 80  # def line to last line, docstring included


def test_no_module_over_500_lines_and_no_function_over_80():
    long_files, long_functions = [], []
    for name, path in sorted(module_files().items()):
        text = path.read_text()
        if text.count("\n") > MAX_FILE_LINES:
            long_files.append(f"{name}: {text.count(chr(10))} lines")
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                length = node.end_lineno - node.lineno + 1
                if length > MAX_FUNCTION_LINES:
                    long_functions.append(f"{name}.{node.name}: {length} lines")
    assert not long_files, long_files
    assert not long_functions, long_functions
