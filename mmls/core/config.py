"""The one config layer: every params section is read through :func:`section` or :func:`value`.

Each concern declares its section as a :class:`Section` (a strict pydantic model without
defaults) next to the code that uses it; the values, defaults included, live only in
``params.yaml``. An unknown key, a missing key or a value of the wrong type is an
:class:`~mmls.core.errors.InputError` naming ``params.yaml:<section>.<key>`` (exit 2 in a stage).
Strict means no coercion: ``epochs: "10"`` or ``lr: 1e-3`` (a string in YAML 1.1) are errors,
not silently converted.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, TypeAdapter, ValidationError

from mmls.core.errors import InputError
from mmls.core.io import PathLike
from mmls.core.names import check_names

PARAMS_FILE = "params.yaml"

S = TypeVar("S", bound="Section")


class ParamError(Exception):
    """A value of the right type that a section's :meth:`Section.check` rejects."""

    def __init__(self, key: str, problem: str) -> None:
        self.key = key
        self.problem = problem
        super().__init__(f"{key}: {problem}")


class Section(BaseModel):
    """Base of every params section: strict types, no unknown keys, immutable.

    Subclasses add range and cross-field rules in :meth:`check` (raise :class:`ParamError`).
    """

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    def check(self) -> None:
        """Rules beyond types; the default has none."""


#: Every top-level key a pipeline's params.yaml may hold (each pipeline uses a subset; what each
#: section holds is declared next to the code that reads it). An unknown key is an error, so a
#: misspelled section (``trian:``) never passes silently as an unused one.
TOP_LEVEL_KEYS: tuple[str, ...] = (
    "seeds",
    "model",
    "bands",
    "scene",
    "synthetic",
    "ingest",
    "align",
    "binarize",
    "holdout",
    "tile",
    "table1",
    "split",
    "dataset",
    "train",
    "recipe",
    "eval",
    "models",
    "band_sets",
    "cv",
    "map",
    "statistics",
    "report",
)


def check_top_level(params: Mapping[str, Any], source: str = PARAMS_FILE) -> None:
    """Every top-level key is one of :data:`TOP_LEVEL_KEYS` (else an error with a suggestion)."""
    for key in params:
        if key not in TOP_LEVEL_KEYS:
            close = difflib.get_close_matches(str(key), TOP_LEVEL_KEYS, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise InputError(
                f"{source}:{key}",
                f"unknown top-level key{hint} (known: {', '.join(TOP_LEVEL_KEYS)})",
            )


def load_params(path: PathLike = PARAMS_FILE) -> dict[str, Any]:
    """The params file as a mapping, its top level and its names checked
    (:func:`check_top_level`, :func:`mmls.core.names.check_names`)."""
    try:
        params = yaml.safe_load(Path(path).read_text())
    except FileNotFoundError as exc:
        raise InputError(path, "params file not found") from exc
    except yaml.YAMLError as exc:
        raise InputError(path, f"not valid YAML ({exc})") from exc
    if params is None:
        raise InputError(path, "params file is empty: it must hold the pipeline's sections")
    if not isinstance(params, dict):
        raise InputError(path, "params file must hold a mapping")
    check_top_level(params, str(path))
    check_names(params, str(path))
    return params


def _first_error(exc: ValidationError) -> tuple[str, str]:
    err = exc.errors()[0]
    loc = ".".join(str(part) for part in err["loc"])
    problem = {"missing": "missing key", "extra_forbidden": "unknown key"}.get(
        err["type"], err["msg"]
    )
    if err["type"] not in ("missing", "extra_forbidden"):
        problem += f" (got {err.get('input')!r})"
    return loc, problem


def parse(raw: Any, kind: Any, where: str) -> Any:
    """Validate ``raw`` against a :class:`Section` subclass or any type (``list[str]``, ...),
    strictly; errors name ``<where>.<key>``."""
    try:
        if isinstance(kind, type) and issubclass(kind, Section):
            parsed = kind.model_validate(raw)
        else:
            parsed = TypeAdapter(kind).validate_python(raw, strict=True)
    except ValidationError as exc:
        loc, problem = _first_error(exc)
        raise InputError(f"{where}.{loc}" if loc else where, problem) from exc
    if isinstance(parsed, Section):
        try:
            parsed.check()
        except ParamError as exc:
            raise InputError(f"{where}.{exc.key}", exc.problem) from exc
    return parsed


def section(params: Mapping[str, Any], name: str, schema: type[S], source: str = PARAMS_FILE) -> S:
    """Validate ``params[name]`` against ``schema``."""
    if name not in params:
        raise InputError(f"{source}:{name}", "missing section")
    return parse(params[name], schema, f"{source}:{name}")


def value(params: Mapping[str, Any], key: str, kind: Any, source: str = PARAMS_FILE) -> Any:
    """Validate one top-level key (e.g. ``model: str``, ``seeds: list[int]``)."""
    if key not in params:
        raise InputError(f"{source}:{key}", "missing key")
    return parse(params[key], kind, f"{source}:{key}")


def entries(params: Mapping[str, Any], name: str, source: str = PARAMS_FILE) -> list[str]:
    """The entry names of a dict-valued section (``models``, ``band_sets``), in file order."""
    table = params.get(name)
    if not isinstance(table, Mapping):
        raise InputError(f"{source}:{name}", "missing section (a mapping of named entries)")
    return [str(k) for k in table]


def entry(
    params: Mapping[str, Any], name: str, key: str, kind: Any, source: str = PARAMS_FILE
) -> Any:
    """``params[name][key]`` of a dict-valued section, validated against ``kind``."""
    known = entries(params, name, source)
    if key not in known:
        raise InputError(f"{source}:{name}", f"has no entry {key!r}; known: {known}")
    return parse(params[name][key], kind, f"{source}:{name}.{key}")


def read_seeds(params: Mapping[str, Any]) -> list[int]:
    """The ``seeds`` param: one training replicate per seed (at least one, none repeated)."""
    seeds = value(params, "seeds", list[int])
    if not seeds or len(set(seeds)) != len(seeds):
        raise InputError(f"{PARAMS_FILE}:seeds", f"must list distinct seeds, got {seeds}")
    return seeds
