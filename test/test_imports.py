"""The import contract of the layers (DESIGN.md), read from the source with `ast`.

Every import counts, lazy ones inside functions included: a function-level import still
ties the layers together and still closes a cycle when that function runs.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from conftest import REPO

MIDDLEWARE = ("rclpy", "cyclonedds", "rosidl_runtime_py", "rclpy_message_converter")


def module_files(root: Path, package: str) -> dict[str, Path]:
    """Dotted module name -> file, for every module of `package` under `root`."""
    out = {}
    for path in sorted((root / package).rglob("*.py")):
        parts = list(path.relative_to(root).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


def imports_of(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """Every module `name` imports: package modules resolved to the module, others by name."""
    is_package = path.name == "__init__.py"
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from the module's package, up level - 1 more
                package = name.split(".") if is_package else name.split(".")[:-1]
                package = package[:len(package) - (node.level - 1)]
                base = ".".join(package + ([base] if base else []))
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                found.add(sub if sub in modules else base)
    return found


def import_graph(root: Path, package: str) -> dict[str, set[str]]:
    """Module -> the modules it imports (any module, inside the package or not)."""
    modules = module_files(root, package)
    return {name: imports_of(name, path, modules) for name, path in modules.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected groups of more than one module (or a module importing itself)."""
    index, low, stack, on_stack, out = {}, {}, [], set(), []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in graph:
                continue
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1 or v in graph[v]:
                out.append(sorted(group))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def violations(graph: dict[str, set[str]], package: str) -> list[str]:
    """Every import that breaks a layer rule, as `importer -> imported (rule)`."""
    def under(module: str, *layers: str) -> bool:
        return any(module == f"{package}.{lay}" or module.startswith(f"{package}.{lay}.")
                   for lay in layers)

    def top(module: str) -> str:
        return module.split(".")[0]

    bad = []
    for mod, imported in sorted(graph.items()):
        for dep in sorted(imported):
            if top(dep) in MIDDLEWARE and not under(mod, "ros"):
                bad.append(f"{mod} -> {dep} (only {package}.ros imports the middleware)")
            if under(mod, "runtime") and (top(dep) == "torch" or under(dep, "ros", "nodes")):
                bad.append(f"{mod} -> {dep} (runtime/ has no torch and no ROS)")
            if under(mod, "tasks", "export") and under(dep, "distill"):
                bad.append(f"{mod} -> {dep} ({mod.split('.')[1]}/ does not import distill/)")
            if under(mod, "nodes") and under(dep, "tasks") and dep not in (
                    f"{package}.tasks", f"{package}.tasks.base"):
                bad.append(f"{mod} -> {dep} (nodes/ reach families through tasks.base)")
    return bad


@pytest.fixture(scope="module")
def graph():
    return import_graph(REPO, "distill_ros")


def test_every_layer_keeps_its_imports(graph):
    assert len(graph) > 50, "the walk must see the package's modules"
    assert violations(graph, "distill_ros") == []


def test_no_import_cycle_among_the_package_modules(graph):
    found = cycles({m: {d for d in deps if d.startswith("distill_ros")}
                    for m, deps in graph.items()})
    assert found == [], "import cycles: " + "; ".join(" <-> ".join(c) for c in found)


def _write(root: Path, files: dict[str, str]) -> None:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def test_the_checks_catch_each_kind_of_violation(tmp_path):
    _write(tmp_path, {
        "pkg/__init__.py": "",
        "pkg/a.py": "def f():\n    from pkg import b\n",           # lazy, still a cycle
        "pkg/b.py": "from . import a\n",                               # relative
        "pkg/runtime/__init__.py": "", "pkg/runtime/r.py": "import torch\n",
        "pkg/tasks/__init__.py": "", "pkg/tasks/base.py": "",
        "pkg/tasks/fam.py": "from pkg.distill.x import y\n",
        "pkg/distill/__init__.py": "", "pkg/distill/x.py": "import rclpy\n",
        "pkg/export/__init__.py": "", "pkg/export/e.py": "import pkg.distill.x as x\n",
        "pkg/nodes/__init__.py": "",
        "pkg/nodes/n.py": "from pkg.tasks import fam, base\nfrom pkg.tasks.base import q\n",
        "pkg/ros/__init__.py": "import rclpy\nimport cyclonedds.core\n",
    })
    g = import_graph(tmp_path, "pkg")
    assert cycles(g) == [["pkg.a", "pkg.b"]]
    assert violations(g, "pkg") == [
        "pkg.distill.x -> rclpy (only pkg.ros imports the middleware)",
        "pkg.export.e -> pkg.distill.x (export/ does not import distill/)",
        "pkg.nodes.n -> pkg.tasks.fam (nodes/ reach families through tasks.base)",
        "pkg.runtime.r -> torch (runtime/ has no torch and no ROS)",
        "pkg.tasks.fam -> pkg.distill.x (tasks/ does not import distill/)",
    ]
