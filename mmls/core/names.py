"""Names that become parts of stage commands, stage names and paths: checked before any use.

DVC interpolates params into ``dvc.yaml`` before anything of this project runs: the keys of
``models`` and ``band_sets``, the ``seeds``, the CV variants, rescorings, ensembles, folds and
replicates, and the scenes of ``map`` land in the command lines of their stages
(``--model ${item.model}``), in stage names (``train@unet-42``) and in output paths. A key such as
``x$(touch pwned)`` would otherwise be run by the shell that DVC starts.

So every stage whose command holds such a value runs this module first, as a command of its own
(``python -m mmls.core.names``; DVC runs a stage's commands one after the other, each in its own
shell, and stops at the first that fails): the shell never sees the second command when a name is
bad. Stage scripts check the same names again when they read params (:func:`check_names`), so a
bad name exits 2 and names its key at the first stage that runs, data stages included.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Mapping
from typing import Any

import yaml

from mmls.core.errors import InputError

#: What a name may be: lower-case letters, digits, ``_``, ``.``, ``-``, starting with a letter or
#: digit (no shell metacharacter, no space, no path separator, no ``..`` at the start).
SAFE_NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]*$")
#: Dict-valued params whose KEYS are names.
NAMED_ENTRIES: tuple[str, ...] = (
    "models",
    "band_sets",
    "cv.variants",
    "cv.rescored",
    "cv.ensembles",
    "map.scenes",
    "map.scores",
)
#: List-valued params whose items are names.
NAME_LISTS: tuple[str, ...] = ("cv.replicates.variants",)
#: Single names.
NAME_VALUES: tuple[str, ...] = ("model",)
#: List-valued params whose items are integers (seeds, folds).
INT_LISTS: tuple[str, ...] = ("seeds", "cv.folds", "cv.replicates.seeds")


def _at(params: Mapping[str, Any], dotted: str) -> Any:
    node: Any = params
    for part in dotted.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return None
        node = node[part]
    return node


def check_name(name: Any, where: str) -> str:
    """``name`` if it is a safe name (:data:`SAFE_NAME`), else an InputError naming ``where``."""
    if not isinstance(name, str) or not SAFE_NAME.match(name):
        raise InputError(
            where,
            f"{name!r} is not a valid name: use lower-case letters, digits, '_', '.' and '-', "
            "starting with a letter or digit (names become stage names, command words and paths)",
        )
    return name


def check_names(params: Mapping[str, Any], source: str = "params.yaml") -> None:
    """Every name and integer that DVC interpolates into commands, stage names and paths."""
    for key in NAMED_ENTRIES:
        entries = _at(params, key)
        if isinstance(entries, Mapping):
            for name in entries:
                check_name(name, f"{source}:{key}.{name}")
    for key in NAME_LISTS:
        items = _at(params, key)
        for name in items if isinstance(items, list) else []:
            check_name(name, f"{source}:{key}")
    for key in NAME_VALUES:
        if _at(params, key) is not None:
            check_name(_at(params, key), f"{source}:{key}")
    for key in INT_LISTS:
        items = _at(params, key)
        for item in items if isinstance(items, list) else []:
            if not isinstance(item, int) or isinstance(item, bool) or item < 0:
                raise InputError(f"{source}:{key}", f"{item!r} is not a non-negative integer")


def main(path: str = "params.yaml") -> int:
    """Check the names of ``path`` (the pipeline folder's params.yaml); 2 on a bad one."""
    try:
        with open(path) as f:
            params = yaml.safe_load(f)
        check_names(params if isinstance(params, Mapping) else {}, path)
    except (OSError, yaml.YAMLError) as exc:
        print(f"error: {path}: cannot read ({exc})", file=sys.stderr)
        return 2
    except InputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
