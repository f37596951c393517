"""paychan_common is the pure core (docs/ARCHITECTURE.md): no asyncio, aiohttp, httpx, plyvel, uvloop, at run time or in
its source."""

from __future__ import annotations

import ast
import json
import os
import pkgutil
import subprocess
import sys
from pathlib import Path

import paychan_common

FORBIDDEN = ("asyncio", "aiohttp", "httpx", "plyvel", "uvloop")
PACKAGE_DIR = Path(paychan_common.__file__).parent
MODULES = sorted(f"paychan_common.{m.name}" for m in pkgutil.iter_modules([str(PACKAGE_DIR)]))


def test_every_module_is_listed() -> None:
    """Sanity: the scan sees the whole package (so the checks below are not vacuous)."""
    expected = {"amount", "network", "base58", "bech32", "address", "keys", "script", "tx", "der", "sighash",
                "channel", "state", "payment", "rules", "wire_v1", "wire_v2", "settlement", "errors", "messages"}
    assert expected <= {m.rsplit(".", 1)[1] for m in MODULES}


def test_import_in_fresh_interpreter_pulls_no_network_or_async_library() -> None:
    code = (
        "import importlib, json, sys\n"
        f"mods = {MODULES!r}\n"
        "for m in mods: importlib.import_module(m)\n"
        f"bad = sorted(n for n in sys.modules if n.split('.')[0] in {FORBIDDEN!r})\n"
        "print(json.dumps({'bad': bad, 'loaded': [m for m in mods if m in sys.modules]}))\n"
    )
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(PACKAGE_DIR.parent), *filter(None, [env.get("PYTHONPATH")])])
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True,
                         timeout=60)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["loaded"] == MODULES
    assert result["bad"] == [], f"paychan_common pulled in {result['bad']}"


def _imported_roots(tree: ast.AST) -> set[str]:
    roots: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            roots.add(node.module.split(".")[0])
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute | ast.Name):
            name = node.func.attr if isinstance(node.func, ast.Attribute) else node.func.id
            if name in ("import_module", "__import__") and node.args and isinstance(node.args[0], ast.Constant) \
                    and isinstance(node.args[0].value, str):
                roots.add(node.args[0].value.split(".")[0])
    return roots


def test_static_no_forbidden_imports() -> None:
    files = sorted(PACKAGE_DIR.glob("*.py"))
    assert len(files) >= len(MODULES)
    for path in files:
        roots = _imported_roots(ast.parse(path.read_text(), filename=str(path)))
        bad = roots & set(FORBIDDEN)
        assert not bad, f"{path.name} imports {sorted(bad)}"


def test_static_checker_catches_forbidden_imports() -> None:
    """The AST scan itself works (guards against a vacuous pass)."""
    sample = "import asyncio\nfrom aiohttp import web\nimport httpx.x as y\nimportlib.import_module('plyvel')\n"
    assert _imported_roots(ast.parse(sample)) >= {"asyncio", "aiohttp", "httpx", "plyvel"}
