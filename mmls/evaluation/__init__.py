"""Protocols that score trained models: the paper's split scoring, latency, calibrated decisions,
and cross-validation rows.
"""
