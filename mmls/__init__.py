"""mmls: a reproducible pipeline for Martian landslide segmentation (MMLSv2 method).

One module per concern; the DVC stage scripts in ``stages/`` are thin wrappers around these.
"""

__version__ = "0.1.0"
