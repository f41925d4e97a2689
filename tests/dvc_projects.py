"""Throwaway DVC projects for tests that run `dvc` itself: a copy of this repository's code,
pipeline files and params in a fresh git + DVC repository under a temporary folder."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from tests.configs import PARAMS, ROOT

#: What a copy needs to run the default pipeline's stages.
COPIED = ("mmls", "stages", "pipelines", "reference", "dvc.yaml")
#: A small synthetic scene (about 2 s to generate) with its holdout boundary inside it.
SMALL_SCENE = {
    "synthetic": {**PARAMS["synthetic"], "width": 640, "height": 384, "n_landslides": 24},
    "holdout": {**PARAMS["holdout"], "boundary_x": -3968000.0, "gap_px": 0},
}


def run(args: Sequence[str], cwd: Path, check: bool = True) -> subprocess.CompletedProcess:
    """A command in ``cwd`` (``dvc`` = this interpreter's DVC), output captured as text; the
    stage commands' ``python`` is this interpreter (its folder first on PATH)."""
    cmd = [sys.executable, "-m", "dvc", *args[1:]] if args[0] == "dvc" else list(args)
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    done = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, env=env)
    if check and done.returncode != 0:
        raise AssertionError(f"{' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
    return done


def write_params(root: Path, params: Mapping[str, Any]) -> None:
    (root / "params.yaml").write_text(yaml.safe_dump(dict(params), sort_keys=False))


def make_dvc_project(root: Path, **sections: Any) -> Path:
    """``root`` as a git + DVC repository holding this project's code and default pipeline, its
    params.yaml the repository's with ``sections`` replaced; committed."""
    root.mkdir(parents=True, exist_ok=True)
    for name in COPIED:
        src = ROOT / name
        if src.is_dir():
            shutil.copytree(src, root / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(src, root / name)
    write_params(root, {**PARAMS, **sections})
    run(["git", "init", "-q"], root)
    run(["git", "config", "user.email", "test@example.com"], root)
    run(["git", "config", "user.name", "test"], root)
    run(["dvc", "init", "-q"], root)
    run(["dvc", "config", "core.autostage", "true"], root)
    run(["git", "add", "-A"], root)
    run(["git", "commit", "-qm", "project"], root)
    return root
