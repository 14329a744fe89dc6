"""Which package files a workflow job runs: the static import closure of its entry modules.

Rules list these files as inputs, so editing a module reruns exactly the jobs whose code
imports it (directly or through other modules) and no other. Imports are read with
:mod:`ast` (also those inside functions); nothing is imported, so the DAG build stays light.
"""

from __future__ import annotations

import ast
from functools import cache
from pathlib import Path

PACKAGE = "weightzoo"
SRC = Path(__file__).resolve().parent.parent  # the directory holding the package


def module_file(module: str) -> Path | None:
    """``weightzoo.train.trainer`` -> its ``.py`` file (a package: its ``__init__.py``)."""
    base = SRC.joinpath(*module.split("."))
    for path in (base.with_suffix(".py"), base / "__init__.py"):
        if path.is_file():
            return path
    return None


def _module_name(path: Path) -> str:
    parts = path.relative_to(SRC).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imported(path: Path) -> set[str]:
    """Package modules ``path`` imports (``from .x import y`` may name module ``x.y``)."""
    own = _module_name(path)
    package = own if path.name == "__init__.py" else own.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            found.add(target)
            found.update(f"{target}.{a.name}" for a in node.names)
    return {m for m in found if m == PACKAGE or m.startswith(PACKAGE + ".")}


def _with_parents(module: str) -> list[str]:
    """A module and the packages above it: importing it runs their ``__init__``."""
    parts = module.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts) + 1)]


@cache
def closure(*modules: str) -> tuple[Path, ...]:
    """The files of ``modules`` and of every package module they import, sorted."""
    seen: dict[str, Path] = {}
    todo = [m for module in modules for m in _with_parents(module)]
    while todo:
        module = todo.pop()
        if module in seen:
            continue
        path = module_file(module)
        if path is None:  # a name imported from a module, not a module
            continue
        seen[module] = path
        todo.extend(m for imported in _imported(path) for m in _with_parents(imported))
    missing = [m for m in modules if m not in seen]
    if missing:
        raise ValueError(f"no such module in the package: {', '.join(missing)}")
    return tuple(sorted(set(seen.values())))
