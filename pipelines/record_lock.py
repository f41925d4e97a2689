"""Record in a pipeline's dvc.lock the command, dependencies and params that stages have now,
keeping the outputs the lock already records: what ``dvc commit -f <stage>`` does, for stages
whose outputs are not on this machine (their trainings ran elsewhere; DVC's cache holds them).

Use it only for a change that provably does not change what those stages produce (code moved
between modules, a command that gained the name guard), after re-running a sample of the same
stages and checking it identical, and say so in the change's note. Every stage it records is
printed; ``--dry-run`` records nothing.

    python -m pipelines.record_lock real/mmlsv2/dvc.yaml 'cv_train@*' 'cv_eval@*' --dry-run
"""

from __future__ import annotations

import argparse
import fnmatch
import sys
from pathlib import Path

import yaml
from dvc.repo import Repo
from dvc.stage.serialize import to_single_stage_lockfile
from dvc.utils.serialize import modify_yaml

from pipelines.render import ROOT


def recordable(dvcfile: str, patterns: list[str]) -> list:
    """The stages of ``dvcfile`` (repository-relative) whose name matches a pattern."""
    stages = [s for s in Repo(str(ROOT)).index.stages if s.dvcfile.relpath == dvcfile]
    return [s for s in stages if any(fnmatch.fnmatch(s.name, p) for p in patterns)]


def present(dep) -> bool:
    """Whether a dependency is on this machine: a directory that holds nothing but the
    ``.gitignore`` files git keeps for DVC is another stage's output that is not (its hash would
    be that of the ``.gitignore``)."""
    if not dep.exists:
        return False
    path = Path(dep.fs_path)
    return path.is_file() or any(f.name != ".gitignore" for f in path.rglob("*") if f.is_file())


def record(dvcfile: str, patterns: list[str], dry_run: bool = False) -> list[str]:
    """Record the matching stages; returns their names."""
    lock_path = ROOT / Path(dvcfile).with_name("dvc.lock")
    entries = {}
    old = yaml.safe_load(lock_path.read_text())["stages"]
    for stage in recordable(dvcfile, patterns):
        if stage.name not in old:
            print(f"skip {stage.name}: never run, nothing to keep", file=sys.stderr)
            continue
        for dep in stage.deps:  # as they are now: code, data, params ...
            if getattr(dep, "params", None) is not None or present(dep):
                dep.save()
            elif not dep.hash_info:  # ... or, for another stage's missing output, as recorded
                raise SystemExit(f"{stage.name}: {dep} is missing and not in dvc.lock")
        entry = to_single_stage_lockfile(stage)
        if old[stage.name].get("outs") is not None:
            entry["outs"] = old[stage.name]["outs"]  # what ran elsewhere and is in the cache
        entries[stage.name] = entry
    if not dry_run and entries:
        with modify_yaml(str(lock_path)) as lock:  # DVC's own YAML style, one write
            lock["stages"].update(entries)
    return list(entries)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("dvcfile", help="e.g. real/mmlsv2/dvc.yaml")
    parser.add_argument("patterns", nargs="+", help="stage names, shell-style: 'cv_train@*'")
    parser.add_argument("--dry-run", action="store_true")
    args = parser.parse_args()
    for name in record(args.dvcfile, args.patterns, args.dry_run):
        print(("would record " if args.dry_run else "recorded ") + name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
