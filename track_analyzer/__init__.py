"""Analyze full-length tracks with a trained genre model: ``python -m track_analyzer song.mp3 --model DIR``.

>>> from track_analyzer import analyze
>>> result = analyze("song.mp3", "output/models/crnn")  # doctest: +SKIP
>>> result.summary()  # doctest: +SKIP
'metal 71.3 %  rock 20.1 %  blues 4.2 %'
"""

from genrekit.inference.analyzer import Analyzer, RankedLabel, TrackAnalysis, analyze

__all__ = ["Analyzer", "RankedLabel", "TrackAnalysis", "analyze"]
