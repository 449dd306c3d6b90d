"""Other people's formats: a restricted unpickler, OpenGait pkl trees, the SUSTech1K release."""
