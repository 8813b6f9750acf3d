"""The layout's rules, checked: the data makers run without torch; the engine never imports
the application or the command line, and the application never imports the command line.
(The runtime's own rule, no torch on the way from load to generate, is
tests/runtime/test_model_api.py's.)"""

from __future__ import annotations

import ast
import json
import pkgutil
import subprocess
import sys
from pathlib import Path

import engine.data

REPO = Path(__file__).resolve().parents[1]


def test_the_data_makers_never_import_torch() -> None:
    modules = sorted(f"engine.data.{m.name}" for m in pkgutil.iter_modules(engine.data.__path__))
    assert "engine.data.pipeline" in modules and "engine.data.split" in modules
    # A fresh interpreter: this test process may already hold torch from other tests.
    script = (
        "import importlib, json, sys\n"
        "first = None\n"
        f"for name in {modules!r}:\n"
        "    importlib.import_module(name)\n"
        "    if first is None and 'torch' in sys.modules:\n"
        "        first = name\n"
        "print(json.dumps({'torch_after': first}))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=120, check=True, cwd=REPO)
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["torch_after"] is None, f"importing {result['torch_after']} imports torch"


def imported_packages(path: Path) -> set[str]:
    """The top-level packages a module imports anywhere in it (inside functions too), those
    it names to importlib.import_module or __import__, and those it runs as `-m NAME` in a
    command line it writes out."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        items = node.elts if isinstance(node, ast.List | ast.Tuple) else \
            node.args if isinstance(node, ast.Call) else []
        for flag, name in zip(items, items[1:], strict=False):
            if isinstance(flag, ast.Constant) and flag.value == "-m" and \
                    isinstance(name, ast.Constant) and isinstance(name.value, str):
                found.add(name.value.split(".")[0])
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.split(".")[0])
        elif isinstance(node, ast.Call) and node.args and \
                isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if name in ("import_module", "__import__"):
                found.add(node.args[0].value.split(".")[0])
    return found


def importers_of(package: str, tree: str) -> list[str]:
    return sorted(str(path.relative_to(REPO)) for path in (REPO / tree).rglob("*.py")
                  if package in imported_packages(path))


def test_the_scan_sees_imports_inside_functions(tmp_path: Path) -> None:
    module = tmp_path / "lazy.py"
    module.write_text("def f():\n    from cromwell_lsp.ghost import GhostText\n"
                      "    importlib.import_module('cromwell_cli.main')\n"
                      "    subprocess.run([sys.executable, '-m', 'bench_only.tool', 'x'])\n")
    assert {"cromwell_lsp", "cromwell_cli", "bench_only"} <= imported_packages(module)


def test_the_engine_never_imports_the_application() -> None:
    assert importers_of("cromwell_lsp", "engine") == []


def test_only_the_command_line_imports_itself() -> None:
    assert importers_of("cromwell_cli", "engine") == []
    assert importers_of("cromwell_cli", "cromwell_lsp") == []
