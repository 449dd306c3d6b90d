"""Monocular depth of person crops: the estimator, its metrics, the shipped model and its training kit."""
