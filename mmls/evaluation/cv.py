"""Scoring on the held-out folds of the spatial block cross-validation (mmls/data/folds.py): a
variant's fold checkpoint, a ``cv.rescored`` entry (another variant's checkpoints with other
test-time decisions) or a ``cv.ensembles`` entry (the mean probability of a fold's seed
checkpoints). A threshold is calibrated on the fold's inner validation split, never on the
held-out fold; the held-out metrics and per-patch predictions go where mmls/paths.py says."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from mmls.core import paths
from mmls.core.config import read_seeds, section
from mmls.core.errors import InputError
from mmls.core.io import atomic_dir, read_json
from mmls.data.folds import CVConfig
from mmls.data.store import Store
from mmls.evaluation.config import EvalConfig
from mmls.evaluation.scoring import decide, open_predictor, score, write_scored
from mmls.evaluation.variants import variant_fold_rows, variant_recipe, variant_seeds
from mmls.inference.ensemble import ensemble
from mmls.inference.predictor import Predictor
from mmls.nn.tracking import METRICS_FILE


def train_time_h(variant: str, fold: int, seed: int) -> float:
    return float(read_json(paths.cv_log_dir(variant, fold, seed) / METRICS_FILE)["train_time_h"])


def score_checkpoint(
    params: Mapping[str, Any], store: Store, name: str, fold: int, seed: int
) -> dict[str, Any]:
    """Score the (fold, seed) checkpoint of variant or rescoring ``name``; its metrics record."""
    trained = section(params, "cv", CVConfig).trained_variant(name)
    checkpoint = paths.cv_dir(trained, fold, seed) / paths.CHECKPOINT_NAME
    predictor = open_predictor(checkpoint, section(params, "eval", EvalConfig))
    return _score_held_out(
        params,
        store,
        name,
        fold,
        predictor,
        train_time_h(trained, fold, seed),
        paths.cv_metrics(name, fold, seed),
        paths.cv_predictions_dir(name, fold, seed),
    )


def score_ensemble(params: Mapping[str, Any], store: Store, name: str, fold: int) -> dict[str, Any]:
    """Score the seed ensemble ``name`` (a ``cv.ensembles`` entry) on ``fold``: every seed of its
    variant (``seeds`` and ``cv.replicates``); its cost is the sum of its members' training."""
    cv = section(params, "cv", CVConfig)
    of, seeds = cv.ensembles[name].of, cv.ensemble_seeds(name, read_seeds(params))
    cfg = section(params, "eval", EvalConfig)
    members = [
        open_predictor(paths.cv_dir(of, fold, s) / paths.CHECKPOINT_NAME, cfg) for s in seeds
    ]
    return _score_held_out(
        params,
        store,
        name,
        fold,
        ensemble(members),
        sum(train_time_h(of, fold, s) for s in seeds),
        paths.cv_ensemble_metrics(name, fold),
        paths.cv_ensemble_predictions_dir(name, fold),
    )


def score_reuse(
    params: Mapping[str, Any], store: Store, name: str
) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every held-out score of ``name``, a ``cv.rescored`` entry (each fold x seed) or a
    ``cv.ensembles`` entry (each fold), as (``"fold f [seed s]"``, metrics record)."""
    cv = section(params, "cv", CVConfig)
    if name not in cv.rescored and name not in cv.ensembles:
        raise InputError("params.yaml:cv", f"has no rescored or ensembles entry {name!r}")
    if name in cv.ensembles:
        for fold in cv.folds:
            yield f"fold {fold}", score_ensemble(params, store, name, fold)
        return
    seeds = variant_seeds(params, cv.trained_variant(name))
    for fold in cv.folds:
        for seed in seeds:
            yield f"fold {fold} seed {seed}", score_checkpoint(params, store, name, fold, seed)


def _score_held_out(
    params: Mapping[str, Any],
    store: Store,
    name: str,
    fold: int,
    predictor: Predictor,
    hours: float,
    metrics_json: Path,
    predictions_dir: Path,
) -> dict[str, Any]:
    cfg = section(params, "eval", EvalConfig)
    rows = variant_fold_rows(params, store, name, fold)
    decision = decide(variant_recipe(params, name), predictor, store, rows.val, cfg, rows.train)
    scored = score(predictor, store, rows.held_out, cfg, hours, decision)
    scored.record.update(n_train=len(rows.train), n_dropped=rows.n_dropped)
    with atomic_dir(predictions_dir) as tmp:
        write_scored(scored, metrics_json, tmp, paths.HELD_OUT)
    return scored.record
