"""depthgait's preprocessing pipeline: RGB videos -> per-video caches -> aligned sequences.

The stages, each a subpackage (read top to bottom to follow a video through):

- ``synthetic``: the synthetic walking-video generator, our stand-in for CASIA-B with truth
  (``people``: who a subject is; ``body``: where the parts are; ``render``: ray casting;
  ``dataset``: videos and truth files).
- ``extract``: decode, detect, segment and estimate depth per video into a cache
  (``settings``, ``video``, ``bgsub``, ``detect``, ``segment``, ``weights``, ``models``, ``job``: one
  video, ``discover``: which videos and which names, ``batch``: resumable runs, workers, Dask).
- ``depth``: the monocular depth estimator, its metrics, the shipped model and its training kit.
- ``align``: OpenGait's alignment applied to silhouette and depth together (``frames``: the maths and
  ``align_video_cache``; ``batch``: caches -> ``aligned.h5``).
- ``formats``: our own files, each with its FORMAT and VERSION (``video_cache``, ``aligned``).
- ``interop``: other people's formats (``safe_pickle``, ``opengait``, ``sustech1k``).
- ``tools``: ``status`` of a cache folder, ``contact_sheet`` pictures.

Beside them: ``manifest`` (dataset layouts, splits, protocols), ``atomic`` (write-then-rename),
``geometry`` (crop and canvas geometry, the shared facts) and ``errors`` (``DepthgaitError``, the one
failure record).
"""
