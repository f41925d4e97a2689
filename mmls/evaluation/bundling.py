"""A pipeline's trained model as a bundle (:mod:`mmls.inference.bundle`): its checkpoint, plus
what was measured about it and about its training data.

- the value convention: the release layout that was ingested (``ingest.layout``, whose preset
  says raw or scaled), else read off the training values (all bands in [0, 1]: scaled); and per
  band the 1st, 50th and 99th percentiles of the raw training values (valid pixels, every
  second row and column of the training patches);
- the pixel size and CRS of the training data, from the first training tile;
- the decision the evaluation applied (``eval`` writes it beside a non-argmax score);
- the scores: every split ``eval`` scored, and the CV rows of this exact recipe (a
  ``cv.variants`` entry that is the model with no change), each named with its protocol;
- provenance: git revision, params hash, training-data fingerprint, checkpoint digest.
"""

from __future__ import annotations

import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mmls.core import paths
from mmls.core.io import PathLike, open_raster, read_json
from mmls.data.releases import LAYOUTS
from mmls.data.store import IMAGES, MASKS, META, Store
from mmls.geo.nodata import invalid_pixels
from mmls.inference.bundle import (
    Bundle,
    Inference,
    Score,
    ValueConvention,
    file_sha256,
    params_sha256,
)
from mmls.inference.compatibility import pixel_size_m
from mmls.nn.models import load_checkpoint
from mmls.nn.resume import data_fingerprint

PAPER_PROTOCOL = "paper: trained on train, checkpoint selected on val"
CV_NOTE = "the recipe's score: one model per fold, not these weights"


def training_quantiles(store: Store, rows: Sequence[int], bands: Sequence[str]) -> dict:
    """Per band ``[p1, p50, p99]`` of the valid raw values of the store ``rows`` (every second
    row and column of each patch: a deterministic subsample)."""
    idx = [store.bands.index(b) for b in bands]
    values: list[list[np.ndarray]] = [[] for _ in bands]
    for start in range(0, len(rows), 64):
        block = np.asarray(store.images[np.asarray(rows[start : start + 64])][:, idx, ::2, ::2])
        block = block.astype(np.float64)
        bad = invalid_pixels(block, store.nodata)
        for k in range(len(bands)):
            values[k].append(block[:, k][~bad[:, k]])
    out = {}
    for band, parts in zip(bands, values, strict=True):
        v = np.concatenate(parts)
        out[band] = [float(x) for x in np.percentile(v, [1, 50, 99])] if v.size else [0.0] * 3
    return out


def value_convention(
    params: Mapping[str, Any], quantiles: Mapping[str, list[float]]
) -> ValueConvention:
    """The training data's convention: the ingested release's, else read off the values."""
    layout = (params.get("ingest") or {}).get("layout")
    scaled = all(q[0] >= -0.01 and q[2] <= 1.01 for q in quantiles.values())
    if layout in LAYOUTS:
        description = LAYOUTS[layout].values
        values = "scaled [0, 1]" if "scaled" in description else "raw"
    else:
        values = "scaled [0, 1]" if scaled else "raw"
        description = "read off the training values (no release layout was ingested)"
    return ValueConvention(values, layout, description, dict(quantiles))


def training_geo(tiles_dir: PathLike, store: Store, row: int) -> tuple[float | None, str | None]:
    """(pixel size in metres, CRS as WKT) of the training tile of store ``row``; (None, None)
    when the training tiles are not georeferenced."""
    rec = store.patches.iloc[int(row)]
    image, _ = paths.tile_paths(tiles_dir, rec["region"], int(rec["col"]), int(rec["row"]))
    with open_raster(image) as src:
        if src.crs is None:
            return None, None
        return round(pixel_size_m(src), 6), src.crs.to_wkt()


def eval_scores(model: str, seed: int, splits: Sequence[str]) -> tuple[list[Score], Inference]:
    """The scores ``eval`` wrote for every split, and the decision it applied."""
    scores, decision = [], Inference(False, None, "argmax (paper)")
    for split in splits:
        path = paths.eval_metrics_dir(model, seed) / f"{split}.json"
        if not path.is_file():  # a split without patches is not scored
            continue
        rec = read_json(path)
        note = "optimistic: val also selected the checkpoint" if split == "val" else ""
        scores.append(
            Score(PAPER_PROTOCOL, split, rec["miou"], rec["iou_fg"], rec["n_images"], note)
        )
        if "threshold" in rec:
            decision = Inference(bool(rec["tta"]), rec["threshold"], str(rec["decision"]))
    return scores, decision


