"""The layering rules: plugin_sdk never imports router, and stays light to import."""

from __future__ import annotations

import ast
import json
import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent


def _imported_modules(path: pathlib.Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_no_plugin_sdk_source_file_imports_router() -> None:
    offenders = [
        str(path.relative_to(ROOT))
        for path in sorted((ROOT / "plugin_sdk").rglob("*.py"))
        if any(n == "router" or n.startswith("router.") for n in _imported_modules(path))
    ]
    assert offenders == []


def _modules_after(statement: str) -> set[str]:
    code = f"import sys, json; {statement}; print(json.dumps(sorted(sys.modules)))"
    out = subprocess.run(
        [sys.executable, "-c", code], check=True, capture_output=True, text=True, cwd=ROOT
    ).stdout
    return set(json.loads(out))


def test_importing_plugin_sdk_pulls_in_neither_router_nor_click() -> None:
    loaded = _modules_after("import plugin_sdk, plugin_sdk.session, plugin_sdk.wire")
    assert not {m for m in loaded if m == "router" or m.startswith("router.")}
    assert "click" not in loaded


def test_the_wire_core_is_sans_io() -> None:
    loaded = _modules_after("import plugin_sdk.wire")
    assert "trio" not in loaded
