"""Training under the unified MMLSv2 configuration (Sec. 4.1), resumable after interruption.

Paper configuration: Adam (lr 0.001), cross entropy, StepLR (x0.1 every 30 epochs), 100 epochs,
batch 128, all seven bands, random flips and rotations; the checkpoint with the highest
*validation* mIoU is kept. The defaults in params.yaml are a quick profile of the same recipe
(fewer epochs, smaller batches); see params.yaml and the README for the one-line switch.

Interruption: after every epoch the full training state (model, optimizer, scheduler, the
torch/numpy/python RNG states, the shuffle/augmentation generator, best-so-far weights, history
and per-epoch seconds) is written atomically to ``resume.pt`` with a fingerprint of the
configuration, device type, thread count, the trainer's source code and the training/validation
data. A later run with the same fingerprint
continues after the last completed epoch and ends with bitwise the same weights as an
uninterrupted run on the same device and thread count; a state with another fingerprint is
ignored. ``epochs`` is not part of the fingerprint (nothing before the last epoch depends on
it), so raising ``train.epochs`` extends a finished run instead of restarting it.
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import json
import math
import random
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import segmentation_models_pytorch as smp
import torch
from torch import nn
from tqdm import tqdm

from mmls.bands import BAND_NAMES, band_indices
from mmls.errors import InputError
from mmls.evaluation import evaluate, to_device
from mmls.io import PathLike, atomic_path
from mmls.metrics import scores
from mmls.models import build_model, resolve_device, save_checkpoint
from mmls.store import TileDataset, band_stats, epoch_plan, load_split, make_loader

HISTORY_COLUMNS: tuple[str, ...] = (
    "epoch",
    "train_loss",
    "val_loss",
    "val_miou",
    "val_iou_fg",
    "lr",
    "seconds",
)
RESUME_FORMAT = 1


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """The ``train`` params section (plus the top-level ``seed``)."""

    epochs: int = 100
    batch_size: int = 128
    lr: float = 0.001
    lr_step_size: int = 30
    lr_gamma: float = 0.1
    bands: tuple[str, ...] = BAND_NAMES
    augment: bool = True
    seed: int = 42
    device: str = "auto"
    threads: int | None = None
    channels_last: bool = False
    deterministic: bool = True
    num_workers: int = 0
    eval_batch_size: int = 16

    @classmethod
    def from_params(
        cls, params: Mapping[str, Any], bands: Sequence[str] | None = None
    ) -> TrainConfig:
        """Read ``params['train']`` and ``params['seed']``; ``bands`` overrides ``train.bands``."""
        section = params.get("train")
        if not isinstance(section, Mapping):
            raise InputError("params.yaml", "missing `train` section")
        fields = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(section) - fields)
        if unknown:
            raise InputError("params.yaml", f"unknown train key(s) {unknown}")
        values = dict(section)
        values["seed"] = params.get("seed", cls.seed)
        for key in ("lr", "lr_gamma"):  # YAML reads `1e-3` (no dot) as a string
            if key in values:
                try:
                    values[key] = float(values[key])
                except (TypeError, ValueError) as exc:
                    raise InputError("params.yaml", f"train.{key} must be a number") from exc
        if bands is not None:
            values["bands"] = bands
        values["bands"] = tuple(values.get("bands", BAND_NAMES))
        cfg = cls(**values)
        cfg.validate()
        return cfg

    def validate(self) -> None:
        """Raise :class:`InputError` on values the trainer cannot honour."""
        checks = [
            (isinstance(self.epochs, int) and self.epochs >= 1, "train.epochs must be >= 1"),
            (
                isinstance(self.batch_size, int) and self.batch_size >= 2,
                "train.batch_size must be >= 2 (BatchNorm after global pooling in "
                "DeepLabV3/PSPNet cannot train on one image)",
            ),
            (self.lr > 0, "train.lr must be > 0"),
            (
                isinstance(self.lr_step_size, int) and self.lr_step_size >= 1,
                "train.lr_step_size must be >= 1",
            ),
            (0 < self.lr_gamma <= 1, "train.lr_gamma must be in (0, 1]"),
            (
                self.device in ("auto", "cpu", "cuda") or self.device.startswith("cuda:"),
                "train.device must be auto, cpu, cuda or cuda:N",
            ),
            (
                self.threads is None or (isinstance(self.threads, int) and self.threads >= 1),
                "train.threads must be null or >= 1",
            ),
            (
                isinstance(self.num_workers, int) and self.num_workers >= 0,
                "train.num_workers must be >= 0",
            ),
            (
                isinstance(self.eval_batch_size, int) and self.eval_batch_size >= 1,
                "train.eval_batch_size must be >= 1",
            ),
        ]
        for ok, message in checks:
            if not ok:
                raise InputError("params.yaml", message)
        band_indices(self.bands, source="params.yaml:train.bands")

    def as_dict(self) -> dict[str, Any]:
        """Plain-python view (for checkpoints and JSON)."""
        d = dataclasses.asdict(self)
        d["bands"] = list(self.bands)
        return d


# ------------------------------------------------------------------------------ torch set-up
def seed_everything(seed: int) -> None:
    """Seed python, numpy and torch (all devices)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)  # noqa: NPY002 - seeds the legacy global RNG on purpose
    torch.manual_seed(seed)


