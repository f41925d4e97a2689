"""Whole-scene prediction on Dask: the window rows of a region, in chunks, across workers.

``predict.scheduler`` picks the engine:

- ``single`` (default while it is the fastest on 2 cores): every row in this process;
- ``threads`` / ``processes``: Dask's local schedulers with ``predict.workers`` workers (a
  persistent process pool, so each worker process loads the model once);
- ``distributed``: a ``dask.distributed`` cluster at ``$DASK_SCHEDULER_ADDRESS`` (an environment
  variable, so that pointing at another cluster never invalidates the DVC stage); its workers
  must see the checkpoint and the composite at the same paths.

A task computes ``predict.chunk_window_rows`` consecutive window rows of the region (reading
its own windows with rasterio, recomputing the window rows above its first one that reach into
it: ``RowPlan.halo``), so every pixel is the same sum in the same order as in one process:
with the same torch thread count per worker the probability map is bitwise identical to the
single-process one. ``2 x workers`` tasks are in flight at any time (one
running per worker, one queued behind it, so no worker waits for the calling process), and
their rows are written in order by the calling process (mask, polygons and scores stream as
before) while the workers go on: memory is bounded by ``2 x workers x chunk_window_rows``
window rows, never by the scene.
"""

from __future__ import annotations

import itertools
import os
import threading
import time
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass
from multiprocessing import get_context

import dask
import rasterio

from mmls.core.errors import InputError
from mmls.core.io import open_raster
from mmls.inference.blending import Rows, RowSource, blended_rows, local_rows
from mmls.inference.bundle import load_predictor
from mmls.inference.predictor import Predictor
from mmls.inference.scene import PredictConfig
from mmls.inference.windows import RowPlan
from mmls.nn.device import resolve_device, set_threads

ADDRESS_ENV = "DASK_SCHEDULER_ADDRESS"
GDAL_CACHE_MB = 256


@dataclass(frozen=True)
class Job:
    """What a worker needs to compute some window rows (paths, not objects: picklable)."""

    checkpoint: str
    device: str
    threads: int | None
    composite: str
    bands: tuple[int, ...]
    plan: RowPlan
    batch_size: int
    tta: bool = False


_LOADED: dict[tuple[str, str, int | None], Predictor] = {}
_LOCK = threading.Lock()


def _predictor(checkpoint: str, device: str, threads: int | None) -> tuple[Predictor, int]:
    """The model of a worker, loaded once per process (and shared by its threads), and how many
    models this process has loaded."""
    key = (checkpoint, device, threads)
    with _LOCK:
        if key not in _LOADED:
            set_threads(threads)
            _LOADED[key] = load_predictor(checkpoint, resolve_device(device))
        return _LOADED[key], len(_LOADED)


@dataclass(frozen=True)
class Done:
    """A chunk's rows, and which process computed them after how many model loads; in a log,
    also when the calling process received it (``time.perf_counter()``)."""

    rows: list[Rows]
    pid: int
    loads: int
    received_s: float = 0.0


def chunk(job: Job, a: int, b: int) -> Done:
    """Window rows ``a .. b-1`` of the job."""
    predictor, loads = _predictor(job.checkpoint, job.device, job.threads)
    with rasterio.Env(GDAL_CACHEMAX=GDAL_CACHE_MB), open_raster(job.composite) as src:
        rows = list(
            blended_rows(predictor, src, job.bands, job.plan, job.batch_size, a, b, job.tta)
        )
    return Done(rows, os.getpid(), loads)


