"""Fixtures of the synthetic-scene tests: the tiny scene, generated and written once."""

from __future__ import annotations

from pathlib import Path

import pytest

from mmls.data.synthetic.geotiff import write_scene
from mmls.data.synthetic.scene import SyntheticScene, generate_scene
from tests.data.synthetic.tiny import TINY


@pytest.fixture(scope="package")
def scene() -> SyntheticScene:
    """The tiny scene, generated once for all the modules here (tests only read it)."""
    return generate_scene(TINY)


@pytest.fixture(scope="package")
def written(tmp_path_factory: pytest.TempPathFactory, scene: SyntheticScene) -> tuple[Path, Path]:
    """The tiny scene's composite and inventory, written once: (composite path, inventory path)."""
    out = tmp_path_factory.mktemp("synthetic")
    comp, inv = out / "composite.tif", out / "inventory.tif"
    write_scene(scene, comp, inv)
    return comp, inv