def setup_torch(cfg: TrainConfig) -> torch.device:
    """Fix thread count and cuDNN mode (deterministic XOR benchmark); return the device."""
    if cfg.threads is not None:
        torch.set_num_threads(cfg.threads)
    device = resolve_device(cfg.device)
    # Never both: deterministic kernels, or autotuned (benchmark) ones.
    torch.backends.cudnn.deterministic = cfg.deterministic
    torch.backends.cudnn.benchmark = not cfg.deterministic
    return device


def _rng_state(shuffle: torch.Generator) -> dict[str, Any]:
    np_state = np.random.get_state()  # noqa: NPY002
    py_state = random.getstate()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy": {
            "key": torch.from_numpy(np.asarray(np_state[1], dtype=np.int64)),
            "pos": int(np_state[2]),
            "has_gauss": int(np_state[3]),
            "cached_gaussian": float(np_state[4]),
        },
        "python": {"version": py_state[0], "state": list(py_state[1]), "gauss": py_state[2]},
        "shuffle": shuffle.get_state(),
    }


def _set_rng_state(state: Mapping[str, Any], shuffle: torch.Generator) -> None:
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    n = state["numpy"]
    key = n["key"].numpy().astype(np.uint32)
    legacy = ("MT19937", key, n["pos"], n["has_gauss"], n["cached_gaussian"])
    np.random.set_state(legacy)  # noqa: NPY002
    p = state["python"]
    random.setstate((p["version"], tuple(p["state"]), p["gauss"]))
    shuffle.set_state(state["shuffle"])


# ------------------------------------------------------------------------ fingerprint / resume
def data_fingerprint(store_dir: PathLike, splits: Sequence[str] = ("train", "val")) -> str:
    """SHA-256 over the store's meta and the arrays of ``splits`` (what training reads)."""
    d = Path(store_dir)
    h = hashlib.sha256()
    names = ["meta.json"] + [f"{s}_{k}.npy" for s in splits for k in ("images", "masks")]
    for name in names:
        with open(d / name, "rb") as fh:
            h.update(name.encode())
            h.update(hashlib.file_digest(fh, "sha256").digest())
    return h.hexdigest()


#: Sources whose change invalidates a resume state (a fixed bug must not be resumed around).
CODE_FILES: tuple[str, ...] = (
    "training.py",
    "models.py",
    "store.py",
    "evaluation.py",
    "metrics.py",
    "bands.py",
)


def code_fingerprint() -> str:
    """SHA-256 over the trainer's own sources and the torch / smp versions."""
    h = hashlib.sha256(f"{torch.__version__} {smp.__version__}".encode())
    here = Path(__file__).resolve().parent
    for name in CODE_FILES:
        h.update(name.encode())
        h.update((here / name).read_bytes())
    return h.hexdigest()


