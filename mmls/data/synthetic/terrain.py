"""Pre-landslide terrain: a tilted plateau cut by east-west troughs and their side canyons.

Valles Marineris in miniature (Sec. 2.1): chasmata with asymmetric, spurred walls (a steep
upper cliff over a talus apron), tributary canyons reaching into the plateau, and rough floors.
The walls are where :mod:`mmls.data.synthetic.landslides` seeds its landslides. The slope band
is derived from the DEM here too, the way a GIS slope tool does it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mmls.data.synthetic.config import SLOPE_SCALE_DEG, SyntheticConfig
from mmls.data.synthetic.noise import fbm, noise1d, quantize, smoothstep


@dataclass
class Terrain:
    """The pre-landslide terrain. Mutable so that a consumer can release an array it is done
    with (set it to ``np.empty(0)``): the scene can reach 60 Mpx."""

    z0: np.ndarray  # (H, W) float64 elevation (m), quantized to 1/16 m
    depth: np.ndarray  # (H, W) float64 canyon depth below the plateau (m)


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


def _canyon_depth(t_wall: np.ndarray, depth_m: np.ndarray | float) -> np.ndarray:
    """Depth below the plateau given the wall coordinate (0 = wall foot, 1 = crest).

    A steep upper cliff over a gentler talus apron: mix of smoothstep and a linear ramp.
    """
    t = np.clip(t_wall, 0.0, 1.0)
    frac = 1.0 - (0.75 * smoothstep(t) + 0.25 * t)
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


def base_terrain(
    rng: np.random.Generator, side_rng: np.random.Generator, cfg: SyntheticConfig
) -> Terrain:
    """Pre-landslide elevation and canyon depth: plateau, troughs, side canyons, rough floors.

    ``rng`` draws the plateau, the troughs and the floor roughness; ``side_rng`` the side
    canyons, so that their count can change without moving the other draws.
    """
    h, w = cfg.height, cfg.width
    x = np.arange(w, dtype=np.float64)[None, :] / w
    y = np.arange(h, dtype=np.float64)[:, None] / h
    plateau = 2200.0 - 700.0 * x + 250.0 * y + 450.0 * fbm(rng, (h, w), 420.0, 2)
    plateau += 90.0 * fbm(rng, (h, w), 40.0, 3)
    depth, info = _troughs(rng, cfg)
    _side_canyons(side_rng, cfg, depth, info)
    floor_rough = 60.0 * fbm(rng, (h, w), 60.0, 3)
    deep = np.clip(depth / 2500.0, 0.0, 1.0)
    z = plateau - depth + floor_rough * deep
    return Terrain(z0=quantize(z, 16), depth=depth)
