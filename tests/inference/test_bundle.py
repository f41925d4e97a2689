"""Model bundles: one self-describing file, read back exactly, refused when it is not one."""

from __future__ import annotations

import pytest
import torch

from mmls.core.errors import InputError
from mmls.inference.bundle import (
    SCHEMA_VERSION,
    load_predictor,
    model_card,
    read_bundle,
    write_bundle,
)
from mmls.nn.models import save_checkpoint
from tests.bundles import tiny_bundle, write_tiny_bundle


def test_a_bundle_loads_weights_only_and_reads_back_what_was_written(tmp_path) -> None:
    bundle = tiny_bundle(context_px=16)
    path = tmp_path / "tiny.mmls.pt"
    write_bundle(path, bundle)
    payload = torch.load(path, weights_only=True)  # tensors and plain types only
    assert payload["schema"] == "mmls.bundle" and payload["schema_version"] == SCHEMA_VERSION
    back = read_bundle(path)
    assert back.record() == bundle.record()
    assert all(torch.equal(back.state_dict[k], v) for k, v in bundle.state_dict.items())
    x = torch.rand(1, 7, 64, 64)
    with torch.no_grad():
        assert torch.equal(back.build()(x), bundle.build()(x))


def test_a_predictor_opens_a_bundle_or_a_checkpoint(tmp_path) -> None:
    path = write_tiny_bundle(tmp_path / "b.mmls.pt", context_px=16)
    predictor = load_predictor(path, torch.device("cpu"))
    assert predictor.context_px == 16 and predictor.tile_size == 32
    bundle = tiny_bundle()
    meta = {
        "model_name": "tiny",
        "model_config": bundle.model_config,
        "bands": bundle.bands,
        "normalization": bundle.normalization,
        "tile_size": 32,
    }
    save_checkpoint(tmp_path / "best.pt", bundle.state_dict, meta)
    assert load_predictor(tmp_path / "best.pt", torch.device("cpu")).tile_size == 32


def test_what_is_not_a_bundle_is_refused_naming_the_file(tmp_path) -> None:
    bundle = tiny_bundle()
    meta = {"model_name": "tiny", "model_config": bundle.model_config, "bands": bundle.bands}
    save_checkpoint(tmp_path / "best.pt", bundle.state_dict, meta)
    with pytest.raises(InputError, match=r"best\.pt: not a model bundle \(a training checkpoint"):
        read_bundle(tmp_path / "best.pt")
    with pytest.raises(InputError, match="bundle not found"):
        read_bundle(tmp_path / "none.mmls.pt")
    path = write_tiny_bundle(tmp_path / "old.mmls.pt")
    payload = torch.load(path, weights_only=True)
    torch.save({**payload, "schema_version": SCHEMA_VERSION + 1}, path)
    with pytest.raises(InputError, match="schema version 2 is not the 1 this mmls reads"):
        read_bundle(path)


def test_the_model_card_says_what_the_model_takes_and_earned() -> None:
    card = model_card(tiny_bundle(inference=tiny_bundle().inference), "b.mmls.pt")
    for text in (
        "# tiny  (recommended",
        "bands, in order: red, green, blue, dem",
        "tile: 32 px",
        "values: scaled [0, 1]",
        "pixel size: 100 m",
        "threshold: the argmax of the two logits",
        "paper: test, test: mIoU 0.6000",
        "git_revision: test",
    ):
        assert text in card, text
