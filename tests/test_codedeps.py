"""The code inputs of workflow rules: the static import closure of a stage module."""

import subprocess
import sys

import pytest

from weightzoo.codedeps import SRC, closure, module_file

PKG = SRC / "weightzoo"


def names(files):
    return {str(p.relative_to(PKG)) for p in files}


def test_closure_holds_the_module_its_imports_and_their_packages():
    files = names(closure("weightzoo.stages.zoo"))
    assert {"stages/zoo.py", "zoo/hdf5.py", "io.py"} <= files
    # importing a module runs the __init__ of every package above it
    assert {"__init__.py", "stages/__init__.py", "zoo/__init__.py"} <= files


def test_closure_leaves_out_what_the_module_does_not_import():
    files = names(closure("weightzoo.stages.zoo"))
    assert "train/trainer.py" not in files
    assert not any(f.startswith("figures/") for f in files)


def test_imports_inside_functions_count():
    # stages.groups imports weightzoo.analysis.groups only inside its functions
    assert "analysis/groups.py" in names(closure("weightzoo.stages.groups"))


def test_closure_imports_nothing():
    """The DAG build computes closures: reading the training stage must not load torch."""
    code = (
        "import sys; from weightzoo.codedeps import closure; "
        "closure('weightzoo.stages.train'); "
        "assert 'torch' not in sys.modules and 'weightzoo.train' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_unknown_module_is_named():
    with pytest.raises(ValueError, match="weightzoo.no_such_stage"):
        closure("weightzoo.no_such_stage")


def _module_graph() -> dict[str, set[str]]:
    """Module -> the package modules it imports by name (``from pkg import mod`` counts as
    an import of ``mod``, not of ``pkg``'s ``__init__``), imports inside functions too."""
    import ast

    graph: dict[str, set[str]] = {}
    for path in sorted(PKG.rglob("*.py")):
        parts = path.relative_to(SRC).with_suffix("").parts
        is_init = parts[-1] == "__init__"
        name = ".".join(parts[:-1] if is_init else parts)
        package = name if is_init else name.rpartition(".")[0]
        edges = graph.setdefault(name, set())
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                edges.update(a.name for a in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = package.split(".")[: len(package.split(".")) - max(node.level - 1, 0)]
                target = ".".join(base + [node.module] if node.module else base)
                if not node.level:
                    target = node.module or ""
                modules = [f"{target}.{a.name}" for a in node.names]
                named = [m for m in modules if module_file(m) is not None]
                edges.update(named if len(named) == len(modules) else [target])
    return {m: {e for e in edges if e in graph or module_file(e)} for m, edges in graph.items()}


def test_the_package_has_no_import_cycles():
    graph = _module_graph()
    done: set[str] = set()

    def visit(module: str, path: list[str]) -> None:
        if module in path:
            cycle = path[path.index(module) :] + [module]
            raise AssertionError("import cycle: " + " -> ".join(cycle))
        if module in done:
            return
        for imported in sorted(graph.get(module, ())):
            visit(imported, [*path, module])
        done.add(module)

    for module in sorted(graph):
        visit(module, [])
