"""What a model was made for, checked against a scene before anything is mapped.

A model applied to data it was not trained on predicts garbage without a word: a U-Net trained
on the challenge package's raw values marks no landslide at all on the same kind of imagery
scaled to [0, 1]. So every map first checks the scene against its bundle
(:mod:`mmls.inference.bundle`) and refuses, in one line naming the file (and band), what does not
fit:

- bands: matched by NAME, from the file's band descriptions or a band map (the file's bands in
  order); reordered when the order differs; a model band the file lacks is an error;
- a raster without CRS; a scene with no valid pixel;
- the pixel size: more than :data:`MAX_PIXEL_FACTOR` from the training data's (in metres at the
  scene's centre for a CRS in degrees);
- the value convention: a deterministic sample of windows is read, each band's 1st, 50th and
  99th percentiles are compared with the training values' (:func:`value_problems`). A band
  whose values lie in [0, 1] while training saw raw values spread far wider (or the reverse),
  whose spread differs by more than :data:`MAX_SPREAD_FACTOR`, or whose median standardises
  beyond :data:`MAX_CENTRE_Z` training standard deviations, is refused.

The pixel-size and value refusals can be overridden (:class:`Allowances`); the map's summary
records that they were.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyproj
import rasterio
from rasterio.windows import Window

from mmls.core.errors import InputError
from mmls.core.io import PathLike, read_raster
from mmls.data.bands import BAND_NAMES, RAW_UNITS
from mmls.geo.nodata import invalid_pixels, warn_nonphysical
from mmls.inference.bundle import Bundle

#: A scene's pixel size may differ from the training data's by at most this factor.
MAX_PIXEL_FACTOR = 1.5
#: A band's p1..p99 spread may differ from the training values' by at most this factor.
MAX_SPREAD_FACTOR = 100.0
#: A band's median may lie at most this many training standard deviations from the mean.
MAX_CENTRE_Z = 50.0
#: Windows read to sample a scene's values (spread over it on a regular grid), and their side.
SAMPLE_WINDOWS = 64
SAMPLE_PX = 128
UNIT_RANGE = (-0.01, 1.01)  # values "lie in [0, 1]" (with a little slack for rounding)


@dataclass(frozen=True)
class Allowances:
    """Refusals a user overrides knowingly (recorded in the map's summary)."""

    value_mismatch: bool = False
    pixel_size: bool = False


def band_order(
    src: rasterio.DatasetReader,
    path: PathLike,
    model_bands: Sequence[str],
    band_map: Sequence[str] | None,
) -> list[int]:
    """1-based indices of the file's bands in the model's input order.

    ``band_map`` names the file's bands in order (``-`` skips one); without it the file's band
    descriptions are the names. Without either, or with a name that is not a band, nothing is
    guessed: the error says what to pass.
    """
    if band_map is not None:
        names = [str(n).strip().lower() for n in band_map]
        if len(names) != src.count:
            raise InputError(
                path, f"the band map names {len(names)} bands, the file has {src.count}"
            )
        source = "the band map"
    elif all(src.descriptions):
        names = [str(d).strip().lower() for d in src.descriptions]
        source = "the file's band descriptions"
    else:
        raise InputError(
            path,
            f"its {src.count} bands have no descriptions: give their order with a band map "
            f"(--bands a,b,...; the model takes {', '.join(model_bands)})",
        )
    unknown = [n for n in names if n != "-" and n not in BAND_NAMES]
    if unknown:
        raise InputError(
            path, f"{source} name(s) {unknown} that are not bands of {list(BAND_NAMES)}"
        )
    repeated = sorted({n for n in names if n != "-" and names.count(n) > 1})
    if repeated:
        raise InputError(path, f"{source} repeat band(s) {repeated}")
    missing = [b for b in model_bands if b not in names]
    if missing:
        raise InputError(
            path, f"has no band {missing} (by {source}: {names}); the model needs them"
        )
    return [names.index(b) + 1 for b in model_bands]


def pixel_size_m(src: rasterio.DatasetReader) -> float:
    """The pixel size in metres (the square root of the pixel's area): CRS units times their
    metre factor, or, for a CRS in degrees, metres at the scene's centre on its ellipsoid."""
    a, e = abs(src.transform.a), abs(src.transform.e)
    if src.crs.is_geographic:
        radius = pyproj.CRS.from_wkt(src.crs.to_wkt()).ellipsoid.semi_major_metre
        lat = math.radians((src.bounds.top + src.bounds.bottom) / 2)
        per_degree = math.pi / 180 * radius
        return math.sqrt(a * per_degree * math.cos(lat) * e * per_degree)
    _, factor = src.crs.linear_units_factor
    return math.sqrt(a * e) * factor


def pixel_size_problem(scene_m: float, model_m: float | None) -> str | None:
    """Why the scene's pixel size does not fit the model's (None when within
    :data:`MAX_PIXEL_FACTOR`, or when the model's is unknown)."""
    if model_m is None:
        return None
    factor = max(scene_m / model_m, model_m / scene_m)
    if factor <= MAX_PIXEL_FACTOR:
        return None
    finer = "finer" if scene_m < model_m else "coarser"
    return (
        f"pixel size {scene_m:.4g} m is {factor:.2f}x {finer} than the model's {model_m:.4g} m "
        f"(more than {MAX_PIXEL_FACTOR}x)"
    )


PIXEL_ADVICE = (
    "use a model trained near {scene:.4g} m, resample the scene to about {model:.4g} m, or "
    "override with --allow-pixel-size"
)
VALUE_ADVICE = (
    "use a model trained on this convention, or override with --allow-value-mismatch (the map "
    "will likely be wrong)"
)


def sample_windows(window: Window, n: int = SAMPLE_WINDOWS, size: int = SAMPLE_PX) -> list[Window]:
    """Up to ``n`` windows of ``size`` px on a regular grid over ``window`` (deterministic)."""
    w, h = int(window.width), int(window.height)
    side = max(1, round(math.sqrt(n)))
    sw, sh = min(size, w), min(size, h)
    xs = np.unique(np.linspace(0, w - sw, side).round().astype(int))
    ys = np.unique(np.linspace(0, h - sh, side).round().astype(int))
    return [Window(window.col_off + x, window.row_off + y, sw, sh) for y in ys for x in xs]


def sample_quantiles(
    src: rasterio.DatasetReader, bands: Sequence[int], window: Window
) -> tuple[np.ndarray | None, int]:
    """(per band [p1, p50, p99] of the valid values in the sample windows, or None when no
    sampled pixel is valid; the number of valid samples). A pixel is valid when every band is."""
    values: list[np.ndarray] = []
    raws = []
    for w in sample_windows(window):
        raw = read_raster(src, list(bands), window=w, out_dtype="float32")
        raws.append(raw.reshape(len(bands), -1))
        ok = ~invalid_pixels(raw, src.nodata).any(axis=0)
        values.append(raw[:, ok])
    warn_nonphysical(np.concatenate(raws, axis=1), src.name, [str(b) for b in bands])
    valid = np.concatenate(values, axis=1)
    if valid.shape[1] == 0:
        return None, 0
    return np.percentile(valid.astype(np.float64), [1, 50, 99], axis=1).T, int(valid.shape[1])


def scan_quantiles(
    src: rasterio.DatasetReader,
    bands: Sequence[int],
    window: Window,
    strip_rows: int = 256,
    keep: int = 1_000_000,
) -> tuple[np.ndarray | None, int]:
    """As :func:`sample_quantiles`, over every strip of ``window`` (at most ``keep`` values)."""
    values: list[np.ndarray] = []
    kept = 0
    end = int(window.row_off + window.height)
    for row in range(int(window.row_off), end, strip_rows):
        strip = Window(window.col_off, row, window.width, min(strip_rows, end - row))
        raw = read_raster(src, list(bands), window=strip, out_dtype="float32")
        ok = ~invalid_pixels(raw, src.nodata).any(axis=0)
        values.append(raw[:, ok][:, : keep - kept])
        kept += values[-1].shape[1]
        if kept >= keep:
            break
    valid = np.concatenate(values, axis=1)
    if valid.shape[1] == 0:
        return None, 0
    return np.percentile(valid.astype(np.float64), [1, 50, 99], axis=1).T, int(valid.shape[1])


def _in_unit_range(lo: float, hi: float) -> bool:
    return UNIT_RANGE[0] <= lo and hi <= UNIT_RANGE[1]


def band_problem(band: str, scene: Sequence[float], bundle: Bundle, index: int) -> str | None:
    """Why one band's sampled values do not fit the training values (None when they do)."""
    q1, q50, q99 = (float(v) for v in scene)
    t1, _, t99 = bundle.convention.quantiles[band]
    mean, std = bundle.normalization["mean"][index], bundle.normalization["std"][index]
    spread, trained = q99 - q1, t99 - t1
    unit = RAW_UNITS.get(band, "units")
    if _in_unit_range(q1, q99) and not _in_unit_range(t1, t99) and trained > 2:
        return (
            f"values lie in [0, 1] but the model was trained on raw {unit} "
            f"(p1..p99 {t1:.4g}..{t99:.4g})"
        )
    if _in_unit_range(t1, t99) and not _in_unit_range(q1, q99) and spread > 2:
        return (
            f"values reach {q1:.4g}..{q99:.4g} but the model was trained on values scaled to [0, 1]"
        )
    if trained > 0 and spread > 0:
        ratio = spread / trained
        if not 1 / MAX_SPREAD_FACTOR <= ratio <= MAX_SPREAD_FACTOR:
            return (
                f"values spread over {spread:.4g} (p1..p99), {ratio:.3g}x the training values' "
                f"{trained:.4g}: another unit or scaling?"
            )
    z = (q50 - mean) / std if std > 0 else 0.0
    if abs(z) > MAX_CENTRE_Z:
        return (
            f"median {q50:.4g} lies {z:+.0f} training standard deviations from its mean {mean:.4g}"
        )
    return None


def value_problems(scene: np.ndarray, bundle: Bundle) -> list[str]:
    """``band <name>: <problem>`` for every band whose values do not fit."""
    out = []
    for i, band in enumerate(bundle.bands):
        problem = band_problem(band, scene[i], bundle, i)
        if problem:
            out.append(f"band {band}: {problem}")
    return out


def refuse(
    path: PathLike, scene_m: float, bundle: Bundle, values: Sequence[str], allow: Allowances
) -> list[str]:
    """One error naming every pixel-size and value problem not allowed (a user learns
    everything at once); else the notes the summary records (overrides, an unknown size)."""
    pixel = pixel_size_problem(scene_m, bundle.pixel_size_m)
    refused = []
    if pixel and not allow.pixel_size:
        refused.append(f"{pixel}: {PIXEL_ADVICE.format(scene=scene_m, model=bundle.pixel_size_m)}")
    if values and not allow.value_mismatch:
        refused.append(f"{'; '.join(values)}: {VALUE_ADVICE}")
    if refused:
        raise InputError(path, "; and ".join(refused))
    notes = [f"overridden: {p}" for p in [pixel, *values] if p]
    if bundle.pixel_size_m is None:
        notes.append("the model's pixel size is unknown (training data not georeferenced)")
    return notes


def check_scene(
    src: rasterio.DatasetReader,
    path: PathLike,
    bundle: Bundle,
    window: Window,
    band_map: Sequence[str] | None,
    allow: Allowances,
) -> dict[str, Any]:
    """Every refusal of the module docstring; the pixel size and the value convention are
    reported together, in one line, so that a user learns everything at once. Returns what the
    summary records (band order, pixel size, sampled quantiles, overrides)."""
    if src.crs is None:
        raise InputError(path, "has no CRS: georeference it (the pixel size and map need one)")
    bands = band_order(src, path, bundle.bands, band_map)
    scene_m = pixel_size_m(src)
    quantiles, n_valid = sample_quantiles(src, bands, window)
    if quantiles is None:  # the sample missed them, or there are none: look everywhere
        quantiles, n_valid = scan_quantiles(src, bands, window)
    if quantiles is None:
        raise InputError(path, "no valid pixel in the mapped area: the scene is all nodata there")
    notes = refuse(path, scene_m, bundle, value_problems(quantiles, bundle), allow)
    return {
        "file_bands": bands,
        "pixel_size_m": scene_m,
        "sampled_pixels": n_valid,
        "sampled_quantiles": {
            b: [round(float(v), 6) for v in quantiles[i]] for i, b in enumerate(bundle.bands)
        },
        "overrides": notes,
    }
