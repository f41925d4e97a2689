"""Tiny configs for tests: the repository's params.yaml sections with overrides.

Defaults live only in params.yaml, so a test builds a section from the real file and changes
what it needs (e.g. ``train_config(epochs=2)``); a key the schema does not know is an error.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mmls.core.config import Section, load_params, parse

ROOT = Path(__file__).resolve().parents[1]
PARAMS = load_params(ROOT / "params.yaml")
#: The real-MMLSv2 pipeline's params: the sections the default pipeline does not use
#: (ingest, cv) live there.
REAL_PARAMS = load_params(ROOT / "real" / "mmlsv2" / "params.yaml")


def config(name: str, schema: type[Section], **overrides: Any) -> Any:
    """``params.yaml:<name>`` (the default pipeline's, else the real pipeline's) with
    ``overrides``, validated like a stage does."""
    source = PARAMS if name in PARAMS else REAL_PARAMS
    return parse({**source[name], **overrides}, schema, f"params.yaml:{name}")


def params(**sections: Any) -> dict[str, Any]:
    """A whole params mapping: the repository's, with some sections replaced."""
    return {**PARAMS, **sections}


def engine_config(**overrides: Any) -> Any:
    """The engine part of ``params.yaml:map`` (:class:`mmls.inference.scene.PredictConfig`:
    the section without its scenes) with ``overrides``."""
    from mmls.inference.scene import PredictConfig

    section = {k: v for k, v in PARAMS["map"].items() if k in PredictConfig.model_fields}
    return parse({**section, **overrides}, PredictConfig, "params.yaml:map")
