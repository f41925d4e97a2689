"""Ingest of released tile folders: presets, georeferencing, unlabelled splits, bad input."""

from __future__ import annotations

import json
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import rasterio
import torch
import yaml
from affine import Affine

from mmls.core.errors import InputError
from mmls.core.paths import tile_paths
from mmls.data.bands import BAND_NAMES
from mmls.data.ingest import ingest_release
from mmls.data.leakage import leakage_audit
from mmls.data.releases import LAYOUTS, IngestConfig, unlabelled_folders
from mmls.data.splitting import SPLIT_COLUMNS, table1
from mmls.data.store import UNLABELLED, build_store, load_store
from mmls.geo.nodata import NonPhysicalWarning
from mmls.geo.rebuild import scene_offsets
from mmls.inference.bundle import bundle_predictor
from mmls.inference.tile_folder import predict_tile_folder
from tests.bundles import tiny_bundle
from tests.configs import PARAMS, REAL_PARAMS, ROOT, config
from tests.releases import MARS, scene_tiles, tile_transform, write_raster, write_release

S = 32


def cfg(root: Path, layout: str = "mmlsv2-challenge", **kw) -> IngestConfig:
    return config(
        "ingest", IngestConfig, layout=layout, root=str(root), folders={}, regions={}, **kw
    )


def ingest(root: Path, out: Path, layout: str = "mmlsv2-challenge", **kw):
    return ingest_release(cfg(root, layout, **kw), out, bands=BAND_NAMES, size=S)


@pytest.fixture
def release(tmp_path: Path):
    """A 4 x 3 georeferenced grid whose last column is a terminal origin (8 px back)."""
    tiles = scene_tiles(4, 3, S, seed=1, width=4 * S - 8)
    split_of = {k: ("val" if k[0] == 1 else "train") for k in tiles}
    write_release(tmp_path / "rel", tiles, split_of)
    return tmp_path / "rel", tiles, split_of


def read(path: Path) -> tuple[np.ndarray, rasterio.profiles.Profile]:
    with rasterio.open(path) as ds:
        return ds.read(), ds.profile


def test_challenge_layout_keeps_pixels_georeference_split_and_overlaps(release, tmp_path) -> None:
    root, tiles, split_of = release
    table, notes = ingest(root, tmp_path / "tiles")
    assert list(table.columns) == list(SPLIT_COLUMNS) and len(table) == len(tiles)
    assert any("test" in n and "skipped" in n for n in notes)  # the preset's missing splits
    for rec in table.itertuples():
        image, mask, x, y = tiles[(rec.col, rec.row)]
        assert rec.split == split_of[(rec.col, rec.row)] and rec.labelled
        assert (rec.x_off, rec.y_off) == (x, y)  # terminal column: 8 px back
        assert rec.source == f"col{rec.col:05d}_row{rec.row:05d}.tif"
        img_p, mask_p = tile_paths(tmp_path / "tiles", "base", rec.col, rec.row)
        got, profile = read(img_p)
        assert got.tobytes() == image.tobytes()  # project band order, bit for bit
        assert profile["crs"] == MARS and profile["transform"] == tile_transform(x, y)
        assert np.array_equal(read(mask_p)[0][0], mask)
    # the terminal patches overlap their neighbours: one group each pair, never split apart
    terminal = table[table["col"] == 3]
    neighbours = table[table["col"] == 2]
    assert set(terminal["group"]) <= set(neighbours["group"])


def test_table1_reproduces_fg_statistics_with_population_std(release, tmp_path) -> None:
    root, tiles, _ = release
    table, _ = ingest(root, tmp_path / "tiles")
    t1 = table1(table, std_ddof=0)
    pct = np.array(
        [tiles[(r.col, r.row)][1].mean() * 100 for r in table.itertuples() if r.split == "train"]
    )
    assert t1["train"]["n_images"] == len(pct)
    assert t1["train"]["avg_fg_pct"] == round(float(pct.mean()), 4)
    assert t1["train"]["std_fg_pct"] == round(float(pct.std(ddof=0)), 4)
    assert t1["test"]["n_images"] == 0 and t1["test"]["avg_fg_pct"] is None


