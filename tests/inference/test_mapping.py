"""`mmls map` end to end on tiny scenes: outputs, decisions, refusals, atomicity."""

from __future__ import annotations

import json

import matplotlib.image
import numpy as np
import pytest
import rasterio
import torch
from rasterio.windows import Window

from mmls.core.errors import InputError
from mmls.inference.bundle import load_predictor
from mmls.inference.compatibility import Allowances
from mmls.inference.mapping import MapOptions, map_scene
from mmls.inference.scene import predict_scene
from tests.api_helpers import ENGINE
from tests.bundles import write_tiny_bundle
from tests.rasters import ORIGIN, PIXEL_M, write_composite, write_inventory

W, H = 160, 112
CPU = torch.device("cpu")


@pytest.fixture
def scene(tmp_path):
    write_composite(tmp_path / "scene.tif", W, H, nodata_box=(0, 10, 0, 20))
    return tmp_path / "scene.tif"


@pytest.fixture
def bundle(tmp_path):
    return write_tiny_bundle(tmp_path / "tiny.mmls.pt")


def read(path):
    with rasterio.open(path) as src:
        return src.read(1), src.profile, src.tags(ns="IMAGE_STRUCTURE")


def test_a_map_writes_cogs_polygons_summary_and_quicklook(tmp_path, scene, bundle) -> None:
    out = tmp_path / "out"
    summary = map_scene(bundle, scene, out, ENGINE, MapOptions(progress=False, quicklook_px=64))
    assert sorted(p.name for p in out.iterdir()) == [
        "landslides.gpkg",
        "mask.tif",
        "probability.tif",
        "quicklook.png",
        "summary.json",
    ]
    prob, profile, structure = read(out / "probability.tif")
    mask, _, _ = read(out / "mask.tif")
    assert structure.get("LAYOUT") == "COG" and profile["compress"] == "deflate"
    with rasterio.open(scene) as src, rasterio.open(out / "mask.tif") as m:
        assert m.crs == src.crs and m.transform == src.transform and m.shape == src.shape
    assert (mask[:10, :20] == 255).all() and set(np.unique(mask)) <= {0, 1, 255}
    np.testing.assert_array_equal(mask == 1, (prob > 0.5) & (mask != 255))
    assert json.loads((out / "summary.json").read_text()) == summary
    assert summary["decision"] == {
        "threshold": 0.5,
        "threshold_from": "bundle",
        "tta": False,
        "tta_from": "bundle",
        "context_px": 0,
    }
    assert summary["scored_against"] is None and "miou" not in summary["map"]
    picture = matplotlib.image.imread(out / "quicklook.png")
    assert max(picture.shape[:2]) <= 64 and picture.shape[2] in (3, 4)


def test_the_map_is_the_pipeline_predictors_map_bit_for_bit(tmp_path, scene, bundle) -> None:
    map_scene(bundle, scene, tmp_path / "out", ENGINE, MapOptions(progress=False))
    (tmp_path / "plain").mkdir()
    predictor = load_predictor(bundle, CPU)
    predict_scene(
        predictor, scene, tmp_path / "plain", band_idx=range(7), cfg=ENGINE, progress=False
    )
    for name in ("probability.tif", "mask.tif"):
        np.testing.assert_array_equal(
            read(tmp_path / "out" / name)[0], read(tmp_path / "plain" / name)[0]
        )


def test_the_bundles_decision_applies_unless_overridden(tmp_path, scene) -> None:
    from mmls.inference.bundle import Inference

    bundle = write_tiny_bundle(
        tmp_path / "t.mmls.pt", inference=Inference(True, 0.3, "calibrated on 4 patches")
    )
    s = map_scene(bundle, scene, tmp_path / "a", ENGINE, MapOptions(progress=False))
    assert (s["decision"]["tta"], s["decision"]["threshold"]) == (True, 0.3)
    prob, _, _ = read(tmp_path / "a" / "probability.tif")
    mask, _, _ = read(tmp_path / "a" / "mask.tif")
    np.testing.assert_array_equal(mask == 1, (prob > 0.3) & (mask != 255))
    s = map_scene(
        bundle, scene, tmp_path / "b", ENGINE, MapOptions(threshold=0.6, tta=False, progress=False)
    )
    assert s["decision"] == {
        "threshold": 0.6,
        "threshold_from": "override",
        "tta": False,
        "tta_from": "override",
        "context_px": 0,
    }


