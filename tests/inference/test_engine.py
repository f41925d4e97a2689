"""Whole-scene prediction on Dask: the same map, bit for bit, on every engine; one model load
per worker."""

from __future__ import annotations

from concurrent.futures import Future
from pathlib import Path

import numpy as np
import pytest
import rasterio
import torch
from hypothesis import given
from hypothesis import strategies as st

from mmls.core.paths import CHECKPOINT_NAME
from mmls.inference.engine import ADDRESS_ENV, Done, chunks, dask_rows, in_order
from mmls.inference.predictor import Predictor
from mmls.inference.scene import predict_scene
from mmls.nn.models import build_model, save_checkpoint
from tests.configs import engine_config
from tests.rasters import write_composite

UNET = {"arch": "Unet", "encoder_name": "resnet18", "encoder_weights": None}
BANDS = ["red", "green", "blue", "dem", "slope", "thermal_inertia", "grayscale"]


@pytest.fixture(scope="module")
def scene(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("engine")
    write_composite(root / "c.tif", 420, 330, seed=3, nodata_box=(0, 40, 0, 60))
    torch.manual_seed(0)
    model = build_model("unet", UNET, 7)
    meta = {
        "model_name": "unet",
        "model_config": UNET,
        "bands": BANDS,
        "tile_size": 128,
        "normalization": {"mean": [0.5] * 7, "std": [0.3] * 7, "nodata": -9999.0},
    }
    save_checkpoint(root / CHECKPOINT_NAME, model, meta)
    return root / "c.tif", root / CHECKPOINT_NAME


def run(scene, out: Path, log: list[Done] | None = None, **kw) -> np.ndarray:
    composite, checkpoint = scene
    cfg = engine_config(threads=1, batch_size=3, overlap_px=32, **kw)
    torch.set_num_threads(1)
    predictor = Predictor.load(checkpoint, torch.device("cpu"))
    out.mkdir()
    rows = dask_rows(str(checkpoint), "cpu", cfg, log) if cfg.scheduler != "single" else None
    extra = {"rows": rows} if rows is not None else {}
    predict_scene(predictor, composite, out, band_idx=range(7), cfg=cfg, progress=False, **extra)
    with rasterio.open(out / "probability.tif") as ds:
        return ds.read(1)


@pytest.fixture(scope="module")
def single(scene, tmp_path_factory) -> np.ndarray:
    return run(scene, tmp_path_factory.mktemp("s") / "out")


@pytest.mark.parametrize(("scheduler", "per_chunk"), [("threads", 1), ("processes", 2)])
def test_local_dask_schedulers_give_the_same_map_bit_for_bit(
    scene, single, tmp_path, scheduler, per_chunk
) -> None:
    log: list[Done] = []
    prob = run(
        scene, tmp_path / "out", log, scheduler=scheduler, workers=2, chunk_window_rows=per_chunk
    )
    assert prob.tobytes() == single.tobytes()
    assert (prob >= 0).any() and (prob < 0).any()  # valid pixels and nodata both present
    loads = {}
    for done in log:
        loads[done.pid] = max(loads.get(done.pid, 0), done.loads)
    assert set(loads.values()) == {1}  # one model load per worker, never one per chunk
    assert len(loads) == (2 if scheduler == "processes" else 1)  # both processes started
    received = [done.received_s for done in log]
    assert received[0] > 0 and received == sorted(received)  # warm-ups first, chunks in order


@pytest.mark.slow
def test_distributed_cluster_from_the_environment(scene, single, tmp_path, monkeypatch) -> None:
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
    ) as cluster:
        monkeypatch.setenv(ADDRESS_ENV, cluster.scheduler_address)
        prob = run(scene, tmp_path / "out", scheduler="distributed", workers=2, chunk_window_rows=1)
    assert prob.tobytes() == single.tobytes()


def test_distributed_without_an_address_is_a_clear_error(scene, tmp_path, monkeypatch) -> None:
    monkeypatch.delenv(ADDRESS_ENV, raising=False)
    with pytest.raises(Exception, match=ADDRESS_ENV):
        run(scene, tmp_path / "out", scheduler="distributed", workers=2)


@given(n_spans=st.integers(0, 20), in_flight=st.integers(1, 6))
def test_in_order_yields_every_chunk_in_order_with_a_bounded_lookahead(n_spans, in_flight) -> None:
    spans = [(a, a + 1) for a in range(n_spans)]
    pending: list[tuple[int, int]] = []

    def submit(span):  # a future that is resolved only when in_order asks for its result
        pending.append(span)
        assert len(pending) <= in_flight  # never more than in_flight submitted ahead
        future: Future = Future()
        future.result = lambda *_: pending.remove(span) or span  # type: ignore[method-assign]
        return future

    assert list(in_order(submit, spans, in_flight)) == spans
    assert pending == []


@given(n_rows=st.integers(0, 200), per_chunk=st.integers(1, 16), workers=st.integers(1, 8))
def test_chunks_cover_the_rows_in_equal_spans_a_multiple_of_workers(n_rows, per_chunk, workers):
    spans = chunks(n_rows, per_chunk, workers)
    bounds = [0] + [b for _, b in spans]
    assert spans == list(zip(bounds[:-1], bounds[1:], strict=True))  # contiguous, in order
    assert bounds[-1] == n_rows
    sizes = [b - a for a, b in spans]
    assert all(1 <= size <= per_chunk for size in sizes)
    assert not sizes or max(sizes) - min(sizes) <= 1
    assert len(spans) % workers == 0 or len(spans) == n_rows  # one row per chunk at most
