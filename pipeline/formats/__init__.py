"""depthgait's own files, each with its FORMAT and VERSION: the per-video cache and ``aligned.h5``."""