def test_mmlsv1_layout_is_ungeoreferenced_with_plain_offsets(tmp_path) -> None:
    tiles = scene_tiles(3, 2, S, seed=2)
    split_of = {k: ("train", "val", "test")[k[0]] for k in tiles}
    write_release(tmp_path / "v1", tiles, split_of, layout="mmlsv1")
    # MMLSv1 masks are named Mask_patch_... in some folders: the preset finds them
    for p in (tmp_path / "v1" / "test_partition" / "masks").iterdir():
        p.rename(p.with_name(p.name.replace("Image_", "Mask_")))
    table, _ = ingest(tmp_path / "v1", tmp_path / "tiles", layout="mmlsv1")
    for rec in table.itertuples():
        image, mask, _, _ = tiles[(rec.col, rec.row)]
        assert (rec.x_off, rec.y_off) == (rec.col * S, rec.row * S)
        got, profile = read(tile_paths(tmp_path / "tiles", "base", rec.col, rec.row)[0])
        assert got.tobytes() == image.tobytes() and profile["crs"] is None
        assert profile["transform"] == Affine.translation(rec.x_off, rec.y_off)
    assert sorted(table["split"].unique()) == ["test", "train", "val"]


def test_unlabelled_split_is_ingested_predictable_never_scored(tmp_path) -> None:
    tiles = scene_tiles(3, 2, S, seed=3)
    split_of = {k: ("test" if k[0] == 2 else "train" if k[1] == 0 else "val") for k in tiles}
    write_release(tmp_path / "rel", tiles, split_of, unlabelled=["test"])
    table, notes = ingest(tmp_path / "rel", tmp_path / "tiles")
    assert any("UNLABELLED" in n for n in notes)
    assert not table.loc[table["split"] == "test", "labelled"].any()
    assert table.loc[table["split"] == "test", "fg_ratio"].isna().all()
    table.to_csv(tmp_path / "splits.csv", index=False)
    build_store(tmp_path / "splits.csv", tmp_path / "tiles", tmp_path / "store", BAND_NAMES, S)
    store = load_store(tmp_path / "store")
    assert (store.masks[store.rows("test")] == UNLABELLED).all()
    with pytest.raises(InputError, match="unlabelled"):
        store.labelled_rows("test")
    assert len(store.labelled_rows("train")) == 2
    # what a user hands in (mmls predict-tiles, the predict_tiles stage): one uint8 {0, 1} mask
    # per released test tile, named and georeferenced as the released image
    bundle = tiny_bundle(pixel_size_m=232.0)
    for b in BAND_NAMES:
        bundle.convention.quantiles[b] = [10.0, 500.0, 990.0]  # the release's [0, 1000) values
    bundle.normalization.update(mean=[500.0] * 7, std=[290.0] * 7)
    folders = unlabelled_folders(cfg(tmp_path / "rel"))
    assert list(folders) == ["test"]
    predictor = bundle_predictor(bundle, torch.device("cpu"))
    out = tmp_path / "masks"
    predict_tile_folder(
        predictor, bundle, folders["test"], out, layout="mmlsv2-challenge", progress=False
    )
    released = sorted((tmp_path / "rel/test/images").iterdir())
    assert sorted(p.name for p in out.glob("*.tif")) == [p.name for p in released]
    for path in released:
        got, profile = read(out / path.name)
        _, want = read(path)
        assert got.dtype == np.uint8 and set(np.unique(got)) <= {0, 1}
        assert profile["crs"] == want["crs"] and profile["transform"] == want["transform"]
        image = read(
            tile_paths(tmp_path / "tiles", "base", *map(int, path.stem[3:].split("_row")))[0]
        )[0]
        data, _ = predictor.standardizer(None)(image.astype(np.float32))
        expected = predictor.probabilities(data[None])[0] > 0.5
        assert np.array_equal(got[0], expected.astype(np.uint8))


