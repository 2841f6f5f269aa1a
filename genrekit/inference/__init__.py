"""Analyzing tracks with a run folder or a ready tagger: the same slices as the build, the model
loaded once, slice scores summed into a verdict (:mod:`.analyzer`); folders with decoding in
worker processes ahead of the model (:mod:`.folder`). ``python -m track_analyzer`` is its
command line.

May import :mod:`genrekit.core`, :mod:`genrekit.audio`, :mod:`genrekit.dataset` and
:mod:`genrekit.models`; never :mod:`genrekit.training`.
"""
