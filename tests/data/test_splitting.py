"""block_split invariants (Sec. 2.4), property-tested with hypothesis."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mmls.core.errors import InputError
from mmls.data.splitting import (
    BASE_SPLITS,
    SPLIT_COLUMNS,
    allocate_counts,
    assign_splits,
    fg_intervals,
    quantile_strata,
    table1,
)
from mmls.geo.tiling import grid_origins

SIZE = 128
FRACTIONS = {"train": 0.7, "val": 0.1, "test": 0.2}


def make_index(base_w, base_h, iso_w, iso_h, keep, seed) -> pd.DataFrame:
    """Patch index of a base region (px size base_w x base_h) and an isolated one east of it."""
    rng = np.random.default_rng(seed)
    rows = []
    for region, x0, w, h in (("base", 0, base_w, base_h), ("isolated", base_w, iso_w, iso_h)):
        for r, y in enumerate(grid_origins(h, SIZE)):
            for c, x in enumerate(grid_origins(w, SIZE)):
                if rng.random() < keep:
                    fg = int(rng.integers(1, SIZE * SIZE + 1))
                    rows.append((region, c, r, x0 + x, y, fg, fg / SIZE**2))
    return pd.DataFrame(
        rows, columns=["region", "col", "row", "x_off", "y_off", "fg_pixels", "fg_ratio"]
    )


def overlaps(a, b) -> bool:
    return abs(a.x_off - b.x_off) < SIZE and abs(a.y_off - b.y_off) < SIZE


scenes = st.tuples(
    st.integers(10 * SIZE, 24 * SIZE + 100),  # base width (px), often not a multiple of 128
    st.integers(6 * SIZE, 14 * SIZE + 77),
    st.integers(2 * SIZE, 6 * SIZE + 31),
    st.floats(0.5, 1.0),
    st.integers(0, 10_000),
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scene=scenes, split_seed=st.integers(0, 2**31), bins=st.integers(1, 6))
def test_split_invariants(scene, split_seed, bins):
    bw, bh, iw, keep, seed = scene
    index = make_index(bw, bh, iw, bh, keep, seed)
    try:
        splits = assign_splits(index, size=SIZE, fractions=FRACTIONS, bins=bins, seed=split_seed)
    except InputError as exc:  # tiny scenes may leave a split empty: that must be the reason
        assert "received no patch" in str(exc)
        return
    assert list(splits.columns) == SPLIT_COLUMNS
    # every kept patch exactly once
    assert len(splits) == len(index)
    assert not splits.duplicated(["region", "col", "row"]).any()
    # isolated patches only (and all) in isolated_test
    assert (splits["region"] == "isolated").eq(splits["split"] == "isolated_test").all()
    base = splits[splits["region"] == "base"]
    # no 2x2 block spans two splits (Eq. 2)
    assert (base.groupby(["block_col", "block_row"])["split"].nunique() == 1).all()
    assert (base["block_col"] == base["col"] // 2).all()
    # no pixel shared across splits
    recs = list(base.itertuples())
    for i, a in enumerate(recs):
        for b in recs[i + 1 :]:
            if overlaps(a, b):
                assert a.split == b.split
    # group fractions within one group of target (at block granularity)
    n_groups = base["group"].nunique()
    per_split = base.groupby("split")["group"].nunique()
    for k in BASE_SPLITS:
        assert abs(per_split.get(k, 0) - n_groups * FRACTIONS[k]) < 1 + 1e-9
    # sorted output
    assert splits.equals(splits.sort_values(["region", "col", "row"]).reset_index(drop=True))


def test_same_seed_same_split_other_seed_other_split():
    index = make_index(20 * SIZE + 40, 12 * SIZE, 4 * SIZE, 12 * SIZE, 0.9, seed=3)
    a = assign_splits(index, size=SIZE, fractions=FRACTIONS, bins=5, seed=1)
    b = assign_splits(index, size=SIZE, fractions=FRACTIONS, bins=5, seed=1)
    c = assign_splits(index, size=SIZE, fractions=FRACTIONS, bins=5, seed=2)
    pd.testing.assert_frame_equal(a, b)
    assert a.to_csv(index=False) == b.to_csv(index=False)
    assert not a["split"].equals(c["split"])


def test_terminal_patch_joins_the_split_of_the_patch_it_overlaps():
    # base 3 columns wide (300 px): column 2 is terminal (origin 172) and overlaps column 1,
    # which sits in block 0 while column 2 sits in block 1 -> both blocks form one group
    index = make_index(300, 4 * SIZE, 2 * SIZE, 4 * SIZE, 1.0, seed=0)
    splits = assign_splits(
        index, size=SIZE, fractions={"train": 0.5, "val": 0.0, "test": 0.5}, bins=1, seed=0
    )
    base = splits[splits["region"] == "base"]
    assert base["group"].nunique() == 2  # block rows 0 and 1, each merging block cols 0 and 1
    for _, g in base.groupby("block_row"):
        assert g["split"].nunique() == 1


def test_quantile_strata_are_equal_count_bins():
    values = np.array([0.9, 0.1, 0.5, 0.3, 0.7, 0.2, 0.8, 0.4, 0.6, 0.0])
    strata = quantile_strata(values, 5)
    assert np.bincount(strata).tolist() == [2, 2, 2, 2, 2]
    assert strata[1] == 0 and strata[9] == 0 and strata[0] == 4 and strata[6] == 4


def test_allocation_carries_remainders_across_strata():
    counts = allocate_counts([4, 4, 4, 4, 4], FRACTIONS)  # 20 groups: 14 / 2 / 4 overall
    totals = {k: sum(c[k] for c in counts) for k in BASE_SPLITS}
    assert totals == {"train": 14, "val": 2, "test": 4}
    assert all(sum(c.values()) == 4 for c in counts)


def test_bad_fractions_and_empty_splits_are_errors():
    index = make_index(4 * SIZE, 2 * SIZE, SIZE, SIZE, 1.0, seed=0)
    with pytest.raises(InputError, match="sum to 1"):
        assign_splits(
            index, size=SIZE, fractions={"train": 0.7, "val": 0.2, "test": 0.2}, bins=5, seed=0
        )
    with pytest.raises(InputError, match="received no patch"):
        # 2 groups cannot fill three splits
        assign_splits(index, size=SIZE, fractions=FRACTIONS, bins=1, seed=0)


def test_table1_and_intervals_known_answer():
    splits = pd.DataFrame(
        {
            "split": ["train", "train", "val", "test", "isolated_test"],
            "fg_ratio": [0.10, 0.30, 0.05, 0.95, 1.0],
        }
    )
    t = table1(splits, std_ddof=0)
    assert t["train"]["n_images"] == 2
    assert t["train"]["avg_fg_pct"] == pytest.approx(20.0)
    assert t["train"]["std_fg_pct"] == pytest.approx(10.0, abs=1e-4)  # population std
    sample = table1(splits, std_ddof=1)["train"]["std_fg_pct"]
    assert sample == pytest.approx(np.std([10, 30], ddof=1), abs=1e-4)
    assert table1(splits, std_ddof=1)["val"]["std_fg_pct"] == 0.0  # one patch: no spread
    assert t["train"]["min_fg_pct"] == 10.0 and t["train"]["max_fg_pct"] == 30.0
    iv = fg_intervals(splits).set_index("interval")
    assert iv.loc["0-10%", "train"] == 50.0 and iv.loc["20-30%", "train"] == 50.0
    assert iv.loc["0-10%", "val"] == 100.0 and iv.loc["90-100%", "isolated_test"] == 100.0
    assert np.allclose(iv[["train", "val", "test", "isolated_test"]].sum(), 100.0)
