"""Whole-scene prediction end to end: the blended map, nodata, the outputs and their polygons,
and the `predict` stage (the parts alone: test_windows, test_blending, test_components,
test_polygons, test_sinks)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import rasterio
import torch
import yaml
from rasterio.features import rasterize
from rasterio.windows import Window
from torch import nn

from mmls.api import engine as api_engine
from mmls.core.paths import bundle_path, map_dir
from mmls.inference.bundle import load_predictor, write_bundle
from mmls.inference.scene import PredictConfig, predict_scene
from mmls.inference.sinks import MASK_NODATA, PROB_NODATA
from mmls.inference.windows import window_origins
from mmls.nn.models import build_model
from tests.bundles import tiny_bundle
from tests.configs import PARAMS, ROOT, engine_config
from tests.inference.scene_helpers import SIZE, conv_model, identity_predictor
from tests.rasters import (
    MARS_EQC,
    PIXEL_M,
    composite_transform,
    write_composite,
    write_inventory,
)


def pcfg(**kw: object) -> PredictConfig:
    return engine_config(**kw)


@pytest.fixture(autouse=True)
def _one_thread() -> None:
    torch.set_num_threads(1)


class PositionModel(nn.Module):
    """Pointwise: logit_1 - logit_0 = 3 * band0 - 2 * band1 + 0.5 (no spatial context at all)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = 3.0 * x[:, 0] - 2.0 * x[:, 1] + 0.5
        return torch.stack([torch.zeros_like(z), z], dim=1)


def position_composite(path: Path, width: int, height: int) -> tuple[np.ndarray, np.ndarray]:
    """Composite whose band 0 encodes x and band 1 encodes y; returns (x, y) encodings."""
    data = write_composite(path, width, height, seed=1)
    xx = np.broadcast_to(np.arange(width, dtype=np.float32) / width, (height, width))
    yy = np.broadcast_to(np.arange(height, dtype=np.float32)[:, None] / height, (height, width))
    data[0], data[1] = xx, yy
    with rasterio.open(path, "r+") as dst:
        dst.write(data)
    return xx, yy


def read(path: Path) -> tuple[np.ndarray, dict]:
    with rasterio.open(path) as ds:
        return ds.read(1), {
            "crs": ds.crs,
            "transform": ds.transform,
            "shape": (ds.height, ds.width),
            "nodata": ds.nodata,
        }


def run_predict(model, composite, out, cfg=None, **kw):
    out.mkdir(parents=True, exist_ok=True)
    return predict_scene(
        identity_predictor(model),
        composite,
        out,
        band_idx=list(range(7)),
        cfg=cfg or pcfg(),
        progress=False,
        **kw,
    )


# -------------------------------------------------------------------- known-answer blending
@pytest.mark.parametrize(
    ("overlap", "region", "chunk_rows"),
    [
        (32, None, 256),
        (32, Window(37, 11, 230, 231), 40),
        (64, None, 7),
        (0, Window(5, 3, 290, 250), 256),
    ],
)
def test_blended_map_equals_the_position_function_everywhere(
    tmp_path, overlap, region, chunk_rows
) -> None:
    width, height = 300, 260  # not multiples of 128: terminal windows on both axes
    xx, yy = position_composite(tmp_path / "c.tif", width, height)
    cfg = pcfg(overlap_px=overlap, batch_size=3)
    res = run_predict(
        PositionModel(),
        tmp_path / "c.tif",
        tmp_path / "out",
        cfg,
        region=region,
        chunk_rows=chunk_rows,
    )
    prob, _ = read(tmp_path / "out" / "probability.tif")
    expected = 1.0 / (1.0 + np.exp(-(3.0 * xx - 2.0 * yy + 0.5)))
    r = region or Window(0, 0, width, height)
    sl = np.s_[r.row_off : r.row_off + r.height, r.col_off : r.col_off + r.width]
    np.testing.assert_allclose(prob[sl], expected[sl], atol=2e-6, rtol=0)
    outside = np.ones_like(prob, bool)
    outside[sl] = False
    assert (prob[outside] == PROB_NODATA).all()
    assert res.n_windows == len(window_origins(r.width, SIZE, overlap)) * len(
        window_origins(r.height, SIZE, overlap)
    )


