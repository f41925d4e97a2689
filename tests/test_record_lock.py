"""pipelines/record_lock.py: which dependencies count as present on this machine."""

from types import SimpleNamespace

from pipelines.record_lock import present


def dep(path):
    return SimpleNamespace(exists=path.exists(), fs_path=str(path))


def test_a_directory_of_gitignores_is_another_machines_output(tmp_path):
    out = tmp_path / "models" / "unet_paper"
    (out / "seed42").mkdir(parents=True)
    (out / "seed42" / ".gitignore").write_text("/best.pt\n")
    assert not present(dep(out))
    (out / "seed42" / "best.pt").write_bytes(b"weights")
    assert present(dep(out))


def test_files_and_missing_paths(tmp_path):
    assert not present(dep(tmp_path / "absent.pt"))
    (tmp_path / "best.pt").write_bytes(b"w")
    assert present(dep(tmp_path / "best.pt"))
    (tmp_path / "empty").mkdir()
    assert not present(dep(tmp_path / "empty"))
