"""``mmls check``: a pipeline's params.yaml and inputs validated before ``dvc repro`` reads them
(and ``mmls synthetic-scene``, a scene to try things on).

DVC interpolates params.yaml into dvc.yaml and hashes every dependency before any stage of this
project runs, so some mistakes reach the user as DVC's own messages, which do not name the
params key: an empty params.yaml (``Could not find 'models'``), a path param such as
``dataset.tiles`` that names nothing (``missing dependencies``), and a FIFO inside a dependency
folder, on which DVC's hashing blocks forever. This check reads what DVC would, in the order DVC
would need it, and names the key and the problem:

1. the file: YAML, not empty, every top-level key known, every name safe
   (:func:`mmls.core.config.load_params`);
2. every section present, against the schema its stage reads (strict: unknown, missing and
   mistyped keys named), and every ``models`` and ``band_sets`` entry;
3. every path param (``scene.*``, ``dataset.*``, ``ingest.root``, ``map.*``): it exists, or a
   stage of the pipeline writes it;
4. no non-regular file (FIFO, socket, device) in a folder that is a dependency.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from mmls.core.config import load_params, read_seeds, section
from mmls.core.errors import InputError
from mmls.data.bands import read_band_set, read_bands
from mmls.data.folds import CVConfig
from mmls.data.releases import IngestConfig
from mmls.data.splitting import SplitConfig, Table1Config
from mmls.data.store import DatasetConfig
from mmls.data.synthetic.config import SyntheticConfig
from mmls.data.synthetic.geotiff import write_scene
from mmls.data.synthetic.scene import generate_scene, summary
from mmls.evaluation.config import EvalConfig
from mmls.geo.align import AlignConfig, BinarizeConfig
from mmls.geo.holdout import HoldoutConfig
from mmls.geo.raster import SceneConfig
from mmls.geo.tiling import TileConfig
from mmls.inference.mapping import MapConfig
from mmls.metrics.bootstrap import StatisticsConfig
from mmls.nn.models import read_model
from mmls.nn.recipe import RecipeConfig
from mmls.nn.training import TrainConfig
from mmls.report.markdown import ReportConfig

#: The schema of every params section (what the stages read).
SECTIONS: dict[str, type] = {
    "scene": SceneConfig,
    "synthetic": SyntheticConfig,
    "ingest": IngestConfig,
    "align": AlignConfig,
    "binarize": BinarizeConfig,
    "holdout": HoldoutConfig,
    "tile": TileConfig,
    "table1": Table1Config,
    "split": SplitConfig,
    "dataset": DatasetConfig,
    "train": TrainConfig,
    "recipe": RecipeConfig,
    "eval": EvalConfig,
    "cv": CVConfig,
    "map": MapConfig,
    "statistics": StatisticsConfig,
    "report": ReportConfig,
}


def stage_outputs(folder: Path) -> list[str]:
    """The output paths a pipeline's dvc.yaml declares (templated parts cut off at ``${``)."""
    doc = (
        yaml.safe_load((folder / "dvc.yaml").read_text()) if (folder / "dvc.yaml").is_file() else {}
    )
    outs: list[str] = []
    for stage in (doc or {}).get("stages", {}).values():
        body = stage.get("do", stage)
        for key in ("outs", "metrics", "plots"):
            for out in body.get(key, []) or []:
                path = next(iter(out)) if isinstance(out, dict) else str(out)
                outs.append(path.split("${")[0])
    return outs


def path_params(params: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """(params key, path) of every param that names an input file or folder."""
    for key in ("composite", "inventory"):
        if (params.get("scene") or {}).get(key):
            yield f"scene.{key}", params["scene"][key]
    for key in ("tiles", "splits"):
        if (params.get("dataset") or {}).get(key):
            yield f"dataset.{key}", params["dataset"][key]
    if (params.get("ingest") or {}).get("root"):
        yield "ingest.root", params["ingest"]["root"]
    for name, scene in ((params.get("map") or {}).get("scenes") or {}).items():
        yield f"map.scenes.{name}.composite", scene["composite"]
    for name, score in ((params.get("map") or {}).get("scores") or {}).items():
        yield f"map.scores.{name}.inventory", score["inventory"]


def non_regular_files(folder: Path) -> Iterator[Path]:
    """Entries under ``folder`` that are neither regular files, folders nor links to either."""
    for root, dirs, files in os.walk(folder):
        for name in files + dirs:
            mode = os.stat(Path(root) / name).st_mode
            if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
                yield Path(root) / name


def check_pipeline(folder: str | Path = ".") -> list[str]:
    """Every check of the module docstring; the lines to print. The first problem is an
    :class:`InputError` naming its key or file."""
    folder = Path(folder)
    params_file = folder / "params.yaml"
    params = load_params(params_file)
    where = str(params_file)
    lines = [f"ok: {where}: YAML, top-level keys and names"]
    for name, schema in SECTIONS.items():
        if name in params:
            section(params, name, schema, where)
    read_seeds(params)
    if "bands" in params:
        read_bands(params)
    for model in params.get("models") or {}:
        read_model(params, model)
    for band_set in params.get("band_sets") or {}:
        read_band_set(params, band_set)
    lines.append(
        f"ok: {where}: {sum(n in params for n in SECTIONS)} sections against their schemas"
    )
    outputs = stage_outputs(folder)
    for key, value in path_params(params):
        path = folder / value
        made = any(value.startswith(out) or out.startswith(value) for out in outputs if out)
        if not path.exists() and not made:
            raise InputError(f"{where}:{key}", f"{value} does not exist and no stage writes it")
        if path.is_dir():
            bad = next(non_regular_files(path), None)
            if bad is not None:
                raise InputError(
                    bad,
                    f"is not a regular file (a FIFO, socket or device) in the "
                    f"folder of {key}: DVC's hashing would block on it forever",
                )
    lines.append(f"ok: {where}: every path param exists or is a stage's output")
    return lines


def write_synthetic_scene(out: str | Path, seed: int, params_file: str | Path) -> str:
    """A synthetic scene by the pipeline's generator with the ``synthetic`` section of
    ``params_file`` and another ``seed``: ``<out>/composite.tif`` and ``inventory.tif``."""
    params = load_params(params_file)
    cfg = section(params, "synthetic", SyntheticConfig, str(params_file))
    scene = generate_scene(cfg.model_copy(update={"seed": seed}))
    out = Path(out)
    write_scene(scene, out / "composite.tif", out / "inventory.tif")
    return f"{summary(scene)} -> {out}"
