"""The one audio path: decode a file (:mod:`.decode`), cut it into slices and turn each into a
log-mel spectrogram or waveform rows (:mod:`.features`), and the build-time copies of a track,
sped up or down, pitch-shifted or time-stretched (:mod:`.variants`). The build and the analyzer
both call it, so a model never sees features made differently from its training data.

May import :mod:`genrekit.core` only.
"""
