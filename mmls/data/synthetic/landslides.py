"""Landslides: seeded on steep canyon walls, shaped in a local flow frame, run out onto floors.

Shapes follow Sec. 3's description of MMLSv2's variety: compact small slumps, elongated and
curved tongues, large lobate fans, and fragmented multi-part bodies. Each landslide changes the
DEM (a depletion scar above, a hummocky, grooved deposit below) and leaves weights that the
bands use for its signature (:mod:`mmls.data.synthetic.imagery`).

Determinism: all of one scene's landslides draw from one stream, one landslide after the other,
in a fixed order (shape, outline noise, fragmentation, grooves); the flow direction is
normalised with ``sqrt`` and snapped to the quantization grid.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from mmls.data.synthetic.config import QUANT, SyntheticConfig
from mmls.data.synthetic.noise import fbm, noise1d, noise2d, quantize, smoothstep, triangle
from mmls.data.synthetic.terrain import Terrain

#: Rise over run of a seed wall (about 18 degrees) and of the flat floor (about 5 degrees).
_TAN_WALL, _TAN_FLAT = 0.33, 0.09


@dataclass
class Slides:
    """All landslides of a scene. Mutable so that the band renderer can release each array
    once it is done with it (set it to ``np.empty(0)``)."""

    mask: np.ndarray  # bool, landslide footprint (before nodata)
    dz: np.ndarray  # DEM change (m)
    deposit: np.ndarray  # 0..1 deposit weight (run-out / accumulation zone)
    scar: np.ndarray  # 0..1 depletion-zone weight
    groove: np.ndarray  # -1..1 flow-parallel groove pattern inside deposits


@dataclass(frozen=True)
class _Ground:
    """The smoothed pre-landslide terrain that walls, flow directions and run-outs are read on."""

    zs: np.ndarray  # elevation (m), Gaussian-smoothed and quantized to 1/16 m
    gy: np.ndarray  # d zs / dy (rise over run)
    gx: np.ndarray  # d zs / dx
    tan_s: np.ndarray  # |grad zs|, quantized


@dataclass(frozen=True)
class _Transect:
    """A seed's line down the wall: unit flow direction, crest, wall and floor lengths (px)."""

    dy: float
    dx: float
    cy: float  # crest (where the headscarp starts)
    cx: float
    wall_len: float  # crest to wall foot
    floor: int  # wall foot to where the floor rises again (or the scene edge)


@dataclass(frozen=True)
class _Shape:
    """A landslide's drawn size and style in its flow frame (u along the flow, v across)."""

    h0: float  # half-width at the crest
    h1: float  # half-width of the run-out
    length: float  # crest to toe
    thick: float  # deposit thickness scale (m)
    bend: float  # curvature of the flow axis
    fragmented: bool
    u_dep: float  # depletion above, deposit below this u


@dataclass(frozen=True)
class _Footprint:
    """A landslide's outline on its window of the scene, in flow-frame coordinates."""

    win: tuple[slice, slice]
    u: np.ndarray  # along the flow from the crest
    v: np.ndarray  # across the (bent) flow axis
    inside: np.ndarray  # bool footprint
    hprof: np.ndarray  # local half-width


def _ground(z0: np.ndarray, pixel_size_m: float) -> _Ground:
    """Smooth and quantize the terrain before reading slopes on it (robust wall detection)."""
    zs = quantize(ndimage.gaussian_filter(z0, 3.0), 16)
    gy, gx = np.gradient(zs, pixel_size_m)
    tan_s = quantize(np.sqrt(gx * gx + gy * gy))
    return _Ground(zs=zs, gy=gy, gx=gx, tan_s=tan_s)


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


def _transect(g: _Ground, sy: int, sx: int) -> _Transect | None:
    """Walk from a seed up to the crest, down to the wall foot and across the floor.

    None where the seed has no downslope direction or the wall is under 4 px long.
    """
    h, w = g.zs.shape
    gxs, gys = -g.gx[sy, sx], -g.gy[sy, sx]
    norm = math.sqrt(gxs * gxs + gys * gys)
    if norm == 0.0:
        return None
    dx, dy = round(gxs / norm * QUANT) / QUANT, round(gys / norm * QUANT) / QUANT
    seed_tan = g.tan_s[sy, sx]
    up = _march(g.tan_s, sy, sx, -dy, -dx, lambda v, s=seed_tan: v < 0.35 * s, 200)
    down = _march(g.tan_s, sy, sx, dy, dx, lambda v: v < _TAN_FLAT, 200)
    cy, cx = sy - up * dy, sx - up * dx  # crest
    fy, fx = sy + down * dy, sx + down * dx  # wall foot
    z_foot = g.zs[min(h - 1, max(0, round(fy))), min(w - 1, max(0, round(fx)))]
    floor = _march(g.zs, fy, fx, dy, dx, lambda v, zf=z_foot: v > zf + 120.0, 600)
    wall_len = float(up + down)
    if wall_len < 4:
        return None
    return _Transect(dy=dy, dx=dx, cy=cy, cx=cx, wall_len=wall_len, floor=floor)


