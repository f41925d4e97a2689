"""Data-parallel training across processes (torchrun), as an option.

``torchrun --nproc-per-node N stages/train.py ...`` starts N processes; each one trains on its
share of every batch (the same seeded epoch plan everywhere, the batch split into N equal
chunks), gradients are averaged by DistributedDataParallel, and only rank 0 writes the
checkpoint, the log and the resumable state. With equal chunks the averaged gradient is the
gradient of the whole batch, so N processes follow 1 process up to floating-point reduction
order, with two exceptions that are stated, not hidden:

- BatchNorm: on CUDA the model's BatchNorm layers become SyncBatchNorm (statistics over the
  whole batch). PyTorch has no SyncBatchNorm on CPU, so CPU processes (gloo) normalise with
  their own chunk's statistics and differ from one process by more than rounding;
- dropout / stochastic depth draw from each process's own RNG.

Backends: NCCL on CUDA, gloo on CPU. Without torchrun (no WORLD_SIZE) nothing changes.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn


@dataclass(frozen=True)
class World:
    """This process's place among the training processes."""

    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0


def join(device_type: str) -> World:
    """Join the process group torchrun describes in the environment (or stay alone)."""
    size = int(os.environ.get("WORLD_SIZE", "1"))
    if size == 1:
        return World()
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device_type == "cuda" else "gloo")
    return World(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")))


def wrap(model: nn.Module, world: World, device: torch.device) -> nn.Module:
    """DistributedDataParallel around ``model`` (SyncBatchNorm on CUDA); ``model`` alone."""
    if world.size == 1:
        return model
    if device.type == "cuda":
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
        return nn.parallel.DistributedDataParallel(model, device_ids=[device.index])
    return nn.parallel.DistributedDataParallel(model)


def shard(x: torch.Tensor, y: torch.Tensor, world: World) -> tuple[torch.Tensor, torch.Tensor]:
    """This process's chunk of a batch (``tensor_split``: sizes differ by at most one)."""
    if world.size == 1:
        return x, y
    return x.tensor_split(world.size)[world.rank], y.tensor_split(world.size)[world.rank]


def unwrap(model: nn.Module) -> nn.Module:
    return model.module if isinstance(model, nn.parallel.DistributedDataParallel) else model


def barrier(world: World) -> None:
    if world.size > 1:
        dist.barrier()


def leave(world: World) -> None:
    if world.size > 1 and dist.is_initialized():
        dist.destroy_process_group()


def total(value: torch.Tensor, world: World) -> torch.Tensor:
    """The sum of ``value`` over all processes (itself alone)."""
    if world.size > 1:
        value = value.clone()
        dist.all_reduce(value)
    return value
