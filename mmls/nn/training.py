"""Training under the unified MMLSv2 configuration (Sec. 4.1), resumable after interruption.

Paper configuration: Adam (lr 0.001), cross entropy, StepLR (x0.1 every 30 epochs), 100 epochs,
batch 128, all seven bands, random flips and rotations; the checkpoint with the highest
*validation* mIoU is kept (ties keep the earlier epoch). The defaults in params.yaml are a quick
profile of the same recipe (fewer epochs, smaller batches); the ``recipe`` section adds the
choices beyond the paper (mmls/nn/recipe.py), each off by default.

The pieces: :func:`read_run` (a model entry with its overrides), :func:`build_parts` (seeded
model, optimizer, scheduler, shuffle generator, EMA), :func:`train_epoch`, :func:`validate`, and
:func:`fit`, the loop that ties them to the resumable state (:mod:`mmls.nn.resume`), the DVCLive
log (:mod:`mmls.nn.tracking`) and, under torchrun, the other processes (:mod:`mmls.nn.distributed`).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import segmentation_models_pytorch as smp
import torch
from torch import nn
from tqdm import tqdm

from mmls.core.config import ParamError, Section, read_seeds
from mmls.core.errors import InputError
from mmls.data.bands import band_indices
from mmls.data.context import context_index, rows_mask
from mmls.data.dataset import DeviceTileSet, TileDataset, epoch_plan, make_loader
from mmls.data.normalization import Standardizer, band_stats
from mmls.data.store import IMAGES, MASKS, META, Store
from mmls.metrics.confusion import scores
from mmls.nn.device import autocast, check_amp, resolve_device, set_threads, to_device
from mmls.nn.distributed import World, barrier, join, leave, shard, total, unwrap, wrap
from mmls.nn.models import (
    architecture,
    build_model,
    check_input_size,
    model_section,
    read_model,
    save_checkpoint,
)
from mmls.nn.recipe import RecipeConfig, make_ema, make_loss, make_optimizer, make_scheduler
from mmls.nn.resume import (
    cpu_copy,
    data_fingerprint,
    load_state,
    rng_state,
    run_fingerprint,
    save_state,
    seed_everything,
    set_rng_state,
)
from mmls.nn.tracking import EpochLog
from mmls.nn.validation import evaluate


class TrainConfig(Section):
    """The ``train`` params section (shared by every model: the paper's unified configuration)."""

    epochs: int
    batch_size: int  # >= 2: BatchNorm after global pooling needs two images
    lr: float
    lr_step_size: int  # StepLR: lr x lr_gamma every lr_step_size epochs
    lr_gamma: float
    bands: list[str]  # input bands by name (see `bands`); paper: all seven
    augment: bool  # random flips + 90-degree rotations, same transform on image and mask
    device: str  # auto = cuda when available, else cpu
    threads: int | None  # torch.set_num_threads (fixed for reproducibility); null = default
    channels_last: bool  # memory layout of model and inputs
    deterministic: bool  # cudnn.deterministic; false = cudnn.benchmark instead (never both)
    num_workers: int  # DataLoader workers (the memory-mapped store rarely needs any)
    eval_batch_size: int  # batch size of the per-epoch validation pass
    amp: Literal["fp32", "bf16", "fp16"]  # mixed precision: bf16 on CUDA or CPU, fp16 CUDA only
    store_on_device: bool  # CUDA: keep the standardised training set on the GPU when it fits

    def check(self) -> None:
        rules = [
            ("epochs", self.epochs >= 1, "must be >= 1"),
            ("batch_size", self.batch_size >= 2, "must be >= 2 (BatchNorm after global pooling)"),
            ("lr", self.lr > 0, "must be > 0"),
            ("lr_step_size", self.lr_step_size >= 1, "must be >= 1"),
            ("lr_gamma", 0 < self.lr_gamma <= 1, "must be in (0, 1]"),
            ("threads", self.threads is None or self.threads >= 1, "must be null or >= 1"),
            ("num_workers", self.num_workers >= 0, "must be >= 0"),
            ("eval_batch_size", self.eval_batch_size >= 1, "must be >= 1"),
        ]
        for key, ok, problem in rules:
            if not ok:
                raise ParamError(key, problem)
        try:
            band_indices(self.bands)
        except InputError as exc:
            raise ParamError("bands", exc.problem) from exc


@dataclass(frozen=True)
class Run:
    """One training: an architecture, its training config and recipe, and its seed."""

    model_name: str
    model_cfg: Mapping[str, Any]  # the architecture (checkpoints store it)
    cfg: TrainConfig  # its `bands` are the model's inputs
    recipe: RecipeConfig
    seed: int

    def describe(self) -> dict[str, Any]:
        train = self.cfg.model_dump()
        train.pop("num_workers")  # does not change the weights
        return {
            "model_name": self.model_name,
            "model_config": dict(self.model_cfg),
            "train": train,
            "recipe": self.recipe.model_dump(),
            "seed": self.seed,
        }


def read_run(
    params: Mapping[str, Any], model: str, seed: int, bands: Sequence[str] | None = None
) -> Run:
    """The training of ``models.<model>`` with seed ``seed`` (which ``seeds`` must list), on
    ``bands`` instead of ``train.bands`` when given (band ablation)."""
    if seed not in read_seeds(params):
        raise InputError("params.yaml:seeds", f"does not list seed {seed}")
    extra = {"bands": list(bands)} if bands is not None else {}
    cfg = model_section(params, model, "train", TrainConfig, **extra)
    recipe = model_section(params, model, "recipe", RecipeConfig)
    return Run(model, architecture(read_model(params, model)), cfg, recipe, seed)


@dataclass
class Parts:
    """What a training step needs; built in one fixed order so that the seed fixes them all."""

    model: nn.Module  # wrapped in DistributedDataParallel under torchrun
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    per_batch: bool  # the scheduler steps after every batch (else after every epoch)
    shuffle: torch.Generator
    loss_fn: nn.Module
    ema: torch.optim.swa_utils.AveragedModel | None
    scaler: torch.amp.GradScaler | None  # fp16 on CUDA only

    @property
    def evaluated(self) -> nn.Module:
        """The weights that are validated, selected and saved: the EMA ones when averaging."""
        return self.ema.module if self.ema is not None else unwrap(self.model)


def setup_torch(cfg: TrainConfig, world: World) -> torch.device:
    """Fix thread count and cuDNN mode (deterministic XOR benchmark); return the device."""
    set_threads(cfg.threads)
    device = resolve_device(cfg.device, "params.yaml:train.device")
    check_amp(device, cfg.amp, "params.yaml:train.amp")
    if device.type == "cuda" and world.size > 1:
        device = torch.device("cuda", world.local_rank)
    torch.backends.cudnn.deterministic = cfg.deterministic
    torch.backends.cudnn.benchmark = not cfg.deterministic
    return device


def build_parts(
    run: Run, bands: Sequence[str], steps_per_epoch: int, device: torch.device, world: World
) -> Parts:
    """Seed everything, then build model, optimizer, schedule, shuffle generator, EMA."""
    seed_everything(run.seed)
    model = build_model(run.model_name, run.model_cfg, len(bands), bands=bands).to(device)
    if run.cfg.channels_last:
        model.to(memory_format=torch.channels_last)
    optimizer = make_optimizer(run.recipe, model.parameters(), run.cfg.lr)
    scheduler, per_batch = make_scheduler(
        run.recipe,
        optimizer,
        epochs=run.cfg.epochs,
        steps_per_epoch=steps_per_epoch,
        step_size=run.cfg.lr_step_size,
        gamma=run.cfg.lr_gamma,
    )
    shuffle = torch.Generator().manual_seed(run.seed)
    ema = make_ema(run.recipe, model)
    fp16 = device.type == "cuda" and run.cfg.amp == "fp16"
    scaler = torch.amp.GradScaler("cuda") if fp16 else None
    model = wrap(model, world, device)
    return Parts(
        model, optimizer, scheduler, per_batch, shuffle, make_loss(run.recipe), ema, scaler
    )


def _batches(data: TileDataset, on_device: DeviceTileSet | None, plan, cfg: TrainConfig, device):
    if on_device is not None:
        return (on_device.batch(keys) for keys in plan)
    return make_loader(data, plan, cfg.num_workers, pin=device.type == "cuda")


def train_epoch(
    parts: Parts,
    data: TileDataset,
    cfg: TrainConfig,
    device: torch.device,
    world: World,
    on_device: DeviceTileSet | None = None,
) -> float:
    """One pass over ``data`` in a seeded shuffled order; returns the mean training loss."""
    parts.model.train()
    plan = epoch_plan(len(data), cfg.batch_size, parts.shuffle, cfg.augment)
    loss_sum = torch.zeros((), dtype=torch.float64, device=device)
    seen = 0
    for x, y in tqdm(
        _batches(data, on_device, plan, cfg, device),
        total=len(plan),
        leave=False,
        disable=None,
        unit="batch",
    ):
        x, y = shard(x, y, world)
        x = to_device(x, device, cfg.channels_last)
        y = y.to(device, non_blocking=True)
        parts.optimizer.zero_grad(set_to_none=True)
        with autocast(device, cfg.amp):
            loss = parts.loss_fn(parts.model(x), y)
        if parts.scaler is not None:
            parts.scaler.scale(loss).backward()
            parts.scaler.step(parts.optimizer)
            parts.scaler.update()
        else:
            loss.backward()
            parts.optimizer.step()
        if parts.ema is not None:
            parts.ema.update_parameters(unwrap(parts.model))
        if parts.per_batch:
            parts.scheduler.step()
        loss_sum += loss.detach().double() * len(y)  # no host sync per step
        seen += len(y)
    if not parts.per_batch:
        parts.scheduler.step()
    both = total(
        torch.stack([loss_sum, torch.tensor(float(seen), dtype=torch.float64, device=device)]),
        world,
    )
    return float(both[0] / both[1])


def validate(
    model: nn.Module, data: TileDataset, cfg: TrainConfig, device: torch.device
) -> tuple[float, dict[str, float]]:
    """(mean validation cross entropy, pooled validation scores) with argmax labels."""
    result = evaluate(
        model, data, device, cfg.eval_batch_size, cfg.channels_last, cfg.num_workers, amp=cfg.amp
    )
    return result.loss, scores(result.confusion)


def snapshot(
    parts: Parts, fingerprint: str, epoch: int, best: dict[str, Any], history: list[dict]
) -> dict[str, Any]:
    """The resumable state after ``epoch`` (``best_state`` None: same as the evaluated model)."""
    evaluated = best["state"] if best["epoch"] == epoch else cpu_copy(parts.evaluated.state_dict())
    return {
        "fingerprint": fingerprint,
        "epoch": epoch,
        "model": cpu_copy(unwrap(parts.model).state_dict()),
        "evaluated": evaluated if parts.ema is not None else None,
        "ema": None if parts.ema is None else cpu_copy(parts.ema.state_dict()),
        "optimizer": parts.optimizer.state_dict(),
        "scheduler": parts.scheduler.state_dict(),
        "scaler": None if parts.scaler is None else parts.scaler.state_dict(),
        "rng": rng_state(parts.shuffle),
        "best_epoch": best["epoch"],
        "best_val_miou": best["miou"],
        "best_state": None if best["epoch"] == epoch else best["state"],
        "history": history,
    }


def restore(parts: Parts, state: Mapping[str, Any]) -> tuple[dict[str, Any], list[dict]]:
    """Load a :func:`snapshot` into ``parts``; returns (best, history)."""
    unwrap(parts.model).load_state_dict(state["model"])
    if parts.ema is not None:
        parts.ema.load_state_dict(state["ema"])
    parts.optimizer.load_state_dict(state["optimizer"])
    parts.scheduler.load_state_dict(state["scheduler"])
    if parts.scaler is not None and state["scaler"] is not None:
        parts.scaler.load_state_dict(state["scaler"])
    set_rng_state(state["rng"], parts.shuffle)
    last = state["evaluated"] if state["evaluated"] is not None else state["model"]
    best_state = state["best_state"] if state["best_state"] is not None else last
    best = {"epoch": state["best_epoch"], "miou": state["best_val_miou"], "state": best_state}
    return best, list(state["history"])


def _device_set(data: TileDataset, cfg: TrainConfig, device: torch.device) -> DeviceTileSet | None:
    """The training set on the GPU when asked for and it fits in half the free memory."""
    if device.type != "cuda" or not cfg.store_on_device:
        return None
    h, w = (s + 2 * data.context_px for s in data.masks.shape[-2:])
    need = len(data) * (len(data.band_idx) * 4 + 8) * h * w
    free, _ = torch.cuda.mem_get_info(device)
    if need > free / 2:
        print(f"training set ({need / 2**30:.1f} GiB) does not fit on the GPU: read per batch")
        return None
    return DeviceTileSet(data, device)


@dataclass
class Inputs:
    """The standardised training and validation sets of one run, and their band statistics."""

    train: TileDataset
    val: TileDataset
    band_idx: list[int]
    mean: list[float]
    std: list[float]


def prepare_inputs(
    run: Run, store: Store, train_rows: Sequence[int], val_rows: Sequence[int]
) -> Inputs:
    """Band statistics of the training rows; training windows take context only from the
    training rows' imagery, validation windows from the training and validation rows'."""
    cfg = run.cfg
    if len(train_rows) < 2:
        raise InputError(store.path / IMAGES, "training needs >= 2 tiles")
    if len(val_rows) < 1:
        raise InputError(store.path / IMAGES, "model selection needs validation tiles")
    band_idx = band_indices(cfg.bands, available=store.bands, source="params.yaml:train.bands")
    mean, std = band_stats(store.images, train_rows, band_idx, store.nodata)
    standardize = Standardizer(mean, std, store.nodata)
    context = context_index(store, run.recipe.context_px)
    n = len(store.patches)

    def dataset(rows: Sequence[int], allowed: np.ndarray) -> TileDataset:
        return TileDataset(store.images, store.masks, rows, band_idx, standardize, context, allowed)

    return Inputs(
        dataset(train_rows, rows_mask(n, train_rows)),
        dataset(val_rows, rows_mask(n, train_rows, val_rows)),
        band_idx,
        mean,
        std,
    )


def checkpoint_meta(run: Run, store: Store, inputs: Inputs, fingerprint: str) -> dict[str, Any]:
    """What a checkpoint records beside its weights (mmls.inference.predictor reads it back)."""
    return {
        "model_name": run.model_name,
        "model_config": dict(run.model_cfg),
        "bands": list(run.cfg.bands),
        "in_channels": len(inputs.band_idx),
        "train_config": run.cfg.model_dump(),
        "recipe": run.recipe.model_dump(),
        "seed": run.seed,
        "normalization": {"mean": inputs.mean, "std": inputs.std, "nodata": store.nodata},
        "tile_size": int(store.size),
        "fingerprint": fingerprint,
        "versions": {"torch": str(torch.__version__), "smp": str(smp.__version__)},
    }


def run_epoch(
    parts: Parts,
    inputs: Inputs,
    cfg: TrainConfig,
    device: torch.device,
    world: World,
    on_device: DeviceTileSet | None,
    epoch: int,
) -> dict[str, Any]:
    """Train one epoch, validate; the epoch's log row."""
    t0 = time.perf_counter()
    lr = parts.optimizer.param_groups[0]["lr"]
    train_loss = train_epoch(parts, inputs.train, cfg, device, world, on_device)
    val_loss, val = validate(parts.evaluated, inputs.val, cfg, device)
    return {
        "epoch": epoch,
        "train_loss": train_loss,
        "val_loss": val_loss,
        "val_miou": val["miou"],
        "val_iou_fg": val["iou_fg"],
        "lr": lr,
        "epoch_seconds": time.perf_counter() - t0,
    }


def _fingerprint(
    run: Run,
    store: Store,
    train_rows: Sequence[int],
    val_rows: Sequence[int],
    device: torch.device,
    world: World,
) -> str:
    """What a resumable state must match to be resumed: the run's description, device type,
    thread count, store bytes and rows, world size (and, in :func:`run_fingerprint`, the code)."""
    files = [store.path / f for f in (META, IMAGES, MASKS)]
    data = data_fingerprint(files, {"train": train_rows, "val": val_rows})
    return run_fingerprint(
        {
            **run.describe(),
            "device": device.type,
            "threads": torch.get_num_threads(),
            "data": data,
            "world": world.size,
        }
    )


def _steps_per_epoch(n_train: int, batch_size: int) -> int:
    """Optimizer steps per epoch (per-batch schedules need it): a last batch of one image is
    merged into the previous one (BatchNorm after global pooling needs two)."""
    steps = math.ceil(n_train / batch_size)
    steps -= int(n_train % batch_size == 1 and steps > 1)  # a batch of 1 is merged
    return steps


@dataclass
class _Session:
    """What one :func:`fit` sets up before its first epoch, in the order it is set up."""

    world: World
    device: torch.device
    inputs: Inputs
    fingerprint: str
    log: EpochLog | None  # on the main process only
    parts: Parts
    on_device: DeviceTileSet | None


def _start(
    run: Run,
    store: Store,
    train_rows: Sequence[int],
    val_rows: Sequence[int],
    log_dir: Path,
) -> _Session:
    """Join the process group, fix torch's threads and cuDNN mode, standardise the inputs,
    fingerprint the run, open the log and build the seeded parts: in this order, which fixes
    the RNG streams the training draws from."""
    cfg = run.cfg
    world = join(resolve_device(cfg.device, "params.yaml:train.device").type)
    device = setup_torch(cfg, world)
    inputs = prepare_inputs(run, store, train_rows, val_rows)
    fingerprint = _fingerprint(run, store, train_rows, val_rows, device, world)
    log = EpochLog(log_dir) if world.main else None
    steps = _steps_per_epoch(len(inputs.train), cfg.batch_size)
    parts = build_parts(run, cfg.bands, steps, device, world)
    window_px = int(store.size) + 2 * run.recipe.context_px
    source = f"params.yaml:models.{run.model_name}"
    check_input_size(unwrap(parts.model), len(cfg.bands), window_px, source)
    on_device = _device_set(inputs.train, cfg, device)
    return _Session(world, device, inputs, fingerprint, log, parts, on_device)


def _resume(session: _Session, run: Run, resume_file: Path) -> tuple[dict[str, Any], list[dict]]:
    """(best, history): restored from ``resume_file`` when it matches the run's fingerprint
    (its epochs replayed into the log), else a fresh start."""
    best: dict[str, Any] = {"epoch": 0, "miou": -math.inf, "state": None}
    history: list[dict] = []
    state = load_state(resume_file, session.fingerprint, run.cfg.epochs)
    if state is not None:
        best, history = restore(session.parts, state)
        print(f"{run.model_name}: resuming after epoch {state['epoch']}")
    for row in history if session.log is not None else []:
        session.log.epoch(row)
    return best, history


def _train_epochs(
    session: _Session,
    run: Run,
    best: dict[str, Any],
    history: list[dict],
    resume_file: Path,
    on_epoch_end: Callable[[int], None] | None,
) -> dict[str, Any]:
    """Train the epochs after those in ``history`` (appending their rows), keep the best
    validation mIoU (ties keep the earlier epoch), save the resumable state and log each
    epoch on the main process; returns the best."""
    cfg, parts, log = run.cfg, session.parts, session.log
    for epoch in range(len(history) + 1, cfg.epochs + 1):
        row = run_epoch(
            parts, session.inputs, cfg, session.device, session.world, session.on_device, epoch
        )
        history.append(row)
        if row["val_miou"] > best["miou"]:
            best = {"epoch": epoch, "miou": row["val_miou"]}
            best["state"] = cpu_copy(parts.evaluated.state_dict())
        if log is not None:
            save_state(resume_file, snapshot(parts, session.fingerprint, epoch, best, history))
            log.epoch(row)
        print(
            f"{run.model_name} epoch {epoch}: " + ", ".join(f"{k}={v:.4g}" for k, v in row.items())
        )
        if on_epoch_end is not None:
            on_epoch_end(epoch)
    return best


def _finish(
    session: _Session,
    log: EpochLog,
    run: Run,
    store: Store,
    best: Mapping[str, Any],
    summary: Mapping[str, Any],
    checkpoint: Path,
    resume_file: Path,
) -> None:
    """On the main process: save the best weights with their meta, close the log with the
    summary, and delete the resumable state (the run is complete)."""
    meta = checkpoint_meta(run, store, session.inputs, session.fingerprint)
    save_checkpoint(
        checkpoint, best["state"], {**meta, "epoch": best["epoch"], "val_miou": best["miou"]}
    )
    log.finish(summary)
    resume_file.unlink(missing_ok=True)


def fit(
    run: Run,
    store: Store,
    train_rows: Sequence[int],
    val_rows: Sequence[int],
    checkpoint: Path,
    log_dir: Path,
    resume_file: Path,
    *,
    on_epoch_end: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    """Train ``run`` on store ``train_rows``, keep the best ``val_rows`` mIoU (Sec. 4.1).

    Writes ``checkpoint`` (best epoch), the DVCLive log in ``log_dir`` and, after every epoch,
    the resumable state ``resume_file`` (deleted at the end). Returns the run's summary.
    ``on_epoch_end(epoch)`` runs after each epoch's state is saved (tests simulate a kill).
    """
    session = _start(run, store, train_rows, val_rows, log_dir)
    best, history = _resume(session, run, resume_file)
    resumed_from = len(history)
    best = _train_epochs(session, run, best, history, resume_file, on_epoch_end)
    summary = run_summary(
        run, session.inputs, history, best, session.device, session.world, resumed_from
    )
    if session.log is not None:
        _finish(session, session.log, run, store, best, summary, checkpoint, resume_file)
    barrier(session.world)
    leave(session.world)
    return summary


def run_summary(
    run: Run,
    inputs: Inputs,
    history: Sequence[Mapping[str, Any]],
    best: Mapping[str, Any],
    device: torch.device,
    world: World,
    resumed_from: int,
) -> dict[str, Any]:
    """The run's summary (DVCLive's metrics.json; the eval stages read ``train_time_h``)."""
    return {
        "train_time_h": sum(float(r["epoch_seconds"]) for r in history) / 3600.0,
        "best_epoch": best["epoch"],
        "best_val_miou": best["miou"],
        "epochs": run.cfg.epochs,
        "batch_size": run.cfg.batch_size,
        "seed": run.seed,
        "n_train": len(inputs.train),
        "n_val": len(inputs.val),
        "device": str(device),
        "torch_threads": torch.get_num_threads(),
        "processes": world.size,
        "channels_last": run.cfg.channels_last,
        "resumed_from_epoch": resumed_from,
    }