def test_no_overlap_equals_tile_by_tile_prediction(tmp_path) -> None:
    width, height = 384, 256
    data = write_composite(tmp_path / "c.tif", width, height, seed=3)
    model = conv_model()
    run_predict(model, tmp_path / "c.tif", tmp_path / "out", pcfg(overlap_px=0))
    prob, _ = read(tmp_path / "out" / "probability.tif")
    expected = np.zeros((height, width), np.float32)
    with torch.no_grad():
        for r in range(0, height, SIZE):
            for c in range(0, width, SIZE):
                x = torch.from_numpy(data[None, :, r : r + SIZE, c : c + SIZE].copy())
                expected[r : r + SIZE, c : c + SIZE] = torch.softmax(model(x), 1)[0, 1].numpy()
    np.testing.assert_allclose(prob, expected, atol=1e-6, rtol=0)


def test_overlap_blending_removes_the_seams_of_a_context_model(tmp_path) -> None:
    """With zero padding the model's output jumps at tile borders; blending smooths them."""
    width, height = 384, 384
    position_composite(tmp_path / "c.tif", width, height)
    with rasterio.open(tmp_path / "c.tif", "r+") as dst:  # smooth inputs everywhere
        for band in range(3, 8):
            dst.write(np.full((height, width), 0.5, np.float32), band)
    model = conv_model(1)

    def border_jump(overlap: int) -> float:
        out = tmp_path / f"o{overlap}"
        run_predict(model, tmp_path / "c.tif", out, pcfg(overlap_px=overlap))
        prob, _ = read(out / "probability.tif")
        d = np.abs(np.diff(prob.astype(np.float64), axis=1))  # d[:, k] = |p[k+1] - p[k]|
        return float(d[:, [127, 255]].max() / np.median(d))

    assert border_jump(0) > 5 * border_jump(64)


# ---------------------------------------------------------------------- grid, nodata, masks
def test_outputs_carry_the_grid_and_nodata(tmp_path) -> None:
    width, height = 420, 300
    data = write_composite(tmp_path / "c.tif", width, height, nodata_box=(0, 140, 0, 150))
    data[4, 200:210, 300:305] = -9999.0  # nodata in ONE band only
    data[2, 250, 10] = np.nan
    with rasterio.open(tmp_path / "c.tif", "r+") as dst:
        dst.write(data)
    truth = np.zeros((height, width), np.uint8)
    truth[150:200, 200:260] = 1
    write_inventory(tmp_path / "t.tif", truth, nodata=None)
    res = run_predict(
        conv_model(),
        tmp_path / "c.tif",
        tmp_path / "out",
        pcfg(overlap_px=32),
        truth_path=tmp_path / "t.tif",
    )
    invalid = (data == -9999.0).any(0) | np.isnan(data).any(0)
    for name, nodata in (("probability.tif", PROB_NODATA), ("mask.tif", MASK_NODATA)):
        arr, meta = read(tmp_path / "out" / name)
        assert meta["crs"] == MARS_EQC
        assert meta["transform"] == composite_transform()
        assert meta["shape"] == (height, width)
        assert meta["nodata"] == nodata
        np.testing.assert_array_equal(arr == nodata, invalid)
    prob, _ = read(tmp_path / "out" / "probability.tif")
    mask, _ = read(tmp_path / "out" / "mask.tif")
    assert ((prob[~invalid] >= 0) & (prob[~invalid] <= 1)).all()
    np.testing.assert_array_equal(mask[~invalid], (prob[~invalid] > 0.5).astype(np.uint8))
    assert res.n_windows_skipped >= 1  # the window at (0, 0) is entirely nodata
    assert res.n_valid == int((~invalid).sum())
    c = res.confusion
    assert c is not None and c.total == res.n_valid
    assert c.tp + c.fn == int(truth[~invalid].sum())
    with rasterio.open(tmp_path / "out" / "mask.tif") as ds:
        assert ds.profile["tiled"] and ds.profile["compress"] == "deflate"


