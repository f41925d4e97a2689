"""Deterministic zero-overlap patch grid and georeferenced tile extraction (MMLSv2 Sec. 2.3)."""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from multiprocessing import get_context
from pathlib import Path

import numpy as np
import pandas as pd
import rasterio
from rasterio.windows import Window
from rasterio.windows import transform as window_transform
from tqdm import tqdm

from mmls.core.config import ParamError, Section
from mmls.core.errors import InputError
from mmls.core.io import PathLike, open_raster, read_raster
from mmls.core.paths import tile_paths
from mmls.geo.nodata import bands_without_values, warn_nonphysical
from mmls.geo.raster import Grid, check_same_grid, geotiff_profile

INDEX_COLUMNS = ["region", "col", "row", "x_off", "y_off", "fg_pixels", "fg_ratio"]


class TileConfig(Section):
    """The ``tile`` params section (Sec. 2.3)."""

    # Patch side in pixels (paper: 128). Not named `size`: DVC's run-cache drops every params key
    # named `size` or `nfiles` from a stage's hash (treeverse/dvc#10296), so a changed `size`
    # would restore the old tiles from the cache (tests/test_pipeline_shape.py).
    size_px: int
    min_fg_ratio: float  # patches with fg ratio <= this are dropped (paper: 0, i.e. keep r > 0)
    # Not in the paper (false: its binarization makes unmapped land background): true drops every
    # patch touching an unmapped inventory pixel (a scene rebuilt from released tiles, whose
    # unlabelled tiles would otherwise lend background to their neighbours' terminal patches).
    drop_unmapped: bool
    workers: int  # processes writing tiles (outputs are identical for any value)

    def check(self) -> None:
        if self.size_px < 2:
            raise ParamError("size_px", "must be >= 2")
        if not 0.0 <= self.min_fg_ratio <= 1.0:
            raise ParamError("min_fg_ratio", "must lie in [0, 1]")
        if self.workers < 1:
            raise ParamError("workers", "must be >= 1")


def grid_origins(extent: int, size: int) -> list[int]:
    """Patch origins along one axis: 0, s, 2s, ... plus a terminal origin ``extent - s``.

    Sec. 2.3: stride = patch size (zero overlap), "with an additional terminal origin to ensure
    boundary coverage without padding". The terminal origin is added only when ``extent`` is
    not a multiple of ``size``; it overlaps its neighbour by ``s - extent % s`` pixels. So the
    count is ``ceil(extent / s)`` when ``extent >= s`` and 0 when the extent is shorter than
    one patch (no padding means such an axis holds no patch).
    """
    if size <= 0:
        raise ValueError("size must be positive")
    if extent < size:
        return []
    origins = list(range(0, extent - size + 1, size))
    if extent % size:
        origins.append(extent - size)
    return origins


@dataclass(frozen=True)
class Patch:
    region: str
    col: int  # index within the region's grid (the terminal origin takes the next index)
    row: int
    x_off: int  # pixel offset in the composite
    y_off: int


def region_patches(region: str, window: Window, size: int) -> list[Patch]:
    """All candidate patches of a region window, row-major."""
    col_off, row_off = int(window.col_off), int(window.row_off)
    xs = grid_origins(int(window.width), size)
    ys = grid_origins(int(window.height), size)
    return [
        Patch(region, c, r, col_off + x, row_off + y)
        for r, y in enumerate(ys)
        for c, x in enumerate(xs)
    ]


@dataclass
class TileStats:
    candidates: int = 0
    kept: int = 0
    dropped_nodata: int = 0
    dropped_fg: int = 0
    dropped_unmapped: int = 0


def has_nodata(image: np.ndarray, nodata: float | None) -> bool:
    """True when any pixel of any band is nodata (or NaN)."""
    if np.issubdtype(image.dtype, np.floating) and np.isnan(image).any():
        return True
    return nodata is not None and bool((image == nodata).any())


