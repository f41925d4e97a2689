"""Small IO helpers shared by every stage: atomic outputs, JSON/params, guarded raster opening.

Every stage writes through :func:`atomic_path` / :func:`atomic_dir`, so a failure (bad input,
Ctrl-C, a crash) never leaves a half-written output where DVC or a user would take it as done.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sys
import tempfile
import warnings
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pandas as pd
import rasterio
from rasterio.errors import RasterioIOError

from mmls.core.errors import InputError

PathLike = str | os.PathLike[str]


@contextlib.contextmanager
def atomic_path(path: PathLike) -> Iterator[Path]:
    """Yield a temporary sibling path; on success it replaces ``path``, on error it is removed."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        tmp.chmod(0o644)  # mkstemp creates 0600; outputs are ordinary files
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            tmp.unlink()


@contextlib.contextmanager
def atomic_dir(path: PathLike) -> Iterator[Path]:
    """Yield a temporary sibling directory; on success it replaces ``path`` as a whole."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
    try:
        yield tmp
        tmp.chmod(0o755)  # mkdtemp creates 0700
        if target.exists():
            shutil.rmtree(target)
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)


def write_json(path: PathLike, obj: Any) -> None:
    """Deterministic JSON (sorted keys, 2-space indent, trailing newline), written atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, sort_keys=True) + "\n")


def read_json(path: PathLike) -> Any:
    try:
        return json.loads(Path(path).read_text())
    except FileNotFoundError as exc:
        raise InputError(path, "file not found") from exc
    except json.JSONDecodeError as exc:
        raise InputError(path, f"not valid JSON ({exc})") from exc


def read_csv(path: PathLike, required: Sequence[str] = ()) -> pd.DataFrame:
    """Read a CSV; a missing/unreadable file or missing ``required`` columns is an InputError."""
    p = Path(path)
    if not p.is_file():
        raise InputError(p, "file not found")
    try:
        df = pd.read_csv(p)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise InputError(p, f"not a readable CSV ({exc})") from exc
    missing = [c for c in required if c not in df.columns]
    if missing:
        raise InputError(p, f"missing column(s) {missing}")
    return df


def open_raster(path: PathLike) -> rasterio.DatasetReader:
    """Open a raster for reading, turning missing/corrupt files into an :class:`InputError`."""
    p = Path(path)
    if not p.exists():
        raise InputError(p, "file not found")
    if p.is_file() and p.stat().st_size == 0:
        raise InputError(p, "file is empty")
    try:
        return rasterio.open(p)
    except RasterioIOError as exc:
        raise InputError(p, f"not a readable raster ({exc})") from exc


#: GDAL's block cache defaults to 5 % of RAM, which alone makes RSS grow with the scene up to
#: that size (benchmarks/bench_data_chain.py); windowed stages need only a few block rows.
GDAL_CACHEMAX_MB = 256


def _one_line_warning(message: Warning | str, category: type[Warning], *_: Any, **__: Any) -> str:
    return f"warning: {message}\n"


def run_stage(main: Callable[[], None]) -> None:
    """Run a stage's ``main``: an :class:`InputError` becomes one line on stderr and exit 2.

    GDAL's block cache is bounded to :data:`GDAL_CACHEMAX_MB` unless the environment sets
    ``GDAL_CACHEMAX`` itself.
    """
    # GDAL reads it as a config option at the cache's first use; workers inherit it
    os.environ.setdefault("GDAL_CACHEMAX", str(GDAL_CACHEMAX_MB))
    warnings.formatwarning = _one_line_warning
    try:
        main()
    except InputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
    except RasterioIOError as exc:  # a read failing half-way through a corrupt file
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
