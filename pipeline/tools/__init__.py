"""Looking at a cache folder: ``status`` (what is done, failed, stale) and contact sheets."""
