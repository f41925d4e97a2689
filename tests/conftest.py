"""Shared fixtures. Real-scene tests read the scene folder from $MMLS_REAL_SCENE."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


@pytest.fixture(scope="session")
def real_scene() -> Path:
    value = os.environ.get("MMLS_REAL_SCENE")
    if not value:
        pytest.skip("MMLS_REAL_SCENE is not set: the real MMLSv1-west scene is not available here")
    path = Path(value)
    if not (path / "composite.tif").exists():
        pytest.skip(f"MMLS_REAL_SCENE={value} has no composite.tif")
    return path
