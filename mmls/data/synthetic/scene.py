"""A deterministic, Mars-like default scene: 7-band composite plus a landslide inventory.

The pipeline must run with no data and no network, so the ``synthetic_scene`` stage builds a
small stand-in for the Valles Marineris mosaic of MMLSv2 (Sec. 2.1): east-west trending troughs
with steep walls and side canyons, landslides that start at the walls and run out onto the
floors, nodata gaps, and an inventory raster produced "independently" on its own, shifted and
larger grid, which the align/binarize stages must bring back onto the composite grid (Sec. 2.2).

Bands follow :data:`mmls.data.bands.BAND_NAMES`; valid values lie in [0, 1] (like the normalised
MMLSv1 release) and nodata is -9999. Slope is derived from the DEM (Sec. 2.1: "Slope is derived
from the MOLA DEM"). Landslide deposits carry a consistent but noisy signature in every band
(smoother, brighter optical texture with flow-parallel grooves, lower thermal inertia, hummocky
DEM, gentler slope on the run-out, steep scarps in the depletion zone), so that DEM, slope and
thermal inertia add information over RGB alone, as in the paper's band ablation (Table 4).

Determinism: every random draw comes from ``numpy.random.default_rng`` streams spawned from the
seed; transcendental functions are avoided where a mask depends on them (noise is interpolated
with polynomial weights, directions are normalised with ``sqrt``), and every band is quantized
to a fixed grid (multiples of 2**-12, the DEM of 2**-16) before anything else uses it, so an
ulp of difference between CPUs cannot change the written bytes.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import rasterio
from affine import Affine
from pydantic import field_validator
from rasterio.crs import CRS
from rasterio.errors import CRSError
from scipy import ndimage

from mmls.core.config import ParamError, Section
from mmls.core.io import PathLike, atomic_path
from mmls.data.bands import BAND_NAMES

NODATA: float = -9999.0
INV_LANDSLIDE, INV_BACKGROUND, INV_NODATA = 1, 0, 255
MARS_EQC = "+proj=eqc +lat_ts=0 +lat_0=0 +lon_0=0 +x_0=0 +y_0=0 +R=3396190 +units=m +no_defs"
#: Valid band values are multiples of 1/QUANT (the DEM: of 1/DEM_QUANT).
QUANT = 4096
DEM_QUANT = 65536
#: Slope (degrees) is scaled to [0, 1] by this divisor.
SLOPE_SCALE_DEG = 90.0
BLOCK = 256


# --------------------------------------------------------------------------------------------
# Configuration
# --------------------------------------------------------------------------------------------
class SyntheticConfig(Section):
    """The ``synthetic`` params section: the scene's size, grid, content and inventory grid."""

    seed: int
    width: int
    height: int
    pixel_size_m: float
    origin_x: float  # top-left corner, CRS units
    origin_y: float
    crs: str
    n_landslides: int
    nodata_fraction: float
    inventory_shift_px: tuple[int, int]  # inventory origin: dx left, dy up
    inventory_pad_px: int  # inventory extends this much further right and down
    n_troughs: int  # east-west troughs (chasmata)
    dem_min_m: float  # elevation mapped to DEM value 0
    dem_max_m: float  # elevation mapped to DEM value 1
    unmapped_patch_px: int  # side of a small unmapped (255) patch inside the scene; 0: none

    @field_validator("inventory_shift_px", mode="before")
    @classmethod
    def _pair(cls, v: Any) -> Any:
        return tuple(v) if isinstance(v, list) else v  # YAML has lists, not tuples

    def check(self) -> None:
        if self.width < 64 or self.height < 64:
            raise ParamError("width" if self.width < 64 else "height", "must be at least 64 px")
        if self.width * self.height > 60_000_000:
            raise ParamError("width", "makes a scene over 60 Mpx (memory)")
        if not (math.isfinite(self.pixel_size_m) and self.pixel_size_m > 0):
            raise ParamError("pixel_size_m", "must be a positive number")
        for key in ("origin_x", "origin_y", "dem_min_m", "dem_max_m"):
            if not math.isfinite(getattr(self, key)):
                raise ParamError(key, "must be finite")
        if not self.dem_max_m - self.dem_min_m >= 1000.0:
            raise ParamError("dem_max_m", "must exceed dem_min_m by at least 1000 m")
        if not 0.0 <= self.nodata_fraction < 0.5:
            raise ParamError("nodata_fraction", "must lie in [0, 0.5)")
        if self.n_landslides < 0:
            raise ParamError("n_landslides", "must be >= 0")
        if not 1 <= self.n_troughs <= max(1, self.height // 100):
            raise ParamError("n_troughs", f"must lie in [1, height/100 = {self.height // 100}]")
        if min(self.inventory_shift_px) < 0:
            raise ParamError("inventory_shift_px", "must be two non-negative integers [dx, dy]")
        if self.inventory_pad_px < 0:
            raise ParamError("inventory_pad_px", "must be >= 0")
        if not 0 <= self.unmapped_patch_px <= min(self.width, self.height) // 4:
            raise ParamError("unmapped_patch_px", "must lie in [0, min(width, height) / 4]")
        try:
            CRS.from_user_input(self.crs)
        except CRSError as exc:
            raise ParamError("crs", f"is not a valid CRS ({exc})") from exc

    @property
    def transform(self) -> Affine:
        """Affine transform of the composite (north-up, square pixels)."""
        p = self.pixel_size_m
        return Affine(p, 0.0, self.origin_x, 0.0, -p, self.origin_y)

    @property
    def inventory_transform(self) -> Affine:
        """The inventory's grid: origin ``inventory_shift_px`` pixels left and up."""
        dx, dy = self.inventory_shift_px
        p = self.pixel_size_m
        return Affine(p, 0.0, self.origin_x - dx * p, 0.0, -p, self.origin_y + dy * p)

    @property
    def inventory_shape(self) -> tuple[int, int]:
        """(height, width) of the inventory: shifted origin plus ``inventory_pad_px``."""
        dx, dy = self.inventory_shift_px
        pad = self.inventory_pad_px
        return self.height + dy + pad, self.width + dx + pad


# --------------------------------------------------------------------------------------------
# Scene container
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class SyntheticScene:
    """A generated scene. ``bands`` holds -9999 where ``nodata``; ``truth`` is 0 there."""

    config: SyntheticConfig
    bands: np.ndarray  # (7, H, W) float32
    truth: np.ndarray  # (H, W) uint8 {0, 1}: the mask align -> binarize must reproduce
    nodata: np.ndarray  # (H, W) bool
    inventory: np.ndarray  # inventory_shape uint8 {0, 1, 255}
    transform: Affine
    inventory_transform: Affine
    crs: str

    @property
    def band_names(self) -> tuple[str, ...]:
        return BAND_NAMES


# --------------------------------------------------------------------------------------------
# Deterministic helpers
# --------------------------------------------------------------------------------------------
def quantize(x: np.ndarray, q: int = QUANT) -> np.ndarray:
    """Round to multiples of 1/q (float64 in, float64 out): removes ulp-level CPU differences."""
    return np.round(x * q) / q


def _smooth_weights(n: int, scale: float) -> tuple[np.ndarray, np.ndarray]:
    """Knot index and smoothstep weight of ``n`` samples on knots spaced ``scale`` apart."""
    pos = np.arange(n, dtype=np.float64) / scale
    idx = np.floor(pos).astype(np.intp)
    t = pos - idx
    return idx, t * t * (3.0 - 2.0 * t)


def noise1d(rng: np.random.Generator, n: int, scale: float) -> np.ndarray:
    """Smooth value noise in about [-1, 1] along one axis; knots every ``scale`` samples."""
    knots = rng.uniform(-1.0, 1.0, int(n / scale) + 2)
    idx, w = _smooth_weights(n, scale)
    return knots[idx] * (1.0 - w) + knots[idx + 1] * w


def noise2d(rng: np.random.Generator, shape: tuple[int, int], scale: float) -> np.ndarray:
    """Smooth 2-D value noise (std about 0.6) with knots every ``scale`` pixels."""
    h, w = shape
    knots = rng.standard_normal((int(h / scale) + 2, int(w / scale) + 2))
    iy, wy = _smooth_weights(h, scale)
    ix, wx = _smooth_weights(w, scale)
    rows = knots[iy] * (1.0 - wy)[:, None] + knots[iy + 1] * wy[:, None]
    return rows[:, ix] * (1.0 - wx)[None, :] + rows[:, ix + 1] * wx[None, :]


def fbm(
    rng: np.random.Generator, shape: tuple[int, int], scale: float, octaves: int = 3
) -> np.ndarray:
    """Fractal sum of :func:`noise2d` octaves (halving scale and amplitude each time)."""
    out = np.zeros(shape)
    amp = 1.0
    for _ in range(octaves):
        out += amp * noise2d(rng, shape, max(scale, 1.0))
        scale /= 2.0
        amp /= 2.0
    return out


def _smoothstep(t: np.ndarray) -> np.ndarray:
    t = np.clip(t, 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


def _triangle(x: np.ndarray) -> np.ndarray:
    """Periodic triangle wave in [-1, 1] with period 1 (a trig-free stand-in for cos)."""
    return 4.0 * np.abs(x - np.floor(x + 0.5)) - 1.0


def _tan_slope(z: np.ndarray, pixel_size_m: float) -> np.ndarray:
    """|grad z| (rise over run) by central differences with the pixel size."""
    gy, gx = np.gradient(z, pixel_size_m)
    return np.sqrt(gx * gx + gy * gy)


def slope_from_dem(dem: np.ndarray, cfg: SyntheticConfig) -> np.ndarray:
    """Slope band from a normalised DEM band: degrees of |grad z| (metres), divided by 90.

    ``dem`` values map linearly to ``[dem_min_m, dem_max_m]``; the gradient uses the pixel
    size (like a GIS slope tool, Sec. 2.1). Returns float64, not yet quantized.
    """
    z = dem.astype(np.float64) * (cfg.dem_max_m - cfg.dem_min_m) + cfg.dem_min_m
    return np.degrees(np.arctan(_tan_slope(z, cfg.pixel_size_m))) / SLOPE_SCALE_DEG


# --------------------------------------------------------------------------------------------
# Terrain
# --------------------------------------------------------------------------------------------
def _canyon_depth(t_wall: np.ndarray, depth_m: np.ndarray | float) -> np.ndarray:
    """Depth below the plateau given the wall coordinate (0 = wall foot, 1 = crest).

    A steep upper cliff over a gentler talus apron: mix of smoothstep and a linear ramp.
    """
    t = np.clip(t_wall, 0.0, 1.0)
    frac = 1.0 - (0.75 * _smoothstep(t) + 0.25 * t)
    return depth_m * frac


def _troughs(
    rng: np.random.Generator, cfg: SyntheticConfig
) -> tuple[np.ndarray, list[dict[str, float]]]:
    """Depth field of the east-west troughs and their mean geometry (for side canyons)."""
    h, w = cfg.height, cfg.width
    band_h = h / cfg.n_troughs
    x = np.arange(w, dtype=np.float64)
    y = np.arange(h, dtype=np.float64)[:, None]
    depth = np.zeros((h, w))
    info = []
    for k in range(cfg.n_troughs):
        y0 = band_h * (k + 0.5) + rng.uniform(-0.06, 0.06) * band_h
        trend = rng.uniform(-0.05, 0.05) * band_h / w
        yc = y0 + trend * (x - w / 2) + 0.07 * band_h * noise1d(rng, w, 260.0)
        sides = []
        for _side in range(2):  # north, south: asymmetric walls with spurs and gullies
            hw = band_h * rng.uniform(0.12, 0.18) * (1.0 + 0.35 * noise1d(rng, w, 180.0))
            hw = hw + band_h * (0.03 * noise1d(rng, w, 45.0) + 0.012 * noise1d(rng, w, 12.0))
            ww = band_h * rng.uniform(0.07, 0.095) * (1.0 + 0.2 * noise1d(rng, w, 90.0))
            sides.append((hw, ww))
        d_m = rng.uniform(3200.0, 4200.0) * (1.0 + 0.12 * noise1d(rng, w, 400.0))
        s = y - yc[None, :]
        north = s < 0
        hw = np.where(north, sides[0][0][None, :], sides[1][0][None, :])
        ww = np.where(north, sides[0][1][None, :], sides[1][1][None, :])
        t = (np.abs(s) - hw) / ww
        depth = np.maximum(depth, _canyon_depth(t, d_m[None, :]))
        info.append(
            {
                "y0": float(np.mean(yc)),
                "half_width": float(np.mean(sides[0][0] + sides[1][0]) / 2),
                "depth": float(np.mean(d_m)),
            }
        )
        del s, north, hw, ww, t
    return depth, info


def _side_canyons(
    rng: np.random.Generator, cfg: SyntheticConfig, depth: np.ndarray, info: list[dict[str, float]]
) -> None:
    """Carve tributary canyons from the trough walls into the plateau (in place, max-combined).

    Each is a tapering capsule from a junction inside the trough to a head on the plateau,
    so both the western (base) and eastern (isolated) parts of the scene get extra walls.
    """
    h, w = cfg.height, cfg.width
    band_h = h / cfg.n_troughs
    for tr in info:
        for direction in (-1.0, 1.0):  # north, south
            n_side = max(1, round(w / rng.uniform(260.0, 360.0)))
            xs = (np.arange(n_side) + rng.uniform(0.15, 0.85, n_side)) * (w / n_side)
            for x0 in xs:
                y_j = tr["y0"] + direction * 0.3 * tr["half_width"]
                length = band_h * rng.uniform(0.4, 0.62)
                slant = rng.uniform(-0.45, 0.45)
                x1, y1 = x0 + slant * length, y_j + direction * length
                hw = rng.uniform(6.0, 16.0)
                ww = rng.uniform(16.0, 26.0)
                d_j = tr["depth"] * rng.uniform(0.55, 0.85)
                pad = hw + ww + 2
                r0 = max(0, int(min(y_j, y1) - pad))
                r1 = min(h, int(max(y_j, y1) + pad) + 1)
                c0 = max(0, int(min(x0, x1) - pad))
                c1 = min(w, int(max(x0, x1) + pad) + 1)
                if r1 <= r0 or c1 <= c0:
                    continue
                yy = np.arange(r0, r1, dtype=np.float64)[:, None]
                xx = np.arange(c0, c1, dtype=np.float64)[None, :]
                vx, vy = x1 - x0, y1 - y_j
                seg2 = vx * vx + vy * vy
                tau = np.clip(((xx - x0) * vx + (yy - y_j) * vy) / seg2, 0.0, 1.0)
                wobble = 4.0 * noise1d(rng, 64, 8.0)
                wob = wobble[np.minimum((tau * 63).astype(np.intp), 63)]
                px, py = xx - (x0 + tau * vx), yy - (y_j + tau * vy)
                dist = np.sqrt(px * px + py * py) + wob
                d_axis = d_j * (1.0 - 0.45 * tau * tau)
                hw_axis = hw * (1.0 - 0.5 * tau)  # narrowing towards the head
                local = _canyon_depth((dist - hw_axis) / ww, d_axis)
                np.maximum(depth[r0:r1, c0:c1], local, out=depth[r0:r1, c0:c1])


def _base_terrain(
    rngs: dict[str, np.random.Generator], cfg: SyntheticConfig
) -> tuple[np.ndarray, np.ndarray]:
    """Pre-landslide elevation (m) and canyon depth (m)."""
    h, w = cfg.height, cfg.width
    r = rngs["terrain"]
    x = np.arange(w, dtype=np.float64)[None, :] / w
    y = np.arange(h, dtype=np.float64)[:, None] / h
    plateau = 2200.0 - 700.0 * x + 250.0 * y + 450.0 * fbm(r, (h, w), 420.0, 2)
    plateau += 90.0 * fbm(r, (h, w), 40.0, 3)
    depth, info = _troughs(r, cfg)
    _side_canyons(rngs["side"], cfg, depth, info)
    floor_rough = 60.0 * fbm(r, (h, w), 60.0, 3)
    deep = np.clip(depth / 2500.0, 0.0, 1.0)
    z = plateau - depth + floor_rough * deep
    return quantize(z, 16), depth


# --------------------------------------------------------------------------------------------
# Landslides
# --------------------------------------------------------------------------------------------
@dataclass
class _Slides:
    mask: np.ndarray  # bool, landslide footprint (before nodata)
    dz: np.ndarray  # DEM change (m)
    deposit: np.ndarray  # 0..1 deposit weight (run-out / accumulation zone)
    scar: np.ndarray  # 0..1 depletion-zone weight
    groove: np.ndarray  # -1..1 flow-parallel groove pattern inside deposits


def _pick_seeds(rng: np.random.Generator, wall: np.ndarray, n: int) -> list[tuple[int, int]]:
    """Spread ``n`` seed pixels over the canyon walls (greedy Poisson-disk on a lattice)."""
    if n == 0:
        return []
    step = 4
    ys, xs = np.nonzero(wall[::step, ::step])
    if ys.size == 0:
        return []
    ys, xs = ys * step, xs * step
    order = rng.permutation(ys.size)
    ys, xs = ys[order], xs[order]
    radius = math.sqrt(ys.size * step * step / n) * 1.1
    while True:
        cell = max(radius, 1.0)
        grid: dict[tuple[int, int], list[int]] = {}
        chosen: list[int] = []
        r2 = radius * radius
        for i in range(ys.size):
            y, x = int(ys[i]), int(xs[i])
            gy, gx = int(y // cell), int(x // cell)
            ok = True
            for ny in (gy - 1, gy, gy + 1):
                for nx in (gx - 1, gx, gx + 1):
                    for j in grid.get((ny, nx), ()):
                        dy, dx = ys[j] - y, xs[j] - x
                        if dy * dy + dx * dx < r2:
                            ok = False
                            break
                    if not ok:
                        break
                if not ok:
                    break
            if ok:
                grid.setdefault((gy, gx), []).append(i)
                chosen.append(i)
                if len(chosen) >= n:
                    break
        if len(chosen) >= n or radius < 2.0:
            return [(int(ys[i]), int(xs[i])) for i in chosen]
        radius *= 0.85


def _march(
    field: np.ndarray,
    y: float,
    x: float,
    dy: float,
    dx: float,
    stop: Callable[[float], bool],
    max_steps: int,
) -> int:
    """Steps taken from (y, x) along (dy, dx) before ``stop(value)`` or the scene edge."""
    h, w = field.shape
    for k in range(1, max_steps + 1):
        r, c = round(y + k * dy), round(x + k * dx)
        if not (0 <= r < h and 0 <= c < w) or stop(field[r, c]):
            return k - 1
    return max_steps


def _landslides(
    rngs: dict[str, np.random.Generator],
    cfg: SyntheticConfig,
    z0: np.ndarray,
    depth: np.ndarray,
    nodata: np.ndarray,
) -> _Slides:
    """Place ``n_landslides`` landslides at steep walls, running out downslope onto floors.

    Shapes follow Sec. 3's description of MMLSv2's variety: compact small slumps, elongated
    and curved tongues, large lobate fans, and fragmented multi-part bodies.
    """
    h, w = cfg.height, cfg.width
    r = rngs["slides"]
    zs = quantize(ndimage.gaussian_filter(z0, 3.0), 16)
    gy, gx = np.gradient(zs, cfg.pixel_size_m)
    tan_s = quantize(np.sqrt(gx * gx + gy * gy))
    tan_wall, tan_flat = 0.33, 0.09  # about 18 and 5 degrees
    wall = (tan_s > tan_wall) & ~ndimage.binary_dilation(
        nodata, iterations=8
    )  # seeds: imaged walls
    seeds = _pick_seeds(r, wall, cfg.n_landslides)
    hummock = fbm(rngs["hummock"], (h, w), 7.0, 2)
    out = _Slides(
        mask=np.zeros((h, w), bool),
        dz=np.zeros((h, w)),
        deposit=np.zeros((h, w)),
        scar=np.zeros((h, w)),
        groove=np.zeros((h, w)),
    )
    for sy, sx in seeds:
        gxs, gys = -gx[sy, sx], -gy[sy, sx]
        norm = math.sqrt(gxs * gxs + gys * gys)
        if norm == 0.0:
            continue
        dx, dy = round(gxs / norm * QUANT) / QUANT, round(gys / norm * QUANT) / QUANT
        seed_tan = tan_s[sy, sx]
        up = _march(tan_s, sy, sx, -dy, -dx, lambda v, s=seed_tan: v < 0.35 * s, 200)
        down = _march(tan_s, sy, sx, dy, dx, lambda v: v < tan_flat, 200)
        cy, cx = sy - up * dy, sx - up * dx  # crest
        fy, fx = sy + down * dy, sx + down * dx  # wall foot
        z_foot = zs[min(h - 1, max(0, round(fy))), min(w - 1, max(0, round(fx)))]
        floor = _march(zs, fy, fx, dy, dx, lambda v, zf=z_foot: v > zf + 120.0, 600)
        wall_len = float(up + down)
        if wall_len < 4:
            continue
        east = sx / w
        mult = 1.0 - 0.3 * east  # smaller slides eastwards (Table 1: sparser isolated set)
        kind = r.random()
        if kind < 0.2:  # small slump / rockfall, mostly on the wall
            h0 = r.uniform(5.0, 14.0)
            spread = r.uniform(1.0, 1.6)
            length = wall_len * r.uniform(0.5, 1.05) + min(floor, 20) * r.uniform(0.0, 0.8)
            thick = r.uniform(30.0, 80.0)
        elif kind < 0.62:  # medium tongue, often elongated and curved
            h0 = r.uniform(18.0, 48.0)
            spread = r.uniform(1.1, 2.0)
            length = wall_len + floor * r.uniform(0.25, 0.7)
            thick = r.uniform(60.0, 180.0)
        else:  # large lobate fan
            h0 = r.uniform(48.0, 100.0)
            spread = r.uniform(1.3, 2.5)
            length = wall_len + floor * r.uniform(0.55, 0.95)
            thick = r.uniform(120.0, 300.0)
        length = max(length, 6.0)
        h1 = min(h0 * mult * spread, 0.6 * length + 6.0, 220.0)
        h0 = min(h0 * mult, h1)
        bend = r.uniform(-0.3, 0.3) if length > 3 * h1 else r.uniform(-0.1, 0.1)
        fragmented = r.random() < 0.35
        u_dep = min(wall_len, 0.55 * length)  # depletion above, deposit below
        # local frame: u along the flow from the crest, v across
        ext = h1 * 1.3 + abs(bend) * length + 4.0
        ys_c = (cy, cy + length * dy)
        xs_c = (cx, cx + length * dx)
        r0, r1 = max(0, int(min(ys_c) - ext)), min(h, int(max(ys_c) + ext) + 1)
        c0, c1 = max(0, int(min(xs_c) - ext)), min(w, int(max(xs_c) + ext) + 1)
        if r1 <= r0 or c1 <= c0:
            continue
        py = np.arange(r0, r1, dtype=np.float64)[:, None] - cy
        px = np.arange(c0, c1, dtype=np.float64)[None, :] - cx
        u = px * dx + py * dy
        v = py * dx - px * dy
        v = v - bend * u * u / length
        n_u = max(8, int(length) + 2)
        edge = noise1d(r, n_u + 2, max(4.0, h0 / 1.5))
        ui = np.clip(np.round(u), 0, n_u).astype(np.intp)
        hprof = h0 + (h1 - h0) * _smoothstep(u / (0.6 * length))
        cap = min(h1, 0.45 * length)
        tc = np.clip((u - (length - cap)) / cap, 0.0, 1.0)
        hprof = hprof * np.sqrt(np.maximum(0.0, 1.0 - tc * tc)) * (1.0 + 0.2 * edge[ui])
        n_v = int(2 * h1 + 8)
        lobes = noise1d(r, n_v + 2, max(5.0, h1 / 2.0))
        vi = np.clip(np.round(v + h1 + 4), 0, n_v).astype(np.intp)
        toe = length * (1.0 - 0.08 * (1.0 + lobes[vi]))
        vn = v / np.maximum(h0, 1.0)
        head = -0.3 * h0 * np.sqrt(np.maximum(0.0, 1.0 - vn * vn))
        inside = (u >= head) & (u <= toe) & (np.abs(v) <= hprof)
        # below the headscarp a landslide stays inside the canyon (no spreading onto plateaus)
        inside &= (u < 0.1 * length) | (depth[r0:r1, c0:c1] > 40.0)
        if fragmented:
            frag = noise2d(r, inside.shape, max(4.0, h0 / 2.0))
            inside &= quantize(frag) > -0.3
        lat = np.where(inside, 1.0 - (v / np.maximum(hprof, 1e-6)) ** 2, 0.0)
        lat = np.clip(lat, 0.0, 1.0)
        tau_s = np.clip(u / max(u_dep, 1.0), 0.0, 1.0)
        scar = np.where(inside & (u < u_dep), lat, 0.0)
        t2 = np.clip((u - u_dep) / max(length - u_dep, 1.0), 0.0, 1.0)
        dep_w = np.where(inside & (u >= u_dep), np.minimum(1.0, 4.0 * t2 + 0.2) * lat, 0.0)
        dep_w = dep_w * (1.0 - 0.5 * t2)
        soft = 0.5 * (dep_w + np.sqrt(dep_w))
        hum = hummock[r0:r1, c0:c1]
        period = r.uniform(4.0, 8.0)
        grooves = _triangle(v / period)
        dzl = -0.5 * thick * scar * 4.0 * tau_s * (1.0 - tau_s)
        dzl += thick * soft * (1.0 + 0.45 * hum) + 0.12 * thick * soft * grooves
        win = (slice(r0, r1), slice(c0, c1))
        out.mask[win] |= inside
        out.dz[win] += dzl
        np.maximum(
            out.deposit[win],
            np.where(inside & (u >= u_dep), 0.4 + 0.6 * soft, 0.0),
            out=out.deposit[win],
        )
        np.maximum(out.scar[win], scar, out=out.scar[win])
        out.groove[win] = np.where(dep_w > 0, grooves, out.groove[win])
    return out


# --------------------------------------------------------------------------------------------
# Nodata and the unmapped patch
# --------------------------------------------------------------------------------------------
def _nodata_mask(rng: np.random.Generator, cfg: SyntheticConfig) -> np.ndarray:
    """Irregular gaps plus one slanted strip from the top edge; share about nodata_fraction."""
    h, w = cfg.height, cfg.width
    mask = np.zeros((h, w), bool)
    target = round(cfg.nodata_fraction * h * w)
    if target == 0:
        return mask
    # a slanted strip (a missing image swath) down from the top edge
    strip_w = max(6, round(0.008 * w))
    strip_len = round(h * rng.uniform(0.25, 0.4))
    x_top = rng.uniform(0.1, 0.9) * w
    slant = rng.uniform(-0.15, 0.15)
    yy = np.arange(strip_len, dtype=np.float64)[:, None]
    xx = np.arange(w, dtype=np.float64)[None, :]
    strip = np.abs(xx - (x_top + slant * yy)) < strip_w / 2
    mask[:strip_len] = strip
    left = target - int(mask.sum())
    if left <= 0:
        return mask
    # irregular blobs: a max of radial bumps plus noise, thresholded to the remaining count
    n_blobs = int(np.clip(round(left / 50000), 1, 6))
    ys = rng.uniform(0.05, 0.95, n_blobs) * h
    xs = rng.uniform(0.05, 0.95, n_blobs) * w
    radii = math.sqrt(left / n_blobs / math.pi) * rng.uniform(0.7, 1.3, n_blobs)
    y = np.arange(h, dtype=np.float64)[:, None]
    x = np.arange(w, dtype=np.float64)[None, :]
    field = np.full((h, w), -1.0)
    for by, bx, br in zip(ys, xs, radii, strict=True):
        dy2, dx2 = (y - by) ** 2, (x - bx) ** 2
        np.maximum(field, 1.0 - np.sqrt(dy2 + dx2) / (2.0 * br), out=field)
    field += 0.12 * fbm(rng, (h, w), max(8.0, float(np.mean(radii)) / 3.0), 3)
    q = np.round(field * QUANT).astype(np.int64)
    q[mask] = np.iinfo(np.int64).min
    thr = np.partition(q.ravel(), q.size - left)[q.size - left]
    mask |= q >= thr
    return mask


def _unmapped_patch(
    rng: np.random.Generator, cfg: SyntheticConfig, slides: np.ndarray, nodata: np.ndarray
) -> np.ndarray:
    """A small square the mappers left unmapped (255), placed where there is no landslide."""
    h, w = cfg.height, cfg.width
    out = np.zeros((h, w), bool)
    s = cfg.unmapped_patch_px
    if s == 0:
        return out
    for _ in range(200):
        r0, c0 = int(rng.integers(0, h - s)), int(rng.integers(0, w - s))
        win = (slice(r0, r0 + s), slice(c0, c0 + s))
        if not slides[win].any() and not nodata[win].any():
            out[win] = True
            return out
    return out


# --------------------------------------------------------------------------------------------
# Bands
# --------------------------------------------------------------------------------------------
def _finish(x: np.ndarray, q: int = QUANT) -> np.ndarray:
    return quantize(np.clip(x, 0.0, 1.0), q)


def generate_scene(cfg: SyntheticConfig) -> SyntheticScene:
    """Generate the scene for ``cfg`` (pure and deterministic: same config, same arrays)."""
    h, w = cfg.height, cfg.width
    names = ["terrain", "side", "slides", "hummock", "texture", "ti", "color", "nodata", "patch"]
    streams = np.random.SeedSequence(cfg.seed).spawn(len(names))
    rngs = {n: np.random.default_rng(s) for n, s in zip(names, streams, strict=True)}

    z0, depth = _base_terrain(rngs, cfg)
    nodata = _nodata_mask(rngs["nodata"], cfg)
    slides = _landslides(rngs, cfg, z0, depth, nodata)

    bands = np.empty((len(BAND_NAMES), h, w), np.float32)
    red_i, green_i, blue_i, dem_i, slope_i, ti_i, gray_i = range(len(BAND_NAMES))

    # DEM (Sec. 2.1: MOLA/HRSC blend): pre-slide terrain plus scars and deposits
    z_range = cfg.dem_max_m - cfg.dem_min_m
    dem = _finish((z0 + slides.dz - cfg.dem_min_m) / z_range, DEM_QUANT)
    del z0
    slides.dz = np.empty(0)
    bands[dem_i] = dem
    # slope derived from the DEM with the pixel size (ArcGIS-like), degrees / 90
    bands[slope_i] = _finish(slope_from_dem(dem, cfg))
    z = dem * z_range + cfg.dem_min_m
    del dem

    # terrain units: plateau (0) ... floor (1); wall steepness
    gy, gx = np.gradient(z, cfg.pixel_size_m)
    steep = np.clip(np.sqrt(gx * gx + gy * gy) / 0.8, 0.0, 1.0)
    canyon = np.clip(depth / 2000.0, 0.0, 1.0)
    del depth
    dep = ndimage.gaussian_filter(slides.deposit, 1.0)
    scar = ndimage.gaussian_filter(slides.scar, 1.0)
    slides.deposit = slides.scar = np.empty(0)

    # hillshade, sun from the north-west, 30 degrees above the horizon
    shade = np.clip((0.612 * gx + 0.612 * gy + 0.5) / np.sqrt(1.0 + gx * gx + gy * gy), 0.0, 1.0)
    del gx, gy

    # albedo: dusty plateau, layered walls, darker floors with dune patches
    tex = rngs["texture"]
    albedo = 0.62 + 0.08 * fbm(tex, (h, w), 150.0, 2) - 0.1 * canyon
    albedo += 0.05 * steep * _triangle((z + 40.0 * noise2d(tex, (h, w), 30.0)) / 380.0)
    del z
    dunes = np.clip(noise2d(tex, (h, w), 18.0) - 0.3, 0.0, 1.0)
    albedo -= 0.1 * dunes * canyon * (1.0 - steep)
    del dunes
    fine = 0.5 * fbm(tex, (h, w), 3.0, 2) + 0.5 * tex.standard_normal((h, w))
    smooth_ls = np.clip(dep + 0.5 * scar, 0.0, 1.0)
    albedo += (0.05 * (1.0 - 0.65 * smooth_ls)) * fine  # deposits: smoother texture
    del fine, smooth_ls
    albedo += 0.05 * dep + 0.025 * scar + 0.02 * dep * slides.groove  # brighter, grooved
    slides.groove = np.empty(0)
    # grayscale (CTX-like, Sec. 2.1): shaded albedo, sharp
    gray = 0.08 + 0.95 * albedo * (0.35 + 0.65 * shade)
    bands[gray_i] = _finish(gray + 0.02 * tex.standard_normal((h, w)))
    del gray

    # RGB (Viking colour mosaic, coarser): blurred luminance with regional colour variation
    col = rngs["color"]
    lum = ndimage.gaussian_filter(albedo * (0.4 + 0.6 * shade), 1.5)
    del albedo, shade
    hue = 0.06 * fbm(col, (h, w), 250.0, 2) + 0.03 * canyon
    fresh = ndimage.gaussian_filter(dep + scar, 2.0)
    colour = (
        (red_i, 0.05 + 0.78 * lum * (1.0 + hue) - 0.015 * fresh),
        (green_i, 0.02 + 0.56 * lum * (1.0 - 0.5 * hue) + 0.01 * fresh),
        (blue_i, 0.02 + 0.5 * lum * (1.0 - hue) + 0.015 * fresh),
    )
    for i, c in colour:
        bands[i] = _finish(c + 0.025 * col.standard_normal((h, w)))
    del lum, hue, fresh, colour

    # thermal inertia (THEMIS-derived, Sec. 2.1): dust low, rocky walls high, deposits lower
    ti_rng = rngs["ti"]
    ti = 0.42 + 0.1 * canyon + 0.22 * steep + 0.08 * fbm(ti_rng, (h, w), 200.0, 2)
    ti += -0.075 * dep - 0.04 * scar
    del canyon, steep, dep, scar
    ti = ndimage.gaussian_filter(ti, 1.2)
    bands[ti_i] = _finish(ti + 0.04 * ti_rng.standard_normal((h, w)))
    del ti

    unmapped = _unmapped_patch(rngs["patch"], cfg, slides.mask, nodata)
    truth = (slides.mask & ~nodata & ~unmapped).astype(np.uint8)

    bands[:, nodata] = NODATA

    inv = np.full(cfg.inventory_shape, INV_NODATA, np.uint8)
    dx, dy = cfg.inventory_shift_px
    classes = np.where(truth == 1, INV_LANDSLIDE, INV_BACKGROUND).astype(np.uint8)
    classes[nodata | unmapped] = INV_NODATA
    inv[dy : dy + h, dx : dx + w] = classes
    return SyntheticScene(
        config=cfg,
        bands=bands,
        truth=truth,
        nodata=nodata,
        inventory=inv,
        transform=cfg.transform,
        inventory_transform=cfg.inventory_transform,
        crs=cfg.crs,
    )


# --------------------------------------------------------------------------------------------
# Writing and summary
# --------------------------------------------------------------------------------------------
def _profile(
    width: int, height: int, count: int, dtype: str, crs: str, transform: Affine, nodata: float
) -> dict[str, Any]:
    return {
        "driver": "GTiff",
        "width": width,
        "height": height,
        "count": count,
        "dtype": dtype,
        "crs": CRS.from_user_input(crs),
        "transform": transform,
        "nodata": nodata,
        "tiled": True,
        "blockxsize": BLOCK,
        "blockysize": BLOCK,
        "compress": "deflate",
        "predictor": 3 if dtype == "float32" else 2,
        "interleave": "pixel",
    }


def write_scene(scene: SyntheticScene, composite_path: PathLike, inventory_path: PathLike) -> None:
    """Write the composite (7 x float32) and the inventory (uint8) GeoTIFFs atomically."""
    count, h, w = scene.bands.shape
    prof = _profile(w, h, count, "float32", scene.crs, scene.transform, NODATA)
    with atomic_path(composite_path) as tmp, rasterio.open(tmp, "w", **prof) as dst:
        dst.write(scene.bands)
        for i, name in enumerate(BAND_NAMES, start=1):
            dst.set_band_description(i, name)
    ih, iw = scene.inventory.shape
    prof = _profile(iw, ih, 1, "uint8", scene.crs, scene.inventory_transform, INV_NODATA)
    with atomic_path(inventory_path) as tmp, rasterio.open(tmp, "w", **prof) as dst:
        dst.write(scene.inventory, 1)
        dst.set_band_description(1, "landslide_inventory")


def grid_cell_stats(truth: np.ndarray, nodata: np.ndarray, size: int = 128) -> dict[str, Any]:
    """Stats of the full ``size`` cells (stride ``size`` from the top-left corner).

    ``kept``: cells with at least one landslide pixel and no nodata pixel (what the tile stage
    keeps), with their foreground ratios (Eq. 1).
    """
    h, w = truth.shape
    ny, nx = h // size, w // size
    t = truth[: ny * size, : nx * size].reshape(ny, size, nx, size)
    n = nodata[: ny * size, : nx * size].reshape(ny, size, nx, size)
    fg = t.sum(axis=(1, 3)) / float(size * size)
    bad = n.any(axis=(1, 3))
    kept = (fg > 0) & ~bad
    ratios = fg[kept]
    return {
        "cells": int(ny * nx),
        "kept": int(kept.sum()),
        "with_nodata": int(bad.sum()),
        "mean_fg_ratio": float(ratios.mean()) if ratios.size else 0.0,
        "min_fg_ratio": float(ratios.min()) if ratios.size else 0.0,
        "max_fg_ratio": float(ratios.max()) if ratios.size else 0.0,
    }


def summary(scene: SyntheticScene) -> str:
    """One line describing the scene (the stage prints it)."""
    cfg = scene.config
    st = grid_cell_stats(scene.truth, scene.nodata)
    return (
        f"synthetic_scene: {cfg.width}x{cfg.height} px, seed {cfg.seed}, "
        f"landslide share {scene.truth.mean():.3f}, nodata share {scene.nodata.mean():.3f}, "
        f"128-px cells with landslides and no nodata {st['kept']}/{st['cells']} "
        f"(mean fg ratio {st['mean_fg_ratio']:.3f})"
    )


__all__ = [
    "BLOCK",
    "MARS_EQC",
    "NODATA",
    "QUANT",
    "SyntheticConfig",
    "SyntheticScene",
    "generate_scene",
    "grid_cell_stats",
    "slope_from_dem",
    "summary",
    "write_scene",
]
