"""Released tile folders -> data/released/{tiles,splits.csv} (MMLSv1 / MMLSv2 layouts)."""

from __future__ import annotations

import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import rasterio
import yaml
from affine import Affine
from rasterio.errors import NotGeoreferencedWarning

from mmls.bands import BAND_NAMES
from mmls.errors import InputError
from mmls.ingest import V1_BANDS, IngestConfig, ingest_release
from mmls.layout import tile_name
from mmls.splitting import SPLIT_COLUMNS
from mmls.store import build_store, load_store

ROOT = Path(__file__).resolve().parents[1]
SIZE = 128
V1_FOLDERS = {"train_partition": "train", "validation_partition": "val", "test_partition": "test"}
TO_V1 = [BAND_NAMES.index(b) for b in V1_BANDS]  # project order -> v1 order


def write_raw(path: Path, data: np.ndarray) -> None:
    """An ungeoreferenced GeoTIFF like the released tiles."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        with rasterio.open(
            path,
            "w",
            driver="GTiff",
            width=data.shape[-1],
            height=data.shape[-2],
            count=data.shape[0],
            dtype=str(data.dtype),
        ) as dst:
            dst.write(data)


def write_v1(
    root: Path,
    tiles: dict[tuple[int, int], tuple[np.ndarray, np.ndarray]],
    partition_of: dict[tuple[int, int], str],
    mask_prefix: str = "Image",
) -> None:
    """Tiles (project band order image, uint8 mask) keyed (col, row) in the MMLSv1 layout:
    bands reordered to blue, green, red, dem, thermal_inertia, slope, grayscale; float masks."""
    for (col, row), (image, mask) in tiles.items():
        part = root / partition_of[(col, row)]
        write_raw(part / "images" / f"Image_patch_{row}_{col}.tif", image[TO_V1])
        write_raw(
            part / "masks" / f"{mask_prefix}_patch_{row}_{col}.tif", mask[None].astype(np.float32)
        )


def synthetic_tiles(
    n: int = 9, seed: int = 0
) -> dict[tuple[int, int], tuple[np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(seed)
    tiles = {}
    for k in range(n):
        col, row = 3 * k % 7, k // 2
        image = rng.random((7, SIZE, SIZE), dtype=np.float32) * 1000
        mask = (rng.random((SIZE, SIZE)) < 0.3).astype(np.uint8)
        tiles[(col, row)] = (image, mask)
    return tiles


def v1_config(root: Path, **kw) -> IngestConfig:
    return IngestConfig.from_params({"layout": "mmlsv1", "root": str(root), **kw})


def check_ingested(out: Path, splits: pd.DataFrame, tiles, partition_of) -> None:
    assert list(splits.columns) == SPLIT_COLUMNS
    assert len(splits) == len(tiles)
    assert splits.equals(splits.sort_values(["region", "col", "row"]).reset_index(drop=True))
    for rec in splits.itertuples():
        image, mask = tiles[(rec.col, rec.row)]
        assert rec.split == V1_FOLDERS[partition_of[(rec.col, rec.row)]]
        assert rec.region == "base"
        assert (rec.x_off, rec.y_off) == (rec.col * SIZE, rec.row * SIZE)
        assert (rec.block_col, rec.block_row) == (rec.col // 2, rec.row // 2)
        assert rec.stratum == -1
        assert rec.fg_pixels == int(mask.sum())
        name = tile_name(rec.col, rec.row)
        with rasterio.open(out / "base" / "images" / name) as ds:
            got = ds.read()
            assert ds.dtypes[0] == "float32" and ds.crs is None
            assert ds.transform == Affine.translation(rec.x_off, rec.y_off)
            assert list(ds.descriptions) == list(BAND_NAMES)
        assert got.tobytes() == image.tobytes()  # bit for bit, project band order
        with rasterio.open(out / "base" / "masks" / name) as ds:
            got_mask = ds.read(1)
        assert got_mask.dtype == np.uint8
        np.testing.assert_array_equal(got_mask, mask)


def test_synthetic_mmlsv1_release_keeps_bands_masks_and_split(tmp_path) -> None:
    tiles = synthetic_tiles()
    parts = list(V1_FOLDERS)
    partition_of = {key: parts[i % 3] for i, key in enumerate(tiles)}
    write_v1(tmp_path / "release", tiles, partition_of)
    splits = ingest_release(v1_config(tmp_path / "release"), tmp_path / "tiles", progress=False)
    check_ingested(tmp_path / "tiles", splits, tiles, partition_of)
    index = pd.read_csv(tmp_path / "tiles" / "index.csv")
    assert len(index) == len(splits)
    # The store stage runs unchanged on what ingest wrote.
    splits.to_csv(tmp_path / "splits.csv", index=False)
    meta = build_store(
        tmp_path / "splits.csv", tmp_path / "tiles", tmp_path / "store", BAND_NAMES, SIZE
    )
    assert meta["counts"] == {"train": 3, "val": 3, "test": 3, "isolated_test": 0}
    store = load_store(tmp_path / "store")
    row = store.rows("train")[0]
    first = store.patches.iloc[row]
    assert np.array_equal(store.images[row], tiles[(first["col"], first["row"])][0])


def test_mmlsv2_layout_with_isolated_split_and_mask_names(tmp_path) -> None:
    tiles = synthetic_tiles(4, seed=1)
    folders = ["train", "val", "test", "isolated_test"]
    for i, ((col, row), (image, mask)) in enumerate(tiles.items()):
        write_raw(tmp_path / "r" / folders[i] / "images" / f"tile_{row}_{col}.tif", image)
        write_raw(tmp_path / "r" / folders[i] / "labels" / f"mask_{row}_{col}.tif", mask[None])
    cfg = IngestConfig.from_params(
        {
            "layout": "mmlsv2",
            "root": str(tmp_path / "r"),
            "masks_dir": "labels",
            "name_regex": r"tile_(?P<row>\d+)_(?P<col>\d+)\.tif$",
            "mask_name_sub": ["^tile_", "mask_"],
        }
    )
    splits = ingest_release(cfg, tmp_path / "tiles", progress=False)
    assert sorted(splits["split"]) == sorted(folders)
    iso = splits[splits["split"] == "isolated_test"].iloc[0]
    assert iso["region"] == "isolated"
    assert set(splits.loc[splits["split"] != "isolated_test", "region"]) == {"base"}
    image, mask = tiles[(iso["col"], iso["row"])]
    with rasterio.open(
        tmp_path / "tiles/isolated/images" / tile_name(iso["col"], iso["row"])
    ) as ds:
        assert ds.read().tobytes() == image.tobytes()  # mmlsv2 default = project band order


# ---------------------------------------------------------------------------------- errors
def broken(tmp_path: Path, what: str) -> IngestConfig:
    tiles = synthetic_tiles(3)
    partition_of = dict.fromkeys(tiles, "train_partition")
    keys = list(tiles)
    partition_of[keys[1]] = "validation_partition"
    partition_of[keys[2]] = "test_partition"
    root = tmp_path / "release"
    write_v1(root, tiles, partition_of)
    col, row = keys[0]
    img = root / "train_partition/images" / f"Image_patch_{row}_{col}.tif"
    msk = root / "train_partition/masks" / f"Image_patch_{row}_{col}.tif"
    if what == "missing root":
        return v1_config(tmp_path / "nowhere")
    if what == "missing split folder":
        import shutil

        shutil.rmtree(root / "test_partition")
    elif what == "no tiles":
        img.unlink()
    elif what == "image without mask":
        msk.unlink()
    elif what == "band count":
        write_raw(img, np.zeros((6, SIZE, SIZE), np.float32))
    elif what == "shape":
        write_raw(img, np.zeros((7, 64, 128), np.float32))
    elif what == "mask values":
        write_raw(msk, np.full((1, SIZE, SIZE), 0.5, np.float32))
    elif what == "name":
        img.rename(img.with_name("something_else.tif"))
    elif what == "duplicate":
        c2, r2 = keys[1]
        v = root / "validation_partition"
        (v / "images" / f"Image_patch_{r2}_{c2}.tif").rename(
            v / "images" / f"Image_patch_{row}_{col}.tif"
        )
        (v / "masks" / f"Image_patch_{r2}_{c2}.tif").rename(
            v / "masks" / f"Image_patch_{row}_{col}.tif"
        )
    return v1_config(root)


@pytest.mark.parametrize(
    ("what", "culprit", "message"),
    [
        ("missing root", "nowhere", "not found"),
        ("missing split folder", "test_partition", "folder not found"),
        ("no tiles", "train_partition/images", "no tiles"),
        ("image without mask", "Image_patch", "image without mask"),
        ("band count", "Image_patch", "6 band(s), expected 7"),
        ("shape", "Image_patch", "128x64"),
        ("mask values", "masks/Image_patch", "other than 0 and 1"),
        ("name", "something_else.tif", "name_regex"),
        ("duplicate", "validation_partition", "same grid position"),
    ],
)
def test_clear_errors(tmp_path, what, culprit, message) -> None:
    with pytest.raises(InputError) as err:
        ingest_release(broken(tmp_path, what), tmp_path / "tiles", progress=False)
    assert culprit in err.value.source
    assert message in err.value.problem


@pytest.mark.parametrize(
    "section",
    [
        {"layout": "mmlsv3"},
        {"band_order": ["red", "green"]},
        {"splits": {"train_partition": "training"}},
        {"name_regex": r"(?P<row>\d+)"},
        {"bogus": 1},
        {"mask_name_sub": "Mask_"},
    ],
)
def test_bad_params(section) -> None:
    with pytest.raises(InputError):
        IngestConfig.from_params(section)


def test_stage_writes_tiles_splits_and_counts(tmp_path) -> None:
    tiles = synthetic_tiles(6, seed=4)
    parts = list(V1_FOLDERS)
    partition_of = {key: parts[i % 3] for i, key in enumerate(tiles)}
    write_v1(tmp_path / "release", tiles, partition_of, mask_prefix="Mask")
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["ingest"] = {
        **yaml.safe_load((ROOT / "params.yaml").read_text())["ingest"],
        "root": "release",
        "mask_name_sub": ["^Image_", "Mask_"],
    }
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    result = subprocess.run(
        [sys.executable, str(ROOT / "stages" / "ingest.py")],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    splits = pd.read_csv(tmp_path / "data/released/splits.csv")
    check_ingested(tmp_path / "data/released/tiles", splits, tiles, partition_of)
    counts = yaml.safe_load((tmp_path / "metrics/ingest.json").read_text())
    assert counts["train"]["n_images"] == 2 and counts["isolated_test"]["n_images"] == 0
    # A failing run leaves the previous outputs alone.
    (tmp_path / "release/test_partition/masks").rename(tmp_path / "release/test_partition/m")
    result = subprocess.run(
        [sys.executable, str(ROOT / "stages" / "ingest.py")],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 2 and "folder not found" in result.stderr
    assert pd.read_csv(tmp_path / "data/released/splits.csv").equals(splits)


# ------------------------------------------------------------------------------- real scene
@pytest.mark.real_scene
def test_reference_tiles_in_mmlsv1_layout_ingest_bit_for_bit(real_scene, tmp_path) -> None:
    ref = np.load(real_scene / "reference_tiles.npz")
    keys = sorted({k.rsplit("_", 1)[0] for k in ref.files})
    tiles = {}
    for key in keys:
        col, row = (int(p[1:]) for p in key.split("_"))
        tiles[(col, row)] = (ref[f"{key}_image"], ref[f"{key}_mask"])
    parts = list(V1_FOLDERS)
    partition_of = {
        k: parts[0] if i < 8 else parts[1] if i < 10 else parts[2]
        for i, k in enumerate(sorted(tiles))
    }
    write_v1(tmp_path / "release", tiles, partition_of)
    splits = ingest_release(v1_config(tmp_path / "release"), tmp_path / "tiles", progress=False)
    assert len(splits) == len(keys) == 12
    check_ingested(tmp_path / "tiles", splits, tiles, partition_of)
    assert splits["split"].value_counts().to_dict() == {"train": 8, "val": 2, "test": 2}
