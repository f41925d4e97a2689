"""The six segmentation models of MMLSv2 Sec. 4.1 (segmentation-models-pytorch), the fusion
model of Sec. 5's future work (mmls/nn/fusion.py), and checkpoints.

Each model is configured by one entry of the ``models`` params section::

    unet: {arch: Unet, encoder_name: resnet34, encoder_weights: null}

``arch`` is the smp class name (or ``FusionUnet``); every other key except ``encoder_name``,
``encoder_weights``, ``branches`` (FusionUnet) and the overrides ``train`` / ``recipe`` is passed
to the smp constructor unchanged (e.g. ``decoder_attention_type``). An entry may override keys
of the shared ``train`` and ``recipe`` sections (e.g. a U-Net in the paper profile beside the
quick one). The output always has 2 classes (background, landslide) as logits N x 2 x H x W.
"""

from __future__ import annotations

import difflib
import inspect
import pickle
import zipfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import segmentation_models_pytorch as smp
import torch
from torch import nn

from mmls.core.config import Section, entry, parse
from mmls.core.errors import InputError
from mmls.core.io import PathLike, atomic_path
from mmls.nn.fusion import FusionUnet, branch_indices

#: Every architecture segmentation-models-pytorch builds by name (``smp.create_model``: Unet,
#: UnetPlusPlus, FPN, Linknet, MAnet, PAN, PSPNet, DeepLabV3, DeepLabV3Plus, UPerNet, Segformer,
#: DPT, ...), keyed by its class name; ``arch`` is matched without regard to case.
ARCHS: dict[str, type[nn.Module]] = {
    cls.__name__: cls for cls in smp.MODEL_ARCHITECTURES_MAPPING.values()
}
FUSION = "FusionUnet"
N_CLASSES = 2
OVERRIDES = ("train", "recipe")
#: Keys the pipeline sets itself (in_channels and classes) or reads itself (the rest).
_RESERVED = ("arch", "encoder_name", "encoder_weights", "classes", "in_channels", "branches")


class ModelConfig(Section):
    """One entry of the ``models`` params section; keys beyond these go to the smp class."""

    model_config = {**Section.model_config, "extra": "allow"}

    arch: str
    encoder_name: str
    encoder_weights: str | None
    branches: list[list[str]] | None = None  # FusionUnet only: band names of each branch
    train: dict[str, Any] | None = None  # overrides of the `train` section for this model
    recipe: dict[str, Any] | None = None  # overrides of the `recipe` section for this model


def read_model(params: Mapping[str, Any], name: str) -> dict[str, Any]:
    """The ``models.<name>`` entry, checked, as a plain dict: the architecture (what
    checkpoints store) plus the overrides, if any."""
    return entry(params, "models", name, ModelConfig).model_dump(exclude_none=True)


def model_section(
    params: Mapping[str, Any], model: str, name: str, schema: type, **extra: Any
) -> Any:
    """``params[name]`` with the ``models.<model>.<name>`` overrides (and ``extra``) applied,
    validated (errors name the override when there is one)."""
    overrides = read_model(params, model).get(name) or {}
    if name not in params:
        raise InputError(f"params.yaml:{name}", "missing section")
    where = f"params.yaml:models.{model}.{name}" if overrides else f"params.yaml:{name}"
    return parse({**params[name], **overrides, **extra}, schema, where)


def architecture(model_cfg: Mapping[str, Any]) -> dict[str, Any]:
    """The entry without its ``train`` / ``recipe`` overrides."""
    return {k: v for k, v in model_cfg.items() if k not in OVERRIDES}


def smp_class(arch: Any, source: str) -> type[nn.Module]:
    """The smp class of ``arch`` (any case), or an error listing every architecture known."""
    for name, cls in ARCHS.items():
        if isinstance(arch, str) and arch.lower() == name.lower():
            return cls
    raise InputError(source, f"unknown arch {arch!r}; known: {sorted([*ARCHS, FUSION])}")


