"""Shipped run recipes (YAML), found by name through ``depthgait_model.config.load_config``."""
