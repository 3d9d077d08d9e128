"""Behavioural segmentation: preprocessing, estimators, k selection, names, ids, overlays."""
