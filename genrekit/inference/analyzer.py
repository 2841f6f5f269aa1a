"""Analyze one track with a trained model bundle: slices, scores, one verdict.

The track goes through the build's own audio path
(:func:`genrekit.audio.features.load_track_slices`) with the feature and slicing
settings stored in the bundle, is normalized with the bundle's statistics
(:func:`genrekit.dataset.normalization.apply`), predicted in batches, and its slice
scores are aggregated with :func:`genrekit.models.aggregate.aggregate`.

The model is its LiteRT export where there is one (no TensorFlow); Keras (and TensorFlow)
are imported only when a Keras model itself is loaded, so reading a bundle or slicing a track
stays cheap.
"""

from __future__ import annotations

import dataclasses
import os
import queue
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np

from genrekit.audio.features import TrackSlices, joined, slice_geometry, stream_track_slices, warm_up
from genrekit.core.config import AnalysisConfig, FeaturesConfig, SlicingConfig
from genrekit.core.errors import GenrekitError
from genrekit.dataset.normalization import apply
from genrekit.models.aggregate import METHODS, aggregate, shares
from genrekit.models.bundle import Bundle
from genrekit.models.litert import LiteRTModel
from genrekit.models.registry import choose_precision, load_model, open_model

DEFAULTS = AnalysisConfig()
# A trained run's analysis slices overlap by half a slice, so every moment of a track is in two
# slices: 1.5 s at 3 s slices. A slice every second (overlap 2 s, the earlier default) gave the same
# verdicts on 99.3 % of 170 clips by 36 unseen artists at 1.5 times the inference (docs/RESULTS.md).
TRAINED_RUN_OVERLAP_SHARE = 0.5


class RankedLabel(NamedTuple):
    label: str
    score: float  # aggregated score (a sum of probabilities for ``sum``)
    share: float  # in [0, 1]; the shares of all labels add up to 1


@dataclass(frozen=True, eq=False)  # arrays inside: compare fields, not objects
class TrackAnalysis:
    """The analysis of one track: per-slice scores and the aggregated verdict."""

    path: Path
    labels: tuple[str, ...]  # model order
    starts: np.ndarray  # (n_slices,) seconds from the track start, ascending
    scores: np.ndarray  # (n_slices, n_labels) softmax outputs (sigmoid for a tagger)
    aggregation: str
    track_scores: np.ndarray  # (n_labels,) aggregated, model order
    shares: np.ndarray  # (n_labels,) display shares, model order
    duration: float  # seconds of decoded audio
    padded: bool  # shorter than one slice, padded as in the build
    slice_duration: float
    overlap: float
    multi_label: bool = False  # a tagger's independent sigmoid scores, not a softmax

    @classmethod
    def from_scores(
        cls,
        path: Path,
        labels: tuple[str, ...],
        slices: TrackSlices,
        scores: np.ndarray,
        aggregation: str,
        slice_duration: float,
        overlap: float,
        multi_label: bool = False,
    ) -> TrackAnalysis:
        track_scores = aggregate(scores, aggregation)
        return cls(
            Path(path),
            tuple(labels),
            slices.starts,
            scores,
            aggregation,
            track_scores,
            shares(track_scores, aggregation, multi_label),
            slices.duration,
            slices.padded,
            slice_duration,
            overlap,
            multi_label,
        )

    @property
    def ranking(self) -> list[RankedLabel]:
        """Every label, best first (ties keep model order)."""
        order = np.argsort(-self.track_scores, kind="stable")
        return [RankedLabel(self.labels[i], float(self.track_scores[i]), float(self.shares[i])) for i in order]

    @property
    def top_label(self) -> str:
        return self.labels[int(np.argmax(self.track_scores))]

    def summary(self, top_k: int = DEFAULTS.top_k) -> str:
        """``metal 71.3 %  rock 20.1 %  blues 4.2 %``: the ``top_k`` best labels and their shares."""
        return "  ".join(f"{r.label} {100 * r.share:.1f} %" for r in self.ranking[: max(1, top_k)])

    def to_dict(self) -> dict:
        """JSON-ready: labels (model order), ranking, and every slice's start and scores in time order;
        ``multi_label`` says the scores are a tagger's independent tag probabilities."""
        return {
            "path": str(self.path),
            "labels": list(self.labels),
            "multi_label": bool(self.multi_label),
            "aggregation": self.aggregation,
            "duration": float(self.duration),
            "padded": bool(self.padded),
            "slice_duration": float(self.slice_duration),
            "overlap": float(self.overlap),
            "ranking": [r._asdict() for r in self.ranking],
            "slices": [
                {"start": float(start), "scores": [float(v) for v in row]}
                for start, row in zip(self.starts, self.scores)
            ],
        }


