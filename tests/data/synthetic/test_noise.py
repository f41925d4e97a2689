"""The noise primitives: on the fixed grid, deterministic, interpolating their knots."""

from __future__ import annotations

import numpy as np

from mmls.data.synthetic.config import QUANT
from mmls.data.synthetic.noise import fbm, noise1d, noise2d, quantize, smoothstep, triangle


def test_quantize_rounds_to_the_grid() -> None:
    x = np.random.default_rng(0).uniform(-3.0, 3.0, 1000)
    q = quantize(x)
    np.testing.assert_array_equal(q * QUANT, np.round(q * QUANT))
    assert np.abs(q - x).max() <= 0.5 / QUANT
    np.testing.assert_array_equal(quantize(x, 16) * 16, np.round(x * 16))


def test_noise_is_deterministic_per_seed() -> None:
    for make in (
        lambda rng: noise1d(rng, 300, 7.0),
        lambda rng: noise2d(rng, (40, 50), 6.0),
        lambda rng: fbm(rng, (40, 50), 12.0, 3),
    ):
        a, b = make(np.random.default_rng(5)), make(np.random.default_rng(5))
        np.testing.assert_array_equal(a, b)
        assert not np.array_equal(a, make(np.random.default_rng(6)))


def test_noise1d_interpolates_its_knots() -> None:
    """Samples on the knots are the knots; in between, convex mixes of two of them."""
    n, scale = 200, 8.0
    knots = np.random.default_rng(3).uniform(-1.0, 1.0, int(n / scale) + 2)
    values = noise1d(np.random.default_rng(3), n, scale)
    np.testing.assert_array_equal(values[::8], knots[: len(values[::8])])
    assert values.min() >= -1.0 and values.max() <= 1.0


def test_shaping_functions() -> None:
    t = np.array([-1.0, 0.0, 0.5, 1.0, 2.0])
    np.testing.assert_array_equal(smoothstep(t), [0.0, 0.0, 0.5, 1.0, 1.0])
    x = np.linspace(-2.0, 2.0, 401)
    tri = triangle(x)
    assert tri.min() == -1.0 and tri.max() == 1.0
    np.testing.assert_allclose(triangle(x + 1.0), tri, atol=1e-12)  # period 1
