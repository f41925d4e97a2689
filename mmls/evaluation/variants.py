"""A cross-validated recipe (``cv.variants.<name>``) as a training run: its ``models`` entry with
that entry's own overrides, then the variant's overrides of the architecture, ``train`` and
``recipe`` on top."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mmls.core import paths
from mmls.core.config import read_seeds, section
from mmls.core.errors import InputError
from mmls.core.io import read_csv
from mmls.data.folds import CVConfig, FoldRows, fold_rows
from mmls.data.store import Store
from mmls.nn.models import architecture, model_section, read_model
from mmls.nn.recipe import RecipeConfig
from mmls.nn.training import Run, TrainConfig


def variant_recipe(params: Mapping[str, Any], name: str) -> RecipeConfig:
    """The recipe of variant ``name`` (or of the variant a rescoring reuses, with its decisions)."""
    cv = section(params, "cv", CVConfig)
    r = cv.rescored.get(name) or cv.ensembles.get(name)
    if r is not None:
        base = variant_recipe(params, r.of)
        return base.model_copy(update={"tta": r.tta, "threshold": r.threshold})
    if name not in cv.variants:
        raise InputError("params.yaml:cv.variants", f"has no variant {name!r}")
    v = cv.variants[name]
    return model_section(params, v.model, "recipe", RecipeConfig, **(v.recipe or {}))


def variant_seeds(params: Mapping[str, Any], name: str) -> list[int]:
    """The seeds variant ``name`` is trained with (``seeds``, plus ``cv.replicates``)."""
    return section(params, "cv", CVConfig).seeds_of(name, read_seeds(params))


def variant_run(params: Mapping[str, Any], name: str, seed: int) -> Run:
    """The training of variant ``name`` with ``seed`` (one of :func:`variant_seeds`)."""
    cv = section(params, "cv", CVConfig)
    if name not in cv.variants:
        raise InputError("params.yaml:cv.variants", f"has no variant {name!r}")
    if seed not in variant_seeds(params, name):
        raise InputError(
            "params.yaml:seeds", f"does not list seed {seed} (nor cv.replicates for {name!r})"
        )
    v = cv.variants[name]
    cfg = model_section(params, v.model, "train", TrainConfig, **(v.train or {}))
    recipe = variant_recipe(params, name)
    arch = {**architecture(read_model(params, v.model)), **(v.architecture or {})}
    return Run(v.model, arch, cfg, recipe, seed)


def variant_fold_rows(params: Mapping[str, Any], store: Store, name: str, fold: int) -> FoldRows:
    """The rows of ``fold`` for variant, rescoring or ensemble ``name``, under the fold protocol
    of the variant it trains or reuses (``folds.csv`` holds the block folds)."""
    cv = section(params, "cv", CVConfig)
    protocol = cv.variants[cv.protocol_variant(name)].protocol
    folds = read_csv(paths.FOLDS_CSV, ("fold",))
    return fold_rows(store.patches, folds, fold, cv, protocol, store.size)
