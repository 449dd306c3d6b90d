"""The synthetic walking-video generator: subjects, bodies, ray-cast frames, videos with truth."""