def check_arguments(cls: type[nn.Module], extra: Mapping[str, Any], source: str) -> None:
    """Every key of ``extra`` is a named argument of ``cls`` (smp's constructors swallow unknown
    keyword arguments, so a misspelled one would build the default model silently)."""
    signature = inspect.signature(cls.__init__).parameters
    named = [n for n, p in signature.items() if n != "self" and p.kind is p.POSITIONAL_OR_KEYWORD]
    for key in extra:
        if key not in named:
            close = difflib.get_close_matches(key, named, n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            raise InputError(
                f"{source}.{key}",
                f"not an argument of smp.{cls.__name__}; {hint}"
                f"(its arguments: {', '.join(n for n in named if n not in _RESERVED)})",
            )


def build_model(
    name: str, cfg: Mapping[str, Any], in_channels: int, bands: Sequence[str] | None = None
) -> nn.Module:
    """Build model ``name`` from its ``models.<name>`` params entry with ``in_channels`` inputs.

    Any smp architecture, through ``smp.create_model``; every key other than ``arch``,
    ``encoder_name``, ``encoder_weights`` and the ``train`` / ``recipe`` overrides must be an
    argument of its constructor. SegFormer must use a Mix Transformer (``mit_b*``) encoder, as
    in the SegFormer paper; smp would otherwise silently pair it with a ResNet.
    ``encoder_weights`` is null (random init) by default; ``imagenet`` is an opt-in that needs
    the weights in the local cache (no download here).
    """
    source = f"params.yaml:models.{name}"
    if not isinstance(cfg, Mapping):
        raise InputError(source, "model config must be a mapping")
    if cfg.get("arch") == FUSION:
        return _build_fusion(source, cfg, bands)
    cls = smp_class(cfg.get("arch"), f"{source}.arch")
    encoder = cfg.get("encoder_name")
    if not isinstance(encoder, str) or not encoder:
        raise InputError(source, "encoder_name must be set explicitly (no smp default)")
    if cls.__name__ == "Segformer" and not encoder.startswith("mit_"):
        raise InputError(source, f"Segformer needs a MiT encoder (mit_b0..mit_b5), got {encoder!r}")
    if in_channels < 1:
        raise InputError(source, f"in_channels must be >= 1, got {in_channels}")
    for key in ("classes", "in_channels", "branches"):
        if cfg.get(key) is not None:
            raise InputError(
                f"{source}.{key}",
                "set by the pipeline (bands, 2 classes), not here"
                if key != "branches"
                else f"only a {FUSION} has branches",
            )
    extra = {k: v for k, v in cfg.items() if k not in _RESERVED + OVERRIDES}
    check_arguments(cls, extra, source)
    try:
        return smp.create_model(
            cls.__name__,
            encoder_name=encoder,
            encoder_weights=cfg.get("encoder_weights"),
            in_channels=in_channels,
            classes=N_CLASSES,
            **extra,
        )
    except (TypeError, ValueError, KeyError, RuntimeError, AssertionError) as exc:
        raise InputError(source, f"cannot build {cls.__name__} ({exc})") from exc


@torch.no_grad()
def check_input_size(model: nn.Module, in_channels: int, size_px: int, source: str) -> None:
    """Refuse an architecture that cannot map ``in_channels`` x ``size_px`` x ``size_px`` inputs
    to 2 x ``size_px`` x ``size_px`` logits (one forward pass of zeros in eval mode: no weight,
    buffer or random state changes)."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    try:
        out = model(torch.zeros(1, in_channels, size_px, size_px, device=device))
    except (RuntimeError, ValueError, AssertionError) as exc:
        raise InputError(
            source, f"cannot take {in_channels} bands of {size_px} x {size_px} px ({exc})"
        ) from exc
    finally:
        model.train(was_training)
    if tuple(out.shape) != (1, N_CLASSES, size_px, size_px):
        raise InputError(
            source,
            f"maps {in_channels} x {size_px} x {size_px} inputs to {tuple(out.shape[1:])}, not "
            f"{N_CLASSES} x {size_px} x {size_px} logits",
        )


def _build_fusion(source: str, cfg: Mapping[str, Any], bands: Sequence[str] | None) -> nn.Module:
    if bands is None or not cfg.get("branches"):
        raise InputError(source, f"{FUSION} needs `branches` (band names) and the input bands")
    try:
        idx = branch_indices(cfg["branches"], bands)
        return FusionUnet(idx, cfg["encoder_name"], N_CLASSES, cfg.get("encoder_weights"))
    except (TypeError, ValueError, KeyError) as exc:
        raise InputError(source, f"cannot build {FUSION} ({exc})") from exc


def save_checkpoint(
    path: PathLike, weights: nn.Module | Mapping[str, torch.Tensor], meta: Mapping[str, Any]
) -> None:
    """Write ``meta`` plus the model's ``state_dict`` (CPU tensors) atomically to ``path``.

    ``weights`` is a model or its state_dict. ``meta`` must hold only plain Python types so that
    the file loads with ``torch.load(path, weights_only=True)``; it must name ``model_name``,
    ``model_config`` and ``bands`` (see docs/design.md).
    """
    for key in ("model_name", "model_config", "bands"):
        if key not in meta:
            raise ValueError(f"checkpoint meta lacks {key!r}")
    sd = weights.state_dict() if isinstance(weights, nn.Module) else weights
    state = {k: v.detach().cpu().contiguous().clone() for k, v in sd.items()}
    payload = {**dict(meta), "state_dict": state}
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)


def load_weights_only(path: Path) -> Any:
    """``torch.load(path, weights_only=True)``: tensors and plain Python types, never code.

    A file that holds other pickled objects is refused as untrusted. PyTorch's own message
    suggests retrying with ``weights_only=False``, which would run whatever the file's author
    put in it; that advice is not passed on.
    """
    if not zipfile.is_zipfile(path):
        raise InputError(path, "not a readable checkpoint (not a torch zip file)")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        raise InputError(
            path,
            "not a trusted checkpoint: it holds pickled Python objects beyond tensors and plain "
            "types, which a weights-only load refuses (loading it otherwise could run code from "
            "the file; use a checkpoint or bundle written by this pipeline)",
        ) from exc
    except Exception as exc:  # noqa: BLE001 - any zip/format error means an unreadable file
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise InputError(path, f"not a readable checkpoint ({first})") from exc


def load_checkpoint(path: PathLike, device: torch.device | str) -> tuple[nn.Module, dict[str, Any]]:
    """Load a :func:`save_checkpoint` file: (model in eval mode on ``device``, meta)."""
    p = Path(path)
    if not p.is_file():
        raise InputError(p, "checkpoint not found")
    return checkpoint_model(load_weights_only(p), p, device)


def checkpoint_model(
    payload: Any, path: PathLike, device: torch.device | str
) -> tuple[nn.Module, dict[str, Any]]:
    """(model in eval mode on ``device``, meta) of a loaded :func:`save_checkpoint` payload."""
    if not isinstance(payload, dict) or "state_dict" not in payload:
        raise InputError(path, "checkpoint has no state_dict")
    meta = {k: v for k, v in payload.items() if k != "state_dict"}
    model = build_model(
        meta["model_name"], meta["model_config"], len(meta["bands"]), bands=meta["bands"]
    )
    model.load_state_dict(payload["state_dict"])
    model.to(device)
    model.eval()
    return model, meta
