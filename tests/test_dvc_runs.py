"""DVC itself running this project's pipeline in a throwaway repository: what a user's
`dvc repro` does, including DVC's own pitfalls."""

from __future__ import annotations

import sys
from pathlib import Path

import rasterio
import yaml

from mmls.core.config import parse
from mmls.data.releases import IngestConfig, find_tiles
from tests.configs import PARAMS, REAL_PARAMS, ROOT
from tests.dvc_projects import SMALL_SCENE, make_dvc_project, run, write_params
from tests.releases import scene_tiles, write_release


def _keys(node, path=""):
    if isinstance(node, dict):
        for k, v in node.items():
            yield f"{path}{k}", str(k)
            yield from _keys(v, f"{path}{k}.")


def test_no_params_key_is_named_size_or_nfiles() -> None:
    """DVC's run-cache drops every key named ``size`` or ``nfiles`` from a stage's hash, params
    included (treeverse/dvc#10296, fix PR #11079 unmerged in DVC 3.67.1): a stage whose param
    of that name changed is restored from the cache with the old outputs."""
    for path in ("params.yaml", "real/mmlsv2/params.yaml", "real/mmlsv1-west/params.yaml"):
        params = yaml.safe_load((ROOT / path).read_text())
        bad = [full for full, key in _keys(params) if key in ("size", "nfiles")]
        assert not bad, f"{path}: rename {bad} (DVC's run-cache ignores these names)"
    assert PARAMS["tile"]["size_px"] == REAL_PARAMS["tile"]["size_px"] == 128


def test_changing_the_tile_size_re_tiles(tmp_path) -> None:
    root = make_dvc_project(tmp_path / "project", **SMALL_SCENE)
    run(["dvc", "repro", "tile"], root)
    first = sorted((root / "data/tiles/base/images").iterdir())[0]
    with rasterio.open(first) as src:
        assert (src.width, src.height) == (128, 128)
    params = yaml.safe_load((root / "params.yaml").read_text())
    params["tile"]["size_px"] = 64
    write_params(root, params)
    done = run(["dvc", "repro", "tile"], root)
    assert "skipping run" not in done.stdout  # neither restored from the run-cache nor skipped
    tiles = sorted((root / "data/tiles/base/images").iterdir())
    with rasterio.open(tiles[0]) as src:
        assert (src.width, src.height) == (64, 64)
    assert len(tiles) > 0


#: A pipeline small enough to train in a test: the small scene, one light U-Net, one epoch.
TINY_PIPELINE = {
    **SMALL_SCENE,
    "synthetic": {**SMALL_SCENE["synthetic"], "width": 1024, "height": 768, "n_landslides": 60},
    "holdout": {**SMALL_SCENE["holdout"], "boundary_x": -3936000.0},
    "split": {**PARAMS["split"], "bins": 2},
    "train": {**PARAMS["train"], "epochs": 1},
    "models": {"unet": {"arch": "Unet", "encoder_name": "resnet18", "encoder_weights": None}},
    "band_sets": {},
}


def test_a_bundle_goes_through_a_remote_to_a_fresh_clone_and_maps_there(tmp_path) -> None:
    """The team path of docs/mapping.md: train once, `dvc push`, then a colleague's fresh
    clone pulls the bundle and maps with it, with no training."""
    root = make_dvc_project(tmp_path / "project", **TINY_PIPELINE)
    run(["dvc", "repro", "bundle@unet"], root)
    run(["dvc", "remote", "add", "-d", "team", str(tmp_path / "remote")], root)
    run(["dvc", "push", "bundles/unet.mmls.pt", "data/synthetic/composite.tif"], root)
    run(["git", "add", "-A"], root)
    run(["git", "commit", "-qm", "trained"], root)
    clone = tmp_path / "clone"
    run(["git", "clone", "-q", str(root), str(clone)], tmp_path)
    checkpoint = clone / "models/unet/seed42/best.pt"  # no training output, before or after
    assert not (clone / "bundles/unet.mmls.pt").exists() and not checkpoint.exists()
    run(["dvc", "pull", "bundles/unet.mmls.pt", "data/synthetic/composite.tif"], clone)
    done = run(
        [
            str(Path(sys.executable).parent / "mmls"),
            "map",
            "bundles/unet.mmls.pt",
            "data/synthetic/composite.tif",
            "map_out",
            "--threads",
            "1",
            "--no-progress",
        ],
        clone,
    )
    assert "landslide polygons" in done.stdout
    assert (clone / "map_out" / "mask.tif").exists() and not checkpoint.exists()
    # `dvc artifacts get` takes a registered version: a git tag in GTO's form <name>@v<semver>
    run(["git", "tag", "-a", "unet@v0.1.0", "-m", "Registering artifact unet version v0.1.0"], root)
    got = run(
        ["dvc", "artifacts", "get", str(root), "unet", "-o", str(tmp_path / "got.pt")], tmp_path
    )
    assert (tmp_path / "got.pt").stat().st_size == (root / "bundles/unet.mmls.pt").stat().st_size
    del got


def test_dvc_import_fetches_a_release_from_a_git_repository(tmp_path) -> None:
    """The mechanics of README's `dvc import <repo> data/phase1_dataset`, on a local git
    repository laid out as the challenge's (no internet here): the files arrive, DVC records
    where they came from, and ingest finds the release's tiles in them."""
    upstream = tmp_path / "Mars-LS-Segmentation"
    tiles = scene_tiles(3, 2, 32, seed=4)
    write_release(upstream / "data" / "phase1_dataset", tiles, {k: "train" for k in tiles})
    for args in (
        ["init", "-q"],
        ["config", "user.email", "t@example.com"],
        ["config", "user.name", "t"],
        ["add", "-A"],
        ["commit", "-qm", "release"],
    ):
        run(["git", *args], upstream)
    root = make_dvc_project(tmp_path / "project")
    (root / "data" / "release").mkdir(parents=True)  # dvc import writes into an existing folder
    run(
        [
            "dvc",
            "import",
            str(upstream),
            "data/phase1_dataset",
            "-o",
            "data/release/phase1_dataset",
        ],
        root,
    )
    record = yaml.safe_load((root / "data/release/phase1_dataset.dvc").read_text())
    assert record["deps"][0]["repo"]["url"] == str(upstream)
    cfg = parse(
        {
            "layout": "mmlsv2-challenge",
            "root": str(root / "data/release/phase1_dataset"),
            "folders": {},
            "regions": {},
        },
        IngestConfig,
        "params.yaml:ingest",
    )
    found, _ = find_tiles(cfg)
    assert len(found) == len(tiles) and all(t.mask is not None for t in found)
