"""Deterministic noise and shaping primitives shared by terrain, landslides, masks and bands.

Every random draw comes from the ``numpy.random.Generator`` passed in, in a fixed order, and
noise is interpolated with polynomial (smoothstep) weights rather than transcendental functions,
so that a mask thresholded on it cannot flip with an ulp of difference between CPUs;
:func:`quantize` then snaps values to a fixed grid before anything else uses them.
"""

from __future__ import annotations

import numpy as np

from mmls.data.synthetic.config import QUANT


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


def smoothstep(t: np.ndarray) -> np.ndarray:
    """Cubic 0 -> 1 ramp over t in [0, 1] (clipped outside): smooth profiles without trig."""
    t = np.clip(t, 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


def triangle(x: np.ndarray) -> np.ndarray:
    """Periodic triangle wave in [-1, 1] with period 1 (a trig-free stand-in for cos)."""
    return 4.0 * np.abs(x - np.floor(x + 0.5)) - 1.0
