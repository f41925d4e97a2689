"""Published tile releases: what their files look like (presets), and finding their tiles.

Presets describe the files of each published distribution, so that a user sets only
``ingest.layout`` and ``ingest.root`` (the folder that holds the split folders):

- ``mmlsv2-challenge``: the package of the 1st Mars Landslide Segmentation Challenge (PBVS
  2026): bands thermal_inertia, slope, dem, grayscale, red, green, blue with raw values,
  ``<split>/images/col<NNNNN>_row<NNNNN>.tif`` and the mask of the same name under
  ``<split>/masks``; the isolated test lives in a second folder, ``../phase2_dataset/test``.
- ``mmlsv2``: the dataset's own distribution: the paper's order (red, green, blue, dem, slope,
  thermal_inertia, grayscale), values scaled to [0, 1], the same folder and file names.
- ``mmlsv1``: MMLSv1 (``*_partition/images/*_patch_<row>_<col>.tif``; masks of the same name, or
  with ``Image_`` replaced by ``Mask_``); bands blue, green, red, dem, thermal_inertia, slope,
  grayscale; no georeferencing.

A split folder with images and no ``masks`` folder is an UNLABELLED split (MMLSv2 publishes its
test splits so): never trained on, never scored, but predicted. A preset's split folder that
does not exist is skipped with a note (a download may lack some splits); a folder named in
``ingest.folders`` must exist.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from mmls.core.config import ParamError, Section
from mmls.core.errors import InputError
from mmls.core.io import check_regular_file
from mmls.core.paths import SPLITS
from mmls.data.bands import BAND_NAMES

COLROW = r"^col(?P<col>\d+)_row(?P<row>\d+)\.tiff?$"
PATCH = r"_patch_(?P<row>\d+)_(?P<col>\d+)\.tiff?$"
IMAGES, MASKS = "images", "masks"


@dataclass(frozen=True)
class Layout:
    """How one published distribution stores its tiles."""

    band_order: tuple[str, ...]
    values: str  # what the pixel values are, for the record
    folders: Mapping[str, str]  # split -> folder under the root
    name_regex: str  # file name -> (col, row)
    mask_names: tuple[tuple[str, str], ...]  # (image prefix, mask prefix) tried in order


LAYOUTS: dict[str, Layout] = {
    "mmlsv2-challenge": Layout(
        ("thermal_inertia", "slope", "dem", "grayscale", "red", "green", "blue"),
        "raw (DEM in m, slope in degrees, 8-bit-like optical and thermal bands)",
        {"train": "train", "val": "val", "test": "test", "isolated_test": "../phase2_dataset/test"},
        COLROW,
        (("", ""),),
    ),
    "mmlsv2": Layout(
        BAND_NAMES,
        "scaled to [0, 1] per band",
        {"train": "train", "val": "val", "test": "test", "isolated_test": "isolated_test"},
        COLROW,
        (("", ""),),
    ),
    "mmlsv1": Layout(
        ("blue", "green", "red", "dem", "thermal_inertia", "slope", "grayscale"),
        "scaled to [0, 1] per band",
        {"train": "train_partition", "val": "validation_partition", "test": "test_partition"},
        PATCH,
        (("", ""), ("Image_", "Mask_")),
    ),
}


class IngestConfig(Section):
    """The ``ingest`` params section."""

    layout: Literal["mmlsv2-challenge", "mmlsv2", "mmlsv1"]
    root: str  # the folder holding the split folders
    folders: dict[str, str]  # split -> folder (under root, or absolute) beyond the preset's
    regions: dict[str, Literal["base", "isolated"]]  # split -> region beyond the default
    # (isolated_test -> isolated, every other split -> base)

    def check(self) -> None:
        for key in ("folders", "regions"):
            unknown = sorted(set(getattr(self, key)) - set(SPLITS))
            if unknown:
                raise ParamError(key, f"unknown split(s) {unknown}; known: {list(SPLITS)}")

    @property
    def preset(self) -> Layout:
        return LAYOUTS[self.layout]

    def region_of(self, split: str) -> str:
        return self.regions.get(split, "isolated" if split == "isolated_test" else "base")


@dataclass(frozen=True)
class ReleasedTile:
    """One released image (and its mask, None for an unlabelled split)."""

    split: str
    region: str
    col: int
    row: int
    image: Path
    mask: Path | None


def _mask_of(image: Path, masks_dir: Path, layout: Layout) -> Path:
    for image_prefix, mask_prefix in layout.mask_names:
        if image.name.startswith(image_prefix):
            candidate = masks_dir / (mask_prefix + image.name[len(image_prefix) :])
            if candidate.exists():
                return check_regular_file(candidate)
    raise InputError(image, f"image without mask (looked in {masks_dir})")


def split_tiles(split: str, folder: Path, cfg: IngestConfig) -> list[ReleasedTile]:
    """The tiles of one split folder (labelled when it has a ``masks`` folder)."""
    images_dir, masks_dir = folder / IMAGES, folder / MASKS
    if not images_dir.is_dir():
        raise InputError(images_dir, f"folder not found (split {split!r})")
    images = raster_files(images_dir)
    if not images:
        raise InputError(images_dir, "no tiles (*.tif) found")
    labelled = masks_dir.is_dir()
    rx = re.compile(cfg.preset.name_regex)
    tiles = []
    for image in images:
        m = rx.search(image.name)
        if m is None:
            raise InputError(image, f"file name does not fit layout {cfg.layout!r} ({rx.pattern})")
        mask = _mask_of(image, masks_dir, cfg.preset) if labelled else None
        col, row = int(m.group("col")), int(m.group("row"))
        tiles.append(ReleasedTile(split, cfg.region_of(split), col, row, image, mask))
    if labelled:
        warn_orphan_masks(masks_dir, {t.mask for t in tiles if t.mask is not None})
    return tiles


def raster_files(folder: Path) -> list[Path]:
    """The ``*.tif`` / ``*.tiff`` files of ``folder``, sorted; an entry of that name that is not
    a regular file (a FIFO, socket or device would block a reader forever) is an error."""
    found = sorted(p for p in folder.iterdir() if p.suffix.lower() in (".tif", ".tiff"))
    for path in found:
        check_regular_file(path)
    return found


class OrphanMaskWarning(UserWarning):
    """A released mask whose image is missing: it cannot be used and is left out."""


def warn_orphan_masks(masks_dir: Path, used: set[Path], show: int = 3) -> int:
    """Warn, with their count and the first few names, about masks no image uses; their count."""
    orphans = [p for p in raster_files(masks_dir) if p not in used]
    if orphans:
        names = ", ".join(p.name for p in orphans[:show]) + (", ..." if len(orphans) > show else "")
        warnings.warn(
            f"{masks_dir}: {len(orphans)} mask(s) without an image, left out: {names}",
            OrphanMaskWarning,
            stacklevel=3,
        )
    return len(orphans)


def find_tiles(cfg: IngestConfig) -> tuple[list[ReleasedTile], list[str]]:
    """Every tile of the release and notes on what was skipped or found unlabelled."""
    root = Path(cfg.root)
    if not root.is_dir():
        raise InputError(root, "release folder not found (params.yaml:ingest.root)")
    folders = {**cfg.preset.folders, **cfg.folders}
    tiles: list[ReleasedTile] = []
    notes: list[str] = []
    seen: dict[tuple[str, int, int], Path] = {}
    for split in SPLITS:
        if split not in folders:
            continue
        folder = root / folders[split]
        if not folder.is_dir():
            if split in cfg.folders:
                raise InputError(folder, f"folder not found (params.yaml:ingest.folders.{split})")
            notes.append(f"split {split}: {folder} not found, skipped")
            continue
        found = split_tiles(split, folder, cfg)
        if found[0].mask is None:
            notes.append(f"split {split}: no masks folder, ingested as UNLABELLED ({len(found)})")
        for t in found:
            key = (t.region, t.col, t.row)
            if key in seen:
                raise InputError(
                    t.image,
                    f"same grid position (col {t.col}, row {t.row}) as {seen[key]} in region "
                    f"{t.region!r}",
                )
            seen[key] = t.image
        tiles.extend(found)
    if not tiles:
        raise InputError(root, f"no split folder of layout {cfg.layout!r} found")
    return tiles, notes


def unlabelled_folders(cfg: IngestConfig) -> dict[str, Path]:
    """The image folder of every split the release publishes without masks (what is handed in)."""
    tiles, _ = find_tiles(cfg)
    return {t.split: t.image.parent for t in tiles if t.mask is None}