def chunks(n_rows: int, per_chunk: int, workers: int = 1) -> list[tuple[int, int]]:
    """Spans of at most ``per_chunk`` window rows, as equal as possible and as many as a
    multiple of ``workers``, so that no worker is left with a short last chunk while the others
    idle (43 rows, 8 per chunk, 2 workers: 7 7 8 7 7 7, not 8 8 8 8 8 3)."""
    if n_rows <= 0:
        return []
    n_chunks = -(-n_rows // per_chunk)
    n_chunks = min(n_rows, -(-n_chunks // workers) * workers)
    bounds = [round(i * n_rows / n_chunks) for i in range(n_chunks + 1)]
    return list(itertools.pairwise(bounds))


def dask_rows(checkpoint: str, device: str, cfg: PredictConfig, log: list[Done] | None = None):
    """A :data:`mmls.inference.blending.RowSource` that runs the rows on ``cfg.scheduler``; ``log``
    (optional) collects a :class:`Done` without rows for every worker's warm-up, then for every
    chunk."""

    def rows(
        predictor, src, bands, plan: RowPlan, cfg_: PredictConfig, tta: bool = False
    ) -> Iterator[Rows]:
        del predictor  # the workers load their own copy of the checkpoint (or bundle)
        job = Job(
            checkpoint, device, cfg.threads, src.name, tuple(bands), plan, cfg.batch_size, tta
        )
        todo = chunks(len(plan.ys), cfg.chunk_window_rows, cfg.workers)
        with _Engine(cfg, job) as engine:
            if log is not None:
                warmed_s = time.perf_counter()
                log.extend(Done([], pid, loads, warmed_s) for pid, loads in engine.warmed)
            for done in in_order(engine.submit, todo, 2 * cfg.workers):
                if log is not None:
                    log.append(Done([], done.pid, done.loads, time.perf_counter()))
                yield from done.rows

    return rows


def in_order(submit, spans: Iterable[tuple[int, int]], in_flight: int) -> Iterator[Done]:
    """The chunks of ``spans`` in order, keeping ``in_flight`` of them submitted ahead."""
    todo = iter(spans)
    futures: deque = deque(submit(span) for span in itertools.islice(todo, in_flight))
    while futures:
        done = futures.popleft().result()
        span = next(todo, None)
        if span is not None:
            futures.append(submit(span))
        yield done


def warm(job: Job, barrier=None) -> tuple[int, int]:
    """Load the worker's model; with a barrier, wait until every worker holds one (so each
    warm-up task runs in a process of its own). Returns (pid, models loaded)."""
    _, loads = _predictor(job.checkpoint, job.device, job.threads)
    if barrier is not None:
        barrier.wait()
    return os.getpid(), loads


class _Engine:
    """Context manager: ``submit((a, b)) -> Future[Done]`` on the engine. Every worker is started
    and has loaded the model before the first chunk (``self.warmed``: the pids that did)."""

    def __init__(self, cfg: PredictConfig, job: Job) -> None:
        self.cfg, self.job = cfg, job
        self.pool: ProcessPoolExecutor | None = None
        self.client = None
        self.calls: ThreadPoolExecutor | None = None
        self.warmed: list[tuple[int, int]] = []

    def __enter__(self):
        try:
            self._start()
        except BaseException:
            self.__exit__()  # a failed warm-up leaves no pool or client behind
            raise
        return self

    def _start(self) -> None:
        cfg = self.cfg
        if cfg.scheduler == "processes":
            ctx = get_context("spawn")
            self.pool = ProcessPoolExecutor(cfg.workers, mp_context=ctx)
            with ctx.Manager() as manager:
                barrier = manager.Barrier(cfg.workers)
                futures = [self.pool.submit(warm, self.job, barrier) for _ in range(cfg.workers)]
                self.warmed = [f.result() for f in futures]
        elif cfg.scheduler == "distributed":
            from distributed import Client

            address = os.environ.get(ADDRESS_ENV)
            if not address:
                raise InputError(
                    "params.yaml:predict.scheduler",
                    f"is distributed but ${ADDRESS_ENV} names no dask scheduler",
                )
            self.client = Client(address)
            self.warmed = list(self.client.run(warm, self.job).values())
        else:
            self.warmed = [warm(self.job)]
        if self.client is None:  # one blocking dask.compute per chunk, `workers` at a time
            self.calls = ThreadPoolExecutor(cfg.workers)

    def submit(self, span: tuple[int, int]) -> Future:
        a, b = span
        if self.client is not None:
            return self.client.submit(chunk, self.job, a, b, pure=False)
        assert self.calls is not None
        task = dask.delayed(chunk)(self.job, a, b)
        if self.pool is not None:
            return self.calls.submit(_first, task, scheduler="processes", pool=self.pool)
        return self.calls.submit(_first, task, scheduler="threads", num_workers=1)

    def __exit__(self, *exc) -> None:
        if self.calls is not None:
            self.calls.shutdown(cancel_futures=True)
        if self.pool is not None:
            self.pool.shutdown()
        if self.client is not None:
            self.client.close()


def _first(task, **compute_kwargs):
    return dask.compute(task, **compute_kwargs)[0]


def row_source(
    checkpoint: str, device: str, cfg: PredictConfig, log: list[Done] | None = None
) -> RowSource:
    """The engine ``predict.scheduler`` names (``log``: see :func:`dask_rows`; the single
    process logs nothing)."""
    return local_rows if cfg.scheduler == "single" else dask_rows(checkpoint, device, cfg, log)