def run_fingerprint(
    model_name: str, model_cfg: Mapping[str, Any], cfg: TrainConfig, device: torch.device, data: str
) -> str:
    """Fingerprint of all that shapes the trained weights: config (``epochs`` and workers aside),
    device type, thread count, training code and data."""
    train = cfg.as_dict()
    for key in ("epochs", "num_workers"):
        train.pop(key)
    record = {
        "format": RESUME_FORMAT,
        "model_name": model_name,
        "model_config": dict(model_cfg),
        "train": train,
        "device": device.type,
        "threads": torch.get_num_threads(),
        "data": data,
        "code": code_fingerprint(),
    }
    return hashlib.sha256(json.dumps(record, sort_keys=True).encode()).hexdigest()


def _cpu_state(sd: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: v.detach().to("cpu", copy=True) for k, v in sd.items()}


def _load_resume(path: Path, fingerprint: str, max_epoch: int) -> dict[str, Any] | None:
    if not path.is_file():
        return None
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - a damaged state is ignored, never fatal
        print(f"ignoring unreadable resume state {path}: {exc}", file=sys.stderr)
        return None
    if not isinstance(state, dict) or state.get("fingerprint") != fingerprint:
        print(f"ignoring stale resume state {path} (config or data changed)", file=sys.stderr)
        return None
    if state["epoch"] > max_epoch:
        print(f"ignoring resume state {path}: it is past epoch {max_epoch}", file=sys.stderr)
        return None
    return state


def write_history(path: PathLike, history: Sequence[Mapping[str, Any]]) -> None:
    """Per-epoch history CSV (columns :data:`HISTORY_COLUMNS`), atomically."""
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(HISTORY_COLUMNS))
        writer.writeheader()
        for row in history:
            writer.writerow({k: row[k] for k in HISTORY_COLUMNS})


