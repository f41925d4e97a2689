"""Map a scene with a model bundle: checks, map, Cloud-Optimized GeoTIFFs, polygons, summary,
quick-look. The one code path of ``mmls map``, :func:`mmls.api.Model.map` and the ``map@`` stage.

In order, and nothing is written before the checks pass:

1. the output folder: refused when it holds anything and the policy is ``never`` (the default);
2. the scene (:mod:`mmls.inference.compatibility`): bands by name, CRS, pixel size, value
   convention, not all nodata; a truncated GeoTIFF is refused as it is opened;
3. the map (:func:`mmls.inference.scene.predict_scene`) with the bundle's own decision
   (test-time augmentation, threshold) and context, or the caller's overrides, on any engine
   (:mod:`mmls.inference.engine`); memory is bounded by the mapped width (one strip of windows),
   never by the height;
4. the outputs, written into a temporary sibling folder that replaces ``out_dir`` only once all
   are complete: ``probability.tif`` and ``mask.tif`` as Cloud-Optimized GeoTIFFs on the scene's
   own grid and CRS, cropped to the mapped window; ``landslides.gpkg``; ``summary.json``;
   ``quicklook.png`` (:mod:`mmls.inference.quicklook`).

A scene is scored against an inventory only when one is given (then it is aligned to the scene's
grid first, raster or polygons in any CRS, as the pipeline aligns its own).
"""

from __future__ import annotations

import json
import math
import shutil
import time
from dataclasses import asdict, dataclass, field
from importlib.metadata import version
from pathlib import Path
from typing import Any, Literal

import rasterio
import rasterio.shutil
from rasterio.enums import Resampling
from rasterio.vrt import WarpedVRT
from rasterio.windows import Window, from_bounds
from rasterio.windows import transform as window_transform

from mmls.core.config import ParamError, Section
from mmls.core.errors import InputError
from mmls.core.io import PathLike, atomic_dir, open_raster, read_json, write_json
from mmls.geo.align import align_inventory
from mmls.geo.raster import Grid, check_complete
from mmls.inference.bundle import Bundle, bundle_predictor, read_bundle
from mmls.inference.compatibility import Allowances, check_scene
from mmls.inference.engine import row_source
from mmls.inference.polygons import POLYGONS_NAME
from mmls.inference.quicklook import QUICKLOOK_NAME, write_quicklook
from mmls.inference.scene import PredictConfig, predict_scene
from mmls.inference.sinks import MASK_NAME, PROB_NAME
from mmls.inference.windows import region_window
from mmls.nn.device import device_label, resolve_device, set_threads

SUMMARY_NAME = "summary.json"
OVERWRITE = ("never", "replace")


class MapScene(Section):
    """One entry of ``map.scenes``: a composite to map with the pipeline's ``model``."""

    composite: str
    region: Literal["isolated", "base", "all"] | None = None  # a holdout region of the pipeline
    bbox: list[float] | None = None  # [xmin, ymin, xmax, ymax] in the scene's CRS units
    bands: list[str] | None = None  # the file's band names in order (no band descriptions)
    allow_value_mismatch: bool = False
    allow_pixel_size: bool = False

    def check(self) -> None:
        if self.region is not None and self.bbox is not None:
            raise ParamError("bbox", "give a region or a bbox, not both")
        if self.bbox is not None and (
            len(self.bbox) != 4 or self.bbox[0] >= self.bbox[2] or self.bbox[1] >= self.bbox[3]
        ):
            raise ParamError(
                "bbox", "must be [xmin, ymin, xmax, ymax] with xmin < xmax, ymin < ymax"
            )


class MapScore(Section):
    """One entry of ``map.scores``: the inventory a mapped scene is scored against."""

    inventory: str


class MapConfig(PredictConfig):
    """The ``map`` params section: the engine, the quick-look size, the scenes and their scores."""

    quicklook_px: int  # longest side of quicklook.png
    scenes: dict[str, MapScene]
    scores: dict[str, MapScore]

    def check(self) -> None:
        super().check()
        if self.quicklook_px < 64:
            raise ParamError("quicklook_px", "must be >= 64")
        unknown = sorted(set(self.scores) - set(self.scenes))
        if unknown:
            raise ParamError("scores", f"score scenes that are not mapped: {unknown}")


