"""Atomic outputs, guarded raster opening and reads that name what failed."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from rasterio.windows import Window

from mmls.core.errors import InputError
from mmls.core.io import (
    atomic_dir,
    atomic_path,
    open_raster,
    read_raster,
    remove_stale_tmp,
    run_stage,
)
from tests.rasters import write_composite, write_tiled_composite


def _dead_pid() -> int:
    child = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        text=True,
        capture_output=True,
        check=True,
    )
    return int(child.stdout)


def test_leftovers_of_a_killed_run_are_removed_at_the_next_run(tmp_path: Path) -> None:
    target = tmp_path / "tiles"
    dead = tmp_path / f".tiles.{_dead_pid()}.abc123.tmp"  # what kill -9 of a tile stage leaves
    dead.mkdir()
    (dead / "a.tif").write_bytes(b"half")
    alive = tmp_path / f".tiles.{os.getpid()}.zzz.tmp"  # another run of this very process
    alive.mkdir()
    other = tmp_path / ".tiles.notapid.tmp"  # not of our making: left alone
    other.mkdir()
    with atomic_dir(target) as tmp:
        (tmp / "b.tif").write_bytes(b"new")
    assert not dead.exists() and alive.exists() and other.exists()
    assert (target / "b.tif").read_bytes() == b"new"
    file_left = tmp_path / f".x.json.{_dead_pid()}.q1.tmp"
    file_left.write_text("{")
    with atomic_path(tmp_path / "x.json") as tmp:
        tmp.write_text("{}")
    assert not file_left.exists() and remove_stale_tmp(tmp_path / "x.json") == []


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs on this platform")
def test_a_fifo_named_like_a_raster_is_refused_without_blocking(tmp_path: Path) -> None:
    fifo = tmp_path / "composite.tif"
    os.mkfifo(fifo)
    with pytest.raises(InputError, match=r"composite\.tif: is not a regular file \(a FIFO"):
        open_raster(fifo)  # rasterio.open would block on it forever
    with pytest.raises(InputError, match="is a folder"):
        open_raster(tmp_path)


def test_a_truncated_raster_names_the_file_band_and_window(tmp_path: Path) -> None:
    path = tmp_path / "comp.tif"
    write_tiled_composite(path, count=2)
    with open(path, "r+b") as f:
        f.truncate(path.stat().st_size // 2)
    with open_raster(path) as src, pytest.raises(InputError) as err:
        read_raster(src, 2, window=Window(256, 256, 256, 256))
    assert err.value.source.endswith("comp.tif")
    assert "band(s) 2, window cols 256..512, rows 256..512" in err.value.problem


def test_a_readable_raster_reads_as_before(tmp_path: Path) -> None:
    data = write_composite(tmp_path / "c.tif", 40, 30)
    with open_raster(tmp_path / "c.tif") as src:
        np.testing.assert_array_equal(read_raster(src), data)
        np.testing.assert_array_equal(
            read_raster(src, 1, window=Window(0, 0, 5, 5)), data[0, :5, :5]
        )


def test_a_stage_with_an_unwritable_output_folder_stops_before_its_work(
    tmp_path, monkeypatch, capsys
) -> None:
    # os.access stands in for a read-only folder: as root (CI) a chmod would not stop a write
    (tmp_path / "metrics").mkdir()
    monkeypatch.chdir(tmp_path)
    real_access = os.access
    monkeypatch.setattr(
        "mmls.core.io.os.access",
        lambda path, mode: Path(path).name != "metrics" and real_access(path, mode),
    )
    worked = []
    with pytest.raises(SystemExit) as exit_:
        run_stage(lambda: worked.append(True))
    assert exit_.value.code == 2 and not worked
    assert "error: metrics: is not writable" in capsys.readouterr().err
