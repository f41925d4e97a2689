"""Released tile folders (MMLSv1, MMLSv2) as an alternative entry point to the pipeline.

Instead of cutting tiles from raw rasters (stages tile + block_split), :func:`ingest_release`
reads the tiles of a released dataset and writes exactly what those two stages write, so that
the store / train / eval stages run unchanged:

- ``<out>/tiles/<region>/images/c<col>_r<row>.tif``: float32, the project's band order
  (``bands`` param), band descriptions set, no nodata value;
- ``<out>/tiles/<region>/masks/c<col>_r<row>.tif``: uint8 {0, 1};
- ``<out>/tiles/index.csv`` (the tile stage's index) and ``splits.csv`` (docs/design.md columns).

Conventions (where a release says nothing):

- The released split is **kept as given**: each split folder maps to one split
  (``ingest.splits``); ``isolated_test`` tiles go to region ``isolated``, all others to ``base``.
- ``col``/``row`` come from the file name (regex with named groups ``row`` and ``col``);
  ``x_off = col * size``, ``y_off = row * size`` (offsets on the release's own zero-overlap
  grid), ``block_col = col // 2``, ``block_row = row // 2`` (Eq. 2), ``group =
  "<block_col>_<block_row>"``, ``stratum = -1`` (no stratification was done here).
- Released tiles carry no georeferencing. Ingested tiles are written **without a CRS**, with the
  transform ``Affine.translation(x_off, y_off)``: plain pixel coordinates on the release grid
  (the identity for the tile at the origin, i.e. GDAL's convention for an ungeoreferenced
  raster). Nothing downstream of the tiles needs a CRS.
- Images are cast to float32 (a no-op for the float32 releases, so values stay bit for bit);
  masks must hold only 0 and 1 (any dtype, e.g. float 0.0/1.0) and become uint8.
- A (region, col, row) that occurs twice (e.g. two partitions tiled on separate grids) is an
  error rather than a silent overwrite.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import rasterio
from affine import Affine
from rasterio.errors import NotGeoreferencedWarning
from tqdm import tqdm

from mmls.bands import BAND_NAMES, band_indices
from mmls.errors import InputError
from mmls.io import PathLike, open_raster
from mmls.layout import tile_name
from mmls.raster import Grid, geotiff_profile
from mmls.splitting import SPLIT_COLUMNS, SPLITS
from mmls.tiling import INDEX_COLUMNS

V1_BANDS = ("blue", "green", "red", "dem", "thermal_inertia", "slope", "grayscale")
PATCH_REGEX = r"_patch_(?P<row>\d+)_(?P<col>\d+)\.tiff?$"

#: Defaults of each layout (every key can be overridden in the ``ingest`` params section).
LAYOUTS: dict[str, dict[str, Any]] = {
    "mmlsv1": {
        "band_order": list(V1_BANDS),
        "splits": {
            "train_partition": "train",
            "validation_partition": "val",
            "test_partition": "test",
        },
        "name_regex": PATCH_REGEX,
    },
    "mmlsv2": {  # not released yet when written: paper band order, plain split folder names
        "band_order": list(BAND_NAMES),
        "splits": {
            "train": "train",
            "val": "val",
            "test": "test",
            "isolated_test": "isolated_test",
        },
        "name_regex": PATCH_REGEX,
    },
}
SOURCE = "params.yaml:ingest"


@dataclass(frozen=True)
class IngestConfig:
    """The ``ingest`` params section with the layout's defaults filled in."""

    layout: str = "mmlsv1"
    root: str = "data/release/mmlsv1"
    band_order: tuple[str, ...] = V1_BANDS
    splits: Mapping[str, str] = field(default_factory=lambda: LAYOUTS["mmlsv1"]["splits"])
    name_regex: str = PATCH_REGEX
    images_dir: str = "images"
    masks_dir: str = "masks"
    mask_name_sub: tuple[str, str] | None = None

    @classmethod
    def from_params(cls, section: Mapping[str, Any] | None) -> IngestConfig:
        section = dict(section or {})
        known = {
            "layout",
            "root",
            "band_order",
            "splits",
            "name_regex",
            "images_dir",
            "masks_dir",
            "mask_name_sub",
        }
        unknown = sorted(set(section) - known)
        if unknown:
            raise InputError(SOURCE, f"unknown key(s) {unknown}")
        layout = section.get("layout") or "mmlsv1"
        if layout not in LAYOUTS:
            raise InputError(SOURCE, f"layout {layout!r} must be one of {sorted(LAYOUTS)}")
        defaults = LAYOUTS[layout]

        def pick(key: str) -> Any:
            value = section.get(key)
            return defaults[key] if value is None else value

        sub = section.get("mask_name_sub")
        if sub is not None and (
            not isinstance(sub, list | tuple)
            or len(sub) != 2
            or not all(isinstance(s, str) for s in sub)
        ):
            raise InputError(SOURCE, "mask_name_sub must be null or [regex, replacement]")
        cfg = cls(
            layout=layout,
            root=str(section.get("root") or cls.root),
            band_order=tuple(pick("band_order")),
            splits=dict(pick("splits")),
            name_regex=str(pick("name_regex")),
            images_dir=str(section.get("images_dir") or "images"),
            masks_dir=str(section.get("masks_dir") or "masks"),
            mask_name_sub=None if sub is None else (sub[0], sub[1]),
        )
        cfg.validate()
        return cfg

    def validate(self) -> None:
        if sorted(self.band_order) != sorted(BAND_NAMES):
            raise InputError(
                SOURCE,
                f"band_order {list(self.band_order)} must name each of {list(BAND_NAMES)} once",
            )
        if not self.splits:
            raise InputError(SOURCE, "splits maps no folder")
        bad = sorted(set(self.splits.values()) - set(SPLITS))
        if bad:
            raise InputError(SOURCE, f"splits maps to unknown split(s) {bad}; known: {SPLITS}")
        try:
            rx = re.compile(self.name_regex)
        except re.error as exc:
            raise InputError(SOURCE, f"name_regex is not a valid regex ({exc})") from exc
        if not {"row", "col"} <= set(rx.groupindex):
            raise InputError(
                SOURCE, "name_regex needs the named groups (?P<row>...) and (?P<col>...)"
            )
        if self.mask_name_sub is not None:
            try:
                re.compile(self.mask_name_sub[0])
            except re.error as exc:
                raise InputError(SOURCE, f"mask_name_sub regex is not valid ({exc})") from exc


