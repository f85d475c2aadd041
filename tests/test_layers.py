"""runbridge's modules form one-way layers (README, "Architecture"): every import, at the top of
a module or inside a function, points to the same layer or one below, and the import graph has
no cycle. Checked twice: statically (every `import` / `from` statement anywhere in a module, read
with `ast`) and by importing each module alone in a fresh interpreter (what it really loads)."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

import runbridge

ROOT = Path(runbridge.__file__).parent

#: Bottom to top. A module may import modules of its own layer or of a layer below.
LAYERS: list[tuple[str, set[str]]] = [
    ("values", {"errors", "records", "batch", "timefmt", "values", "media", "shapes", "config", "holdings",
                "hookspecs", "frames", "columns", "charts", "reduce", "plots", "forksafe"}),
    ("backends", {"backends", "spool", "fanout", "backendset"}),
    ("copying", {"migrate", "migrate_report", "sync"}),
    ("core", {"buffer", "runcore", "signals", "liveness"}),
    ("scripts", {"scripts"}),  # the package and every module in it
    ("azureml", {"context", "run_metrics", "run_files", "run", "experiment"}),
    ("viewer", {"viewer"}),  # the package and every module in it
    ("cli", {"cliutil", "commands", "commands_migrate", "commands_view", "cli_run", "cli", "__main__"}),
    ("facade", {"", "testing", "azureml", "_azureml_shim"}),  # "": runbridge/__init__.py
]
MAX_LINES = 400
LONG_REASON = "Longer than 400 lines because"


def _name(path: Path) -> str:
    """The dotted name of a module below `runbridge` ("" for the package itself)."""
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {_name(p): p for p in sorted(ROOT.rglob("*.py"))}


def _rank(module: str) -> int:
    head = module.split(".")[0]
    for rank, (_, members) in enumerate(LAYERS):
        if module in members or head in members:
            return rank
    raise AssertionError(f"runbridge.{module} is in no layer: add it to LAYERS (and to README's diagram)")


def _resolve(module: str, node: ast.ImportFrom | ast.Import) -> set[str]:
    """The runbridge modules an import statement of `module` loads (names below `runbridge`)."""
    targets: set[str] = set()
    if isinstance(node, ast.Import):
        names = [a.name for a in node.names]
    else:
        if node.level:
            package = module.split(".") if MODULES[module].name == "__init__.py" else module.split(".")[:-1]
            package = package[:len(package) - (node.level - 1)] if node.level > 1 else package
            base = ".".join(["runbridge", *[p for p in package if p]] + ([node.module] if node.module else []))
        else:
            base = node.module or ""
        names = [f"{base}.{a.name}" for a in node.names]
        if not (module + ".").startswith(base[len("runbridge."):] + ".") and base != "runbridge":
            names.append(base)  # the module imported from, unless a package holding `module` (loaded anyway)
    for name in names:
        if name == "runbridge" or name.startswith("runbridge."):
            short = name[len("runbridge."):] if name != "runbridge" else ""
            if short in MODULES:
                targets.add(short)
    return targets


def _static_graph() -> dict[str, set[str]]:
    graph = {}
    for module, path in MODULES.items():
        deps: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                deps |= _resolve(module, node)
        graph[module] = deps - {module}
    return graph


def test_every_module_is_in_a_layer():
    for module in MODULES:
        _rank(module)


def test_every_import_statement_points_down():
    upward = [f"runbridge.{m or '__init__'} ({LAYERS[_rank(m)][0]}) imports runbridge.{d} ({LAYERS[_rank(d)][0]})"
              for m, deps in _static_graph().items() for d in sorted(deps) if _rank(d) > _rank(m)]
    assert upward == []


def test_the_import_graph_has_no_cycle():
    graph = _static_graph()
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(module: str, path: list[str]) -> None:
        state[module] = 1
        for dep in sorted(graph[module]):
            if state.get(dep) == 1:
                raise AssertionError("import cycle: " + " -> ".join(path[path.index(dep):] + [module, dep]))
            if dep not in state:
                visit(dep, path + [module])
        state[module] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module, [])


# Importing runbridge.X runs runbridge/__init__.py first, which loads the public API (the top
# layer). To see what X itself loads, the package is stood in for by an empty module.
_PROBE = """
import importlib, json, sys, types
package = types.ModuleType("runbridge")
package.__path__ = [{root!r}]
sys.modules["runbridge"] = package
before = set(sys.modules)
for name in {names!r}:
    importlib.import_module(name)
print(json.dumps(sorted(m for m in set(sys.modules) - before if m.startswith("runbridge."))))
"""


def _loads(module: str) -> list[str]:
    code = _PROBE.format(root=str(ROOT), names=[f"runbridge.{module}"])
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=ROOT.parent)
    assert out.returncode == 0, out.stderr
    return [m[len("runbridge."):] for m in json.loads(out.stdout.strip().splitlines()[-1])]


@pytest.mark.parametrize("module", sorted(m for m in MODULES if m and not m.startswith("_azureml_shim")
                                          and m != "__main__"))
def test_importing_a_module_alone_loads_nothing_above_it(module):
    above = [m for m in _loads(module) if _rank(m) > _rank(module)]
    assert above == [], f"importing runbridge.{module} loads modules of higher layers"


def test_modules_are_short_or_say_why():
    long = []
    for module, path in MODULES.items():
        text = path.read_text(encoding="utf-8")
        lines = text.count("\n")
        docstring = ast.get_docstring(ast.parse(text)) or ""
        if lines > MAX_LINES and LONG_REASON not in docstring:
            long.append(f"runbridge/{path.relative_to(ROOT)}: {lines} lines")
    assert long == [], f"split these modules, or state at their top: '{LONG_REASON} ...'"


#: Private names of the standard library's own objects that runbridge may use.
_STDLIB_PRIVATE = {"_replace", "_fields", "_asdict", "_make", "_exit", "_getframe"}


def _own_private_names(tree: ast.AST) -> set[str]:
    """The `_private` names a module defines: functions, classes, globals, attributes it sets on
    `self`/`cls`, class-level annotations (setting another object's `_x` does not define it)."""
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
        elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store) and \
                isinstance(node.value, ast.Name) and node.value.id in ("self", "cls"):
            names.add(node.attr)
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
    return {n for n in names if n.startswith("_")}


def test_no_module_reaches_into_another_modules_private_names():
    reaches = []
    for module, path in MODULES.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        own = _own_private_names(tree) | _STDLIB_PRIVATE
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and any(_resolve(module, node)):
                reaches += [f"runbridge/{path.relative_to(ROOT)}:{node.lineno} imports {a.name}"
                            for a in node.names if a.name.startswith("_") and not a.name.startswith("__")]
            elif isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.startswith("__"):
                if isinstance(node.value, ast.Name) and node.value.id in ("self", "cls"):
                    continue
                if node.attr not in own:
                    reaches.append(f"runbridge/{path.relative_to(ROOT)}:{node.lineno} uses .{node.attr}")
    assert reaches == []
