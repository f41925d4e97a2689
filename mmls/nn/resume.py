"""Resumable training state: seeds, RNG states, fingerprints, and the state file itself.

After every epoch the full training state (model, optimizer, scheduler, the torch / numpy /
python RNG states, the shuffle/augmentation generator, best-so-far weights and the per-epoch
history) is written atomically to a scratch file outside every DVC output
(:func:`mmls.core.paths.resume_path`), with a fingerprint of everything that shapes the weights: the
configuration, seed, device type, thread count, the library's source code and the training
data. A later run with the same fingerprint continues after the last completed epoch and ends
with bitwise the same weights as an uninterrupted run on the same device and thread count; a
state with another fingerprint is ignored. The file is deleted once the training has finished
(its outputs are then in DVC's cache, which restores them without retraining).
"""

from __future__ import annotations

import hashlib
import json
import random
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import segmentation_models_pytorch as smp
import torch

from mmls.core.io import PathLike, atomic_path

RESUME_FORMAT = 2
PACKAGE = Path(__file__).resolve().parents[1]  # mmls/, every subpackage


def seed_everything(seed: int) -> None:
    """Seed python, numpy and torch (all devices)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)  # noqa: NPY002 - seeds the legacy global RNG on purpose
    torch.manual_seed(seed)


def rng_state(shuffle: torch.Generator) -> dict[str, Any]:
    """Every RNG state a training draws from, as tensors and plain types (weights_only-safe)."""
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


def set_rng_state(state: Mapping[str, Any], shuffle: torch.Generator) -> None:
    """Restore :func:`rng_state`."""
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    n = state["numpy"]
    key = n["key"].numpy().astype(np.uint32)
    np.random.set_state(("MT19937", key, n["pos"], n["has_gauss"], n["cached_gaussian"]))  # noqa: NPY002
    p = state["python"]
    random.setstate((p["version"], tuple(p["state"]), p["gauss"]))
    shuffle.set_state(state["shuffle"])


def file_digest(path: PathLike) -> bytes:
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").digest()


def data_fingerprint(files: Sequence[PathLike], rows: Mapping[str, Sequence[int]]) -> str:
    """SHA-256 over the bytes of ``files`` and the row numbers each role trains on."""
    h = hashlib.sha256()
    for f in files:
        h.update(Path(f).name.encode())
        h.update(file_digest(f))
    for role in sorted(rows):
        h.update(role.encode())
        h.update(np.asarray(rows[role], dtype=np.int64).tobytes())
    return h.hexdigest()


def code_fingerprint() -> str:
    """SHA-256 over the library's sources and the torch / smp versions (a fixed bug must not be
    resumed around)."""
    h = hashlib.sha256(f"{torch.__version__} {smp.__version__}".encode())
    for path in sorted(PACKAGE.rglob("*.py")):
        h.update(path.relative_to(PACKAGE).as_posix().encode())
        h.update(path.read_bytes())
    return h.hexdigest()


def run_fingerprint(record: Mapping[str, Any]) -> str:
    """Fingerprint of a JSON-able description of the run plus the code."""
    full = {"format": RESUME_FORMAT, **record, "code": code_fingerprint()}
    return hashlib.sha256(json.dumps(full, sort_keys=True, default=str).encode()).hexdigest()


def load_state(path: Path, fingerprint: str, max_epoch: int) -> dict[str, Any] | None:
    """The saved state if it belongs to this run and has not passed ``max_epoch``; else None."""
    if not path.is_file():
        return None
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - a damaged state is ignored, never fatal
        print(f"ignoring unreadable resume state {path}: {exc}", file=sys.stderr)
        return None
    if not isinstance(state, dict) or state.get("fingerprint") != fingerprint:
        print(f"ignoring stale resume state {path} (config, code or data changed)", file=sys.stderr)
        return None
    if state["epoch"] > max_epoch:
        print(f"ignoring resume state {path}: it is past epoch {max_epoch}", file=sys.stderr)
        return None
    return state


def save_state(path: Path, state: Mapping[str, Any]) -> None:
    """Write the state atomically (a kill mid-write leaves the previous epoch's state)."""
    with atomic_path(path) as tmp:
        torch.save(dict(state), tmp)


def cpu_copy(sd: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: v.detach().to("cpu", copy=True) for k, v in sd.items()}
