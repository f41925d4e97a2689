"""A trained model that leaves the pipeline: one self-describing file (the *bundle*).

A bundle WRAPS a training checkpoint (:func:`mmls.nn.models.save_checkpoint`) rather than
extending it: the checkpoint stays what training wrote (so no training re-runs), and a later
stage adds what a user mapping another region needs and what only exists after training (the
decision calibrated at evaluation, the scores, the pipeline's choice of model). It is a plain
``torch.save`` of tensors and Python built-ins, loadable with ``weights_only=True``, whose
``schema`` and ``schema_version`` say how to read it:

- ``model``: name, architecture (the ``models`` entry) and weights (``state_dict``);
- ``inputs``: the bands by name in input order, the tile and context sizes, the per-band
  standardisation (mean, std, nodata), the value convention of the training data (its release
  layout, ``raw`` or ``scaled [0, 1]``, and per band the 1st, 50th and 99th percentile of the
  raw training values: what :mod:`mmls.inference.compatibility` compares a scene with);
- ``inference``: the recipe's decision (test-time augmentation; threshold, ``null`` = the
  argmax of the two logits, and where it came from);
- ``geo``: the pixel size in metres and the CRS (WKT) of the training data;
- ``provenance``: git revision, params hash, training-data fingerprint, checkpoint digest,
  pipeline, model key, seed, library versions;
- ``scores``: what it earned, each with its protocol;
- ``recommended``: whether it is its pipeline's ``model`` (the one to use).
"""

from __future__ import annotations

import hashlib
import json
import textwrap
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from mmls.core.errors import InputError
from mmls.core.io import PathLike, atomic_path
from mmls.inference.predictor import Predictor
from mmls.nn.models import build_model, checkpoint_model, load_weights_only

SCHEMA = "mmls.bundle"
SCHEMA_VERSION = 1


@dataclass(frozen=True)
class ValueConvention:
    """What the training data's pixel values are."""

    values: str  # "raw" | "scaled [0, 1]"
    layout: str | None  # the release layout that was ingested (mmls.data.releases), if any
    description: str  # in words, e.g. "raw (DEM in m, slope in degrees, ...)"
    quantiles: dict[str, list[float]]  # band -> [p1, p50, p99] of the raw training values


@dataclass(frozen=True)
class Inference:
    """The recipe's decision at prediction time."""

    tta: bool
    threshold: float | None  # None: the argmax of the two logits (probability > 0.5)
    decision: str  # where the threshold came from


@dataclass(frozen=True)
class Score:
    """One score the model earned, named with its protocol."""

    protocol: str
    split: str
    miou: float
    iou_fg: float
    n_images: int
    note: str = ""


@dataclass
class Bundle:
    """A model and everything needed to apply it to a scene it never saw."""

    model_name: str
    model_config: dict[str, Any]
    state_dict: dict[str, torch.Tensor]
    bands: list[str]
    tile_size_px: int
    context_px: int
    normalization: dict[str, Any]  # mean, std, nodata
    convention: ValueConvention
    inference: Inference
    pixel_size_m: float | None
    crs_wkt: str | None
    provenance: dict[str, Any]
    scores: list[Score] = field(default_factory=list)
    recommended: bool = False
    channels_last: bool = False
    amp: str = "fp32"  # mixed precision on CUDA, as the checkpoint was trained (mmls.nn.device)

    def record(self) -> dict[str, Any]:
        """Everything but the weights, as plain Python types."""
        return {
            "schema": SCHEMA,
            "schema_version": SCHEMA_VERSION,
            "model": {"name": self.model_name, "config": self.model_config},
            "inputs": {
                "bands": self.bands,
                "tile_size_px": self.tile_size_px,
                "context_px": self.context_px,
                "normalization": self.normalization,
                "convention": asdict(self.convention),
                "channels_last": self.channels_last,
                "amp": self.amp,
            },
            "inference": asdict(self.inference),
            "geo": {"pixel_size_m": self.pixel_size_m, "crs_wkt": self.crs_wkt},
            "provenance": self.provenance,
            "scores": [asdict(s) for s in self.scores],
            "recommended": self.recommended,
        }

    def build(self, device: torch.device | str = "cpu") -> torch.nn.Module:
        """The model with its weights, in eval mode on ``device``."""
        model = build_model(self.model_name, self.model_config, len(self.bands), self.bands)
        model.load_state_dict(self.state_dict)
        if self.channels_last:
            model.to(memory_format=torch.channels_last)
        return model.to(device).eval()


def write_bundle(path: PathLike, bundle: Bundle) -> None:
    """Write ``bundle`` atomically (``torch.load(path, weights_only=True)`` reads it back)."""
    state = {k: v.detach().cpu().contiguous().clone() for k, v in bundle.state_dict.items()}
    with atomic_path(path) as tmp:
        torch.save({**bundle.record(), "state_dict": state}, tmp)
        load_weights_only(tmp)  # what a user will load: refused here, not there


def _require(payload: Mapping[str, Any], keys: Sequence[str], path: PathLike) -> None:
    missing = [k for k in keys if k not in payload]
    if missing:
        raise InputError(path, f"not a complete model bundle: missing {missing}")


def is_bundle_payload(payload: Any) -> bool:
    return isinstance(payload, dict) and payload.get("schema") == SCHEMA


def read_bundle(path: PathLike) -> Bundle:
    """A bundle written by :func:`write_bundle`; anything else is refused, naming the file."""
    p = Path(path)
    if not p.is_file():
        raise InputError(p, "bundle not found" if not p.exists() else "not a regular file")
    return bundle_of(load_weights_only(p), p)