def _draw_shape(r: np.random.Generator, t: _Transect, mult: float) -> _Shape:
    """Draw a landslide's kind and size for its wall; ``mult`` scales its width."""
    wall_len, floor = t.wall_len, t.floor
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
    return _Shape(
        h0=h0, h1=h1, length=length, thick=thick, bend=bend, fragmented=fragmented, u_dep=u_dep
    )


def _footprint(
    r: np.random.Generator, t: _Transect, s: _Shape, depth: np.ndarray
) -> _Footprint | None:
    """Outline a landslide in its flow frame: noisy sides, lobate toe, rounded headscarp.

    None (before any draw) where its window misses the scene.
    """
    h, w = depth.shape
    h0, h1, length = s.h0, s.h1, s.length
    ext = h1 * 1.3 + abs(s.bend) * length + 4.0
    ys_c = (t.cy, t.cy + length * t.dy)
    xs_c = (t.cx, t.cx + length * t.dx)
    r0, r1 = max(0, int(min(ys_c) - ext)), min(h, int(max(ys_c) + ext) + 1)
    c0, c1 = max(0, int(min(xs_c) - ext)), min(w, int(max(xs_c) + ext) + 1)
    if r1 <= r0 or c1 <= c0:
        return None
    py = np.arange(r0, r1, dtype=np.float64)[:, None] - t.cy
    px = np.arange(c0, c1, dtype=np.float64)[None, :] - t.cx
    u = px * t.dx + py * t.dy
    v = py * t.dx - px * t.dy
    v = v - s.bend * u * u / length
    n_u = max(8, int(length) + 2)
    edge = noise1d(r, n_u + 2, max(4.0, h0 / 1.5))
    ui = np.clip(np.round(u), 0, n_u).astype(np.intp)
    hprof = h0 + (h1 - h0) * smoothstep(u / (0.6 * length))
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
    if s.fragmented:
        frag = noise2d(r, inside.shape, max(4.0, h0 / 2.0))
        inside &= quantize(frag) > -0.3
    return _Footprint(win=(slice(r0, r1), slice(c0, c1)), u=u, v=v, inside=inside, hprof=hprof)


def _imprint(
    out: Slides, r: np.random.Generator, f: _Footprint, s: _Shape, hummock: np.ndarray
) -> None:
    """Add one landslide to ``out``: scar and hummocky, grooved deposit in the DEM, weights."""
    u, v, inside, win = f.u, f.v, f.inside, f.win
    u_dep, length, thick = s.u_dep, s.length, s.thick
    lat = np.where(inside, 1.0 - (v / np.maximum(f.hprof, 1e-6)) ** 2, 0.0)
    lat = np.clip(lat, 0.0, 1.0)
    tau_s = np.clip(u / max(u_dep, 1.0), 0.0, 1.0)
    scar = np.where(inside & (u < u_dep), lat, 0.0)
    t2 = np.clip((u - u_dep) / max(length - u_dep, 1.0), 0.0, 1.0)
    dep_w = np.where(inside & (u >= u_dep), np.minimum(1.0, 4.0 * t2 + 0.2) * lat, 0.0)
    dep_w = dep_w * (1.0 - 0.5 * t2)
    soft = 0.5 * (dep_w + np.sqrt(dep_w))
    hum = hummock[win]
    period = r.uniform(4.0, 8.0)
    grooves = triangle(v / period)
    dzl = -0.5 * thick * scar * 4.0 * tau_s * (1.0 - tau_s)
    dzl += thick * soft * (1.0 + 0.45 * hum) + 0.12 * thick * soft * grooves
    out.mask[win] |= inside
    out.dz[win] += dzl
    np.maximum(
        out.deposit[win],
        np.where(inside & (u >= u_dep), 0.4 + 0.6 * soft, 0.0),
        out=out.deposit[win],
    )
    np.maximum(out.scar[win], scar, out=out.scar[win])
    out.groove[win] = np.where(dep_w > 0, grooves, out.groove[win])


def place_landslides(
    rng: np.random.Generator,
    hummock_rng: np.random.Generator,
    cfg: SyntheticConfig,
    terrain: Terrain,
    nodata: np.ndarray,
) -> Slides:
    """Place ``n_landslides`` landslides at steep, imaged walls, running out onto the floors.

    ``rng`` draws the seeds and every landslide's shape; ``hummock_rng`` the deposits' shared
    hummock texture. Landslides get smaller eastwards (Table 1: sparser isolated set).
    """
    h, w = cfg.height, cfg.width
    g = _ground(terrain.z0, cfg.pixel_size_m)
    wall = (g.tan_s > _TAN_WALL) & ~ndimage.binary_dilation(nodata, iterations=8)
    seeds = _pick_seeds(rng, wall, cfg.n_landslides)
    hummock = fbm(hummock_rng, (h, w), 7.0, 2)
    out = Slides(
        mask=np.zeros((h, w), bool),
        dz=np.zeros((h, w)),
        deposit=np.zeros((h, w)),
        scar=np.zeros((h, w)),
        groove=np.zeros((h, w)),
    )
    for sy, sx in seeds:
        t = _transect(g, sy, sx)
        if t is None:
            continue
        east = sx / w
        shape = _draw_shape(rng, t, mult=1.0 - 0.3 * east)
        f = _footprint(rng, t, shape, terrain.depth)
        if f is not None:
            _imprint(out, rng, f, shape, hummock)
    return out
