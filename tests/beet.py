"""Running real `beet` processes against a library made for a test."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

BEET = [sys.executable, "-m", "beets"]


def write_config(root: Path, model_dir: Path, musicnn: str = "", **extra: str) -> Path:
    """A beets config directory at ``root`` with the plugin enabled."""
    lines = [
        f"directory: {root / 'music'}",
        f"library: {root / 'library.db'}",
        "plugins: musicnn",
        "import: {copy: yes, autotag: no}",
        f"musicnn: {{model_dir: {model_dir}, threads: 2{', ' + musicnn if musicnn else ''}}}",
        *(f"{key}: {value}" for key, value in extra.items()),
    ]
    (root / "config.yaml").write_text("\n".join(lines) + "\n")
    return root


def beet(beetsdir: Path, *args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "BEETSDIR": str(beetsdir)}
    return subprocess.run([*BEET, *args], capture_output=True, text=True, env=env, timeout=timeout)


def timed_beet(beetsdir: Path, *args: str) -> tuple[float, subprocess.CompletedProcess[str]]:
    """Wall seconds of a whole `beet` process, and what it printed (for bench/)."""
    start = time.perf_counter()
    out = beet(beetsdir, *args)
    return time.perf_counter() - start, out


def start_beet(beetsdir: Path, *args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "BEETSDIR": str(beetsdir)}
    return subprocess.Popen(
        [*BEET, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    )


def imported_by(
    beetsdir: Path, args: list[str], modules: list[str]
) -> tuple[subprocess.CompletedProcess[str], dict[str, bool]]:
    """Run a beets command in a fresh process; say which of ``modules`` it imported."""
    code = (
        f"import sys\nimport beets.ui\nbeets.ui._raw_main({args!r})\n"
        f"print(*[m in sys.modules for m in {modules!r}])"
    )
    env = {**os.environ, "BEETSDIR": str(beetsdir)}
    run = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=600
    )
    loaded = run.stdout.split()[-len(modules) :] if run.returncode == 0 else []
    return run, dict(zip(modules, (word == "True" for word in loaded), strict=False))
