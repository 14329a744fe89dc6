"""Python examples in README and docs import what exists: every import statement of every
```python block runs as written (the rest of an example reads a run's outputs, which a
test does not have; the modules it names must still be there after code moves)."""

import ast
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PAGES = sorted([REPO / "README.md", *REPO.glob("docs/**/*.md"), REPO / "benchmarks/README.md"])
FENCE = re.compile(r"^```python\n(.*?)^```", re.M | re.S)


def examples() -> list[tuple[str, str]]:
    found = []
    for page in PAGES:
        for block in FENCE.finditer(page.read_text()):
            line = page.read_text()[: block.start()].count("\n") + 1
            found.append((f"{page.relative_to(REPO)}:{line}", block.group(1)))
    return found


EXAMPLES = examples()


def test_the_docs_have_python_examples():
    assert len(EXAMPLES) >= 2


@pytest.mark.parametrize("where,code", EXAMPLES, ids=[w for w, _ in EXAMPLES])
def test_example_imports_run(where, code):
    imports = [n for n in ast.parse(code).body if isinstance(n, ast.Import | ast.ImportFrom)]
    module = ast.Module(body=imports, type_ignores=[])
    exec(compile(module, where, "exec"), {})