@dataclass(frozen=True)
class SliceSettings:
    """How the analyzer cuts a track: the bundle's features and slicing, the analysis overlap.

    Picklable, so worker processes can decode and slice while the model predicts.
    """

    slicing: SlicingConfig
    features: FeaturesConfig
    silence_threshold_db: float
    overlap: float

    def stream(self, path: os.PathLike | str, block_frames: int | None = None) -> Iterator[TrackSlices]:
        """Decode and slice a file a group of slices at a time, in memory that does not grow with its length
        (:func:`genrekit.audio.features.stream_track_slices`; raises :class:`genrekit.core.errors.TrackError`)."""
        return stream_track_slices(
            Path(path),
            self.slicing,
            self.features,
            silence_threshold_db=self.silence_threshold_db,
            overlap=self.overlap,
            block_frames=block_frames,
        )

    def load(self, path: os.PathLike | str) -> TrackSlices:
        """Decode and slice a whole file: :meth:`stream`, joined (raises :class:`genrekit.core.errors.TrackError`)."""
        return joined(self.stream(path))


def default_overlap(bundle: Bundle) -> float:
    """The analysis overlap when none is set: half a slice for a trained run (1.5 s at 3 s slices: a
    slice every 1.5 s); for a ready tagger, consecutive patches with no frame in common, as musicnn's
    own extractor cuts a track (187 frames, a patch every 2.992 s); the bundle's own
    ``analysis_overlap`` before either (the ready genre model's: 0, a slice every 3.008 s)."""
    if bundle.analysis_overlap is not None:
        return bundle.analysis_overlap
    if bundle.pretrained is None:
        return TRAINED_RUN_OVERLAP_SHARE * bundle.slicing.slice_duration
    features = bundle.features
    frames = slice_geometry(bundle.slicing.slice_duration, 0.0, features).n_frames
    return bundle.slicing.slice_duration - frames * features.hop_length / features.sample_rate


def slice_settings(bundle: Bundle, overlap: float | None = None) -> SliceSettings:
    """The analysis slicing of a bundle; raise :class:`GenrekitError` for an overlap it cannot use.
    ``overlap`` None is :func:`default_overlap`.

    A track shorter than one slice is always padded (with the bundle's ``pad_mode``),
    even if the training data dropped such tracks: one verdict is better than none.
    """
    duration = bundle.slicing.slice_duration
    overlap = default_overlap(bundle) if overlap is None else overlap
    if not 0 <= overlap < duration:
        raise GenrekitError(
            f"analysis overlap {overlap:g} s (analysis.overlap / --overlap) must be >= 0 and "
            f"smaller than the model's slice_duration ({duration:g} s)"
        )
    slicing = dataclasses.replace(bundle.slicing, short_tracks="pad")
    return SliceSettings(slicing, bundle.features, bundle.silence_threshold_db, float(overlap))


def check_aggregation(method: str) -> str:
    if method not in METHODS:
        raise GenrekitError(f"unknown aggregation {method!r} (choose from {', '.join(METHODS)})")
    return method


def choose_aggregation(bundle: Bundle, requested: str | None = None) -> str:
    """The aggregation for a model: ``requested``, or the default for its kind.

    A genre model's softmax scores default to ``sum``. A tagger's sigmoid scores are one
    independent probability per tag, so only their ``mean`` (the tag's mean probability
    over the track) makes sense, and it is the only one allowed.
    """
    if bundle.multi_label:
        if requested not in (None, "mean"):
            raise GenrekitError(
                f"aggregation {requested!r}: {bundle.pretrained} is a tagger, whose tag "
                f"probabilities are aggregated by their mean ('mean')"
            )
        return "mean"
    return check_aggregation(requested or DEFAULTS.aggregation)


def compile_forward(model, input_shape: tuple[int, ...]) -> Callable[[np.ndarray], np.ndarray]:
    """A compiled inference function for batches of any size.

    With TensorFlow, one ``tf.function`` with a batch-agnostic signature is traced once,
    so the last, smaller batch of a track does not trigger a second trace (each trace
    costs about as much as predicting a whole track on CPU). Other backends use
    ``predict_on_batch``.
    """
    if not hasattr(model, "predict_on_batch"):  # a classical baseline: NumPy, no Keras
        return model.predict
    import keras

    if keras.backend.backend() != "tensorflow":
        return lambda batch: np.asarray(model.predict_on_batch(batch))
    import tensorflow as tf

    forward = tf.function(
        lambda x: model(x, training=False), input_signature=[tf.TensorSpec((None, *input_shape), tf.float32)]
    )
    return lambda batch: forward(batch).numpy()


