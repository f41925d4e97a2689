"""The engine settings of tests: the API's defaults, one torch thread, and an overlap that
fits the 32-px tiles of tests/bundles.py."""

from mmls.api import engine

ENGINE = engine(threads=1, overlap_px=8)