@dataclass(frozen=True)
class ReleasedTile:
    split: str
    region: str
    col: int
    row: int
    image: Path
    mask: Path


def region_of(split: str) -> str:
    return "isolated" if split == "isolated_test" else "base"


def find_tiles(cfg: IngestConfig) -> list[ReleasedTile]:
    """Every (image, mask) pair of the release, with its split and grid position; checks names."""
    root = Path(cfg.root)
    if not root.is_dir():
        raise InputError(root, "release folder not found")
    rx = re.compile(cfg.name_regex)
    tiles: list[ReleasedTile] = []
    seen: dict[tuple[str, int, int], Path] = {}
    for folder, split in cfg.splits.items():
        images_dir = root / folder / cfg.images_dir
        masks_dir = root / folder / cfg.masks_dir
        for d in (root / folder, images_dir, masks_dir):
            if not d.is_dir():
                raise InputError(d, f"folder not found (split folder {folder!r} -> {split})")
        images = sorted(p for p in images_dir.iterdir() if p.suffix.lower() in (".tif", ".tiff"))
        if not images:
            raise InputError(images_dir, "no tiles (*.tif) found")
        for image in images:
            m = rx.search(image.name)
            if m is None:
                raise InputError(
                    image, f"file name does not match ingest.name_regex {rx.pattern!r}"
                )
            col, row = int(m.group("col")), int(m.group("row"))
            mask_name = image.name
            if cfg.mask_name_sub is not None:
                mask_name = re.sub(cfg.mask_name_sub[0], cfg.mask_name_sub[1], image.name)
            mask = masks_dir / mask_name
            if not mask.is_file():
                raise InputError(image, f"image without mask (expected {mask})")
            region = region_of(split)
            key = (region, col, row)
            if key in seen:
                raise InputError(
                    image,
                    f"same grid position (col {col}, row {row}) as {seen[key]} in region "
                    f"{region!r}: the split folders are not on one tile grid",
                )
            seen[key] = image
            tiles.append(ReleasedTile(split, region, col, row, image, mask))
    return tiles


