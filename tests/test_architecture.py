"""The layout's rules, checked: the data makers run without torch. (The runtime's own rule,
no torch on the way from load to generate, is tests/runtime/test_model_api.py's.)"""

from __future__ import annotations

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
