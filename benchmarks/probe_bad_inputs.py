"""A probe of bad inputs and faults, as a hostile or careless user would try them: prints one
line per case (handled or NOT) and ``handled/total``.

"Handled" means what docs/development.md promises: a clear error naming the file or params key
and the problem (exit 2 from a stage or ``mmls``), or a warning that names the count and the
first items, and no half-written output; for faults (kill -9, concurrent runs), a clean
recovery. The cases are those of the project's issue on silent failures: the 17 it found, and
the ones handled well before it, so that none regresses. Run from the repository root:

    python -m benchmarks.probe_bad_inputs          # about 2 minutes on 2 cores
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from unittest import mock

import geopandas as gpd
import numpy as np
import rasterio
import torch
import yaml
from rasterio.windows import Window
from shapely.geometry import Polygon

from mmls.core.config import load_params, parse
from mmls.core.errors import InputError
from mmls.core.io import atomic_dir, check_writable
from mmls.data.bands import BAND_NAMES
from mmls.data.releases import IngestConfig, find_tiles
from mmls.geo.align import align_inventory
from mmls.geo.raster import Grid, check_composite
from mmls.geo.tiling import tile_regions
from mmls.nn.models import build_model, check_input_size, load_checkpoint
from mmls.nn.training import TrainConfig
from tests.configs import PARAMS, ROOT
from tests.dvc_projects import make_dvc_project, run, write_params
from tests.rasters import (
    MARS_EQC,
    ORIGIN,
    write_composite,
    write_inventory,
    write_tiled_composite,
)
from tests.releases import MARS, scene_tiles, tile_transform, write_raster, write_release

CASES: list[tuple[str, Callable[[Path], str]]] = []


def case(name: str):
    def register(fn: Callable[[Path], str]):
        CASES.append((name, fn))
        return fn

    return register


def raises(fn: Callable[[], object], *needles: str) -> str:
    """'' when ``fn`` raises an InputError whose text holds every needle, else what went wrong."""
    try:
        fn()
    except InputError as exc:
        missing = [n for n in needles if n not in str(exc)]
        return f"error lacks {missing}: {exc}" if missing else ""
    return "accepted silently"


def warns(fn: Callable[[], object], *needles: str) -> str:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fn()
    text = " | ".join(str(w.message) for w in caught)
    return "" if all(n in text for n in needles) else f"no warning with {needles}: {text!r}"


def mmls(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    cli = Path(sys.executable).parent / "mmls"
    return subprocess.run([str(cli), *args], cwd=cwd, capture_output=True, text=True, timeout=120)


def one_error_line(done: subprocess.CompletedProcess, needle: str) -> str:
    lines = [x for x in done.stderr.splitlines() if x.startswith("error:")]
    ok = done.returncode == 2 and len(lines) == 1 and needle in lines[0]
    return "" if ok else f"exit {done.returncode}: {done.stderr[-300:]!r}"


def params_with(**sections: object) -> dict:
    return {**PARAMS, **sections}


def ingest_cfg(root: Path) -> IngestConfig:
    raw = {"layout": "mmlsv2-challenge", "root": str(root), "folders": {}, "regions": {}}
    return parse(raw, IngestConfig, "params.yaml:ingest")


def release(tmp: Path) -> Path:
    tiles = scene_tiles(3, 2, 32, seed=1)
    write_release(tmp / "rel", tiles, {k: "train" for k in tiles})
    return tmp / "rel"


# ------------------------------------------------------------------ params (handled before)
@case("params: a missing key names it")
def _(tmp):
    raw = {k: v for k, v in PARAMS["train"].items() if k != "epochs"}
    return raises(lambda: parse(raw, TrainConfig, "params.yaml:train"), "train.epochs", "missing")


@case("params: a misspelled key names it")
def _(tmp):
    raw = {**PARAMS["train"], "epoch": 3}
    return raises(lambda: parse(raw, TrainConfig, "params.yaml:train"), "train.epoch", "unknown")


@case("params: a wrongly typed value names it")
def _(tmp):
    raw = {**PARAMS["train"], "epochs": "10"}
    return raises(lambda: parse(raw, TrainConfig, "params.yaml:train"), "train.epochs")


# ------------------------------------------------------------- params (the new cases)
@case("params: no key is named size or nfiles (DVC's run-cache ignores them, dvc#10296)")
def _(tmp):
    def keys(node):
        for k, v in node.items() if isinstance(node, dict) else ():
            yield k
            yield from keys(v)

    files = ["params.yaml", "real/mmlsv2/params.yaml", "real/mmlsv1-west/params.yaml"]
    bad = [
        f
        for f in files
        for k in keys(yaml.safe_load((ROOT / f).read_text()))
        if k in ("size", "nfiles")
    ]
    return f"keys named size/nfiles in {bad}" if bad else ""


@case("params: a model key with $(...) never reaches a shell")
def _(tmp):
    root = make_dvc_project(tmp / "p")
    params = params_with(models={"x$(touch pwned)": PARAMS["models"]["unet"]})
    write_params(root, params)
    done = run(["dvc", "repro", "train"], root, check=False)
    if (root / "pwned").exists():
        return "the substitution ran"
    return (
        ""
        if done.returncode != 0 and "not a valid name" in done.stderr + done.stdout
        else done.stderr[-200:]
    )


@case("params: a model key with a space exits 2 naming it")
def _(tmp):
    (tmp / "params.yaml").write_text(yaml.safe_dump(params_with(models={"my model": {}})))
    return raises(lambda: load_params(tmp / "params.yaml"), "models.my model", "not a valid name")


@case("params: an unknown top-level key exits 2 naming it")
def _(tmp):
    (tmp / "params.yaml").write_text(yaml.safe_dump(params_with(trian={})))
    return raises(lambda: load_params(tmp / "params.yaml"), "trian", "did you mean 'train'")


@case("params: an empty params.yaml is named by `mmls check`")
def _(tmp):
    (tmp / "params.yaml").write_text("")
    return one_error_line(mmls("check", str(tmp), cwd=tmp), "params file is empty")


@case("params: a dataset.tiles that does not exist is named by `mmls check`")
def _(tmp):
    params = params_with(dataset={**PARAMS["dataset"], "tiles": "data/nowhere"})
    (tmp / "params.yaml").write_text(yaml.safe_dump(params))
    shutil.copy(ROOT / "dvc.yaml", tmp / "dvc.yaml")
    return one_error_line(mmls("check", str(tmp), cwd=tmp), "dataset.tiles: data/nowhere")


@case("models: a misspelled architecture argument exits 2 naming it")
def _(tmp):
    cfg = {**PARAMS["models"]["unet"], "decoder_attention_typ": "scse"}
    return raises(lambda: build_model("unet", cfg, 7), "decoder_attention_typ", "did you mean")


@case("models: every smp architecture builds from params (FPN)")
def _(tmp):
    model = build_model(
        "fpn", {"arch": "FPN", "encoder_name": "resnet18", "encoder_weights": None}, 7
    )
    check_input_size(model, 7, 128, "params.yaml:models.fpn")
    return ""


@case("models: an architecture that cannot take the tile is refused")
def _(tmp):
    pan = build_model(
        "pan", {"arch": "PAN", "encoder_name": "resnet18", "encoder_weights": None}, 7
    )
    return raises(lambda: check_input_size(pan, 7, 64, "params.yaml:models.pan"), "cannot take")


# ---------------------------------------------------------------------------- rasters
@case("raster: a composite without CRS names the file")
def _(tmp):
    write_composite(tmp / "c.tif", 64, 64, crs=None)
    return raises(lambda: check_composite(tmp / "c.tif", BAND_NAMES), "c.tif", "no CRS")


@case("raster: a wrong band count names the file")
def _(tmp):
    write_composite(tmp / "c.tif", 64, 64, count=6, descriptions=None)
    return raises(lambda: check_composite(tmp / "c.tif", BAND_NAMES), "c.tif", "6 band")


@case("raster: a truncated composite fails at the first stage that opens it")
def _(tmp):
    path = tmp / "c.tif"
    write_tiled_composite(path)
    with open(path, "r+b") as f:
        f.truncate(path.stat().st_size // 2)
    return raises(lambda: check_composite(path, BAND_NAMES), "c.tif", "truncated")


@case("raster: a band that is all NaN is named as the cause of 'no patch left'")
def _(tmp):
    data = write_composite(tmp / "c.tif", 256, 128)
    data[5] = np.nan
    with rasterio.open(tmp / "c.tif", "r+") as dst:
        dst.write(data)
    write_inventory(tmp / "m.tif", np.ones((128, 256), np.uint8), nodata=None)
    return raises(
        lambda: tile_regions(
            tmp / "c.tif",
            tmp / "m.tif",
            {"base": Window(0, 0, 256, 128)},
            tmp / "t",
            size=128,
            band_names=BAND_NAMES,
        ),
        "thermal_inertia",
        "no valid value",
    )


@case("raster: a FIFO named like a raster is refused, not waited on")
def _(tmp):
    root = release(tmp)
    os.mkfifo(root / "train/images/col00099_row00000.tif")
    signal.alarm(30)
    try:
        return raises(
            lambda: find_tiles(ingest_cfg(root)), "col00099_row00000.tif", "not a regular file"
        )
    finally:
        signal.alarm(0)


# ------------------------------------------------------------------------- inventories
def _grid(tmp: Path) -> Grid:
    write_composite(tmp / "c.tif", 70, 50)
    return check_composite(tmp / "c.tif", BAND_NAMES)


@case("inventory: one that does not overlap names the file")
def _(tmp):
    grid = _grid(tmp)
    far = gpd.GeoDataFrame(geometry=[Polygon([(0, 0), (1, 0), (1, 1)])], crs=MARS_EQC)
    far.to_file(tmp / "far.gpkg")
    return raises(
        lambda: align_inventory(grid, tmp / "far.gpkg", tmp / "o.tif"), "far.gpkg", "overlaps"
    )


@case("inventory: an empty GeoPackage names the file")
def _(tmp):
    grid = _grid(tmp)
    gpd.GeoDataFrame(geometry=[], crs=MARS_EQC).to_file(tmp / "e.gpkg")
    return raises(lambda: align_inventory(grid, tmp / "e.gpkg", tmp / "o.tif"), "e.gpkg")


@case("inventory: one in another CRS is reprojected")
def _(tmp):
    grid = _grid(tmp)
    x0, y0 = ORIGIN
    poly = Polygon([(x0 + 500, y0 - 500), (x0 + 2500, y0 - 500), (x0 + 2500, y0 - 2500)])
    deg = gpd.GeoDataFrame(geometry=[poly], crs=MARS_EQC).to_crs("+proj=longlat +R=3396190")
    deg.to_file(tmp / "deg.gpkg")
    align_inventory(grid, tmp / "deg.gpkg", tmp / "o.tif")
    with rasterio.open(tmp / "o.tif") as src:
        return "" if src.read(1).sum() > 0 else "nothing burnt"


@case("inventory: self-intersecting polygons are repaired with a counted warning")
def _(tmp):
    grid = _grid(tmp)
    x0, y0 = ORIGIN
    bow = Polygon(
        [
            (x0 + 1000, y0 - 1000),
            (x0 + 3000, y0 - 3000),
            (x0 + 3000, y0 - 1000),
            (x0 + 1000, y0 - 3000),
        ]
    )
    gpd.GeoDataFrame(geometry=[bow], crs=MARS_EQC).to_file(tmp / "bow.gpkg")
    return warns(
        lambda: align_inventory(grid, tmp / "bow.gpkg", tmp / "o.tif"),
        "1 invalid polygon(s) repaired",
    )


# ------------------------------------------------------------------------------- ingest
def _ingest_error(tmp: Path, breaker: Callable[[Path], str], needle: str) -> str:
    root = release(tmp)
    culprit = breaker(root)
    return raises(lambda: find_and_read(root), culprit, needle)


def find_and_read(root: Path) -> None:
    from mmls.data.ingest import ingest_release

    ingest_release(ingest_cfg(root), root.parent / "out", bands=BAND_NAMES, size=32)


@case("ingest: a missing mask names the image")
def _(tmp):
    return _ingest_error(
        tmp,
        lambda r: (r / "train/masks/col00000_row00000.tif").unlink() or "col00000_row00000",
        "without mask",
    )


@case("ingest: a tile of the wrong size names it")
def _(tmp):
    def br(r):
        write_raster(
            r / "train/images/col00000_row00000.tif",
            np.zeros((7, 40, 40), np.float32),
            tile_transform(0, 0),
            MARS,
        )
        return "col00000_row00000"

    return _ingest_error(tmp, br, "tile.size_px")


@case("ingest: a junk file named .tif names it")
def _(tmp):
    def br(r):
        (r / "train/images/col00000_row00000.tif").write_text("not a raster")
        return "col00000_row00000"

    return _ingest_error(tmp, br, "")


@case("ingest: an odd file name names it")
def _(tmp):
    def br(r):
        (r / "train/images/col00000_row00000.tif").rename(r / "train/images/tile_0.tif")
        return "tile_0.tif"

    return _ingest_error(tmp, br, "does not fit layout")


@case("ingest: a georeferencing shift names the tile")
def _(tmp):
    def br(r):
        path = r / "train/images/col00001_row00000.tif"
        with rasterio.open(path, "r+") as dst:
            dst.transform = dst.transform * dst.transform.translation(3, 0)
        return "col00001_row00000"

    return _ingest_error(tmp, br, "")


@case("ingest: a symlink to a non-raster names it")
def _(tmp):
    def br(r):
        (tmp / "notes.txt").write_text("hello")
        target = r / "train/images/col00000_row00000.tif"
        target.unlink()
        target.symlink_to(tmp / "notes.txt")
        return "col00000_row00000"

    return _ingest_error(tmp, br, "")


@case("ingest: a truncated release tile names it")
def _(tmp):
    def br(r):
        path = r / "train/images/col00001_row00001.tif"
        with open(path, "r+b") as f:
            f.truncate(path.stat().st_size // 2)
        return "col00001_row00001"

    return _ingest_error(tmp, br, "")


@case("ingest: masks without their image are counted and named")
def _(tmp):
    root = release(tmp)
    write_raster(
        root / "train/masks/col00009_row00000.tif",
        np.zeros((1, 32, 32), np.uint8),
        tile_transform(9, 0),
        MARS,
    )
    return warns(
        lambda: find_tiles(ingest_cfg(root)), "1 mask(s) without an image", "col00009_row00000"
    )


# --------------------------------------------------------------------------- checkpoints
@case("checkpoint: a pickled (malicious) one is refused as untrusted, without PyTorch's advice")
def _(tmp):
    class Payload:
        def __reduce__(self):
            return (os.system, ("touch pwned",))

    torch.save({"state_dict": {}, "evil": Payload()}, tmp / "evil.pt")
    message = raises(lambda: load_checkpoint(tmp / "evil.pt", "cpu"), "not a trusted checkpoint")
    if not message:
        try:
            load_checkpoint(tmp / "evil.pt", "cpu")
        except InputError as exc:
            if "weights_only=False" in str(exc):
                return "passes on the advice to load with weights_only=False"
    return message or ("the payload ran" if (tmp / "pwned").exists() else "")


# --------------------------------------------------------------------- faults and leftovers
@case("fault: kill -9 during an atomic output leaves a temp that the next run removes")
def _(tmp):
    code = (
        "import os, time\nfrom mmls.core.io import atomic_dir\n"
        "with atomic_dir('tiles') as t:\n    (t / 'a').write_text('x'); time.sleep(60)\n"
    )
    child = subprocess.Popen([sys.executable, "-c", code], cwd=tmp)
    time.sleep(3)
    child.kill()
    child.wait()
    if not list(tmp.glob(".tiles.*.tmp")):
        return "no leftover to clean (the kill came too early?)"
    os.chdir(tmp)
    try:
        with atomic_dir(tmp / "tiles") as t:
            (t / "b").write_text("y")
    finally:
        os.chdir(ROOT)
    return "" if not list(tmp.glob(".tiles.*.tmp")) else "the leftover is still there"


@case("fault: an unwritable output folder stops a stage before its work")
def _(tmp):
    os.chdir(tmp)
    (tmp / "metrics").mkdir()
    try:  # os.access stands in for the read-only folder: root ignores permissions
        with mock.patch("mmls.core.io.os.access", lambda p, m: Path(p).name != "metrics"):
            return raises(lambda: check_writable(), "metrics", "not writable")
    finally:
        os.chdir(ROOT)


@case("fault: concurrent `dvc repro` in one repository is refused")
def _(tmp):
    root = tmp / "p"
    root.mkdir()
    run(["git", "init", "-q"], root)
    run(["dvc", "init", "-q"], root)
    (root / "dvc.yaml").write_text(
        "stages:\n  slow:\n    cmd: sleep 8 && echo done > out.txt\n    outs: [out.txt]\n"
    )
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    first = subprocess.Popen(
        [sys.executable, "-m", "dvc", "repro"],
        cwd=root,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    time.sleep(3)
    second = run(["dvc", "repro"], root, check=False)
    first.wait(timeout=60)
    refused = second.returncode != 0 and "lock" in (second.stderr + second.stdout).lower()
    return "" if refused and first.returncode == 0 else f"second: {second.stderr[-200:]!r}"


@case("fault: kill -9 of a training resumes to bitwise the same weights")
def _(tmp):
    script = f"""
