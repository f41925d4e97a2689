"""The held-out per-patch counts of every CV row, kept in git (``metrics/cv_counts``).

The CV table's paired CIs (mmls/report/tables.py) resample blocks of per-patch confusion
counts, so they need every row's ``heldout.patches.csv``. Those live beside the predicted masks
in ``predictions/cv`` (DVC's cache), which a fresh checkout lacks: two rows trained in different
sessions could then never be paired. The ``cv_counts`` stages copy each row's tables to
``metrics/cv_counts/<row>/fold<k>/<seed>.patches.csv`` (a few KB each, tracked by git like the
metrics beside them, ``metrics/cv/<row>/fold<k>/<seed>.json``), and the table reads them there.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from mmls.core import paths
from mmls.core.errors import InputError
from mmls.core.io import atomic_dir
from mmls.metrics.patch_files import read_patch_table

CV_COUNTS = paths.METRICS / "cv_counts"
_CV_METRICS = paths.METRICS / "cv"
_CV_PREDICTIONS = paths.PREDICTIONS / "cv"
_HELD_OUT_PATCHES = f"{paths.HELD_OUT}{paths.PATCHES_SUFFIX}"
#: A fold's scored run inside a row's predictions: ``fold<k>/seed<s>`` or ``fold<k>/ensemble``.
_RUN = re.compile(rf"fold(?P<fold>\d+)/(?:seed(?P<seed>\d+)|{paths.ENSEMBLE})")


def counts_file(metrics_json: Path) -> Path:
    """The per-patch counts of the held-out scores ``metrics/cv/<row>/fold<k>/<seed>.json``."""
    relative = Path(metrics_json).relative_to(_CV_METRICS)
    return CV_COUNTS / relative.parent / f"{relative.stem}{paths.PATCHES_SUFFIX}"


def cv_counts_file(name: str, fold: int, seed: int) -> Path:
    return counts_file(paths.cv_metrics(name, fold, seed))


def cv_ensemble_counts_file(name: str, fold: int) -> Path:
    return counts_file(paths.cv_ensemble_metrics(name, fold))


def held_out_tables(name: str) -> dict[Path, Path]:
    """The held-out patch tables of CV row ``name`` in its predictions (``fold<k>/seed<s>/`` or
    ``fold<k>/ensemble/heldout.patches.csv``; other folders, such as a killed run's temporary
    one, are skipped), keyed by their counts file in ``metrics/cv_counts``, sorted."""
    source = _CV_PREDICTIONS / name
    tables = {}
    for table in source.glob(f"fold*/*/{_HELD_OUT_PATCHES}"):
        run = _RUN.fullmatch(table.parent.relative_to(source).as_posix())
        if run is None:
            continue
        fold, seed = int(run["fold"]), run["seed"]
        target = (
            cv_counts_file(name, fold, int(seed)) if seed else cv_ensemble_counts_file(name, fold)
        )
        tables[target] = table
    return dict(sorted(tables.items()))


def copy_held_out_counts(name: str) -> list[Path]:
    """Copy the held-out patch tables of CV row ``name`` (:func:`held_out_tables`), each checked
    on the way, to ``metrics/cv_counts/<name>``, replacing the row's folder as a whole; the
    written files, sorted."""
    tables = held_out_tables(name)
    if not tables:
        source = _CV_PREDICTIONS / name
        raise InputError(source, f"holds no fold*/*/{_HELD_OUT_PATCHES}: score the row first")
    row = CV_COUNTS / name
    with atomic_dir(row) as tmp:
        for target, table in tables.items():
            read_patch_table(table)  # refuse a corrupt table rather than commit it
            copy = tmp / target.relative_to(row)
            copy.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(table, copy)
    return list(tables)
