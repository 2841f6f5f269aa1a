"""genrekit.inference.analyzer: a file streamed in blocks while the model scores (issue 34) gets the scores
of its whole slices, whatever the interpreter's threads; the prefetching thread hands over errors in order."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from genrekit.core.errors import TrackError
from genrekit.inference.analyzer import Analyzer, prefetched
from genrekit.models import litert
from tests.helpers import label_signal, write_audio

# LiteRT's float kernels split a product over threads without changing the order of each sum (XNNPACK
# partitions the outputs, not the reductions): the scores of 1 and 2 threads were bit-identical here. 1e-5
# on probabilities leaves room for kernels that do otherwise (tests/models/test_litert.py).
THREADS_TOLERANCE = 1e-5


@pytest.fixture(scope="module")
def song(tmp_path_factory):
    """2.5 minutes in four parts, as a 44.1 kHz stereo mp3: several groups of slices."""
    y = np.concatenate([label_signal(k % 4, 37.5, seed=70 + k) for k in range(4)])
    return write_audio(tmp_path_factory.mktemp("analyzer") / "song.mp3", 0.8 * y, out_rate=44100, channels=2)


@pytest.mark.parametrize("model", ["gtzan-genres", "musicnn-msd"])
def test_a_streamed_file_gets_the_scores_of_its_whole_slices(model, song):
    analyzer = Analyzer(model, precision="float")
    streamed = analyzer.analyze(song, block_frames=4096)  # the file decoded 4096 frames at a time
    whole = analyzer.analyze_slices(song, analyzer.slice_settings().load(song))
    assert len(streamed.starts) > 32  # more than one group of slices
    np.testing.assert_array_equal(streamed.starts, whole.starts)
    np.testing.assert_array_equal(streamed.scores, whole.scores)  # the same slices, the same calls
    assert streamed.duration == whole.duration and streamed.ranking == whole.ranking


def test_the_scores_do_not_depend_on_the_interpreter_threads(song):
    analyzer = Analyzer(precision="int8")
    slices = analyzer.slice_settings().load(song)
    scores = {}
    for threads in (1, 2):
        model = litert.LiteRTModel(analyzer.model.path, threads=threads, max_rows=analyzer.model.max_rows)
        scores[threads] = model.predict(slices.specs[..., np.newaxis])
    np.testing.assert_allclose(scores[1], scores[2], atol=THREADS_TOLERANCE, rtol=0)
    assert np.argmax(scores[1].sum(axis=0)) == np.argmax(scores[2].sum(axis=0))


def test_prefetched_items_come_in_order_and_errors_in_their_place():
    def items():
        yield from range(5)
        raise TrackError("broken at the end")

    got = []
    with pytest.raises(TrackError, match="broken at the end"):
        for item in prefetched(items(), ahead=2):
            got.append(item)
    assert got == [0, 1, 2, 3, 4]


def test_leaving_prefetched_early_stops_and_closes_the_producer():
    closed = threading.Event()

    def endless():
        try:
            n = 0
            while True:
                yield n
                n += 1
        finally:
            closed.set()

    for item in prefetched(endless(), ahead=2):
        if item == 3:
            break
    assert closed.wait(5)
    assert not any(thread.name == "genrekit-prefetch" for thread in threading.enumerate())