import sys
sys.path.insert(0, {str(ROOT)!r})
from pathlib import Path
from tests.tiny_training import fit_in, recipe, tiny_store, train_config
from mmls.nn.training import Run
out = Path(sys.argv[1])
store = tiny_store(out / "store")
run = Run("pspnet", {{"arch": "PSPNet", "encoder_name": "resnet18", "encoder_weights": None}},
          train_config(epochs=4), recipe(), 42)
import os
def hook(epoch):
    if sys.argv[2] == "kill" and epoch == 2:
        os.kill(os.getpid(), 9)  # what kill -9 does, after epoch 2's state is saved
fit_in(out / "run", store, run, hook=hook)
"""
    (tmp / "t.py").write_text(script)
    for name, mode in (("straight", "none"), ("killed", "kill")):
        subprocess.run(
            [sys.executable, str(tmp / "t.py"), str(tmp / name), mode], capture_output=True
        )
    subprocess.run(
        [sys.executable, str(tmp / "t.py"), str(tmp / "killed"), "none"], capture_output=True
    )
    a = torch.load(tmp / "straight/run/best.pt", weights_only=True)["state_dict"]
    b = torch.load(tmp / "killed/run/best.pt", weights_only=True)["state_dict"]
    return "" if all(torch.equal(a[k], b[k]) for k in a) else "resumed weights differ"


def main() -> None:
    handled = 0
    for name, fn in CASES:
        with tempfile.TemporaryDirectory() as tmp:
            try:
                problem = fn(Path(tmp))
            except Exception as exc:  # noqa: BLE001 - a case that crashes is not handled
                problem = f"crashed: {type(exc).__name__}: {str(exc)[:200]}"
        handled += not problem
        print(
            f"{'handled' if not problem else 'NOT HANDLED'}: {name}"
            + (f" -- {problem}" if problem else "")
        )
    print(f"{handled}/{len(CASES)} handled")


if __name__ == "__main__":
    main()
