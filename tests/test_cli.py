"""The `mmls` command as a user runs it: one line and exit 2 on bad input, nothing written."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import rasterio
import yaml

from mmls.api import ENGINE_DEFAULTS, load_model
from tests.bundles import write_tiny_bundle
from tests.configs import PARAMS, ROOT
from tests.rasters import write_composite

MMLS = Path(sys.executable).parent / "mmls"  # the console script the install declares


def mmls(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([str(MMLS), *args], capture_output=True, text=True, cwd=cwd)


def test_version_and_help() -> None:
    done = mmls("--version")
    assert done.returncode == 0 and done.stdout.startswith("mmls ")
    assert "predict-tiles" in mmls("--help").stdout


def test_info_prints_the_model_card(tmp_path) -> None:
    bundle = write_tiny_bundle(tmp_path / "t.mmls.pt")
    done = mmls("info", str(bundle))
    assert done.returncode == 0 and "bands, in order: red, green, blue" in done.stdout
    record = json.loads(mmls("info", str(bundle), "--json").stdout)
    assert record["schema"] == "mmls.bundle" and record["model"]["name"] == "tiny"


def test_map_then_refusals_exit_2_with_one_line_and_write_nothing(tmp_path) -> None:
    bundle = write_tiny_bundle(tmp_path / "t.mmls.pt")
    write_composite(tmp_path / "scene.tif", 96, 64)
    done = mmls(
        "map",
        str(bundle),
        str(tmp_path / "scene.tif"),
        str(tmp_path / "out"),
        "--threads",
        "1",
        "--overlap-px",
        "8",
        "--no-progress",
    )
    assert done.returncode == 0, done.stderr
    assert "landslide polygons" in done.stdout and (tmp_path / "out" / "mask.tif").exists()
    write_composite(tmp_path / "nocrs.tif", 96, 64, crs=None)
    write_composite(tmp_path / "nodesc.tif", 96, 64, descriptions=None)
    cases = {
        "nocrs.tif": "nocrs.tif: has no CRS",
        "nodesc.tif": "nodesc.tif: its 7 bands have no descriptions",
        "missing.tif": "missing.tif: file not found",
    }
    for name, message in cases.items():
        done = mmls("map", str(bundle), str(tmp_path / name), str(tmp_path / "new"))
        assert done.returncode == 2, (name, done.stderr)
        lines = [line for line in done.stderr.splitlines() if line.startswith("error:")]
        assert len(lines) == 1 and message in lines[0], done.stderr
        assert not (tmp_path / "new").exists()
    done = mmls("map", str(bundle), str(tmp_path / "scene.tif"), str(tmp_path / "out"))
    assert done.returncode == 2 and "exists and is not empty" in done.stderr
    done = mmls(
        "map", str(tmp_path / "scene.tif"), str(tmp_path / "scene.tif"), str(tmp_path / "x")
    )
    assert done.returncode == 2 and "not a readable checkpoint" in done.stderr
    args = ("map", str(bundle), str(tmp_path / "scene.tif"), str(tmp_path / "t"), "--overlap-px")
    done = mmls(*args, "8", "--threshold", "1.5")
    assert done.returncode == 2 and "threshold (--threshold): 1.5 must be in [0, 1)" in done.stderr
    assert not (tmp_path / "t").exists()


def test_check_names_the_key_dvc_would_not(tmp_path) -> None:
    (tmp_path / "params.yaml").write_text("")
    done = mmls("check", str(tmp_path))
    assert done.returncode == 2 and "params.yaml: params file is empty" in done.stderr
    params = {**PARAMS, "dataset": {**PARAMS["dataset"], "tiles": "data/nowhere"}}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    shutil.copy(ROOT / "dvc.yaml", tmp_path / "dvc.yaml")  # its stages write the other paths
    done = mmls("check", str(tmp_path))
    assert done.returncode == 2
    assert "params.yaml:dataset.tiles: data/nowhere does not exist and no stage writes it" in (
        done.stderr
    )


def test_the_api_defaults_are_the_pipelines_map_settings() -> None:
    section = PARAMS["map"]
    assert {k: section[k] for k in ENGINE_DEFAULTS if k != "threads"} == {
        k: v for k, v in ENGINE_DEFAULTS.items() if k != "threads"
    }  # threads: the pipeline fixes 2 for reproducible timings; the API keeps torch's own


def test_the_api_maps_as_the_command_does(tmp_path) -> None:
    bundle = write_tiny_bundle(tmp_path / "t.mmls.pt")
    write_composite(tmp_path / "scene.tif", 96, 64)
    model = load_model(bundle)
    s = model.map(tmp_path / "scene.tif", tmp_path / "out", threads=1, overlap_px=8, progress=False)
    assert s["model"]["name"] == "tiny"
    with rasterio.open(tmp_path / "out" / "probability.tif") as src:
        assert src.shape == (64, 96)


def test_check_finds_a_fifo_that_would_block_dvc(tmp_path) -> None:
    tiles = tmp_path / "data" / "tiles"
    tiles.mkdir(parents=True)
    os.mkfifo(tiles / "col00000_row00000.tif")
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(PARAMS))
    shutil.copy(ROOT / "dvc.yaml", tmp_path / "dvc.yaml")
    done = mmls("check", str(tmp_path))
    assert done.returncode == 2
    assert "col00000_row00000.tif: is not a regular file" in done.stderr
    assert "DVC's hashing would block on it forever" in done.stderr


def test_a_synthetic_region_is_mapped_start_to_finish(tmp_path) -> None:
    """README's mapping path: a region the model never saw (the pipeline's generator, another
    seed), mapped and scored against its inventory (here with a tiny bundle)."""
    small = {
        **PARAMS,
        "synthetic": {**PARAMS["synthetic"], "width": 640, "height": 384, "n_landslides": 20},
    }
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(small))
    done = mmls("synthetic-scene", "region2", "--seed", "8", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert {p.name for p in (tmp_path / "region2").iterdir()} == {"composite.tif", "inventory.tif"}
    bundle = write_tiny_bundle(tmp_path / "t.mmls.pt")
    done = mmls(
        "map",
        str(bundle),
        "region2/composite.tif",
        "region2_map",
        "--inventory",
        "region2/inventory.tif",
        "--overlap-px",
        "8",
        "--threads",
        "1",
        "--no-progress",
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    summary = json.loads((tmp_path / "region2_map" / "summary.json").read_text())
    assert summary["scored_against"] == "region2/inventory.tif" and "miou" in summary["map"]
