"""DVC itself running this project's pipeline in a throwaway repository: what a user's
`dvc repro` does, including DVC's own pitfalls."""

from __future__ import annotations

import rasterio
import yaml

from tests.configs import PARAMS, REAL_PARAMS, ROOT
from tests.dvc_projects import SMALL_SCENE, make_dvc_project, run, write_params


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