def test_a_tile_off_its_region_grid_is_an_error_naming_it(release) -> None:
    root, tiles, _ = release
    image, mask, x, y = tiles[(0, 0)]
    moved = tile_transform(x + 3 * S + 5, y)  # east of its grid cell, off the grid
    write_raster(root / "train/images/col00000_row00000.tif", image, moved, MARS)
    write_raster(root / "train/masks/col00000_row00000.tif", mask[None], moved, MARS)
    with pytest.raises(InputError) as err:
        ingest(root, root.parent / "tiles")
    assert "col00000_row00000" in err.value.source and "grid" in err.value.problem


@pytest.mark.parametrize(
    ("col", "row", "dx", "problem"),
    [
        (1, 1, 5, "grid"),  # a mid-grid tile 5 px back: only the last column / row may be
        (3, 1, S, "grid"),  # a whole tile back is no terminal origin
        (3, 2, 3, "terminal shift"),  # the last column's tiles must share one shift (8 px)
    ],
)
def test_only_the_last_column_or_row_may_be_a_terminal_origin(release, col, row, dx, problem):
    root, tiles, split_of = release
    image, mask, x, y = tiles[(col, row)]
    moved = tile_transform(col * S - dx, y)
    name = f"col{col:05d}_row{row:05d}.tif"
    folder = root / split_of[(col, row)]
    write_raster(folder / "images" / name, image, moved, MARS)
    write_raster(folder / "masks" / name, mask[None], moved, MARS)
    with pytest.raises(InputError) as err:
        ingest(root, root.parent / "tiles")
    assert name in str(err.value.source) and problem in err.value.problem


def test_non_physical_values_are_reported_and_kept(release, tmp_path) -> None:
    root, tiles, _ = release
    image, mask, x, y = tiles[(0, 1)]
    sentinel = image.copy()
    sentinel[1, -1, :] = np.finfo(np.float32).min  # slope in the challenge order, last row
    write_raster(root / "train/images/col00000_row00001.tif", sentinel, tile_transform(x, y), MARS)
    with pytest.warns(NonPhysicalWarning, match=r"col00000_row00001.*slope: 32 px"):
        ingest(root, tmp_path / "tiles")
    got, _ = read(tile_paths(tmp_path / "tiles", "base", 0, 1)[0])
    assert got[BAND_NAMES.index("slope"), -1].min() == np.finfo(np.float32).min  # kept as is