def bundle_of(payload: Any, path: PathLike) -> Bundle:
    """The :class:`Bundle` of a payload loaded from ``path`` (checked: schema and version)."""
    if not is_bundle_payload(payload):
        is_checkpoint = isinstance(payload, dict) and "model_name" in payload
        hint = " (a training checkpoint? make its bundle with the pipeline's bundle stage)"
        raise InputError(path, "not a model bundle" + (hint if is_checkpoint else ""))
    if payload.get("schema_version") != SCHEMA_VERSION:
        raise InputError(
            path,
            f"bundle schema version {payload.get('schema_version')} is not the {SCHEMA_VERSION} "
            "this mmls reads: use the mmls version that wrote it",
        )
    _require(payload, ("model", "inputs", "inference", "geo", "provenance", "state_dict"), path)
    inputs = payload["inputs"]
    return Bundle(
        model_name=payload["model"]["name"],
        model_config=dict(payload["model"]["config"]),
        state_dict=payload["state_dict"],
        bands=list(inputs["bands"]),
        tile_size_px=int(inputs["tile_size_px"]),
        context_px=int(inputs["context_px"]),
        normalization=dict(inputs["normalization"]),
        convention=ValueConvention(**inputs["convention"]),
        inference=Inference(**payload["inference"]),
        pixel_size_m=payload["geo"]["pixel_size_m"],
        crs_wkt=payload["geo"]["crs_wkt"],
        provenance=dict(payload["provenance"]),
        scores=[Score(**s) for s in payload.get("scores", [])],
        recommended=bool(payload.get("recommended", False)),
        channels_last=bool(inputs.get("channels_last", False)),
        amp=str(inputs.get("amp", "fp32")),
    )


def file_sha256(path: PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def params_sha256(params: Mapping[str, Any]) -> str:
    """The params a model was made with, hashed in a canonical form (sorted-key JSON)."""
    return hashlib.sha256(json.dumps(params, sort_keys=True, default=str).encode()).hexdigest()


def model_card(bundle: Bundle, source: str = "") -> str:
    """The bundle as a model card: what it is, what it takes, what it earned, where it came
    from (``mmls info``)."""
    rec = bundle.record()
    conv, inf, prov = bundle.convention, bundle.inference, bundle.provenance
    threshold = (
        "the argmax of the two logits (probability > 0.5)"
        if inf.threshold is None
        else f"{inf.threshold:g} ({inf.decision})"
    )
    pixel = f"{bundle.pixel_size_m:g} m" if bundle.pixel_size_m else "unknown (not georeferenced)"
    lines = [
        f"# {bundle.model_name}"
        + ("  (recommended: its pipeline's model)" if bundle.recommended else ""),
        f"file: {source}" if source else "",
        f"bundle schema: {SCHEMA} v{SCHEMA_VERSION}",
        "",
        "## Model",
        f"architecture: {json.dumps(rec['model']['config'], sort_keys=True)}",
        f"parameters: {sum(v.numel() for v in bundle.state_dict.values()):,}",
        "",
        "## Inputs",
        f"bands, in order: {', '.join(bundle.bands)}",
        f"tile: {bundle.tile_size_px} px, context: {bundle.context_px} px on each side",
        "values: "
        + (
            conv.description
            if conv.description.startswith(conv.values)
            else f"{conv.values}; {conv.description}"
        )
        + (f" (release layout {conv.layout})" if conv.layout else ""),
        f"pixel size: {pixel}",
        "training values per band (p1 / p50 / p99):",
        *(f"  {b}: {' / '.join(f'{v:.4g}' for v in conv.quantiles[b])}" for b in bundle.bands),
        "",
        "## Decision",
        f"test-time augmentation: {'yes (8 flips/rotations)' if inf.tta else 'no'}",
        f"threshold: {threshold}",
        "",
        "## Scores",
        *(
            f"- {s.protocol}, {s.split}: mIoU {s.miou:.4f}, IoU_FG {s.iou_fg:.4f} "
            f"({s.n_images} patches){'; ' + s.note if s.note else ''}"
            for s in bundle.scores
        ),
        *(["- none recorded"] if not bundle.scores else []),
        "",
        "## Provenance",
        *(f"{k}: {v}" for k, v in sorted(prov.items())),
    ]
    crs = bundle.crs_wkt or "none"
    lines += ["", "## CRS", textwrap.shorten(crs, 300)]
    return "\n".join(line for line in lines if line is not None) + "\n"


def bundle_predictor(bundle: Bundle, device: torch.device, source: str = "") -> Predictor:
    """The predictor of a bundle: the same model, standardisation and layout as the checkpoint
    it wraps (:class:`mmls.inference.predictor.Predictor`)."""
    norm = bundle.normalization
    return Predictor(
        model=bundle.build(device),
        bands=tuple(bundle.bands),
        mean=list(norm["mean"]),
        std=list(norm["std"]),
        nodata=norm["nodata"],
        device=device,
        channels_last=bundle.channels_last,
        tile_size=bundle.tile_size_px,
        meta=bundle.record(),
        source=source,
        context_px=bundle.context_px,
        amp=bundle.amp,
    )


def load_predictor(path: PathLike, device: torch.device) -> Predictor:
    """The predictor of a bundle or of a training checkpoint, whichever ``path`` holds (read
    once): the engine's workers load either."""
    p = Path(path)
    if not p.is_file():
        raise InputError(p, "model file not found" if not p.exists() else "not a regular file")
    payload = load_weights_only(p)
    if is_bundle_payload(payload):
        return bundle_predictor(bundle_of(payload, p), device, str(p))
    model, meta = checkpoint_model(payload, p, device)
    return Predictor.of_checkpoint(model, meta, device, str(p))
