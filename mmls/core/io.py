"""Small IO helpers shared by every stage: atomic outputs, JSON/params, guarded raster opening.

Every stage writes through :func:`atomic_path` / :func:`atomic_dir`, so a failure (bad input,
Ctrl-C, a crash) never leaves a half-written output where DVC or a user would take it as done.
"""

from __future__ import annotations

import contextlib
import glob
import json
import os
import re
import shutil
import sys
import tempfile
import warnings
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pandas as pd
import rasterio
import rasterio.errors
from rasterio.errors import RasterioIOError
from rasterio.windows import Window

from mmls.core.errors import InputError

PathLike = str | os.PathLike[str]


#: Temporary outputs are named ``.<name>.<pid>.<random>.tmp`` beside their target, so that the
#: leftovers of a killed run (kill -9 leaves them) are recognised and removed at the next run.
TMP_SUFFIX = ".tmp"


def _tmp_prefix(target: Path) -> str:
    return f".{target.name}.{os.getpid()}."


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's
        return True
    return True


def remove_stale_tmp(target: Path) -> list[Path]:
    """Remove the temporary siblings of ``target`` left by runs whose process is gone."""
    removed = []
    pattern = re.compile(rf"^\.{re.escape(target.name)}\.(\d+)\.[^.]+{re.escape(TMP_SUFFIX)}$")
    for sibling in target.parent.glob(f".{glob.escape(target.name)}.*{TMP_SUFFIX}"):
        m = pattern.match(sibling.name)
        if m is None or _pid_alive(int(m.group(1))):
            continue
        if sibling.is_dir() and not sibling.is_symlink():
            shutil.rmtree(sibling, ignore_errors=True)
        else:
            sibling.unlink(missing_ok=True)
        removed.append(sibling)
    return removed


@contextlib.contextmanager
def atomic_path(path: PathLike) -> Iterator[Path]:
    """Yield a temporary sibling path; on success it replaces ``path``, on error it is removed."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_tmp(target)
    fd, tmp_name = tempfile.mkstemp(
        prefix=_tmp_prefix(target), suffix=TMP_SUFFIX, dir=target.parent
    )
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
    remove_stale_tmp(target)
    tmp = Path(tempfile.mkdtemp(prefix=_tmp_prefix(target), suffix=TMP_SUFFIX, dir=target.parent))
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


def check_regular_file(path: PathLike) -> Path:
    """``path``, if it is a regular file (or a link to one); a FIFO, socket or device would
    block a reader forever, and is refused."""
    p = Path(path)
    if not p.exists():
        raise InputError(p, "file not found")
    if not p.is_file():
        kind = "a folder" if p.is_dir() else "not a regular file (a FIFO, socket or device)"
        raise InputError(p, f"is {kind}: refused")
    return p


def open_raster(path: PathLike) -> rasterio.DatasetReader:
    """Open a raster for reading, turning missing/corrupt files into an :class:`InputError`."""
    p = check_regular_file(path)
    if p.stat().st_size == 0:
        raise InputError(p, "file is empty")
    try:
        return rasterio.open(p)
    except RasterioIOError as exc:
        raise InputError(p, f"not a readable raster ({exc})") from exc


def read_raster(src: rasterio.DatasetReader, *args: Any, **kwargs: Any) -> Any:
    """``src.read(*args, **kwargs)``; a failing read (a truncated or corrupt file) is an
    :class:`InputError` naming the file, the band(s) and the window."""
    try:
        return src.read(*args, **kwargs)
    except RasterioIOError as exc:
        bands = args[0] if args else kwargs.get("indexes", "all")
        window = kwargs.get("window")
        where = f"band(s) {bands}" + (f", window {_describe(window)}" if window is not None else "")
        cause = str(exc.__cause__ or exc).splitlines()[0]
        raise InputError(src.name, f"cannot read {where}: {cause} (truncated or corrupt?)") from exc


def _describe(window: Any) -> str:
    """``cols a..b, rows c..d`` of a rasterio window (or of its tuple form)."""
    try:
        w = window if isinstance(window, Window) else Window.from_slices(*window)
        cols = f"{int(w.col_off)}..{int(w.col_off + w.width)}"
        return f"cols {cols}, rows {int(w.row_off)}..{int(w.row_off + w.height)}"
    except (TypeError, ValueError):
        return str(window)


#: GDAL's block cache defaults to 5 % of RAM, which alone makes RSS grow with the scene up to
#: that size (benchmarks/bench_data_chain.py); windowed stages need only a few block rows.
GDAL_CACHEMAX_MB = 256


def _one_line_warning(message: Warning | str, category: type[Warning], *_: Any, **__: Any) -> str:
    return f"warning: {message}\n"


#: The folders stages write into, relative to a pipeline's folder (mmls/core/paths.py).
OUTPUT_FOLDERS = ("data", "models", "metrics", "predictions", "reports", "bundles", "maps")


def check_writable(folders: Sequence[PathLike] = OUTPUT_FOLDERS) -> None:
    """Refuse to start when an output folder that exists cannot be written: the stage would
    fail only after its work. (DVC has already removed the stage's declared outputs by then:
    once the folder is fixed, ``dvc checkout <stage>`` restores them from the cache.)"""
    for folder in folders:
        path = Path(folder)
        if path.is_dir() and not os.access(path, os.W_OK | os.X_OK):
            raise InputError(
                path,
                "is not writable: fix its permissions, then `dvc checkout` restores the outputs "
                "DVC removed before running the stage",
            )


def run_stage(main: Callable[[], None], outputs: Sequence[PathLike] = OUTPUT_FOLDERS) -> None:
    """Run a stage's ``main``: an :class:`InputError` becomes one line on stderr and exit 2;
    the ``outputs`` folders are checked writable first (:func:`check_writable`).

    GDAL's block cache is bounded to :data:`GDAL_CACHEMAX_MB` unless the environment sets
    ``GDAL_CACHEMAX`` itself.
    """
    # GDAL reads it as a config option at the cache's first use; workers inherit it
    os.environ.setdefault("GDAL_CACHEMAX", str(GDAL_CACHEMAX_MB))
    warnings.formatwarning = _one_line_warning
    try:
        check_writable(outputs)
        main()
    except InputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
    except RasterioIOError as exc:  # a read failing half-way through a corrupt file
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
