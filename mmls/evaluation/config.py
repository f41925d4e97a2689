"""The ``eval`` params section: which splits every trained model is scored on, and how.

Its own module, so that a stage that only reads ``eval.splits`` (the report) imports no model
code."""

from __future__ import annotations

from mmls.core.config import ParamError, Section
from mmls.core.paths import SPLITS


class EvalConfig(Section):
    """The ``eval`` params section."""

    splits: list[str]  # the labelled splits each trained model is scored on
    device: str  # auto = cuda when available, else cpu
    threads: int | None  # fixed thread count for the scoring pass and the latency measurement
    batch_size: int
    latency_warmup: int  # batch-1 forward passes discarded before timing
    latency_repeats: int  # latency_s = median over these batch-1 forward passes

    def check(self) -> None:
        unknown = sorted(set(self.splits) - set(SPLITS))
        if unknown or not self.splits:
            raise ParamError("splits", f"must be a non-empty list of {list(SPLITS)}")
        if self.batch_size < 1:
            raise ParamError("batch_size", "must be >= 1")
        if self.latency_warmup < 0:
            raise ParamError("latency_warmup", "must be >= 0")
        if self.latency_repeats < 1:
            raise ParamError("latency_repeats", "must be >= 1")
        if self.threads is not None and self.threads < 1:
            raise ParamError("threads", "must be null or >= 1")
