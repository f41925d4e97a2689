"""The ``mmls`` command: a trained model bundle applied to any region, and checks.

    mmls info BUNDLE                      the model card
    mmls map BUNDLE SCENE.tif OUT/        map a scene (COGs, polygons, summary, quick look)
    mmls predict-tiles BUNDLE FOLDER OUT/ one mask per tile, the challenge's form
    mmls check [PIPELINE_FOLDER]          validate a pipeline's params.yaml before `dvc repro`
    mmls synthetic-scene OUT/ --seed N    a synthetic region to try it on (the pipeline's own
                                          generator and `synthetic` params, another seed)
    mmls --version

Every bad input exits 2 with one line ``error: <file or key>: <problem>`` and writes nothing.
The functions behind these are :mod:`mmls.api`'s.
"""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from collections.abc import Sequence
from importlib.metadata import version

from mmls.api import ENGINE_DEFAULTS, load_model
from mmls.core.errors import InputError
from mmls.core.io import run_stage
from mmls.preflight import check_pipeline, write_synthetic_scene


def _floats(text: str) -> list[float]:
    try:
        return [float(v) for v in text.split(",")]
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected numbers separated by commas: {text!r}") from exc


def _names(text: str) -> list[str]:
    return [v.strip() for v in text.split(",")]


def _shared(p: argparse.ArgumentParser) -> None:
    """Options of every command that applies a model."""
    p.add_argument(
        "--bands",
        type=_names,
        help="the file's band names in order, when it has no "
        "band descriptions (e.g. thermal_inertia,slope,dem,grayscale,red,green,blue)",
    )
    p.add_argument("--threshold", type=float, help="override the bundle's threshold")
    p.add_argument(
        "--tta",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="override the bundle's test-time augmentation",
    )
    p.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
    p.add_argument("--threads", type=int, help="torch threads (default: torch's)")
    p.add_argument(
        "--allow-value-mismatch",
        action="store_true",
        help="map although the values do not look like the training data's",
    )
    p.add_argument(
        "--allow-pixel-size",
        action="store_true",
        help="map although the pixel size differs by more than 1.5x",
    )
    p.add_argument(
        "--overwrite",
        choices=("never", "replace"),
        default="never",
        help="OUT/ that is not empty: refuse (default) or replace it whole",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="mmls", description=__doc__.split("\n\n")[0])
    top.add_argument("--version", action="version", version=f"mmls {version('mmls')}")
    sub = top.add_subparsers(dest="command", required=True)
    info = sub.add_parser("info", help="print a bundle's model card")
    info.add_argument("bundle")
    info.add_argument("--json", action="store_true", help="the card's fields as JSON")
    m = sub.add_parser("map", help="map a scene with a bundle")
    m.add_argument("bundle")
    m.add_argument("scene")
    m.add_argument("out")
    _shared(m)
    m.add_argument("--bbox", type=_floats, help="xmin,ymin,xmax,ymax in the scene's CRS")
    m.add_argument("--inventory", help="score the map against it (raster or polygons)")
    m.add_argument("--landslide-class", type=int, default=1, help="the inventory's class")
    m.add_argument(
        "--scheduler",
        choices=("single", "threads", "processes", "distributed"),
        default=ENGINE_DEFAULTS["scheduler"],
        help="the mapping engine",
    )
    m.add_argument("--workers", type=int, default=ENGINE_DEFAULTS["workers"])
    m.add_argument(
        "--overlap-px",
        type=int,
        default=ENGINE_DEFAULTS["overlap_px"],
        help="overlap of neighbouring windows (less than the model's tile size)",
    )
    m.add_argument("--batch-size", type=int, default=ENGINE_DEFAULTS["batch_size"])
    m.add_argument("--quicklook-px", type=int, default=1024)
    t = sub.add_parser("predict-tiles", help="one mask per tile of a folder")
    t.add_argument("bundle")
    t.add_argument("folder")
    t.add_argument("out")
    _shared(t)
    t.add_argument(
        "--layout", help="the tiles' release layout (mmlsv2-challenge | mmlsv2 | mmlsv1)"
    )
    c = sub.add_parser("check", help="validate a pipeline's params.yaml and inputs")
    c.add_argument("pipeline", nargs="?", default=".", help="the folder of its dvc.yaml")
    s = sub.add_parser("synthetic-scene", help="write a synthetic scene (composite, inventory)")
    s.add_argument("out", help="folder for composite.tif and inventory.tif")
    s.add_argument("--seed", type=int, required=True, help="the generator's seed")
    s.add_argument("--params", default="params.yaml", help="whose `synthetic` section to use")
    return top


def _run(args: argparse.Namespace) -> None:
    if args.command == "check":
        for line in check_pipeline(args.pipeline):
            print(line)
        return
    if args.command == "synthetic-scene":
        print(write_synthetic_scene(args.out, args.seed, args.params))
        return
    model = load_model(args.bundle)
    if args.command == "info":
        print(json.dumps(model.bundle.record(), indent=2) if args.json else model.card(), end="")
        return
    common = dict(
        bands=args.bands,
        threshold=args.threshold,
        tta=args.tta,
        allow_value_mismatch=args.allow_value_mismatch,
        allow_pixel_size=args.allow_pixel_size,
        overwrite=args.overwrite,
        progress=not args.no_progress,
    )
    if args.command == "map":
        if args.bbox is not None and len(args.bbox) != 4:
            raise InputError("--bbox", "needs four numbers: xmin,ymin,xmax,ymax")
        s = model.map(
            args.scene,
            args.out,
            bbox=args.bbox,
            inventory=args.inventory,
            landslide_class=args.landslide_class,
            quicklook_px=args.quicklook_px,
            device=args.device,
            threads=args.threads,
            scheduler=args.scheduler,
            workers=args.workers,
            overlap_px=args.overlap_px,
            batch_size=args.batch_size,
            **common,
        )
        scored = f", mIoU {s['map']['miou']:.4f}" if s["scored_against"] else ""
        print(
            f"mapped {s['map']['n_pixels']:,} px in {s['seconds']:.1f} s: "
            f"{s['map']['n_polygons']} landslide polygons{scored} -> {args.out}"
        )
    else:
        s = model.predict_tiles(
            args.folder,
            args.out,
            layout=args.layout,
            device=args.device,
            threads=args.threads,
            **common,
        )
        print(f"predicted {s['n_tiles']} tiles ({s['fg_pixels']:,} landslide px) -> {args.out}")
    for note in s.get("overrides", []):
        print(f"note: {note}")


def main(argv: Sequence[str] | None = None) -> None:
    args = parser().parse_args(argv)
    warnings.simplefilter("default")
    # a third-party deprecation (affine's `*`, inside rasterio) that says nothing to a user
    warnings.filterwarnings("ignore", message="Use `@` matmul", category=PendingDeprecationWarning)
    run_stage(lambda: _run(args), outputs=())  # errors: one line, exit 2; GDAL's cache bounded


if __name__ == "__main__":
    main(sys.argv[1:])
