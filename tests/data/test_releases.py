"""Finding a release's tiles: masks without images, and entries that are not regular files."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import numpy as np
import pytest

from mmls.core.errors import InputError
from mmls.data.releases import IngestConfig, OrphanMaskWarning, find_tiles
from tests.configs import config
from tests.releases import MARS, scene_tiles, tile_transform, write_raster, write_release

S = 32


@pytest.fixture
def release(tmp_path: Path) -> Path:
    tiles = scene_tiles(3, 2, S, seed=1)
    write_release(tmp_path / "rel", tiles, {k: "train" for k in tiles})
    return tmp_path / "rel"


def _cfg(root: Path) -> IngestConfig:
    return config(
        "ingest", IngestConfig, layout="mmlsv2-challenge", root=str(root), folders={}, regions={}
    )


def test_masks_without_their_image_are_counted_and_named(release: Path) -> None:
    for col in (7, 8, 9, 10):
        write_raster(
            release / f"train/masks/col{col:05d}_row00000.tif",
            np.zeros((1, S, S), np.uint8),
            tile_transform(col, 0),
            MARS,
        )
    with pytest.warns(
        OrphanMaskWarning,
        match=r"train/masks: 4 mask\(s\) without an image, left out: col00007_row00000\.tif, "
        r"col00008_row00000\.tif, col00009_row00000\.tif, \.\.\.",
    ):
        tiles, _ = find_tiles(_cfg(release))
    assert len(tiles) == 6


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs on this platform")
def test_a_fifo_named_like_a_tile_is_refused_not_waited_on(release: Path) -> None:
    os.mkfifo(release / "train/images/col00099_row00000.tif")
    signal.alarm(20)  # a reader that opened the FIFO would block forever: fail instead
    try:
        with pytest.raises(InputError, match=r"col00099_row00000\.tif: is not a regular file"):
            find_tiles(_cfg(release))
    finally:
        signal.alarm(0)
