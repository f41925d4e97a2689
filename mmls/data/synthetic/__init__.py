"""A deterministic, Mars-like default scene: 7-band composite plus a landslide inventory.

The pipeline must run with no data and no network, so the ``synthetic_scene`` stage builds a
small stand-in for the Valles Marineris mosaic of MMLSv2 (Sec. 2.1): east-west trending troughs
with steep walls and side canyons, landslides that start at the walls and run out onto the
floors, nodata gaps, and an inventory raster produced "independently" on its own, shifted and
larger grid, which the align/binarize stages must bring back onto the composite grid (Sec. 2.2).

Bands follow :data:`mmls.data.bands.BAND_NAMES`; valid values lie in [0, 1] (like the normalised
MMLSv1 release) and nodata is -9999. Slope is derived from the DEM (Sec. 2.1: "Slope is derived
from the MOLA DEM"). Landslide deposits carry a consistent but noisy signature in every band
(smoother, brighter optical texture with flow-parallel grooves, lower thermal inertia, hummocky
DEM, gentler slope on the run-out, steep scarps in the depletion zone), so that DEM, slope and
thermal inertia add information over RGB alone, as in the paper's band ablation (Table 4).

Determinism: every random draw comes from ``numpy.random.default_rng`` streams spawned from the
seed; transcendental functions are avoided where a mask depends on them (noise is interpolated
with polynomial weights, directions are normalised with ``sqrt``), and every band is quantized
to a fixed grid (multiples of 2**-12, the DEM of 2**-16) before anything else uses it, so an
ulp of difference between CPUs cannot change the written bytes.

Modules, from the ground up:

- :mod:`~mmls.data.synthetic.config`: the ``synthetic`` params section, nodata values, class
  codes and quantization grids.
- :mod:`~mmls.data.synthetic.noise`: quantization, value noise, fBm, trig-free shaping.
- :mod:`~mmls.data.synthetic.terrain`: plateau, troughs, side canyons; slope from the DEM.
- :mod:`~mmls.data.synthetic.masks`: nodata gaps and the unmapped inventory patch.
- :mod:`~mmls.data.synthetic.landslides`: seeds on the walls, shapes, DEM change and weights.
- :mod:`~mmls.data.synthetic.imagery`: the seven bands from terrain and landslides.
- :mod:`~mmls.data.synthetic.scene`: :func:`generate_scene`, the inventory grid, the summary.
- :mod:`~mmls.data.synthetic.geotiff`: :func:`write_scene`, the two GeoTIFFs.
"""
