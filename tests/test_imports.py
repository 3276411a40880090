"""The direction of imports (ARCHITECTURE.md), read from the source with ``ast``:
``envs`` and ``agents`` are leaves, ``arena`` hosts both, and the library never
imports the experiments or the benchmarks. Every import counts: at the top of a
module or inside a function, relative, or a string given to
``importlib.import_module`` / ``__import__``."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

FORBIDDEN = {
    "envs": {"agents", "arena", "experiments", "benchmarks"},
    "agents": {"envs", "arena", "experiments", "benchmarks"},
    "arena": {"experiments", "benchmarks"},
}
"""Package -> the top-level packages of ours its modules may not import."""


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imported_modules(source: str, module: str, is_package: bool = False) -> list[tuple[int, str]]:
    """``(line, absolute module name)`` of every import in ``source``, the source of
    ``module``: import statements anywhere (relative ones resolved) and string literals
    passed to ``importlib.import_module`` or ``__import__``."""
    package = module.split(".") if is_package else module.split(".")[:-1]
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                name = ".".join([*base, *([node.module] if node.module else [])])
            else:
                name = node.module or ""
            found.append((node.lineno, name))
            found += [(node.lineno, f"{name}.{alias.name}") for alias in node.names]
        elif isinstance(node, ast.Call) and _is_dynamic_import(node.func):
            arg = node.args[0] if node.args else None
            if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                found.append((node.lineno, arg.value))
    return found


def _is_dynamic_import(func: ast.expr) -> bool:
    if isinstance(func, ast.Name):
        return func.id in ("import_module", "__import__")
    return isinstance(func, ast.Attribute) and func.attr == "import_module"


def violations(package: str) -> list[str]:
    out = []
    for path in sorted((ROOT / package).rglob("*.py")):
        module = _module_name(path)
        source = path.read_text(encoding="utf-8")
        for line, name in imported_modules(source, module, path.name == "__init__.py"):
            top = name.split(".")[0]
            if top in FORBIDDEN[package]:
                out.append(f"{path.relative_to(ROOT)}:{line} imports {name}")
    return sorted(set(out))


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_import_direction(package):
    found = violations(package)
    assert not found, f"{package} may not import {sorted(FORBIDDEN[package])}:\n" + "\n".join(found)


def test_every_kind_of_import_is_seen():
    source = (
        "import envs.registry\n"
        "from arena import match\n"
        "def f():\n"
        "    from experiments.gleave2020 import main\n"
        "    import importlib\n"
        "    importlib.import_module('benchmarks.mujoco_speed')\n"
        "    __import__('envs')\n"
        "from . import sibling\n"
        "from ..numbers import parse_number\n"
    )
    names = {name for _, name in imported_modules(source, "agents.attacks.fgsm")}
    assert {
        "envs.registry",
        "arena",
        "arena.match",
        "experiments.gleave2020",
        "benchmarks.mujoco_speed",
        "envs",
        "agents.attacks.sibling",
        "agents.numbers.parse_number",
    } <= names
    init = imported_modules("from . import fgsm\n", "agents.attacks", is_package=True)
    assert (1, "agents.attacks.fgsm") in init


def test_fork_server_preload_is_safe_to_fork_after():
    """What ``arena.parallel.forkserver`` preloads is imported once by the server and
    inherited by every process it forks: it must not import mujoco (which reads
    ``MUJOCO_GL`` on import, a setting a child may change) and must not leave a thread
    running (forking a process with threads copies their locks, held or not)."""
    import multiprocessing.forkserver
    import subprocess
    import sys

    from arena.parallel import PRELOAD, forkserver

    forkserver()
    assert multiprocessing.forkserver._forkserver._preload_modules == list(PRELOAD)
    probe = (
        "import sys, threading\n"
        f"for name in {list(PRELOAD)!r}: __import__(name)\n"
        "ours = ('mujoco', 'envs', 'agents', 'arena')\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ours))\n"
        "print(threading.active_count())\n"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    modules, threads = out.stdout.splitlines()
    assert modules == "[]", f"the preload imports {modules}"
    assert threads == "1", f"the preload leaves {threads} threads running"