# ----------------------------------------------------------------------------------- training
def train_model(
    model_name: str,
    model_cfg: Mapping[str, Any],
    cfg: TrainConfig,
    store_dir: PathLike,
    out_dir: PathLike,
    *,
    progress: bool = True,
    on_epoch_end: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    """Train ``model_name`` on the store's train split, select on val mIoU (MMLSv2 Sec. 4.1).

    Writes ``out_dir/best.pt`` (highest validation mIoU; ties keep the earlier epoch),
    ``out_dir/history.csv`` and the resumable ``out_dir/resume.pt``. Returns the flat training
    record for ``metrics/train/<model>.json``. ``on_epoch_end(epoch)`` runs after each epoch's
    state is saved (tests use it to simulate a kill).
    """
    out = Path(out_dir)
    device = setup_torch(cfg)
    train_split = load_split(store_dir, "train")
    val_split = load_split(store_dir, "val")
    if len(train_split) < 2:
        raise InputError(Path(store_dir) / "train_images.npy", "training needs >= 2 tiles")
    if len(val_split) < 1:
        raise InputError(Path(store_dir) / "val_images.npy", "model selection needs val tiles")
    band_idx = band_indices(cfg.bands, available=train_split.bands, source="params.yaml:bands")
    mean, std = band_stats(train_split.images, band_idx, train_split.nodata)
    train_ds = TileDataset(
        train_split.images, train_split.masks, band_idx, mean, std, train_split.nodata
    )
    val_ds = TileDataset(val_split.images, val_split.masks, band_idx, mean, std, val_split.nodata)
    fingerprint = run_fingerprint(model_name, model_cfg, cfg, device, data_fingerprint(store_dir))

    seed_everything(cfg.seed)
    model = build_model(model_name, model_cfg, in_channels=len(band_idx)).to(device)
    if cfg.channels_last:
        model.to(memory_format=torch.channels_last)
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    scheduler = torch.optim.lr_scheduler.StepLR(
        optimizer, step_size=cfg.lr_step_size, gamma=cfg.lr_gamma
    )
    shuffle = torch.Generator().manual_seed(cfg.seed)
    loss_fn = nn.CrossEntropyLoss()

    epoch = 0
    best_epoch, best_miou, best_state = 0, -math.inf, None
    history: list[dict[str, Any]] = []
    resume_path = out / "resume.pt"
    state = _load_resume(resume_path, fingerprint, cfg.epochs)
    if state is not None:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        _set_rng_state(state["rng"], shuffle)
        epoch = state["epoch"]
        best_epoch, best_miou = state["best_epoch"], state["best_val_miou"]
        best_state = state["best_state"] if state["best_state"] is not None else state["model"]
        history = list(state["history"])
        if progress:
            print(f"{model_name}: resuming after epoch {epoch}", file=sys.stderr)
    resumed_from = epoch

    meta = {
        "model_name": model_name,
        "model_config": dict(model_cfg),
        "bands": list(cfg.bands),
        "in_channels": len(band_idx),
        "train_config": cfg.as_dict(),
        "normalization": {"mean": mean, "std": std, "nodata": train_split.nodata},
        "tile_size": int(train_split.images.shape[-1]),
        "fingerprint": fingerprint,
        "versions": {"torch": str(torch.__version__), "smp": str(smp.__version__)},
    }
    pin = device.type == "cuda"
    epochs_bar = tqdm(
        range(epoch + 1, cfg.epochs + 1),
        desc=model_name,
        unit="epoch",
        initial=epoch,
        total=cfg.epochs,
        disable=not progress,
    )
    for epoch in epochs_bar:
        t0 = time.perf_counter()
        lr = optimizer.param_groups[0]["lr"]
        model.train()
        batches = epoch_plan(len(train_ds), cfg.batch_size, shuffle, cfg.augment)
        loader = make_loader(train_ds, batches, cfg.num_workers, pin)
        loss_sum = torch.zeros((), dtype=torch.float64, device=device)
        for x, y in tqdm(
            loader, desc=f"epoch {epoch}", unit="batch", leave=False, disable=not progress
        ):
            x = to_device(x, device, cfg.channels_last)
            y = y.to(device, non_blocking=True)
            optimizer.zero_grad(set_to_none=True)
            loss = loss_fn(model(x), y)
            loss.backward()
            optimizer.step()
            loss_sum += loss.detach().double() * len(y)  # no host sync per step
        scheduler.step()
        val = evaluate(
            model, val_ds, device, cfg.eval_batch_size, cfg.channels_last, cfg.num_workers
        )
        val_scores = scores(val.confusion)
        row = {
            "epoch": epoch,
            "train_loss": float(loss_sum) / len(train_ds),
            "val_loss": val.loss,
            "val_miou": val_scores["miou"],
            "val_iou_fg": val_scores["iou_fg"],
            "lr": lr,
            "seconds": time.perf_counter() - t0,
        }
        history.append(row)
        improved = val_scores["miou"] > best_miou
        if improved:
            best_epoch, best_miou = epoch, val_scores["miou"]
            best_state = _cpu_state(model.state_dict())
        current = best_state if improved else _cpu_state(model.state_dict())
        state = {
            "format": RESUME_FORMAT,
            "fingerprint": fingerprint,
            "epoch": epoch,
            "model": current,
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(),
            "rng": _rng_state(shuffle),
            "best_epoch": best_epoch,
            "best_val_miou": best_miou,
            "best_state": None if best_epoch == epoch else best_state,  # None: same as model
            "history": history,
        }
        with atomic_path(resume_path) as tmp:
            torch.save(state, tmp)
        if improved:
            save_checkpoint(
                out / "best.pt", best_state, {**meta, "epoch": best_epoch, "val_miou": best_miou}
            )
        write_history(out / "history.csv", history)
        epochs_bar.set_postfix(
            loss=f"{row['train_loss']:.3f}", val_miou=f"{row['val_miou']:.3f}", best=best_epoch
        )
        if on_epoch_end is not None:
            on_epoch_end(epoch)
    epochs_bar.close()

    # Outputs are (re)written from the state, so a run resumed after its last epoch (DVC deletes
    # non-persistent outputs before running a stage) still produces them.
    assert best_state is not None
    save_checkpoint(
        out / "best.pt", best_state, {**meta, "epoch": best_epoch, "val_miou": best_miou}
    )
    write_history(out / "history.csv", history)
    seconds = sum(float(r["seconds"]) for r in history)
    return {
        "train_time_h": seconds / 3600.0,
        "best_epoch": best_epoch,
        "best_val_miou": best_miou,
        "epochs": cfg.epochs,
        "batch_size": cfg.batch_size,
        "n_train": len(train_ds),
        "n_val": len(val_ds),
        "device": str(device),
        "torch_threads": torch.get_num_threads(),
        "channels_last": cfg.channels_last,
        "resumed_from_epoch": resumed_from,
    }