def test_a_context_model_maps_with_its_context(tmp_path, scene) -> None:
    bundle = write_tiny_bundle(tmp_path / "c.mmls.pt", context_px=16)
    cfg = ENGINE.model_copy(update={"overlap_px": 0})
    map_scene(bundle, scene, tmp_path / "out", cfg, MapOptions(progress=False))
    prob, _, _ = read(tmp_path / "out" / "probability.tif")
    predictor = load_predictor(bundle, CPU)
    with rasterio.open(scene) as src:  # the window at (32, 32) and its 16 px of context
        raw = src.read(window=Window(16, 16, 64, 64), out_dtype="float32")
    data, _ = predictor.standardizer(-9999.0)(raw)
    expected = predictor.probabilities(data[None])[0, 16:48, 16:48]
    np.testing.assert_allclose(prob[32:64, 32:64], expected, rtol=1e-6)


def test_a_bbox_maps_that_window_on_the_scene_grid(tmp_path, scene, bundle) -> None:
    x0, y0 = ORIGIN
    bbox = (x0 + 40 * PIXEL_M, y0 - 100 * PIXEL_M, x0 + 140 * PIXEL_M, y0 - 20 * PIXEL_M)
    s = map_scene(bundle, scene, tmp_path / "out", ENGINE, MapOptions(bbox=bbox, progress=False))
    assert s["window"] == {"col_off": 40, "row_off": 20, "width": 100, "height": 80}
    with rasterio.open(tmp_path / "out" / "mask.tif") as m, rasterio.open(scene) as src:
        assert m.shape == (80, 100)
        assert m.transform == src.window_transform(Window(40, 20, 100, 80))


def test_scored_only_against_a_given_inventory(tmp_path, scene, bundle) -> None:
    truth = np.zeros((H, W), np.uint8)
    truth[40:80, 40:100] = 1
    write_inventory(tmp_path / "inv.tif", truth, nodata=None)
    s = map_scene(
        bundle,
        scene,
        tmp_path / "out",
        ENGINE,
        MapOptions(inventory=str(tmp_path / "inv.tif"), progress=False),
    )
    assert s["scored_against"].endswith("inv.tif") and 0 <= s["map"]["miou"] <= 1
    assert s["map"]["tp"] + s["map"]["fn"] == int(truth[10:, :].sum() + truth[:10, 20:].sum())


def test_a_refusal_or_a_full_out_folder_writes_nothing(tmp_path, scene, bundle) -> None:
    full = tmp_path / "full"
    full.mkdir()
    (full / "mine.txt").write_text("keep")
    with pytest.raises(InputError, match=r"full: exists and is not empty"):
        map_scene(bundle, scene, full, ENGINE, MapOptions(progress=False))
    assert [p.name for p in full.iterdir()] == ["mine.txt"]
    coarse = tmp_path / "coarse.tif"
    write_composite(coarse, W, H)
    with rasterio.open(coarse, "r+") as dst:
        dst.transform = dst.transform * dst.transform.scale(2.0, 2.0)
    with pytest.raises(InputError, match=r"pixel size 200 m is 2\.00x coarser"):
        map_scene(bundle, coarse, tmp_path / "new", ENGINE, MapOptions(progress=False))
    assert not (tmp_path / "new").exists()
    assert not list(tmp_path.glob(".new.*"))
    s = map_scene(
        bundle,
        coarse,
        tmp_path / "new",
        ENGINE,
        MapOptions(allow=Allowances(pixel_size=True), progress=False),
    )
    assert s["overrides"] and s["overrides"][0].startswith("overridden: pixel size 200 m")
    s = map_scene(bundle, scene, full, ENGINE, MapOptions(overwrite="replace", progress=False))
    assert not (full / "mine.txt").exists() and (full / "mask.tif").exists()