@dataclass(frozen=True)
class MapOptions:
    """What a caller may choose beyond the bundle's own choices."""

    region: Window | None = None  # a pixel window of the scene (default: all of it)
    bbox: tuple[float, float, float, float] | None = None  # in the scene's CRS units
    band_map: tuple[str, ...] | None = None  # the file's bands in order
    threshold: float | None = None  # None: the bundle's
    tta: bool | None = None  # None: the bundle's
    allow: Allowances = field(default_factory=Allowances)
    inventory: str | None = None  # score against it (raster or polygons, any CRS)
    landslide_class: int = 1  # the inventory's landslide class
    overwrite: Literal["never", "replace"] = "never"
    progress: bool = True
    quicklook_px: int = 1024


def scene_options(
    cfg: MapConfig, name: str, regions_json: PathLike, overwrite: str = "replace"
) -> tuple[MapScene, MapOptions]:
    """The ``map.scenes.<name>`` entry and the options it asks for (a holdout region is read
    from the pipeline's ``regions_json``)."""
    if name not in cfg.scenes:
        raise InputError("params.yaml:map.scenes", f"has no entry {name!r}")
    scene = cfg.scenes[name]
    region = None
    if scene.region is not None:
        doc = read_json(regions_json) if scene.region != "all" else None
        with open_raster(scene.composite) as src:
            region = region_window(doc, scene.region, Grid.of(src))
    options = MapOptions(
        region=region,
        bbox=tuple(scene.bbox) if scene.bbox else None,
        band_map=tuple(scene.bands) if scene.bands else None,
        allow=Allowances(scene.allow_value_mismatch, scene.allow_pixel_size),
        overwrite=overwrite,
        progress=False,
        quicklook_px=cfg.quicklook_px,
    )
    return scene, options


def check_out_dir(out_dir: Path, overwrite: str) -> None:
    """Refuse an output folder that holds anything (``never``), or is not a folder."""
    if overwrite not in OVERWRITE:
        raise InputError("--overwrite", f"must be one of {list(OVERWRITE)}, got {overwrite!r}")
    if out_dir.exists() and not out_dir.is_dir():
        raise InputError(out_dir, "exists and is not a folder")
    if overwrite == "never" and out_dir.is_dir() and any(out_dir.iterdir()):
        raise InputError(
            out_dir, "exists and is not empty: choose another folder or --overwrite replace"
        )


def mapped_window(src: rasterio.DatasetReader, path: PathLike, options: MapOptions) -> Window:
    """The pixel window to map: the caller's region, the bbox rounded outwards to whole
    pixels, or the whole scene; clipped to the scene."""
    full = Window(0, 0, src.width, src.height)
    if options.bbox is not None:
        w = from_bounds(*options.bbox, transform=src.transform)
        c0, r0 = math.floor(w.col_off + 1e-6), math.floor(w.row_off + 1e-6)  # outwards, but
        c1 = math.ceil(w.col_off + w.width - 1e-6)  # not a whole pixel for a rounding error
        r1 = math.ceil(w.row_off + w.height - 1e-6)
        window = Window(c0, r0, c1 - c0, r1 - r0)
        source = f"--bbox {list(options.bbox)}"
    else:
        window, source = options.region or full, str(path)
    try:
        window = window.intersection(full)
    except rasterio.errors.WindowError as exc:
        raise InputError(source, "lies outside the scene") from exc
    return Window(int(window.col_off), int(window.row_off), int(window.width), int(window.height))


def to_cog(src_path: Path, dst_path: Path, window: Window, resampling: Resampling) -> None:
    """``src_path`` cropped to ``window`` as a Cloud-Optimized GeoTIFF (same CRS and pixel grid;
    DEFLATE, 256-px blocks, overviews with ``resampling``)."""
    with rasterio.open(src_path) as src:
        crop = WarpedVRT(
            src,
            crs=src.crs,
            transform=window_transform(window, src.transform),
            width=int(window.width),
            height=int(window.height),
            nodata=src.nodata,
            resampling=Resampling.nearest,  # the same grid: every pixel copied as it is
        )
        with crop:
            rasterio.shutil.copy(
                crop,
                dst_path,
                driver="COG",
                compress="DEFLATE",
                blocksize=256,
                overview_resampling=resampling.name.upper(),
                bigtiff="IF_SAFER",
            )