def _tile_patches(
    composite_path: str,
    mask_path: str,
    patches: list[Patch],
    out_dir: str,
    size: int,
    min_fg_ratio: float,
    band_names: Sequence[str],
    unmapped_path: str | None = None,
) -> tuple[list[dict], TileStats]:
    """Filter and write ``patches`` (one worker's share). Reads one patch at a time."""
    out = Path(out_dir)
    records: list[dict] = []
    st = TileStats(candidates=len(patches))
    with contextlib.ExitStack() as stack:
        comp = stack.enter_context(open_raster(composite_path))
        mask_ds = stack.enter_context(open_raster(mask_path))
        inv = stack.enter_context(open_raster(unmapped_path)) if unmapped_path else None
        nodata = comp.nodata
        for p in patches:
            w = Window(p.x_off, p.y_off, size, size)
            image = read_raster(comp, window=w)
            if has_nodata(image, nodata):
                st.dropped_nodata += 1
                continue
            if (
                inv is not None
                and inv.nodata is not None
                and (read_raster(inv, 1, window=w) == inv.nodata).any()
            ):
                st.dropped_unmapped += 1
                continue
            mask = read_raster(mask_ds, 1, window=w)
            fg_pixels = int(np.count_nonzero(mask == 1))
            fg_ratio = fg_pixels / mask.size  # Eq. 1
            if fg_ratio <= min_fg_ratio:
                st.dropped_fg += 1
                continue
            warn_nonphysical(
                image, f"{composite_path} patch {p.region} col {p.col} row {p.row}", band_names
            )
            patch_grid = Grid(comp.crs, window_transform(w, comp.transform), size, size)
            image_path, mask_path = tile_paths(out, p.region, p.col, p.row)
            _write_tile(
                image_path,
                image.astype(np.float32, copy=False),
                patch_grid,
                nodata,
                band_names,
            )
            _write_tile(mask_path, mask[None], patch_grid)
            st.kept += 1
            records.append({**asdict(p), "fg_pixels": fg_pixels, "fg_ratio": fg_ratio})
    return records, st


def _plan_jobs(
    windows: dict[str, Window], out_dir: Path, size: int
) -> list[tuple[str, list[Patch]]]:
    """Create every region's ``images``/``masks`` folders and cut its window into patches; one
    job per row of patches (regions sorted, rows ascending), the unit a worker process takes."""
    jobs: list[tuple[str, list[Patch]]] = []
    for region in sorted(windows):
        (out_dir / region / "images").mkdir(parents=True, exist_ok=True)
        (out_dir / region / "masks").mkdir(parents=True, exist_ok=True)
        patches = region_patches(region, windows[region], size)
        for row in sorted({p.row for p in patches}):
            jobs.append((region, [p for p in patches if p.row == row]))
    return jobs


def _run_jobs(
    jobs: list[tuple[str, list[Patch]]],
    args: tuple[str, str],
    rest: tuple[str, int, float, list[str], str | None],
    workers: int,
    stats: dict[str, TileStats],
) -> list[dict]:
    """Filter and write every job's patches with :func:`_tile_patches` (``args`` before the
    patches, ``rest`` after), in this process or in a pool of ``workers`` spawned processes.
    Results are taken in job order, so the records and the counts added to each region's
    ``stats`` are the same for any ``workers``; returns the records of the kept patches."""
    records: list[dict] = []
    progress = tqdm(total=len(jobs), desc="tile", unit="row", leave=False, disable=None)
    if workers <= 1:
        results = (_tile_patches(*args, patches, *rest) for _, patches in jobs)
    else:
        pool = ProcessPoolExecutor(max_workers=workers, mp_context=get_context("spawn"))
        futures = [pool.submit(_tile_patches, *args, patches, *rest) for _, patches in jobs]
        results = (f.result() for f in futures)
    try:
        for (region, _), (recs, st) in zip(jobs, results, strict=True):
            total = stats[region]
            total.candidates += st.candidates
            total.kept += st.kept
            total.dropped_nodata += st.dropped_nodata
            total.dropped_fg += st.dropped_fg
            total.dropped_unmapped += st.dropped_unmapped
            records.extend(recs)
            progress.update()
    finally:
        progress.close()
        if workers > 1:
            pool.shutdown(cancel_futures=True)
    return records


