"""Per-patch files, block bootstrap (seeds too) and leakage audit: known answers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mmls.core.paths import patch_key
from mmls.data.leakage import chebyshev_gaps, leakage_audit
from mmls.metrics.bootstrap import (
    aligned_block_counts,
    block_counts,
    bootstrap_ci,
    bootstrap_diff_ci,
    merge_overlapping_blocks,
    resample_weights,
)
from mmls.metrics.confusion import (
    Confusion,
    confusion_from_labels,
    patch_counts,
    scores,
    scores_array,
)
from mmls.metrics.patch_files import (
    PATCH_COLUMNS,
    patch_table,
    read_masks,
    read_patch_table,
    write_masks,
    write_patch_table,
)


def test_patch_table_and_files_roundtrip(tmp_path):
    patches = pd.DataFrame(
        {
            "region": ["isolated", "base"],
            "col": [1, 0],
            "row": [0, 1],
            "block_col": [0, 0],
            "block_row": [0, 0],
            "split": ["test"] * 2,
        }
    )
    pred = np.zeros((2, 4, 4), np.uint8)
    target = np.zeros((2, 4, 4), np.uint8)
    pred[0, 0, 0] = target[1, 1, 1] = 1
    table = patch_table(patches, patch_counts(pred, target))
    assert list(table.columns) == list(PATCH_COLUMNS)
    assert table[["region", "block_col", "fp", "fn"]].values.tolist() == [
        ["isolated", 0, 1, 0],
        ["base", 0, 0, 1],
    ]
    write_patch_table(tmp_path / "m.patches.csv", table)
    back = read_patch_table(tmp_path / "m.patches.csv")
    pd.testing.assert_frame_equal(back, table.reset_index(drop=True), check_dtype=False)
    write_masks(tmp_path / "m.npz", patches, pred)
    masks = read_masks(tmp_path / "m.npz")
    assert sorted(masks) == [patch_key("base", 0, 1), patch_key("isolated", 1, 0)]
    assert masks["c1_r0_isolated"].dtype == np.uint8 and masks["c1_r0_isolated"][0, 0] == 1
    c = confusion_from_labels(pred, target)
    assert table[["tp", "fp", "fn", "tn"]].sum().tolist() == [c.tp, c.fp, c.fn, c.tn]
    with pytest.raises(ValueError, match="count rows"):
        patch_table(patches, patch_counts(pred[:1], target[:1]))


@pytest.mark.parametrize(
    "c", [(5, 2, 3, 90), (0, 0, 0, 100), (0, 4, 0, 96), (0, 0, 7, 93), (10, 0, 0, 0)]
)
def test_pooled_metrics_match_mmls_metrics(c):
    got = scores_array(np.array(c))
    for key, value in scores(Confusion(*c)).items():
        assert got[key] == pytest.approx(value)


def test_resample_weights_draw_n_blocks_per_row():
    w = resample_weights(7, 50, seed=3)
    assert w.shape == (50, 7) and (w.sum(axis=1) == 7).all()
    np.testing.assert_array_equal(w, resample_weights(7, 50, seed=3))


def _blocks(n: int, quality: float, rng: np.random.Generator, hard: np.ndarray | None = None):
    """n blocks of 4 x 128 x 128 px; fg ~ per-block, errors ~ (1 - quality) x block hardness."""
    px = 4 * 128 * 128
    fg = rng.integers(500, 30000, n)
    hard = rng.uniform(0.5, 1.5, n) if hard is None else hard
    err = np.minimum((1 - quality) * hard * fg, fg * 0.9).astype(np.int64)
    fn = err // 2
    fp = err - fn
    tp = fg - fn
    tn = px - tp - fp - fn
    return np.stack([tp, fp, fn, tn], axis=1)


def test_bootstrap_ci_covers_estimate_and_narrows_with_more_blocks():
    rng = np.random.default_rng(0)
    widths = []
    for n in (10, 40, 160):
        blocks = _blocks(n, 0.8, rng)
        iv = bootstrap_ci(blocks, "miou", n_resamples=2000, seed=1)
        assert iv.lo <= iv.estimate <= iv.hi
        assert iv.n_blocks == n and iv.n_resamples == 2000
        est = scores_array(blocks.sum(0))["miou"]
        assert iv.estimate == pytest.approx(float(est))
        widths.append(iv.hi - iv.lo)
    assert widths[0] > widths[1] > widths[2]
    assert widths[2] < 0.6 * widths[0]
    iv_fg = bootstrap_ci(blocks, "iou_fg", seed=1)
    assert iv_fg.lo <= iv_fg.estimate <= iv_fg.hi


def test_difference_ci_excludes_zero_for_different_and_includes_it_for_identical():
    rng = np.random.default_rng(1)
    hard = rng.uniform(0.5, 1.5, 60)
    good = _blocks(60, 0.9, np.random.default_rng(2), hard)
    bad = _blocks(60, 0.6, np.random.default_rng(2), hard)
    diff = bootstrap_diff_ci(good, bad, "miou", seed=0)
    assert diff.estimate > 0 and diff.excludes_zero and diff.lo > 0
    same = bootstrap_diff_ci(good, good.copy(), "iou_fg", seed=0)
    assert same.estimate == 0 and not same.excludes_zero and same.lo <= 0 <= same.hi
    assert not bootstrap_diff_ci(good, good, "miou", paired=False, seed=0).excludes_zero


def test_pairing_narrows_the_difference_interval_when_blocks_share_difficulty():
    rng = np.random.default_rng(4)
    hard = rng.uniform(0.2, 3.0, 40)
    a = _blocks(40, 0.85, np.random.default_rng(5), hard)
    b = _blocks(40, 0.83, np.random.default_rng(5), hard)
    paired = bootstrap_diff_ci(a, b, seed=0)
    unpaired = bootstrap_diff_ci(a, b, paired=False, seed=0)
    assert paired.hi - paired.lo < 0.5 * (unpaired.hi - unpaired.lo)


def test_one_seed_is_the_block_bootstrap_and_seeds_add_their_variance():
    rng = np.random.default_rng(6)
    hard = rng.uniform(0.5, 1.5, 40)
    seeds = [_blocks(40, q, np.random.default_rng(7), hard) for q in (0.70, 0.80, 0.90)]
    one = bootstrap_ci(seeds[0], seed=3)
    assert bootstrap_ci([seeds[0]], seed=3) == one  # a list of one seed is the plain bootstrap
    three = bootstrap_ci(seeds, seed=3)
    mean = np.mean([scores_array(b.sum(0))["miou"] for b in seeds])
    assert three.n_seeds == 3 and three.estimate == pytest.approx(mean)
    same = bootstrap_ci([seeds[1]] * 3, seed=3)  # three identical replicates: no seed variance
    assert three.hi - three.lo > same.hi - same.lo
    # Paired over blocks, independent over seeds: identical replicates still give 0 inside.
    diff = bootstrap_diff_ci(seeds, seeds, seed=3)
    assert diff.estimate == 0 and diff.lo < 0 < diff.hi


def test_same_checkpoints_pair_seeds_too():
    rng = np.random.default_rng(8)
    hard = rng.uniform(0.5, 1.5, 40)
    seeds = [_blocks(40, q, np.random.default_rng(9), hard) for q in (0.70, 0.80, 0.90)]
    shifted = [b + np.array([0, 0, 1, 0]) for b in seeds]  # the same replicates, one FN more
    independent = bootstrap_diff_ci(seeds, shifted, seed=3)
    same = bootstrap_diff_ci(seeds, shifted, same_checkpoints=True, seed=3)
    assert same.estimate == independent.estimate > 0
    assert same.hi - same.lo < 0.2 * (independent.hi - independent.lo)
    with pytest.raises(ValueError, match="same checkpoints"):
        bootstrap_diff_ci(seeds, shifted[:2], same_checkpoints=True)


def test_blocks_whose_patches_overlap_are_one_resampling_unit():
    table = pd.DataFrame(
        {
            "region": ["base"] * 4,
            "col": [0, 0, 2, 3],
            "row": [0, 2, 0, 0],
            "block_col": [0, 0, 1, 1],
            "block_row": [0, 1, 0, 0],
            "tp": [1, 2, 4, 8],
            "fp": [0] * 4,
            "fn": [0] * 4,
            "tn": [9] * 4,
        },
        index=[10, 11, 12, 13],
    )
    groups = table[["region", "col", "row"]].assign(group=["0_0", "0_0", "1_0", "1_0"])
    merged = merge_overlapping_blocks(table, groups)  # a terminal row joined blocks 0_0, 0_1
    keys, counts = block_counts(merged)
    assert keys.values.tolist() == [["base", 0, 0], ["base", 1, 0]]
    assert counts[:, 0].tolist() == [3, 12]
    assert merged[["col", "row", "tp"]].equals(table[["col", "row", "tp"]].reset_index(drop=True))
    with pytest.raises(ValueError, match="without a group"):
        merge_overlapping_blocks(table, groups.iloc[:3])


def test_block_counts_group_by_region_and_alignment_keeps_shared_patches():
    t1 = pd.DataFrame(
        {
            "region": ["base", "base", "isolated", "base"],
            "col": [0, 1, 0, 4],
            "row": [0, 0, 0, 0],
            "block_col": [0, 0, 0, 2],
            "block_row": [0, 0, 0, 0],
            "tp": [1, 2, 4, 8],
            "fp": [0, 0, 0, 0],
            "fn": [0, 0, 0, 0],
            "tn": [9, 9, 9, 9],
        }
    )
    keys, counts = block_counts(t1)
    assert keys.values.tolist() == [["base", 0, 0], ["base", 2, 0], ["isolated", 0, 0]]
    assert counts[:, 0].tolist() == [3, 8, 4]
    t2 = t1.iloc[:3].assign(tp=[0, 0, 0])
    (c1, c2), n = aligned_block_counts([t1, t2])
    assert n == 3 and c1[:, 0].tolist() == [3, 4] and c2[:, 0].tolist() == [0, 0]


def test_leakage_audit_known_answer():
    s = 10
    rows = [
        ("base", 0, 0, "train"),
        ("base", 100, 100, "train"),
        ("base", 10, 0, "test"),  # shares the right edge of (0, 0)
        ("base", 10, 10, "test"),  # only the corner pixel (9, 9) / (10, 10) is 8-adjacent
        ("base", 5, 5, "test"),  # overlaps (0, 0)
        ("base", 11, 0, "test"),  # one free pixel column between: not touching
        ("base", 50, 50, "test"),  # far away
        ("base", 90, 111, "val"),  # gap of 1 row below (100, 100): not touching
        ("base", 95, 110, "val"),  # edge below (100, 100), offset sideways
        ("isolated", 110, 90, "isolated_test"),  # corner with (100, 100)
        ("isolated", 130, 0, "isolated_test"),  # far from train, edge with nothing
    ]
    splits = pd.DataFrame(rows, columns=["region", "x_off", "y_off", "split"])
    audit = leakage_audit(splits, s)
    assert audit["n_train"] == 2
    test = audit["splits"]["test"]
    assert (test["n_patches"], test["n_touching"]) == (5, 3)
    assert (test["n_overlapping"], test["n_edge_adjacent"], test["n_corner_adjacent"]) == (1, 1, 1)
    assert test["min_gap_px"] == -5 and test["n_within_one_patch"] == 4
    val = audit["splits"]["val"]
    assert (val["n_touching"], val["n_edge_adjacent"], val["min_gap_px"]) == (1, 1, 0)
    iso = audit["splits"]["isolated_test"]
    assert (iso["n_touching"], iso["n_corner_adjacent"]) == (1, 1)
    assert audit["isolated_test_vs_base"]["n_touching"] == 1
    gaps, kind = chebyshev_gaps(np.array([[11, 0]]), np.array([[0, 0]]), s)
    assert gaps.tolist() == [1] and kind.tolist() == [0]


def test_leakage_audit_of_a_blocked_grid_has_no_overlap_but_adjacent_blocks_touch():
    s = 8
    cols, rows = np.meshgrid(np.arange(6), np.arange(4))
    grid = pd.DataFrame({"region": "base", "col": cols.ravel(), "row": rows.ravel()})
    grid["x_off"], grid["y_off"] = grid["col"] * s, grid["row"] * s
    # blocks of 2 x 2 patches: block column 0 train, 1 test, 2 val
    grid["split"] = np.array(["train", "test", "val"])[grid["col"] // 2]
    audit = leakage_audit(grid, s)
    assert audit["splits"]["test"]["n_overlapping"] == 0
    assert audit["splits"]["test"]["n_touching"] == 4  # the test column next to train
    assert audit["splits"]["val"]["n_touching"] == 0
    assert audit["splits"]["isolated_test"]["n_patches"] == 0
