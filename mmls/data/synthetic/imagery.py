"""The seven bands, drawn from the terrain and the landslides (Sec. 2.1's sources, imitated).

Landslide deposits carry a consistent but noisy signature in every band (smoother, brighter
optical texture with flow-parallel grooves, lower thermal inertia, hummocky DEM, gentler slope
on the run-out, steep scarps in the depletion zone), so that DEM, slope and thermal inertia add
information over RGB alone, as in the paper's band ablation (Table 4).

Every band is quantized (:func:`_finish`) as soon as it is drawn, and the DEM before the slope
and the shading are derived from it, so an ulp of difference cannot reach the written bytes.
Arrays are released as soon as their last band is drawn: a scene can reach 60 Mpx.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from mmls.data.bands import BAND_NAMES
from mmls.data.synthetic.config import DEM_QUANT, QUANT, SyntheticConfig
from mmls.data.synthetic.landslides import Slides
from mmls.data.synthetic.noise import fbm, noise2d, quantize, triangle
from mmls.data.synthetic.terrain import Terrain, slope_from_dem

_RED, _GREEN, _BLUE, _DEM, _SLOPE, _TI, _GRAY = range(len(BAND_NAMES))


def _finish(x: np.ndarray, q: int = QUANT) -> np.ndarray:
    """A band's final values: clipped to the valid range [0, 1] and quantized."""
    return quantize(np.clip(x, 0.0, 1.0), q)


def _elevation(
    bands: np.ndarray, cfg: SyntheticConfig, terrain: Terrain, slides: Slides
) -> np.ndarray:
    """Write the DEM and slope bands; return the DEM's elevation (m) to shade the others with.

    DEM (Sec. 2.1: MOLA/HRSC blend): pre-slide terrain plus scars and deposits. Slope is derived
    from the quantized DEM with the pixel size (ArcGIS-like), degrees / 90. Releases
    ``terrain.z0`` and ``slides.dz``.
    """
    z_range = cfg.dem_max_m - cfg.dem_min_m
    dem = _finish((terrain.z0 + slides.dz - cfg.dem_min_m) / z_range, DEM_QUANT)
    terrain.z0 = slides.dz = np.empty(0)
    bands[_DEM] = dem
    bands[_SLOPE] = _finish(slope_from_dem(dem, cfg))
    return dem * z_range + cfg.dem_min_m


def _relief(z: np.ndarray, pixel_size_m: float) -> tuple[np.ndarray, np.ndarray]:
    """Wall steepness in [0, 1] and a hillshade (sun from the north-west, 30 degrees up)."""
    gy, gx = np.gradient(z, pixel_size_m)
    steep = np.clip(np.sqrt(gx * gx + gy * gy) / 0.8, 0.0, 1.0)
    shade = np.clip((0.612 * gx + 0.612 * gy + 0.5) / np.sqrt(1.0 + gx * gx + gy * gy), 0.0, 1.0)
    return steep, shade


def _albedo(
    rng: np.random.Generator,
    z: np.ndarray,
    steep: np.ndarray,
    canyon: np.ndarray,
    slides: Slides,
    dep: np.ndarray,
    scar: np.ndarray,
) -> np.ndarray:
    """Albedo: dusty plateau, layered walls, darker floors with dune patches; landslides
    smoother, brighter and grooved. Releases ``slides.groove``."""
    shape = z.shape
    albedo = 0.62 + 0.08 * fbm(rng, shape, 150.0, 2) - 0.1 * canyon
    albedo += 0.05 * steep * triangle((z + 40.0 * noise2d(rng, shape, 30.0)) / 380.0)
    dunes = np.clip(noise2d(rng, shape, 18.0) - 0.3, 0.0, 1.0)
    albedo -= 0.1 * dunes * canyon * (1.0 - steep)
    del dunes
    fine = 0.5 * fbm(rng, shape, 3.0, 2) + 0.5 * rng.standard_normal(shape)
    smooth_ls = np.clip(dep + 0.5 * scar, 0.0, 1.0)
    albedo += (0.05 * (1.0 - 0.65 * smooth_ls)) * fine  # deposits: smoother texture
    del fine, smooth_ls
    albedo += 0.05 * dep + 0.025 * scar + 0.02 * dep * slides.groove  # brighter, grooved
    slides.groove = np.empty(0)
    return albedo


