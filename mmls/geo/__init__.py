"""Rasters on a grid: validation, nodata, georeferencing of released tiles, inventory alignment,
holdout regions, tiling, scene rebuild (paper Secs. 2.2-2.3).
"""
