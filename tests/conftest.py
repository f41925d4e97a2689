"""Shared fixtures. Real-scene tests read the scene folder from $MMLS_REAL_SCENE."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def real_scene() -> Path:
    value = os.environ.get("MMLS_REAL_SCENE")
    if not value:
        pytest.skip("MMLS_REAL_SCENE is not set: the real MMLSv1-west scene is not available here")
    path = Path(value)
    if not (path / "composite.tif").exists():
        pytest.skip(f"MMLS_REAL_SCENE={value} has no composite.tif")
    return path


@pytest.fixture(scope="session")
def mmlsv2_release() -> Path:
    """The real MMLSv2 train + val tiles ($MMLS_RELEASE, see ../shared/data/mmlsv2-release)."""
    value = os.environ.get("MMLS_RELEASE")
    if not value:
        pytest.skip("MMLS_RELEASE is not set: the real MMLSv2 release is not available here")
    path = Path(value)
    if not (path / "train" / "images").is_dir():
        pytest.skip(f"MMLS_RELEASE={value} has no train/images folder")
    return path
