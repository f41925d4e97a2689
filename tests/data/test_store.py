"""Training store (docs/design.md), the Dataset/augmentation fed to the models (Sec. 4.1) and
the standardisation of inputs, missing values included."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import rasterio
import torch
from affine import Affine

from mmls.core.errors import InputError
from mmls.core.paths import tile_paths
from mmls.data.bands import BAND_NAMES
from mmls.data.dataset import TileDataset, epoch_plan, split_batches
from mmls.data.normalization import FILL_VALUE, Standardizer, band_stats
from mmls.data.store import build_store, load_store
from mmls.data.symmetry import apply_symmetry, invert_symmetry
from tests.stores import write_synthetic_store

SIZE = 32
NODATA = -9999.0
# (region, col, row, split), sorted by region, col, row as splits.csv is.
ROWS = [
    ("base", 0, 0, "train"),
    ("base", 0, 1, "val"),
    ("base", 1, 0, "train"),
    ("base", 1, 1, "test"),
    ("base", 2, 0, "train"),
    ("isolated", 0, 0, "isolated_test"),
]


def write_tile(tiles: Path, region: str, col: int, row: int, seed: int, **kw: object) -> tuple:
    rng = np.random.default_rng(seed)
    count = int(kw.get("count", len(BAND_NAMES)))
    image = rng.normal(size=(count, SIZE, SIZE)).astype(np.float32)
    image[:, :2, :2] = NODATA
    mask = (rng.random((SIZE, SIZE)) < 0.3).astype(np.uint8)
    if "mask_value" in kw:
        mask[0, 0] = kw["mask_value"]
    img_p, mask_p = tile_paths(tiles, region, col, row)
    img_p.parent.mkdir(parents=True, exist_ok=True)
    mask_p.parent.mkdir(parents=True, exist_ok=True)
    transform = Affine(100, 0, col * SIZE * 100, 0, -100, -row * SIZE * 100)
    common = {"driver": "GTiff", "width": SIZE, "height": SIZE, "transform": transform}
    with rasterio.open(img_p, "w", count=count, dtype="float32", nodata=NODATA, **common) as dst:
        dst.write(image)
        for i, name in enumerate(BAND_NAMES[:count], start=1):
            dst.set_band_description(i, name)
    with rasterio.open(mask_p, "w", count=1, dtype="uint8", **common) as dst:
        dst.write(mask, 1)
    return image, mask


@pytest.fixture
def tiled(tmp_path: Path) -> tuple[Path, Path, dict]:
    tiles = tmp_path / "tiles"
    truth = {}
    for seed, (region, col, row, _split) in enumerate(ROWS):
        truth[(region, col, row)] = write_tile(tiles, region, col, row, seed)
    df = pd.DataFrame(ROWS, columns=["region", "col", "row", "split"])
    df["fg_ratio"] = 0.3
    df.to_csv(tmp_path / "splits.csv", index=False)
    return tmp_path / "splits.csv", tiles, truth


def test_build_store_packs_tiles_in_splits_order(tiled: tuple, tmp_path: Path) -> None:
    splits_csv, tiles, truth = tiled
    meta = build_store(splits_csv, tiles, tmp_path / "store", BAND_NAMES, SIZE)
    assert meta["counts"] == {"train": 3, "val": 1, "test": 1, "isolated_test": 1}
    assert meta["nodata"] == NODATA and meta["bands"] == list(BAND_NAMES)
    store = load_store(tmp_path / "store")
    assert isinstance(store.images, np.memmap)
    assert store.images.shape == (6, 7, SIZE, SIZE) and store.masks.dtype == np.uint8
    rows = store.rows("train")
    keys = [tuple(store.patches.iloc[i][["region", "col", "row"]]) for i in rows]
    assert keys == [("base", 0, 0), ("base", 1, 0), ("base", 2, 0)]
    for i, key in zip(rows, keys, strict=True):
        np.testing.assert_array_equal(store.images[i], truth[key][0])
        np.testing.assert_array_equal(store.masks[i], truth[key][1])
    (iso,) = store.rows("isolated_test")
    np.testing.assert_array_equal(store.images[iso], truth[("isolated", 0, 0)][0])


def test_missing_tile_is_input_error_and_leaves_no_store(tiled: tuple, tmp_path: Path) -> None:
    splits_csv, tiles, _ = tiled
    tile_paths(tiles, "base", 1, 1)[0].unlink()
    with pytest.raises(InputError, match="not found"):
        build_store(splits_csv, tiles, tmp_path / "store", BAND_NAMES, SIZE)
    assert not (tmp_path / "store").exists()


def test_wrong_band_count_or_mask_values_are_input_errors(tiled: tuple, tmp_path: Path) -> None:
    splits_csv, tiles, _ = tiled
    write_tile(tiles, "base", 0, 1, seed=9, count=5)
    with pytest.raises(InputError, match="5 bands"):
        build_store(splits_csv, tiles, tmp_path / "store", BAND_NAMES, SIZE)
    write_tile(tiles, "base", 0, 1, seed=9, mask_value=255)
    with pytest.raises(InputError, match="mask values"):
        build_store(splits_csv, tiles, tmp_path / "store", BAND_NAMES, SIZE)


def test_bad_split_value_is_input_error(tiled: tuple, tmp_path: Path) -> None:
    splits_csv, tiles, _ = tiled
    df = pd.read_csv(splits_csv)
    df.loc[0, "split"] = "training"
    df.to_csv(splits_csv, index=False)
    with pytest.raises(InputError, match="unknown split"):
        build_store(splits_csv, tiles, tmp_path / "store", BAND_NAMES, SIZE)


def test_band_stats_skip_nodata() -> None:
    images = np.full((2, 2, 4, 4), NODATA, dtype=np.float32)
    images[:, 0, :2] = 1.0
    images[:, 0, 2:] = 3.0
    images[:, 1] = 5.0  # constant band -> std 1
    mean, std = band_stats(images, [0, 1], [0, 1], NODATA)
    assert mean == pytest.approx([2.0, 5.0])
    assert std == pytest.approx([1.0, 1.0])
    assert band_stats(images, [1], [0], NODATA)[0] == pytest.approx([2.0])  # rows select


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf, -3.4028235e38, 3.4028235e38, 1e31])
def test_non_physical_values_are_missing_in_stats_and_inputs(bad: float) -> None:
    """An undeclared sentinel (e.g. the float32 lowest value some GIS tools write) must neither
    move the band statistics nor reach the model: it is filled like nodata."""
    images = np.random.default_rng(0).normal(40, 5, (4, 2, 8, 8)).astype(np.float32)
    rows = [0, 1, 2, 3]
    m0, s0 = band_stats(images, rows, [0], None)  # band 0 stays clean
    m1, s1 = band_stats(images[:, :, 1:], rows, [1], None)  # band 1 without the row polluted below
    clean_mean, clean_std = m0 + m1, s0 + s1
    images[:, 1, 0, :] = bad  # the last row/column sentinel of the real release, in band 2
    polluted = images.copy()
    mean, std = band_stats(polluted, [0, 1, 2, 3], [0, 1], None)
    assert mean == pytest.approx(clean_mean, rel=1e-6) and std == pytest.approx(clean_std, rel=1e-6)
    x, invalid = Standardizer(mean, std, None)(polluted[0])
    assert invalid[1, 0].all() and not invalid[0].any()
    assert np.all(x[1, 0] == FILL_VALUE) and np.isfinite(x).all()


def test_dataset_standardises_selects_bands_and_zeroes_nodata() -> None:
    images = np.random.default_rng(0).normal(10, 2, (3, 7, 8, 8)).astype(np.float32)
    images[0, :, 0, 0] = NODATA
    masks = np.zeros((3, 8, 8), np.uint8)
    ds = TileDataset(images, masks, [0, 1, 2], [4, 2], Standardizer([10.0] * 2, [2.0] * 2, NODATA))
    x, y = ds[0]
    assert x.shape == (2, 8, 8) and x.dtype == torch.float32 and y.dtype == torch.int64
    assert torch.all(x[:, 0, 0] == 0)
    np.testing.assert_allclose(x[0, 1:].numpy(), (images[0, 4, 1:] - 10) / 2, rtol=1e-6)
    np.testing.assert_allclose(x[1, 1:].numpy(), (images[0, 2, 1:] - 10) / 2, rtol=1e-6)


def test_augmentation_moves_image_and_mask_together() -> None:
    rng = np.random.default_rng(1)
    masks = (rng.random((1, 8, 8)) < 0.4).astype(np.uint8)
    images = np.repeat(masks[:, None].astype(np.float32), 7, axis=1) * 10.0
    ds = TileDataset(images, masks, [0], list(range(7)), Standardizer([0.0] * 7, [1.0] * 7, None))
    seen = set()
    for op in range(8):
        x, y = ds[(0, op)]
        assert torch.equal((x[0] > 5).long(), y)
        seen.add(y.numpy().tobytes())
    assert len(seen) == 8  # the 8 symmetries of the square are all different here


def test_symmetries_by_hand() -> None:
    a = np.array([[1, 2], [3, 4]])
    np.testing.assert_array_equal(apply_symmetry(a, 0), a)
    np.testing.assert_array_equal(apply_symmetry(a, 1), [[2, 4], [1, 3]])  # 90 deg ccw
    np.testing.assert_array_equal(apply_symmetry(a, 4), [[2, 1], [4, 3]])  # mirror
    for op in range(8):
        np.testing.assert_array_equal(invert_symmetry(apply_symmetry(a, op), op), a)


def test_last_batch_of_one_joins_previous() -> None:
    assert split_batches(list(range(5)), 2) == [[0, 1], [2, 3, 4]]
    assert split_batches(list(range(6)), 4) == [[0, 1, 2, 3], [4, 5]]
    assert split_batches([0], 4) == [[0]]


def test_epoch_plan_is_a_seeded_permutation() -> None:
    g1, g2 = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    p1, p2 = epoch_plan(9, 4, g1, True), epoch_plan(9, 4, g2, True)
    assert p1 == p2
    assert sorted(i for b in p1 for i, _ in b) == list(range(9))
    assert [len(b) for b in p1] == [4, 5]
    assert epoch_plan(9, 4, g1, True) != p1  # the next epoch draws anew
    assert all(op == 0 for b in epoch_plan(9, 4, g1, False) for _, op in b)


def test_synthetic_store_loads(tmp_path: Path) -> None:
    write_synthetic_store(tmp_path / "s", {"train": 3, "val": 2}, size=16)
    store = load_store(tmp_path / "s")
    assert store.images.shape == (5, 7, 16, 16) and len(store.patches) == 5
    assert list(store.rows("val")) == [3, 4] and len(store.rows("test")) == 0
