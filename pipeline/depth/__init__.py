"""Monocular depth of person crops: the estimator, its metrics, the shipped model and its training kit."""

DEFAULT_DEPTH_MODEL = "depth-anything/Depth-Anything-V2-Small-hf"  # the paper's choice of depth model
