"""The package's import graph, read from the source (no module is imported): its cycles and
the layout of `graphspore.ops`.

Every module of the installed packages (pyproject.toml's `packages` and `package-dir`) is
parsed with `ast`; its module-level imports are edges to the modules they name. Importing
`a.b.c` runs `a/__init__` and `a/b/__init__` first, so those are edges too, except for the
importing module's own parent packages (already running when it is imported). A name taken
from a package (`from . import as_value` inside `ir/ops/`) is an edge to that package's
`__init__`. A strongly connected component of more than one module is an import cycle.
"""
from __future__ import annotations

import ast
import pathlib
import tomllib

ROOT = pathlib.Path(__file__).resolve().parent.parent
OPS_DIR = ROOT / "graphspore" / "ops"


def package_modules() -> dict[str, pathlib.Path]:
    """Dotted module name -> source file, for every module the project installs."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    folders = config["package-dir"]
    modules = {}
    for package in config["packages"]:
        base = max((k for k in folders if package == k or package.startswith(k + ".")), key=len)
        folder = ROOT / folders[base] / package[len(base):].lstrip(".").replace(".", "/")
        for file in sorted(folder.glob("*.py")):
            modules[package if file.stem == "__init__" else f"{package}.{file.stem}"] = file
    return modules


def _imported(module: str, is_package: bool, node, modules) -> list[str]:
    """The modules an import statement names: `from p import m` names the submodule p.m if
    there is one, else the package p (whose __init__ defines the name)."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if node.level:
        parts = (module if is_package else module.rsplit(".", 1)[0]).split(".")
        parts = parts[:len(parts) - node.level + 1]
        source = ".".join(parts + ([node.module] if node.module else []))
    else:
        source = node.module
    return [f"{source}.{a.name}" if f"{source}.{a.name}" in modules else source
            for a in node.names]


def import_graph(modules: dict[str, pathlib.Path]) -> dict[str, set[str]]:
    """Module -> the project modules its module-level imports run."""
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, file in modules.items():
        own = {".".join(name.split(".")[:i]) for i in range(1, name.count(".") + 1)}
        for node in ast.parse(file.read_text()).body:
            if not isinstance(node, (ast.Import, ast.ImportFrom)):
                continue
            for target in _imported(name, file.stem == "__init__", node, modules):
                parts = target.split(".")
                parents = {".".join(parts[:i]) for i in range(1, len(parts))} - own
                graph[name] |= ({target} | parents) & set(modules) - {name}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan, iteratively)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, edges = work[-1]
            step = next(edges, None)
            if step is not None:
                if step not in index:
                    index[step] = low[step] = len(index)
                    stack.append(step)
                    on_stack.add(step)
                    work.append((step, iter(sorted(graph[step]))))
                elif step in on_stack:
                    low[node] = min(low[node], index[step])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_cycle_finder_sees_a_cycle_and_a_package_edge():
    graph = {"p": {"p.a"}, "p.a": {"p"}, "p.b": {"p.c"}, "p.c": set(), "q": {"p.b"}}
    assert cycles(graph) == [["p", "p.a"]]


def test_import_cycles_at_most_one():
    found = cycles(import_graph(package_modules()))
    assert len(found) <= 1, "import cycles:\n" + "\n".join(" <-> ".join(c) for c in found)


def test_every_module_is_in_the_graph():
    modules = package_modules()
    assert "graphspore.ops.elementwise" in modules and "graphspore.ir.ops" in modules
    assert not any(name.startswith("graphspore.ops_") for name in modules)


# ---------------------------------------------------------------- graphspore.ops layout

def test_ops_modules_import_no_star_and_export_disjoint_names():
    """Only the package's __init__ re-exports with `*`; no name comes from two modules, so
    the order of its imports cannot change what `ops.X` is (`operations` is MindSpore's
    second path to the Primitive classes and re-exports them on purpose)."""
    import importlib
    owner: dict[str, str] = {}
    for file in sorted(OPS_DIR.glob("*.py")):
        if file.stem in ("__init__", "operations"):
            continue
        tree = ast.parse(file.read_text())
        stars = [n.lineno for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)
                 and any(a.name == "*" for a in n.names)]
        assert not stars, f"{file.name}:{stars[0]}: star import"
        module = importlib.import_module(f"graphspore.ops.{file.stem}")
        for name in getattr(module, "__all__", ()):
            assert name not in owner, f"ops.{name} is exported by {owner[name]} and {file.name}"
            owner[name] = file.name


def test_ops_all_names_resolve():
    from graphspore import ops
    missing = [name for name in ops.__all__ if not hasattr(ops, name)]
    assert not missing, missing
    assert ops.operations.MatMul is ops.MatMul and ops.operations.Add is ops.Add


FIRST_IMPORTS = ["graphspore.tensor_type", "graphspore.ops.primitives",
                 "graphspore.frontend.operators"]


def test_any_module_may_be_imported_first():
    """No import order is needed: in a fresh interpreter, whichever module comes first, the
    Tensor methods, ops functions and Primitive classes derived from the registry are all
    there (nothing fills a table as a side effect of a later import)."""
    import subprocess
    import sys
    check = ("import importlib, sys; importlib.import_module(sys.argv[1]); "
             "from graphspore.tensor_type import Tensor; from graphspore import ops; "
             "x = Tensor([1.0, 4.0]); "
             "assert float(x.std()) == 1.5; "
             "assert float(x.atan().sum()) == float(ops.Atan()(x).sum()); "
             "assert ops.operations.LogicalNot is ops.LogicalNot")
    for module in FIRST_IMPORTS:
        done = subprocess.run([sys.executable, "-c", check, module], capture_output=True,
                              text=True, timeout=120)
        assert done.returncode == 0, f"importing {module} first:\n{done.stderr[-2000:]}"
