"""The package's shape, held as tests: layers by concern, imports that point down, thin stages.

``mmls/`` is cut into subpackages by concern, ordered from the ground up (:data:`LAYERS`): a
module may import its own subpackage and the ones below it, never one above, so the folder list
reads as the architecture and a change low down is the only kind that ripples far. The command
line and the Python API (``mmls/cli.py``, ``mmls/api.py``) sit on top of everything.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from pipelines.render import mmls_imports
from tests.configs import ROOT

#: The subpackages of mmls/, from the ground up.
LAYERS: tuple[str, ...] = (
    "core",  # errors, the params layer, atomic IO, paths and names
    "metrics",  # confusion counts, bootstrap intervals, threshold calibration
    "geo",  # rasters, nodata, georeferencing, alignment, holdout, tiling, rebuild
    "data",  # bands, standardisation, store, datasets, context, splits, folds, releases
    "nn",  # models, recipes, training, devices
    "inference",  # predictors, decisions, ensembles, scene mapping, tile predictions
    "evaluation",  # the paper's scoring protocol and cross-validation rows
    "report",  # tables, the Markdown report, figures
)
#: Modules at the top of the package: entry points over every layer.
TOP = {"cli", "api", "preflight"}
#: At most this many lines in a stage script's ``main`` (read params, call the library, write).
STAGE_MAIN_MAX_LINES = 40


def layer_of(module_file: str) -> int:
    """Rank of ``mmls/<layer>/...``; entry points rank above every layer."""
    parts = Path(module_file).parts
    if len(parts) == 2:
        return len(LAYERS)
    return LAYERS.index(parts[1])


def package_modules() -> list[Path]:
    return sorted(p for p in (ROOT / "mmls").rglob("*.py") if p.name != "__init__.py")


def test_every_module_lives_in_a_layer() -> None:
    for path in package_modules():
        rel = path.relative_to(ROOT)
        if len(rel.parts) == 2:
            assert rel.stem in TOP, f"{rel}: a module outside the layers {LAYERS}"
        else:
            assert rel.parts[1] in LAYERS, f"{rel}: {rel.parts[1]} is not a layer of {LAYERS}"


def test_imports_point_down_the_layers() -> None:
    upward = []
    for path in package_modules():
        rel = path.relative_to(ROOT).as_posix()
        for imported in mmls_imports(path):
            if imported.endswith("__init__.py"):
                continue
            if layer_of(imported) > layer_of(rel):
                upward.append(f"{rel} imports {imported}")
    assert not upward, "imports that point up the layers:\n" + "\n".join(sorted(upward))


def test_layers_rank_as_the_docs_say() -> None:
    # the layer list here and the one in docs/design.md must not drift apart
    text = (ROOT / "docs" / "design.md").read_text()
    order = [text.index(f"`mmls/{layer}/`") for layer in LAYERS]
    assert order == sorted(order)


@pytest.mark.parametrize("script", sorted((ROOT / "stages").glob("*.py")), ids=lambda p: p.name)
def test_stage_scripts_are_thin(script: Path) -> None:
    """A stage script defines ``main`` and nothing else: logic lives in the library."""
    tree = ast.parse(script.read_text())
    defined = [n for n in tree.body if isinstance(n, ast.FunctionDef | ast.ClassDef)]
    assert [n.name for n in defined] == ["main"], f"{script.name}: move helpers into mmls/"
    main = defined[0]
    assert main.end_lineno - main.lineno + 1 <= STAGE_MAIN_MAX_LINES, script.name
