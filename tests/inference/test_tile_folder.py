"""`mmls predict-tiles`: one mask per tile, under its name and georeferencing, with refusals."""

from __future__ import annotations

import numpy as np
import pytest
import rasterio
import torch

from mmls.core.errors import InputError
from mmls.data.releases import LAYOUTS
from mmls.inference.bundle import bundle_predictor
from mmls.inference.tile_folder import predict_tile_folder
from tests.bundles import tiny_bundle as tiny_232
from tests.releases import PIXEL, scene_tiles, write_release

S = 32


@pytest.fixture
def folder(tmp_path):
    """A challenge-layout folder (bands thermal_inertia .. blue, no descriptions) of [0, 1)
    values: what tests/bundles.py's tiny bundle was made for."""
    tiles = {k: (im / 1000, m, x, y) for k, (im, m, x, y) in scene_tiles(3, 2, S, seed=2).items()}
    write_release(tmp_path / "rel", tiles, {k: "test" for k in tiles}, unlabelled=["test"])
    return tmp_path / "rel" / "test" / "images"


def tiny_bundle(**kw):
    return tiny_232(pixel_size_m=PIXEL, **kw)  # the release's 232 m tiles


def _run(bundle, folder, out, **kw):
    predictor = bundle_predictor(bundle, torch.device("cpu"))
    return predict_tile_folder(predictor, bundle, folder, out, progress=False, **kw)


def test_each_tile_gets_its_mask_under_its_name_and_georeferencing(tmp_path, folder) -> None:
    bundle = tiny_bundle()
    s = _run(bundle, folder, tmp_path / "out", layout="mmlsv2-challenge")
    names = sorted(p.name for p in folder.iterdir())
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [*names, "summary.json"]
    assert s["n_tiles"] == len(names) and s["file_bands"] == [
        LAYOUTS["mmlsv2-challenge"].band_order.index(b) + 1 for b in bundle.bands
    ]
    with rasterio.open(folder / names[0]) as src, rasterio.open(tmp_path / "out" / names[0]) as m:
        assert (m.crs, m.transform, m.count, m.dtypes[0]) == (src.crs, src.transform, 1, "uint8")
        assert set(np.unique(m.read(1))) <= {0, 1}


def test_tiles_without_band_names_need_a_layout_or_a_band_map(tmp_path, folder) -> None:
    with pytest.raises(InputError, match="have no descriptions: give their order"):
        _run(tiny_bundle(), folder, tmp_path / "out")
    assert not (tmp_path / "out").exists()
    s = _run(
        tiny_bundle(),
        folder,
        tmp_path / "out",
        band_map=list(LAYOUTS["mmlsv2-challenge"].band_order),
    )
    assert s["n_tiles"] == 6


def test_raw_model_on_scaled_tiles_is_refused(tmp_path, folder) -> None:
    bundle = tiny_bundle()
    bundle.convention.quantiles["dem"] = [-4200.0, -1500.0, 2600.0]
    with pytest.raises(
        InputError,
        match=r"band dem: values lie in \[0, 1\] but the model was "
        r"trained on raw metres",
    ):
        _run(bundle, folder, tmp_path / "out", layout="mmlsv2-challenge")
    assert not (tmp_path / "out").exists()