def _break(root: Path, what: str) -> str:
    """Damage the release; return the culprit that the error must name."""
    img = root / "train/images/col00000_row00000.tif"
    msk = root / "train/masks/col00000_row00000.tif"
    if what == "band count":
        write_raster(img, np.zeros((6, S, S), np.float32), tile_transform(0, 0), MARS)
    elif what == "mask values":
        write_raster(msk, np.full((1, S, S), 2, np.uint8), tile_transform(0, 0), MARS)
    elif what == "mask size":
        write_raster(msk, np.zeros((1, S, S // 2), np.uint8), tile_transform(0, 0), MARS)
    elif what == "mask georeference":
        write_raster(msk, np.zeros((1, S, S), np.uint8), tile_transform(5, 0), MARS)
    elif what == "duplicate":
        (root / "val/images/col00001_row00000.tif").rename(
            root / "val/images/col00000_row00000.tif"
        )
        (root / "val/masks/col00001_row00000.tif").rename(root / "val/masks/col00000_row00000.tif")
        return "val/images/col00000_row00000"
    elif what == "no tiles":
        for p in (root / "val/images").iterdir():
            p.unlink()
        return "val/images"
    elif what == "tile size":
        write_raster(img, np.zeros((7, S + 4, S + 4), np.float32), tile_transform(0, 0), MARS)
    elif what == "no root":
        return "nowhere"
    return "col00000_row00000" if what != "mask values" else "masks/col00000_row00000"


@pytest.mark.parametrize(
    ("what", "problem"),
    [
        ("band count", "band(s), layout has 7"),
        ("mask values", "other than 0 and 1"),
        ("mask size", "its image"),
        ("mask georeference", "georeferencing differs"),
        ("duplicate", "same grid position"),
        ("no tiles", "no tiles"),
        ("tile size", "tile.size_px"),
        ("no root", "not found"),
    ],
)
def test_bad_input_names_the_file(release, tmp_path, what, problem) -> None:
    root, _, _ = release
    culprit = _break(root, what)
    target = tmp_path / "nowhere" if what == "no root" else root
    with pytest.raises(InputError) as err:
        ingest(target, tmp_path / "tiles")
    assert culprit in err.value.source and problem in err.value.problem, err.value


def test_bad_params_name_the_key() -> None:
    with pytest.raises(InputError, match="params.yaml:ingest.layout"):
        config("ingest", IngestConfig, layout="mmlsv3")
    with pytest.raises(InputError, match="params.yaml:ingest.folders"):
        config("ingest", IngestConfig, folders={"training": "x"})


def test_stage_writes_tiles_splits_table1_leakage_and_keeps_them_on_failure(release) -> None:
    root, tiles, _ = release
    project = root.parent
    params = {**PARAMS, "ingest": {**REAL_PARAMS["ingest"], "root": "rel"}}
    params["tile"] = {**PARAMS["tile"], "size_px": S}
    (project / "params.yaml").write_text(yaml.safe_dump(params))

    def run() -> subprocess.CompletedProcess:
        cmd = [sys.executable, str(ROOT / "stages" / "ingest.py")]
        return subprocess.run(cmd, cwd=project, capture_output=True, text=True, timeout=300)

    result = run()
    assert result.returncode == 0, result.stderr
    splits = pd.read_csv(project / "data/released/splits.csv")
    assert len(splits) == len(tiles)
    t1 = json.loads((project / "metrics/table1.json").read_text())
    assert t1["train"]["n_images"] == 9 and t1["val"]["n_images"] == 3
    leakage = json.loads((project / "metrics/leakage.json").read_text())
    assert leakage["splits"]["val"]["n_touching"] == 3  # the val column touches train columns
    assert leakage["overlapping_pairs"] == {"train|train": 3}  # the terminal column
    before = sorted(p.relative_to(project) for p in (project / "data").rglob("*"))
    (root / "val/masks/col00001_row00000.tif").write_bytes(b"not a tiff")
    result = run()
    assert result.returncode == 2 and "col00001_row00000" in result.stderr
    assert pd.read_csv(project / "data/released/splits.csv").equals(splits)
    assert sorted(p.relative_to(project) for p in (project / "data").rglob("*")) == before


def test_leakage_audit_places_both_regions_in_one_frame(release, tmp_path) -> None:
    """An isolated region just west of the base region: its east column touches the base
    region's west column; tile (0, 0) of each region does not overlap the other's (each region
    numbers its own grid, the audit compares scene positions)."""
    root, tiles, _ = release
    order = [list(BAND_NAMES).index(b) for b in LAYOUTS["mmlsv2-challenge"].band_order]
    isolated = root.parent / "phase2_dataset" / "test"
    for (col, row), (image, mask, _, y) in tiles.items():
        if col < 2:
            name = f"col{col:05d}_row{row:05d}.tif"
            transform = tile_transform(col * S - 2 * S, y)
            write_raster(isolated / "images" / name, image[order], transform, MARS)
            write_raster(isolated / "masks" / name, mask[None], transform, MARS)
    table, _ = ingest(root, tmp_path / "tiles")
    assert (table["region"] == "isolated").sum() == 6
    audit = leakage_audit(scene_offsets(table, tmp_path / "tiles", S), S)
    contact = audit["isolated_test_vs_base"]
    assert contact["n_overlapping"] == 0
    assert contact["n_edge_adjacent"] == 3  # the isolated column 1 against base column 0


# ------------------------------------------------------------------- the real MMLSv2 release
@pytest.mark.real_release
def test_real_release_table1_matches_the_paper(mmlsv2_release, tmp_path) -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        table, _ = ingest_release(
            cfg(mmlsv2_release), tmp_path / "tiles", bands=BAND_NAMES, size=128
        )
    flagged = sorted(
        Path(str(w.message).split(":")[0]).name
        for w in caught
        if issubclass(w.category, NonPhysicalWarning)
    )
    assert len(flagged) == 6 and all(
        "slope: 128 px" in str(w.message)
        for w in caught
        if issubclass(w.category, NonPhysicalWarning)
    )
    t1 = table1(table, std_ddof=0)
    paper = json.loads((ROOT / "reference/mmlsv2_tables.json").read_text())["table1"]["rows"]
    for split in ("train", "val"):
        for key in ("n_images", "avg_fg_pct", "std_fg_pct", "min_fg_pct", "max_fg_pct"):
            measured = t1[split][key]
            assert round(measured, 2) == paper[split][key], (split, key, measured)
    assert table["labelled"].all() and len(table) == 531


@pytest.mark.real_release
def test_real_release_in_the_paper_distribution(mmlsv2_release, tmp_path) -> None:
    """A few shared tiles converted to the `mmlsv2` distribution (paper band order, each band
    scaled linearly to [0, 1]) ingest to the same patches, positions and masks."""
    challenge = ["thermal_inertia", "slope", "dem", "grayscale", "red", "green", "blue"]
    to_paper = [challenge.index(b) for b in BAND_NAMES]
    names = sorted((mmlsv2_release / "train" / "images").iterdir())[:6]
    lo, hi = np.full(7, np.inf), np.full(7, -np.inf)
    for p in names:
        data = read(p)[0][to_paper].reshape(7, -1)
        ok = np.abs(data) < 1e30
        lo = np.minimum(lo, [d[m].min() for d, m in zip(data, ok, strict=True)])
        hi = np.maximum(hi, [d[m].max() for d, m in zip(data, ok, strict=True)])
    for p in names:
        image, profile = read(p)
        scaled = (image[to_paper] - lo[:, None, None]) / (hi - lo)[:, None, None]
        out = tmp_path / "hf" / "train"
        write_raster(
            out / "images" / p.name, scaled.astype(np.float32), profile["transform"], profile["crs"]
        )
        mask, mprof = read(p.parent.parent / "masks" / p.name)
        write_raster(out / "masks" / p.name, mask, mprof["transform"], mprof["crs"])
    paper, _ = ingest_release(
        cfg(tmp_path / "hf", "mmlsv2"), tmp_path / "a", bands=BAND_NAMES, size=128
    )
    assert len(paper) == 6 and paper["labelled"].all()
    for rec in paper.itertuples():
        got = read(tile_paths(tmp_path / "a", "base", rec.col, rec.row)[0])[0]
        assert np.nanmax(got[np.abs(got) < 1e30]) <= 1.0 + 1e-6  # scaled values kept as given
        raw = read(mmlsv2_release / "train" / "images" / rec.source)[0][to_paper]
        expected = ((raw - lo[:, None, None]) / (hi - lo)[:, None, None]).astype(np.float32)
        assert got.tobytes() == expected.tobytes()


@pytest.mark.real_scene
def test_mmlsv1_reference_tiles_ingest_bit_for_bit(real_scene, tmp_path) -> None:
    """The 12 original MMLSv1 tiles of mmlsv1-west, written back in the MMLSv1 layout."""
    ref = np.load(real_scene / "reference_tiles.npz")
    keys = sorted({k.rsplit("_", 1)[0] for k in ref.files})
    tiles = {}
    for key in keys:
        col, row = (int(p[1:]) for p in key.split("_"))
        tiles[(col, row)] = (ref[f"{key}_image"], ref[f"{key}_mask"], col * 128, row * 128)
    split_of = {k: ("train", "val", "test")[i % 3] for i, k in enumerate(sorted(tiles))}
    write_release(tmp_path / "v1", tiles, split_of, layout="mmlsv1")
    table, _ = ingest_release(
        cfg(tmp_path / "v1", "mmlsv1"), tmp_path / "t", bands=BAND_NAMES, size=128
    )
    assert len(table) == 12
    for rec in table.itertuples():
        image, mask, _, _ = tiles[(rec.col, rec.row)]
        img_p, mask_p = tile_paths(tmp_path / "t", "base", rec.col, rec.row)
        assert read(img_p)[0].tobytes() == image.tobytes()
        assert read(mask_p)[0][0].tobytes() == mask.tobytes()
