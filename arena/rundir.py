"""Run directories: ``runs/<experiment>/<env>__s<seed>__<time>/``.

A run directory holds ``config.json`` (fully resolved), ``metadata.json`` (versions,
git sha, the CPU's kind) and ``results.json``; it is written in a temporary sibling and
renamed into place when complete, so a failed run leaves nothing behind.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import platform
import subprocess
import sys
from collections.abc import Iterator
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import Any

from arena.io import atomic_directory

_PACKAGES = (
    "adversarial-arena",
    "numpy",
    "torch",
    "gymnasium",
    "stable-baselines3",
    "pettingzoo",
    "mujoco",
    "ale-py",
)


def git_sha() -> str | None:
    root = Path(__file__).resolve().parent.parent
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def cpu_kind() -> dict[str, Any]:
    """The CPU and the kernels numpy (and torch, when loaded) picked for it. The same seed
    can give other MuJoCo games on another kind of CPU (the policies' products round
    differently), so a run names the kind it ran on."""
    model = None
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    out: dict[str, Any] = {"model": model or platform.processor() or platform.machine()}
    try:
        from numpy._core._multiarray_umath import __cpu_dispatch__, __cpu_features__
    except ImportError:  # a numpy that moved its private tables
        pass
    else:
        out["numpy_kernels"] = [t for t in __cpu_dispatch__ if __cpu_features__.get(t)]
    torch = sys.modules.get("torch")
    if torch is not None:
        out["torch_kernels"] = torch.backends.cpu.get_cpu_capability()
    return out


def run_metadata() -> dict[str, Any]:
    versions: dict[str, str | None] = {}
    for pkg in _PACKAGES:
        try:
            versions[pkg] = importlib_metadata.version(pkg)
        except importlib_metadata.PackageNotFoundError:
            versions[pkg] = None
    return {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "cpu": cpu_kind(),
        "versions": versions,
        "git_sha": git_sha(),
        "command": sys.argv,
        "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }


def run_name(env_id: str, seed: int) -> str:
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S-%f")
    return f"{env_id}__s{seed}__{stamp}"


@contextlib.contextmanager
def new_run_dir(
    root: str | Path, experiment: str, env_id: str, seed: int
) -> Iterator[tuple[Path, Path]]:
    """``(tmp, final)``: write into ``tmp``; it becomes ``final`` when the block completes."""
    final = Path(root) / experiment / run_name(env_id, seed)
    with atomic_directory(final) as tmp:
        yield tmp, final
