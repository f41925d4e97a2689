"""The nodata gaps and the unmapped patch, on their own (the scene-level checks are elsewhere)."""

from __future__ import annotations

import numpy as np

from mmls.data.synthetic.masks import nodata_mask, unmapped_patch
from tests.data.synthetic.tiny import TINY, tiny


def test_nodata_mask_share_and_strip() -> None:
    mask = nodata_mask(np.random.default_rng(0), TINY)
    assert mask.shape == (TINY.height, TINY.width)
    assert abs(mask.mean() - TINY.nodata_fraction) < 0.005
    assert mask[0].any(), "the missing swath starts at the top edge"
    np.testing.assert_array_equal(mask, nodata_mask(np.random.default_rng(0), TINY))
    assert not nodata_mask(np.random.default_rng(0), tiny(nodata_fraction=0.0)).any()


def test_unmapped_patch_avoids_landslides_and_nodata() -> None:
    h, w = TINY.height, TINY.width
    slides = np.zeros((h, w), bool)
    slides[:, : w // 2] = True
    nodata = np.zeros((h, w), bool)
    nodata[: h // 2] = True
    patch = unmapped_patch(np.random.default_rng(0), TINY, slides, nodata)
    assert patch.sum() == TINY.unmapped_patch_px**2
    assert not (patch & (slides | nodata)).any()
    rows, cols = np.nonzero(patch)
    assert np.ptp(rows) + 1 == np.ptp(cols) + 1 == TINY.unmapped_patch_px  # one square
    none = unmapped_patch(np.random.default_rng(0), tiny(unmapped_patch_px=0), slides, nodata)
    assert not none.any()