def _colour(
    bands: np.ndarray,
    rng: np.random.Generator,
    lum: np.ndarray,
    canyon: np.ndarray,
    fresh: np.ndarray,
) -> None:
    """Write RGB (Viking colour mosaic, coarser): blurred luminance ``lum`` with regional colour
    variation; ``fresh`` (blurred landslide weight) shifts the colour slightly."""
    shape = lum.shape
    hue = 0.06 * fbm(rng, shape, 250.0, 2) + 0.03 * canyon
    red = 0.05 + 0.78 * lum * (1.0 + hue) - 0.015 * fresh
    bands[_RED] = _finish(red + 0.025 * rng.standard_normal(shape))
    del red
    green = 0.02 + 0.56 * lum * (1.0 - 0.5 * hue) + 0.01 * fresh
    bands[_GREEN] = _finish(green + 0.025 * rng.standard_normal(shape))
    del green
    blue = 0.02 + 0.5 * lum * (1.0 - hue) + 0.015 * fresh
    bands[_BLUE] = _finish(blue + 0.025 * rng.standard_normal(shape))


def _thermal_inertia(
    rng: np.random.Generator,
    canyon: np.ndarray,
    steep: np.ndarray,
    dep: np.ndarray,
    scar: np.ndarray,
) -> np.ndarray:
    """Thermal inertia (THEMIS-derived, Sec. 2.1): dust low, rocky walls high, deposits lower."""
    ti = 0.42 + 0.1 * canyon + 0.22 * steep + 0.08 * fbm(rng, canyon.shape, 200.0, 2)
    ti += -0.075 * dep - 0.04 * scar
    ti = ndimage.gaussian_filter(ti, 1.2)
    return _finish(ti + 0.04 * rng.standard_normal(canyon.shape))


def render_bands(
    cfg: SyntheticConfig,
    terrain: Terrain,
    slides: Slides,
    rngs: dict[str, np.random.Generator],
) -> np.ndarray:
    """The (7, H, W) float32 bands in :data:`BAND_NAMES` order, valid everywhere (nodata is
    applied later). Draws from the ``texture``, ``color`` and ``ti`` streams of ``rngs``.

    Consumes ``terrain`` and ``slides`` except ``slides.mask``: their arrays are released.
    """
    bands = np.empty((len(BAND_NAMES), cfg.height, cfg.width), np.float32)
    z = _elevation(bands, cfg, terrain, slides)
    # terrain units: plateau (0) ... floor (1); wall steepness; shading
    steep, shade = _relief(z, cfg.pixel_size_m)
    canyon = np.clip(terrain.depth / 2000.0, 0.0, 1.0)
    terrain.depth = np.empty(0)
    dep = ndimage.gaussian_filter(slides.deposit, 1.0)
    scar = ndimage.gaussian_filter(slides.scar, 1.0)
    slides.deposit = slides.scar = np.empty(0)

    tex = rngs["texture"]
    albedo = _albedo(tex, z, steep, canyon, slides, dep, scar)
    del z
    # grayscale (CTX-like, Sec. 2.1): shaded albedo, sharp
    gray = 0.08 + 0.95 * albedo * (0.35 + 0.65 * shade)
    bands[_GRAY] = _finish(gray + 0.02 * tex.standard_normal(gray.shape))
    del gray
    lum = ndimage.gaussian_filter(albedo * (0.4 + 0.6 * shade), 1.5)
    del albedo, shade
    _colour(bands, rngs["color"], lum, canyon, ndimage.gaussian_filter(dep + scar, 2.0))
    del lum
    bands[_TI] = _thermal_inertia(rngs["ti"], canyon, steep, dep, scar)
    return bands
