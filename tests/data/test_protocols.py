"""Fold protocols: random patch folds, buffered block folds and their random-drop control."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mmls.core.config import parse
from mmls.core.errors import InputError
from mmls.data.folds import CVConfig, Variant, assign_folds, fold_rows, pool
from mmls.data.leakage import chebyshev_gaps
from mmls.data.protocols import PROTOCOL_DEFINITIONS, definition, touching
from tests.configs import config
from tests.data.test_folds import S, patches

PROTOCOLS = sorted(PROTOCOL_DEFINITIONS)


def all_fold_rows(cols: int, rows: int, seed: int, protocol: str):
    table = patches(cols, rows, seed)
    cfg = config("cv", CVConfig).model_copy(update={"k": 3, "folds": [0, 1, 2], "seed": seed})
    folds = assign_folds(pool(table, cfg.splits), cfg.k, cfg.bins, cfg.seed)
    return table, [fold_rows(table, folds, f, cfg, protocol, S) for f in range(cfg.k)]


@settings(max_examples=20, deadline=None)
@given(cols=st.integers(6, 12), rows=st.integers(4, 8), seed=st.integers(0, 99))
def test_every_protocol_holds_out_each_patch_once_and_trains_apart(cols, rows, seed) -> None:
    for protocol in PROTOCOLS:
        table, per_fold = all_fold_rows(cols, rows, seed, protocol)
        held = np.concatenate([r.held_out for r in per_fold])
        assert sorted(held) == list(range(len(table)))  # the pooled table is the whole grid
        for r in per_fold:
            assert not set(r.train) & set(r.held_out) and not set(r.val) & set(r.held_out)
            assert not set(r.train) & set(r.val)
            n = len(r.train) + len(r.val) + len(r.held_out) + r.n_dropped
            assert n == len(table)


@settings(max_examples=20, deadline=None)
@given(cols=st.integers(6, 12), rows=st.integers(4, 8), seed=st.integers(0, 99))
def test_buffered_training_never_touches_the_held_out_fold(cols, rows, seed) -> None:
    table, buffered = all_fold_rows(cols, rows, seed, "buffered")
    _, blocks = all_fold_rows(cols, rows, seed, "blocks")
    _, control = all_fold_rows(cols, rows, seed, "buffered_control")
    xy = table[["x_off", "y_off"]].to_numpy()
    for b, plain, c in zip(buffered, blocks, control, strict=True):
        assert np.array_equal(b.held_out, plain.held_out)
        assert np.array_equal(c.held_out, plain.held_out)
        seen = np.concatenate([b.train, b.val])
        gaps, _ = chebyshev_gaps(xy[seen], xy[b.held_out], S)
        assert (gaps > 0).all()  # not one training or selection patch touches a held-out one
        assert set(b.train) <= set(plain.train) and set(b.val) <= set(plain.val)
        # the control drops as many patches from each role, at random, and deterministically
        assert len(c.train) == len(b.train) and len(c.val) == len(b.val)
        assert c.n_dropped == b.n_dropped == len(plain.train) + len(plain.val) - len(seen)
        assert set(c.train) <= set(plain.train) and set(c.val) <= set(plain.val)
    again = all_fold_rows(cols, rows, seed, "buffered_control")[1]
    assert all(np.array_equal(a.train, c.train) for a, c in zip(again, control, strict=True))


def test_random_folds_split_the_blocks_that_blocks_keep_together() -> None:
    table, per_fold = all_fold_rows(12, 8, 5, "random")
    fold_of = np.empty(len(table), dtype=int)
    for f, r in enumerate(per_fold):
        fold_of[r.held_out] = f
    split_groups = table.assign(fold=fold_of).groupby("group")["fold"].nunique()
    assert (split_groups > 1).any()  # patch-level: a 2 x 2 block lands in several folds
    sizes = np.bincount(fold_of)
    assert sizes.max() - sizes.min() <= 5  # stratified deal: 5 strata, within one each


def test_touching_counts_edges_and_corners_but_not_gaps() -> None:
    table = patches(4, 1, 0, terminal=False)  # four patches in a row, S px apart: edge contacts
    held = np.array([False, True, False, False])
    assert touching(table, held, S).tolist() == [True, False, True, False]
    table.loc[3, "x_off"] += 1  # one pixel apart from patch 2, never touching patch 1
    assert touching(table, np.array([False, False, True, False]), S).tolist() == [
        False,
        True,
        False,
        False,
    ]


def test_a_protocol_is_named_in_every_cv_row_and_checked_in_params() -> None:
    assert definition("random").startswith(PROTOCOL_DEFINITIONS["random"])
    with pytest.raises(InputError) as err:
        parse({"model": "unet", "protocol": "leaky"}, Variant, "params.yaml:cv.variants.x")
    assert "cv.variants.x.protocol" in str(err.value)


def test_the_best_recipes_must_name_a_row_of_their_kind() -> None:
    cv = config("cv", CVConfig).model_dump()
    ensemble = next(iter(cv["ensembles"]))
    ok = parse({**cv, "best": {"mean": cv["baseline"], "ensemble": ensemble}}, CVConfig, "p:cv")
    assert ok.best is not None and ok.best.ensemble == ensemble
    with pytest.raises(InputError, match=r"p:cv\.best\.ensemble: 'unet' is not an ensemble"):
        parse({**cv, "best": {"mean": cv["baseline"], "ensemble": "unet"}}, CVConfig, "p:cv")