class Analyzer:
    """A model bundle loaded once, ready to analyze many tracks.

    Parameters
    ----------
    model : path-like, str or Bundle, optional
        A run folder written by ``train_crnn.py`` (``bundle.json`` + ``model.keras``) or
        ``train_baselines.py`` (``bundle.json`` + ``model.npz``), or the name of a ready model
        (see :func:`genrekit.models.registry.open_model`); default the ready genre model,
        ``gtzan-genres``.
    batch_size : int
        Slices per forward pass.
    warm_up_features : bool
        Run one tiny transform now (the mel filterbank is then cached), so the first track is
        timed like the rest; the CLI turns this off (its features are computed in worker
        processes, or once for a single file).
    runtime : {"auto", "litert", "keras"}
        ``auto``: the model's LiteRT export, without TensorFlow, where there is one (a run folder
        saved before exports existed is exported on first use), else Keras; see
        :func:`genrekit.models.registry.load_model`.
    precision : {"auto", "float", "int8"}
        Which LiteRT export: ``auto`` the int8 one where the model has one and the CPU runs it faster,
        else float (:func:`genrekit.models.registry.choose_precision`); the one run is :attr:`precision`.
    """

    def __init__(
        self,
        model: os.PathLike | str | Bundle | None = None,
        *,
        batch_size: int = DEFAULTS.batch_size,
        warm_up_features: bool = True,
        runtime: str = "auto",
        precision: str = "auto",
    ):
        if batch_size < 1:
            raise GenrekitError(f"batch size must be >= 1, got {batch_size}")
        self.bundle = model if isinstance(model, Bundle) else open_model(model)
        self.batch_size = batch_size
        self.model = load_model(self.bundle, runtime, precision)
        # what scores the slices: "int8" for the int8 export, else "float" (float32 export, Keras, a baseline)
        exported = isinstance(self.model, LiteRTModel)
        self.precision = choose_precision(self.bundle, precision) if exported else "float"
        self._forward = compile_forward(self.model, self.bundle.input_shape)
        # Trace now, so the first track is timed like every other one.
        self._forward(np.zeros((1, *self.bundle.input_shape), dtype=np.float32))
        if warm_up_features:
            warm_up(self.bundle.features)

    @property
    def labels(self) -> tuple[str, ...]:
        return tuple(self.bundle.labels)

    def slice_settings(self, overlap: float | None = None) -> SliceSettings:
        return slice_settings(self.bundle, overlap)

    def predict_batch(self, specs: np.ndarray) -> np.ndarray:
        """Scores ``(n, n_labels)`` float32 of at most a batch of spectrograms in dB ``(n, frames, n_mels)``:
        normalized with the bundle's statistics, then one forward pass."""
        batch = apply(specs, self.bundle.normalization)
        return np.asarray(self._forward(batch[..., np.newaxis]), dtype=np.float32)

    def predict(self, specs: np.ndarray) -> np.ndarray:
        """Softmax scores ``(n_slices, n_labels)`` of spectrograms in dB ``(n_slices, frames, n_mels)``."""
        # Batch by batch: a long track is never held twice in float32.
        out = [
            self.predict_batch(specs[begin : begin + self.batch_size])
            for begin in range(0, len(specs), self.batch_size)
        ]
        if not out:
            return np.zeros((0, len(self.labels)), dtype=np.float32)
        return np.concatenate(out)

    def result(
        self,
        path: os.PathLike | str,
        slices: TrackSlices,
        scores: np.ndarray,
        *,
        overlap: float | None = None,
        aggregation: str | None = None,
    ) -> TrackAnalysis:
        """The analysis of a track from its slices and their scores (see :meth:`predict`)."""
        aggregation = choose_aggregation(self.bundle, aggregation)
        overlap = default_overlap(self.bundle) if overlap is None else overlap
        return TrackAnalysis.from_scores(
            Path(path),
            self.labels,
            slices,
            scores,
            aggregation,
            self.bundle.slicing.slice_duration,
            overlap,
            self.bundle.multi_label,
        )

    def analyze_slices(
        self,
        path: os.PathLike | str,
        slices: TrackSlices,
        *,
        overlap: float | None = None,
        aggregation: str | None = None,
    ) -> TrackAnalysis:
        """Predict and aggregate slices already cut with :meth:`slice_settings` ``(overlap)``;
        ``aggregation`` defaults to ``sum`` (``mean`` for a tagger, see :func:`choose_aggregation`)."""
        return self.result(path, slices, self.predict(slices.specs), overlap=overlap, aggregation=aggregation)

    def analyze(
        self,
        path: os.PathLike | str,
        *,
        overlap: float | None = None,
        aggregation: str | None = None,
        block_frames: int | None = None,
    ) -> TrackAnalysis:
        """Decode, slice, predict and aggregate one file (raises ``TrackError`` for an unusable file).

        The file is decoded and sliced a group of slices at a time in a thread while the model scores the
        group before (:func:`prefetched`), so memory does not grow with the track's length: only the
        scores are kept. The scores are those of :meth:`analyze_slices` on the whole file's slices.
        """
        aggregation = choose_aggregation(self.bundle, aggregation)
        starts, scores, last = [], [], None
        for group in prefetched(self.slice_settings(overlap).stream(path, block_frames)):
            starts.append(group.starts)
            scores.append(self.predict(group.specs))
            last = group
        shape = (0, *self.bundle.input_shape[:2])
        slices = TrackSlices(np.zeros(shape, np.float32), np.concatenate(starts), last.duration, last.padded)
        return self.result(path, slices, np.concatenate(scores), overlap=overlap, aggregation=aggregation)


