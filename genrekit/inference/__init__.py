"""Analyzing tracks with a run folder or a ready tagger: the same slices as the build, the model
loaded once, slice scores summed into a verdict (:mod:`.analyzer`); folders with decoding in
worker processes ahead of the model, batches filled across files (:mod:`.folder`); the resumable
results file of a library (:mod:`.results`); the per-file work on a Dask cluster (:mod:`.cluster`).
``python -m track_analyzer`` is its command line.

May import :mod:`genrekit.core`, :mod:`genrekit.audio`, :mod:`genrekit.dataset` and
:mod:`genrekit.models`; never :mod:`genrekit.training`.
"""