def read_released(
    tile: ReleasedTile, band_order: Sequence[str], bands: Sequence[str], size: int
) -> tuple[np.ndarray, np.ndarray]:
    """(image C x size x size float32 in ``bands`` order, mask size x size uint8 {0, 1})."""
    order = band_indices(bands, band_order, source=SOURCE)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        with open_raster(tile.image) as src:
            if src.count != len(band_order):
                raise InputError(
                    tile.image,
                    f"has {src.count} band(s), expected {len(band_order)} "
                    f"(ingest.band_order {list(band_order)})",
                )
            if (src.height, src.width) != (size, size):
                raise InputError(tile.image, f"is {src.width}x{src.height}, expected {size}x{size}")
            image = src.read()
        with open_raster(tile.mask) as src:
            if src.count != 1 or (src.height, src.width) != (size, size):
                raise InputError(
                    tile.mask,
                    f"has {src.count} band(s) of {src.width}x{src.height}, expected "
                    f"one {size}x{size} band",
                )
            mask = src.read(1)
    if not np.isin(mask, (0, 1)).all():
        values = np.unique(mask[~np.isin(mask, (0, 1))])[:5].tolist()
        raise InputError(tile.mask, f"mask holds values other than 0 and 1, e.g. {values}")
    return image[order].astype(np.float32, copy=False), mask.astype(np.uint8)


def _write(
    path: Path, data: np.ndarray, x_off: int, y_off: int, names: Sequence[str] | None
) -> None:
    grid = Grid(None, Affine.translation(x_off, y_off), data.shape[-1], data.shape[-2])
    profile = geotiff_profile(grid, data.shape[0], str(data.dtype))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        with rasterio.open(path, "w", **profile) as dst:
            dst.write(data)
            for i, name in enumerate(names or (), start=1):
                dst.set_band_description(i, name)


def ingest_release(
    cfg: IngestConfig,
    tiles_out: PathLike,
    *,
    bands: Sequence[str] = BAND_NAMES,
    size: int = 128,
    progress: bool = True,
) -> pd.DataFrame:
    """Write the release's tiles under ``tiles_out`` (which should be empty); return splits.csv.

    The caller writes the returned frame to ``data/splits.csv`` (and ``tiles_out`` atomically).
    """
    if sorted(bands) != sorted(cfg.band_order):
        raise InputError(
            "params.yaml",
            f"`bands` {list(bands)} and ingest.band_order {list(cfg.band_order)} "
            "must name the same bands",
        )
    tiles = find_tiles(cfg)
    out = Path(tiles_out)
    records = []
    for t in tqdm(tiles, desc="ingest", unit="tile", disable=None if progress else True):
        image, mask = read_released(t, cfg.band_order, bands, size)
        for sub in ("images", "masks"):
            (out / t.region / sub).mkdir(parents=True, exist_ok=True)
        name = tile_name(t.col, t.row)
        x_off, y_off = t.col * size, t.row * size
        _write(out / t.region / "images" / name, image, x_off, y_off, bands)
        _write(out / t.region / "masks" / name, mask[None], x_off, y_off, None)
        fg_pixels = int(np.count_nonzero(mask))
        records.append(
            {
                "region": t.region,
                "col": t.col,
                "row": t.row,
                "x_off": x_off,
                "y_off": y_off,
                "block_col": t.col // 2,
                "block_row": t.row // 2,
                "group": f"{t.col // 2}_{t.row // 2}",
                "fg_pixels": fg_pixels,
                "fg_ratio": fg_pixels / mask.size,
                "stratum": -1,
                "split": t.split,
            }
        )
    splits = pd.DataFrame.from_records(records, columns=SPLIT_COLUMNS)
    splits = splits.sort_values(["region", "col", "row"], kind="stable").reset_index(drop=True)
    splits[INDEX_COLUMNS].to_csv(out / "index.csv", index=False)
    return splits


def summary(splits: pd.DataFrame) -> dict[str, dict[str, float | int]]:
    """Per split: tile count and mean foreground ratio in percent (``metrics/ingest.json``)."""
    out: dict[str, dict[str, float | int]] = {}
    for split in SPLITS:
        pct = splits.loc[splits["split"] == split, "fg_ratio"].to_numpy() * 100.0
        out[split] = {
            "n_images": len(pct),
            "avg_fg_pct": round(float(pct.mean()), 4) if len(pct) else 0.0,
        }
    return out