def _empty_bands_note(
    composite_path: PathLike, windows: dict[str, Window], band_names: Sequence[str]
) -> str:
    """Why every patch was dropped, when the cause is a band without any valid value."""
    notes = []
    for region, window in sorted(windows.items()):
        empty = bands_without_values(composite_path, window, band_names)
        if empty:
            notes.append(f"region {region!r}: band(s) {empty}")
    if not notes:
        return ""
    return (
        "; the cause: " + "; ".join(notes) + " hold no valid value (every pixel is nodata, NaN, "
        "inf or non-physical), so every patch has a missing pixel and is dropped"
    )


def _check_kept(
    index: pd.DataFrame,
    stats: dict[str, TileStats],
    composite_path: PathLike,
    min_fg_ratio: float,
    windows: dict[str, Window],
    band_names: Sequence[str],
) -> None:
    """Refuse a tiling that kept no patch at all or none of the base region (nothing to train
    on); warn about another region left empty (it can still be mapped by ``predict``). The
    warning points at the caller of :func:`tile_regions`."""
    if len(index) == 0:
        raise InputError(
            composite_path,
            f"no patch left after filtering (nodata, fg ratio > {min_fg_ratio}): "
            + ", ".join(f"{r}: {asdict(s)}" for r, s in stats.items())
            + _empty_bands_note(composite_path, windows, band_names),
        )
    for region, st in stats.items():
        if st.kept == 0 and region == "base":
            raise InputError(
                composite_path,
                f"region {region!r} has no patch left after filtering ({asdict(st)})"
                + _empty_bands_note(composite_path, {region: windows[region]}, band_names),
            )
        if st.kept == 0:  # e.g. an isolated region imaged but never mapped: nothing to score
            warnings.warn(
                f"{composite_path}: region {region!r} has no patch left after filtering "
                f"({asdict(st)}): it is unmapped or empty, and can still be mapped by `predict`",
                stacklevel=3,
            )


def tile_regions(
    composite_path: PathLike,
    mask_path: PathLike,
    windows: dict[str, Window],
    out_dir: PathLike,
    *,
    size: int = 128,
    min_fg_ratio: float = 0.0,
    band_names: Sequence[str],
    workers: int = 1,
    unmapped_path: PathLike | None = None,
) -> tuple[pd.DataFrame, dict[str, TileStats]]:
    """Cut every region into patches; keep those without nodata and with fg ratio > threshold.

    Writes ``<out_dir>/<region>/images/c<col>_r<row>.tif`` (float32, all bands, the patch's own
    window transform, CRS, band descriptions) and ``.../masks/c<col>_r<row>.tif`` (uint8).
    Returns the index of kept patches (sorted, so independent of ``workers``) and per-region
    counts. Each process reads one patch at a time; ``workers`` > 1 spreads rows of patches
    over processes (writing each small GeoTIFF is CPU-bound: compression and CRS encoding).
    """
    out_dir = Path(out_dir)
    with open_raster(composite_path) as comp:
        grid = Grid.of(comp)
    check_same_grid(grid, composite_path, mask_path)  # Sec. 2.2 check before extraction
    jobs = _plan_jobs(windows, out_dir, size)
    args = (str(composite_path), str(mask_path))
    rest = (
        str(out_dir),
        size,
        min_fg_ratio,
        list(band_names),
        unmapped_path and str(unmapped_path),
    )
    stats = {region: TileStats() for region in sorted(windows)}
    records = _run_jobs(jobs, args, rest, workers, stats)
    index = pd.DataFrame.from_records(records, columns=INDEX_COLUMNS)
    index = index.sort_values(["region", "col", "row"], kind="stable").reset_index(drop=True)
    _check_kept(index, stats, composite_path, min_fg_ratio, windows, band_names)
    return index, stats


def _write_tile(
    path: Path,
    data: np.ndarray,
    grid: Grid,
    nodata: float | None = None,
    band_names: Sequence[str] | None = None,
) -> None:
    profile = geotiff_profile(grid, data.shape[0], str(data.dtype), nodata=nodata)
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data)
        if band_names is not None:
            for i, name in enumerate(band_names, start=1):
                dst.set_band_description(i, name)
