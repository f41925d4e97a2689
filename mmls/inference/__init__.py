"""A trained model applied: the predictor, decisions, ensembles, whole-scene mapping (windows,
blending, components, polygons, sinks, engines) and tile predictions.
"""
