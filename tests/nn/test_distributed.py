"""Data-parallel training under torchrun: 2 CPU processes (gloo) against 1 process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from tests.configs import ROOT
from tests.stores import write_synthetic_store

#: Stated tolerance: 2 processes average their chunks' gradients (gloo all-reduce), 1 process
#: takes the mean over the batch; the two differ by float32 reduction order only, which after
#: 2 epochs of Adam on this model stays far below this.
ATOL = 1e-4


def train(store: Path, out: Path, processes: int) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    module = ["-m", "tests.ddp_train", str(store), str(out)]
    if processes == 1:
        cmd = [sys.executable, *module]
    else:
        cmd = [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            f"--nproc-per-node={processes}",
            *module,
        ]
    return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)


@pytest.mark.slow
def test_two_gloo_processes_match_one_process(tmp_path: Path) -> None:
    write_synthetic_store(tmp_path / "store", {"train": 10, "val": 4}, size=32, seed=2)
    one, two = (
        train(tmp_path / "store", tmp_path / "one", 1),
        train(tmp_path / "store", tmp_path / "two", 2),
    )
    assert one.returncode == 0, one.stderr[-2000:]
    assert two.returncode == 0, two.stderr[-2000:]
    a = torch.load(tmp_path / "one" / "best.pt", weights_only=True)
    b = torch.load(tmp_path / "two" / "best.pt", weights_only=True)
    assert a["epoch"] == b["epoch"]
    worst = max(
        (a["state_dict"][k] - b["state_dict"][k]).abs().max().item() for k in a["state_dict"]
    )
    assert worst < ATOL, worst
    summary = json.loads((tmp_path / "two" / "log" / "metrics.json").read_text())
    single = json.loads((tmp_path / "one" / "log" / "metrics.json").read_text())
    assert summary["processes"] == 2 and single["processes"] == 1
    assert summary["train_loss"] == pytest.approx(single["train_loss"], abs=1e-4)  # all-reduced
    assert not (tmp_path / "two" / "resume.pt").exists()