def prefetched(items: Iterable, ahead: int = 2) -> Iterator:
    """``items``, produced in a thread up to ``ahead`` ahead of their use (the decode and features of a file's
    next slices while the model scores these: NumPy, soxr, libsndfile and the interpreter release the GIL).
    An exception of the producer is raised here, in order; leaving early stops the producer."""
    done = object()
    handoff: queue.Queue = queue.Queue(ahead)
    stop = threading.Event()

    def offer(entry) -> bool:  # False once the consumer has left
        while not stop.is_set():
            try:
                handoff.put(entry, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        iterator = iter(items)
        try:
            for item in iterator:
                if not offer((item, None)):
                    return
            offer((done, None))
        except BaseException as exc:  # handed to the consumer, raised there
            offer((done, exc))
        finally:
            if hasattr(iterator, "close"):  # a generator: its files and processes end here, in its thread
                iterator.close()

    producer = threading.Thread(target=produce, name="genrekit-prefetch", daemon=True)
    producer.start()
    try:
        while True:
            item, error = handoff.get()
            if error is not None:
                raise error
            if item is done:
                return
            yield item
    finally:
        stop.set()
        producer.join()


def analyze(
    path: os.PathLike | str,
    model: os.PathLike | str | Bundle | Analyzer | None = None,
    *,
    overlap: float | None = None,
    aggregation: str | None = None,
    batch_size: int | None = None,
) -> TrackAnalysis:
    """Analyze one audio file with a trained model.

    Parameters
    ----------
    path : path-like
        Any audio file the build accepts, of any length.
    model : path-like, str, Bundle or Analyzer, optional
        A run folder (``output/models/<run>``), the ready genre model's name (``"gtzan-genres"``, the
        default), a ready tagger's name (``"musicnn-msd"``, ``"musicnn-mtt"``), or an :class:`Analyzer`
        to reuse a loaded model.
    overlap : float, optional
        Seconds of overlap between analysis slices; default :func:`default_overlap` (half a slice for a
        trained run: a slice every 1.5 s at 3 s slices; 0 for a ready tagger).
    aggregation : {"sum", "mean-log", "vote", "mean"}, optional
        Default ``sum``; a tagger takes ``mean`` only.
    batch_size : int, optional
        Slices per forward pass when ``model`` is a folder (default 64).

    Returns
    -------
    TrackAnalysis
        ``.ranking`` (label, score, share; best first), ``.starts`` and ``.scores`` per slice.

    Raises
    ------
    genrekit.core.errors.TrackError
        The file is missing, cannot be decoded, or is silent.
    genrekit.core.errors.GenrekitError
        The model bundle is missing, inconsistent, or the settings do not fit it.

    Examples
    --------
    >>> result = analyze("song.mp3")  # the ready genre model  # doctest: +SKIP
    >>> result.summary()  # doctest: +SKIP
    'metal 71.3 %  rock 20.1 %  blues 4.2 %'
    """
    if not isinstance(model, Analyzer):
        model = Analyzer(model, batch_size=batch_size or DEFAULTS.batch_size)
    elif batch_size is not None:
        raise ValueError("batch_size is fixed when the Analyzer is made; pass it to Analyzer(...)")
    return model.analyze(path, overlap=overlap, aggregation=aggregation)
