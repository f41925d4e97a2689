"""How a segmentation is measured: pooled confusion counts, per-patch count files, block-bootstrap
intervals, threshold calibration.
"""
