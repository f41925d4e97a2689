"""Blending of overlapping windows: the weights are a partition of unity at the regular stride,
and any split of the window rows gives the map of one pass, bit for bit."""

from __future__ import annotations

import numpy as np
import pytest
import rasterio
import torch
from rasterio.windows import Window

from mmls.inference.blending import blend_weights, blended_rows
from mmls.inference.windows import RowPlan
from tests.inference.scene_helpers import SIZE, conv_model, identity_predictor
from tests.rasters import write_composite


def test_blend_weights_are_a_partition_of_unity_at_the_regular_stride() -> None:
    for overlap in (0, 16, 32, 64):
        w = blend_weights(SIZE, overlap)[0] / blend_weights(SIZE, overlap)[0].max()
        assert (w > 0).all()
        stride = SIZE - overlap
        total = np.zeros(4 * SIZE)
        for k in range(3):
            total[k * stride : k * stride + SIZE] += w
        np.testing.assert_allclose(total[SIZE : 2 * stride], 1.0, atol=1e-6)


@pytest.mark.parametrize("overlap", [0, 32, 100])
def test_any_split_of_the_window_rows_is_one_pass_bit_for_bit(tmp_path, overlap: int) -> None:
    torch.set_num_threads(1)
    write_composite(tmp_path / "c.tif", 300, 520, seed=4, nodata_box=(0, 150, 0, 140))
    predictor = identity_predictor(conv_model())
    plan = RowPlan.of(Window(3, 5, 290, 500), SIZE, overlap)
    n = len(plan.ys)
    with rasterio.open(tmp_path / "c.tif") as src:
        whole = list(blended_rows(predictor, src, range(1, 8), plan, 4, 0, n))
        split = [
            r
            for a, b in ((0, 1), (1, 3), (3, n))
            for r in blended_rows(predictor, src, range(1, 8), plan, 4, a, b)
        ]
    assert len(whole) == len(split) == n
    prob = np.concatenate([r.prob for r in whole])
    assert prob.shape == (plan.height, plan.width)
    assert np.concatenate([r.prob for r in split]).tobytes() == prob.tobytes()
    valid = np.concatenate([r.valid for r in whole])
    np.testing.assert_array_equal(np.concatenate([r.valid for r in split]), valid)
    assert (~valid).any() and valid.any()
    assert sum(r.n_skipped for r in whole) >= 1  # the top-left window is all nodata
