"""mmls: a reproducible pipeline for Martian landslide segmentation (MMLSv2 method).

One module per concern; the DVC stage scripts in ``stages/`` are thin wrappers around these.
This file holds no code, so that no stage needs it as a dependency.
"""
