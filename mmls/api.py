"""The Python API: a trained model out of the pipeline, applied to any region.

    from mmls.api import load_model

    model = load_model("bundles/unet.mmls.pt")
    print(model.card())
    summary = model.map("my_scene.tif", "my_map/", threads=2)
    model.predict_tiles("test/images", "test_masks/", layout="mmlsv2-challenge")

``mmls map`` / ``mmls predict-tiles`` / ``mmls info`` (:mod:`mmls.cli`) and the pipeline's
``map@`` stage run these same functions (:mod:`mmls.inference.mapping`,
:mod:`mmls.inference.tile_folder`). A bad input raises :class:`mmls.core.errors.InputError`
naming the file (and band) and the problem, before anything is written.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mmls.core.io import PathLike
from mmls.inference.bundle import Bundle, bundle_predictor, model_card, read_bundle
from mmls.inference.compatibility import Allowances
from mmls.inference.mapping import MapOptions, map_scene
from mmls.inference.scene import PredictConfig
from mmls.inference.tile_folder import predict_tile_folder
from mmls.nn.device import resolve_device, set_threads

#: The engine settings of a map made outside a pipeline: the values of the default pipeline's
#: `map` section (tests/test_api.py holds the two together), overridable per call.
ENGINE_DEFAULTS: dict[str, Any] = {
    "overlap_px": 32,
    "batch_size": 16,
    "simplify_m": 0.0,
    "min_area_m2": 0.0,
    "match_min_overlap_px": 1,
    "match_min_iou": 0.0,
    "device": "auto",
    "threads": None,
    "scheduler": "single",
    "workers": 2,
    "chunk_window_rows": 8,
}


def engine(**overrides: Any) -> PredictConfig:
    """The engine settings: :data:`ENGINE_DEFAULTS` with ``overrides`` (None = keep)."""
    values = {**ENGINE_DEFAULTS, **{k: v for k, v in overrides.items() if v is not None}}
    return PredictConfig.model_validate(values)


@dataclass
class Model:
    """A model bundle, ready to map scenes and predict tiles."""

    path: Path
    bundle: Bundle

    def card(self) -> str:
        """The model card (``mmls info``)."""
        return model_card(self.bundle, str(self.path))

    def map(
        self,
        scene: PathLike,
        out_dir: PathLike,
        *,
        bbox: Sequence[float] | None = None,
        bands: Sequence[str] | None = None,
        threshold: float | None = None,
        tta: bool | None = None,
        inventory: PathLike | None = None,
        landslide_class: int = 1,
        allow_value_mismatch: bool = False,
        allow_pixel_size: bool = False,
        overwrite: str = "never",
        progress: bool = True,
        quicklook_px: int = 1024,
        **engine_options: Any,
    ) -> dict[str, Any]:
        """Map ``scene`` into ``out_dir`` (see :mod:`mmls.inference.mapping`); the summary.
        ``engine_options``: any key of :data:`ENGINE_DEFAULTS` (``device``, ``threads``,
        ``scheduler``, ``workers``, ...)."""
        options = MapOptions(
            bbox=tuple(bbox) if bbox is not None else None,
            band_map=tuple(bands) if bands is not None else None,
            threshold=threshold,
            tta=tta,
            allow=Allowances(allow_value_mismatch, allow_pixel_size),
            inventory=str(inventory) if inventory is not None else None,
            landslide_class=landslide_class,
            overwrite=overwrite,  # type: ignore[arg-type]
            progress=progress,
            quicklook_px=quicklook_px,
        )
        cfg = engine(**engine_options)
        return map_scene(self.path, scene, out_dir, cfg, options, self.bundle)

    def predict_tiles(
        self,
        folder: PathLike,
        out_dir: PathLike,
        *,
        layout: str | None = None,
        bands: Sequence[str] | None = None,
        threshold: float | None = None,
        tta: bool | None = None,
        allow_value_mismatch: bool = False,
        allow_pixel_size: bool = False,
        device: str = "auto",
        threads: int | None = None,
        batch_size: int = 16,
        overwrite: str = "never",
        progress: bool = True,
    ) -> dict[str, Any]:
        """One mask per tile of ``folder`` into ``out_dir`` (:mod:`mmls.inference.tile_folder`)."""
        set_threads(threads)
        predictor = bundle_predictor(
            self.bundle, resolve_device(device, "--device"), str(self.path)
        )
        return predict_tile_folder(
            predictor,
            self.bundle,
            folder,
            out_dir,
            layout=layout,
            band_map=bands,
            threshold=threshold,
            tta=tta,
            allow=Allowances(allow_value_mismatch, allow_pixel_size),
            batch_size=batch_size,
            overwrite=overwrite,
            progress=progress,
        )


def load_model(path: PathLike) -> Model:
    """The model bundle at ``path`` (``bundles/<model>.mmls.pt`` of a pipeline)."""
    return Model(Path(path), read_bundle(path))