def cv_scores(params: Mapping[str, Any], model: str) -> list[Score]:
    """The CV rows of this exact recipe: ``cv.variants`` entries that are the model unchanged."""
    variants = ((params.get("cv") or {}).get("variants")) or {}
    scores = []
    for name, spec in variants.items():
        if spec != {"model": model}:
            continue
        rec = read_json(paths.CV_TABLE / f"{name}.json")
        scores.append(
            Score(
                str(rec["protocol_definition"]),
                f"{rec['n_folds']} held-out folds",
                rec["miou"],
                rec["iou_fg"],
                int(rec["n_patches"]),
                f"{CV_NOTE}; seeds {rec['seeds']}",
            )
        )
    return scores


def git_revision(cwd: PathLike = ".") -> str:
    """The checkout's commit (with ``+dirty`` when tracked files differ), or ``unknown``."""
    try:
        rev = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=cwd,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return rev + ("+dirty" if dirty.strip() else "")


def pipeline_folder(cwd: PathLike = ".") -> str:
    """The pipeline's folder relative to the repository root (``.`` for the default one)."""
    try:
        prefix = subprocess.run(
            ["git", "rev-parse", "--show-prefix"],
            cwd=cwd,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return str(Path(cwd).resolve().name)
    return prefix.rstrip("/") or "."


def build_bundle(
    params: Mapping[str, Any],
    model: str,
    seed: int,
    store: Store,
    tiles_dir: PathLike,
    eval_splits: Sequence[str],
    recommended: bool,
) -> Bundle:
    """The bundle of ``models.<model>`` (seed ``seed``) of the pipeline in the working folder."""
    checkpoint = paths.model_dir(model, seed) / paths.CHECKPOINT_NAME
    net, meta = load_checkpoint(checkpoint, "cpu")
    train_rows = store.labelled_rows("train", str(store.path))
    val_rows = store.labelled_rows("val", str(store.path))
    quantiles = training_quantiles(store, train_rows, meta["bands"])
    pixel_m, crs = training_geo(tiles_dir, store, train_rows[0])
    scores, decision = eval_scores(model, seed, eval_splits)
    files = [Path(store.path) / f for f in (META, IMAGES, MASKS)]
    train_cfg = meta.get("train_config", {})
    return Bundle(
        model_name=model,
        model_config=dict(meta["model_config"]),
        state_dict={k: v.detach().cpu() for k, v in net.state_dict().items()},
        bands=list(meta["bands"]),
        tile_size_px=int(meta["tile_size"]),
        context_px=int(meta.get("recipe", {}).get("context_px", 0)),
        normalization=dict(meta["normalization"]),
        convention=value_convention(params, quantiles),
        inference=decision,
        pixel_size_m=pixel_m,
        crs_wkt=crs,
        provenance={
            "git_revision": git_revision(),
            "params_sha256": params_sha256(params),
            "data_fingerprint": data_fingerprint(files, {"train": train_rows, "val": val_rows}),
            "checkpoint_sha256": file_sha256(checkpoint),
            "pipeline": pipeline_folder(),
            "model_key": model,
            "seed": seed,
            "best_epoch": meta.get("epoch"),
            "torch": str(torch.__version__),  # a str subclass would not load weights-only
            "smp": meta.get("versions", {}).get("smp"),
        },
        scores=scores + cv_scores(params, model),
        recommended=recommended,
        channels_last=bool(train_cfg.get("channels_last", False)),
        amp=str(train_cfg.get("amp", "fp32")),
    )


def bundle_metrics(bundle: Bundle) -> dict[str, Any]:
    """The bundle stage's metrics (``dvc metrics show``; the artifacts' meta names the file):
    its first score with its protocol, and whether it is the pipeline's model."""
    first = bundle.scores[0] if bundle.scores else None
    return {
        "model": bundle.model_name,
        "recommended": bundle.recommended,
        "protocol": first.protocol if first else None,
        "split": first.split if first else None,
        "miou": first.miou if first else None,
        "n_scores": len(bundle.scores),
    }