def map_scene(
    model_path: PathLike,
    scene_path: PathLike,
    out_dir: PathLike,
    cfg: PredictConfig,
    options: MapOptions | None = None,
    bundle: Bundle | None = None,
) -> dict[str, Any]:
    """Map ``scene_path`` with the bundle ``model_path`` (already read: ``bundle``) into
    ``out_dir`` (see the module docstring); returns the summary it writes."""
    options = options or MapOptions()
    out = Path(out_dir)
    check_out_dir(out, options.overwrite)
    bundle = bundle or read_bundle(model_path)
    with open_raster(scene_path) as src:
        check_complete(src, scene_path)
        window = mapped_window(src, scene_path, options)
        checks = check_scene(src, scene_path, bundle, window, options.band_map, options.allow)
        grid = Grid.of(src)
    threshold = options.threshold if options.threshold is not None else bundle.inference.threshold
    tta = options.tta if options.tta is not None else bundle.inference.tta
    set_threads(cfg.threads)
    device = resolve_device(cfg.device, "--device")
    predictor = bundle_predictor(bundle, device, str(model_path))
    t0 = time.perf_counter()
    with atomic_dir(out) as tmp:
        work = tmp / ".work"
        work.mkdir()
        truth = None
        if options.inventory is not None:
            truth = work / "inventory.tif"
            align_inventory(
                grid, options.inventory, truth, window_px=1024, burn_value=options.landslide_class
            )
        result = predict_scene(
            predictor,
            scene_path,
            work,
            band_idx=[b - 1 for b in checks["file_bands"]],
            cfg=cfg,
            threshold=0.5 if threshold is None else threshold,
            tta=tta,
            region=window,
            truth_path=truth,
            landslide_class=options.landslide_class,
            progress=options.progress,
            rows=row_source(str(model_path), str(device), cfg),
        )
        to_cog(work / PROB_NAME, tmp / PROB_NAME, window, Resampling.average)
        to_cog(work / MASK_NAME, tmp / MASK_NAME, window, Resampling.nearest)
        shutil.move(work / POLYGONS_NAME, tmp / POLYGONS_NAME)
        shutil.rmtree(work)
        write_quicklook(
            scene_path,
            checks["file_bands"],
            bundle.bands,
            tmp / PROB_NAME,
            0.5 if threshold is None else threshold,
            window,
            tmp / QUICKLOOK_NAME,
            options.quicklook_px,
        )
        summary = _summary(
            bundle,
            model_path,
            scene_path,
            window,
            checks,
            result.record(),
            threshold,
            tta,
            options,
            cfg,
            device,
            time.perf_counter() - t0,
        )
        write_json(tmp / SUMMARY_NAME, summary)
    return summary


def _summary(
    bundle,
    model_path,
    scene_path,
    window,
    checks,
    record,
    threshold,
    tta,
    options,
    cfg,
    device,
    seconds,
) -> dict[str, Any]:
    """What the map's ``summary.json`` records."""
    scored = options.inventory is not None
    return {
        "scene": str(scene_path),
        "window": {
            "col_off": int(window.col_off),
            "row_off": int(window.row_off),
            "width": int(window.width),
            "height": int(window.height),
        },
        "model": {
            "bundle": str(model_path),
            "name": bundle.model_name,
            "git_revision": bundle.provenance.get("git_revision"),
            "recommended": bundle.recommended,
        },
        "decision": {
            "threshold": 0.5 if threshold is None else threshold,
            "threshold_from": "override" if options.threshold is not None else "bundle",
            "tta": tta,
            "tta_from": "override" if options.tta is not None else "bundle",
            "context_px": bundle.context_px,
        },
        "checks": {k: v for k, v in checks.items() if k != "sampled_quantiles"},
        "sampled_quantiles": checks["sampled_quantiles"],
        "overrides": checks["overrides"],
        "scored_against": options.inventory if scored else None,
        "map": {
            k: v
            for k, v in record.items()
            if scored or (k not in _SCORE_KEYS and not k.startswith("obj_"))
        },
        "engine": {
            "scheduler": cfg.scheduler,
            "workers": cfg.workers,
            "device": device_label(device),
        },
        "allowances": asdict(options.allow),
        "seconds": round(seconds, 3),
        "mmls_version": version("mmls"),
    }


_SCORE_KEYS = {
    "precision",
    "recall",
    "f1",
    "iou_fg",
    "iou_bg",
    "miou",
    "tp",
    "fp",
    "fn",
    "tn",
    "n_scored_pixels",
}


def read_summary(out_dir: PathLike) -> dict[str, Any]:
    return json.loads((Path(out_dir) / SUMMARY_NAME).read_text())
