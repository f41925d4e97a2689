"""Patches as data: band names, the training store, the torch dataset, context windows, splits and
folds, released packages, and the synthetic scene (paper Sec. 2.4).
"""
