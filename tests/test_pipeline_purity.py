"""The routing core stays pure: no event loop, no I/O, no clock in its imports."""

from __future__ import annotations

import ast
from pathlib import Path

import router.pipeline

ALLOWED_ROOTS = {"__future__", "collections", "dataclasses", "fnmatch", "itertools", "typing"}
ALLOWED_ROOTS |= {"plugin_sdk", "enum", "operator"}


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
    return names


def test_the_pipeline_package_and_result_records_import_nothing_impure() -> None:
    package = Path(router.pipeline.__file__).parent
    files = [*package.glob("*.py"), package.parent / "result.py"]
    assert len(files) >= 4
    for path in files:
        for name in _imports(path):
            assert name.split(".")[0] in ALLOWED_ROOTS, f"{path.name} imports {name}"