# ------------------------------------------------------------------------------ polygons
def blob_band(width: int, height: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    z = np.zeros((height, width), np.float32)
    for _ in range(25):
        cx, cy, s = rng.uniform(0, width), rng.uniform(0, height), rng.uniform(4, 30)
        z += np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * s * s))
    return z + 0.05 * rng.standard_normal(z.shape).astype(np.float32)


class BlobModel(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = 8.0 * (x[:, 0] - 0.5)
        return torch.stack([torch.zeros_like(z), z], dim=1)


@pytest.mark.parametrize("chunk_rows", [256, 16])
def test_polygons_rasterize_back_to_the_mask(tmp_path, chunk_rows) -> None:
    width, height = 330, 290
    data = write_composite(tmp_path / "c.tif", width, height, nodata_box=(0, 20, 0, 400))
    data[0] = np.where(data[0] == -9999.0, -9999.0, blob_band(width, height))
    with rasterio.open(tmp_path / "c.tif", "r+") as dst:
        dst.write(data)
    region = Window(10, 5, 300, 280)
    res = run_predict(
        BlobModel(),
        tmp_path / "c.tif",
        tmp_path / "out",
        pcfg(overlap_px=32),
        region=region,
        chunk_rows=chunk_rows,
    )
    mask, _ = read(tmp_path / "out" / "mask.tif")
    prob, _ = read(tmp_path / "out" / "probability.tif")
    gdf = gpd.read_file(tmp_path / "out" / "landslides.gpkg", layer="landslides")
    assert len(gdf) == res.n_polygons > 5
    assert gdf.crs == MARS_EQC
    assert set(gdf.geom_type) == {"Polygon"}
    burnt = rasterize(
        [(g, 1) for g in gdf.geometry],
        out_shape=(height, width),
        transform=composite_transform(),
        fill=0,
        dtype="uint8",
    )
    np.testing.assert_array_equal(burnt, (mask == 1).astype(np.uint8))
    np.testing.assert_allclose(gdf.area, gdf["area_m2"], rtol=1e-9)
    np.testing.assert_array_equal(gdf["area_m2"], gdf["n_pixels"] * PIXEL_M**2)
    for geom, mean_prob in zip(gdf.geometry, gdf["mean_prob"], strict=True):
        inside = (
            rasterize(
                [(geom, 1)],
                out_shape=(height, width),
                transform=composite_transform(),
                fill=0,
                dtype="uint8",
            )
            == 1
        )
        assert mean_prob == pytest.approx(float(prob[inside].mean()), rel=1e-5)


def test_min_area_and_simplify(tmp_path) -> None:
    width, height = 300, 260
    data = write_composite(tmp_path / "c.tif", width, height)
    data[0] = blob_band(width, height, seed=2)
    with rasterio.open(tmp_path / "c.tif", "r+") as dst:
        dst.write(data)
    full = run_predict(BlobModel(), tmp_path / "c.tif", tmp_path / "a", pcfg())
    cfg = pcfg(min_area_m2=50 * PIXEL_M**2, simplify_m=PIXEL_M)
    run_predict(BlobModel(), tmp_path / "c.tif", tmp_path / "b", cfg)
    a = gpd.read_file(tmp_path / "a" / "landslides.gpkg")
    b = gpd.read_file(tmp_path / "b" / "landslides.gpkg")
    assert len(b) == int((a["n_pixels"] >= 50).sum()) < full.n_polygons
    assert (b["area_m2"] >= 50 * PIXEL_M**2).all()
    assert b.geometry.is_valid.all()
    n_vertices = sum(len(g.exterior.coords) for g in b.geometry)
    n_before = sum(len(g.exterior.coords) for g in a.geometry[a["n_pixels"] >= 50])
    assert n_vertices < n_before


# ----------------------------------------------------------------- the map and map_score stages
@pytest.fixture
def project(tmp_path) -> Path:
    """A pipeline folder with a composite, its aligned inventory, holdout regions and the
    `model`'s bundle (a U-Net with random weights, made for [0, 1) values at 100 m)."""
    width, height = 400, 300
    write_composite(tmp_path / "composite.tif", width, height, nodata_box=(0, 30, 0, 30))
    classes = np.zeros((height, width), np.uint8)
    classes[100:160, 250:330] = 1
    classes[:, 380:] = 255  # an unmapped strip: not scored
    (tmp_path / "data" / "aligned").mkdir(parents=True)
    write_inventory(tmp_path / "data/aligned/inventory.tif", classes)
    regions = {
        "regions": {
            "base": {"col_off": 0, "row_off": 0, "width": 200, "height": height},
            "isolated": {"col_off": 200, "row_off": 0, "width": 200, "height": height},
        }
    }
    (tmp_path / "data/holdout").mkdir(parents=True)
    (tmp_path / "data/holdout/regions.json").write_text(json.dumps(regions))
    cfg = {"arch": "Unet", "encoder_name": "resnet18", "encoder_weights": None}
    torch.manual_seed(0)
    model = build_model("unet", cfg, in_channels=7)
    bundle = tiny_bundle(
        model_name="unet", model_config=cfg, state_dict=model.state_dict(), tile_size_px=128
    )
    write_bundle(tmp_path / bundle_path("unet"), bundle)
    params = {**PARAMS, "model": "unet"}
    params["map"] = {
        **PARAMS["map"],
        "threads": 1,
        "scenes": {"here": {"composite": "composite.tif", "region": "isolated"}},
        "scores": {"here": {"inventory": "data/aligned/inventory.tif"}},
    }
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    return tmp_path


def run_stage(cwd: Path, name: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(ROOT / "stages" / f"{name}.py"), "--scene", "here"],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_stages_map_the_isolated_region_and_score_it(project) -> None:
    result = run_stage(project, "map")
    assert result.returncode == 0, result.stderr
    out = project / map_dir("here")
    assert {p.name for p in out.iterdir()} == {
        "probability.tif",
        "mask.tif",
        "landslides.gpkg",
        "summary.json",
        "quicklook.png",
    }
    prob, meta = read(out / "probability.tif")
    assert meta["shape"] == (300, 200) and (prob >= 0).all()  # the isolated region's window
    summary = json.loads((out / "summary.json").read_text())
    assert summary["window"]["col_off"] == 200 and summary["model"]["name"] == "unet"
    result = run_stage(project, "map_score")
    assert result.returncode == 0, result.stderr
    rec = json.loads((project / "metrics/map_scores/here.json").read_text())
    assert rec["tp"] + rec["fp"] + rec["fn"] + rec["tn"] == 180 * 300 == rec["n_scored_pixels"]
    for key in (
        "precision",
        "recall",
        "f1",
        "iou_fg",
        "iou_bg",
        "miou",
        "obj_recall",
        "obj_precision",
        "obj_n_true",
        "object_match_rule",
    ):
        assert rec[key] is not None, key
    assert rec["obj_n_true"] == 1


def test_the_score_stage_gives_the_scores_of_scoring_while_mapping(project) -> None:
    assert run_stage(project, "map").returncode == 0
    assert run_stage(project, "map_score").returncode == 0
    rec = json.loads((project / "metrics/map_scores/here.json").read_text())
    predictor = load_predictor(project / bundle_path("unet"), torch.device("cpu"))
    (project / "direct").mkdir()
    direct = predict_scene(
        predictor,
        project / "composite.tif",
        project / "direct",
        band_idx=range(7),
        cfg=api_engine(threads=1),
        region=Window(200, 0, 200, 300),
        truth_path=project / "data/aligned/inventory.tif",
        progress=False,
    ).record()
    for key in (
        "tp",
        "fp",
        "fn",
        "tn",
        "miou",
        "obj_n_true",
        "obj_n_pred",
        "obj_recall",
        "obj_precision",
    ):
        assert rec[key] == direct[key], key


def test_stage_without_bundle_fails_cleanly(project) -> None:
    (project / bundle_path("unet")).unlink()
    result = run_stage(project, "map")
    assert result.returncode == 2
    assert "unet.mmls.pt: bundle not found" in result.stderr and "Traceback" not in result.stderr
    assert not (project / "maps").exists() or not any((project / "maps").iterdir())
