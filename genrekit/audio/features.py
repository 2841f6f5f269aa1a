"""Cut a signal into overlapping slices and turn each into a log-mel spectrogram (or, with
``features.representation: "waveform"``, keep its samples).

The same functions serve ``build_dataset.py`` and ``track_analyzer``, so a model
never sees features made differently from its training data.

Why slices are frame-aligned: the STFT runs without centring
(``center=False``), so frame ``j`` covers samples ``[j*hop, j*hop + n_fft)`` and
depends on nothing else. Slice starts are snapped down to a multiple of
``hop_length`` (at most one hop, 23 ms at the defaults), which makes a slice's
spectrogram a run of frames of the track's spectrogram. The track is then
transformed once per group of slices (:func:`group_bounds`) instead of once per
overlapping slice, with the result of transforming each slice on its own up to
float32 rounding: the mel projection is
one matrix product, and BLAS sums its 1025 terms per value in an order that
depends on the width of the matrix (a few ulps, below 1e-5 dB). The dB scale uses
a fixed reference and floor (no per-array ``top_db``) for the same reason.

The same span always gives the same bits: the projection runs on one BLAS thread
(:mod:`genrekit.core.blas`), so a build does not depend on its worker or core count.

Waveform slices take the same path: a "frame" is then a row of ``hop_length`` consecutive
samples, so a slice is ``slice_samples // hop_length`` rows (the last partial row dropped:
at most one hop) starting at the same hop-aligned sample as its spectrogram would. The
arrays keep the ``(frames, bands)`` layout every later step expects, with the row's
samples in place of the mel bands.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from genrekit.audio.decode import decode, decode_blocks, peak_dbfs
from genrekit.core import blas
from genrekit.core.config import FeaturesConfig, SlicingConfig
from genrekit.core.errors import TrackError

AMIN = 1e-10  # power floor: log-mel values are >= -100 dB
# features.level_normalization "slice_rms": each slice's audio at an RMS of -20 dBFS before its log-mel, raised by
# at most 40 dB (a slice quieter than -60 dBFS RMS, a fade or near-silence, stays that much below the others).
SLICE_RMS_TARGET = 0.1
SLICE_RMS_FLOOR = 1e-3
# Slices whose spectrograms come from one transform of their span (the last group of a track has the
# rest): it bounds the transform's memory, and a track that arrives in blocks (stream_slices) is cut
# into the same groups, so it gets the bits of the whole signal. The frames two neighbouring groups
# share are transformed twice: 3 % more frames at a half-slice overlap, none without overlap.
GROUP_SLICES = 32
# The first group is smaller: the analyzer scores a group while the next one decodes, so a file's
# first scores, and the model's work, start after 24 s of audio instead of 96 s (0.1 s sooner on a
# 3.5-minute mp3, about a tenth of its whole call with the ready model).
FIRST_GROUP_SLICES = 8
POWER_BLOCK_FRAMES = 1024  # frames transformed at once by power_spectrogram (its float64 temporaries: 4 MB)
SLANEY_HZ_PER_MEL = 200.0 / 3  # Slaney's mel scale: 3 mels per 200 Hz below 1 kHz,
SLANEY_LOG_HZ = 1000.0
SLANEY_LOG_STEP = np.log(6.4) / 27.0  # and 27 mels per factor 6.4 above


@dataclass(frozen=True)
class SliceGeometry:
    """Sizes, in samples and frames, that follow from the slicing and feature settings."""

    slice_samples: int
    step_samples: int
    n_frames: int  # spectrogram frames (or waveform rows) per slice: the model's time axis
    n_mels: int  # mel bands (or samples per waveform row)

    @property
    def spec_shape(self) -> tuple[int, int]:
        return (self.n_frames, self.n_mels)


def slice_geometry(slice_duration: float, overlap: float, features: FeaturesConfig) -> SliceGeometry:
    sr = features.sample_rate
    slice_samples = int(round(slice_duration * sr))
    step_samples = max(1, int(round((slice_duration - overlap) * sr)))
    if features.representation == "waveform":
        return SliceGeometry(slice_samples, step_samples, slice_samples // features.hop_length, features.hop_length)
    n_frames = 1 + (slice_samples - features.n_fft) // features.hop_length
    return SliceGeometry(slice_samples, step_samples, n_frames, features.n_mels)


def slice_start_frames(n_samples: int, geometry: SliceGeometry, hop_length: int) -> np.ndarray:
    """First spectrogram frame of every slice that fits in ``n_samples``.

    A slice ``k`` nominally starts at ``k * step`` samples; the start is snapped
    down to a whole hop. ``n_samples`` shorter than a slice gives no slice.
    """
    if n_samples < geometry.slice_samples:
        return np.zeros(0, dtype=np.int64)
    count = 1 + (n_samples - geometry.slice_samples) // geometry.step_samples
    return (np.arange(count, dtype=np.int64) * geometry.step_samples) // hop_length


def log_compress(power: np.ndarray) -> np.ndarray:
    """musicnn's log scale of a mel power spectrogram: ``log10(10000 * x + 1)``, float32.

    ``x`` is the power rounded to float16 and back, as the original preprocessing
    stored it (``mel.astype(np.float16)``). Under numpy 1.x that code computed the
    log in float32; the same line under numpy >= 2 stays float16 and overflows to
    inf above a power of 6.55, so the float32 step is written out here.

    ``10000 * x + 1`` is computed in float32 as the original did; its log is taken
    in float64 and rounded to float32, i.e. correctly rounded. numpy's float32
    ``log10`` picks a SIMD variant by CPU (each within 4 ulp), so the original's
    values depend on the machine it ran on (the reference outputs we test against
    are up to 2 ulp from correctly rounded); this way every machine gives the same
    bits.

    Parameters
    ----------
    power : np.ndarray
        Mel power (any shape), non-negative.

    Returns
    -------
    np.ndarray
        float32, same shape; 0 for silence.

    Examples
    --------
    >>> log_compress(np.array([0.0, 1e-4, 1000.0], dtype=np.float32))
    array([0.        , 0.30106604, 7.        ], dtype=float32)
    """
    quantised = np.asarray(power).astype(np.float16).astype(np.float32)
    argument = np.float32(10000) * quantised + np.float32(1)
    return np.log10(argument.astype(np.float64)).astype(np.float32)


def _hz_to_mel(hz: np.ndarray) -> np.ndarray:
    """Slaney's mel scale (librosa's default, ``htk=False``): linear below 1 kHz, logarithmic above."""
    hz = np.asanyarray(hz, dtype=np.float64)
    linear = hz / SLANEY_HZ_PER_MEL
    return np.where(
        hz >= SLANEY_LOG_HZ,
        SLANEY_LOG_HZ / SLANEY_HZ_PER_MEL + np.log(np.maximum(hz, SLANEY_LOG_HZ) / SLANEY_LOG_HZ) / SLANEY_LOG_STEP,
        linear,
    )


def _mel_to_hz(mel: np.ndarray) -> np.ndarray:
    mel = np.asanyarray(mel, dtype=np.float64)
    log_mel_start = SLANEY_LOG_HZ / SLANEY_HZ_PER_MEL
    return np.where(
        mel >= log_mel_start, SLANEY_LOG_HZ * np.exp(SLANEY_LOG_STEP * (mel - log_mel_start)), SLANEY_HZ_PER_MEL * mel
    )


@lru_cache(maxsize=8)
def mel_filters(sample_rate: int, n_fft: int, n_mels: int, fmin: float, fmax: float | None) -> np.ndarray:
    """The mel filterbank ``(n_mels, 1 + n_fft // 2)`` float32: triangles on Slaney's mel scale, each
    normalized to unit area (``norm="slaney"``), as ``librosa.filters.mel`` makes it, step for step
    (``tests/audio/test_features.py`` compares them). Written out so that analysis needs NumPy alone:
    librosa's import costs more than analyzing a song (1.6 s, scipy.signal and numba)."""
    fmax = sample_rate / 2 if fmax is None else fmax
    bins = np.fft.rfftfreq(n=n_fft, d=1.0 / sample_rate)
    edges = _mel_to_hz(np.linspace(_hz_to_mel(fmin), _hz_to_mel(fmax), n_mels + 2))
    widths = np.diff(edges)
    ramps = np.subtract.outer(edges, bins)
    weights = np.zeros((n_mels, len(bins)), dtype=np.float32)
    for i in range(n_mels):
        weights[i] = np.maximum(0, np.minimum(-ramps[i] / widths[i], ramps[i + 2] / widths[i + 1]))
    weights *= (2.0 / (edges[2 : n_mels + 2] - edges[:n_mels]))[:, np.newaxis]
    return weights


def power_spectrogram(signal: np.ndarray, n_fft: int, hop_length: int) -> np.ndarray:
    """``|STFT|^2`` with a periodic Hann window and no centring, time first: ``(frames, 1 + n_fft // 2)``
    float32 (``librosa.stft(center=False)`` squared: frame ``j`` covers samples ``[j*hop, j*hop + n_fft)``)."""
    frames = np.lib.stride_tricks.sliding_window_view(signal, n_fft)[::hop_length]
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n_fft) / n_fft)
    power = np.empty((len(frames), 1 + n_fft // 2), dtype=np.float32)
    # A block of frames at a time: each frame's transform is its own, so the bits are those of one call,
    # and the float64 temporaries stay a few MB (a 96 s group at once held 75 MB of them).
    for start in range(0, len(frames), POWER_BLOCK_FRAMES):
        block = frames[start : start + POWER_BLOCK_FRAMES]
        power[start : start + len(block)] = np.abs(np.fft.rfft(window * block, axis=1).astype(np.complex64)) ** 2
    return power


def mel_power(signal: np.ndarray, features: FeaturesConfig) -> np.ndarray:
    """Mel power spectrogram, time first: shape ``(frames, n_mels)``, float32."""
    power = power_spectrogram(np.asarray(signal, dtype=np.float32), features.n_fft, features.hop_length)
    filters = mel_filters(features.sample_rate, features.n_fft, features.n_mels, features.fmin, features.fmax)
    with blas.single_threaded():  # the same sums whatever the core count (see genrekit.core.blas)
        return power @ filters.T


def log_scale(mel: np.ndarray, features: FeaturesConfig) -> np.ndarray:
    """Mel power (any shape) on the log scale of ``features.log_scale``: dB, or musicnn's scale."""
    if features.log_scale == "musicnn":  # the pretrained musicnn taggers' scale
        logged = log_compress(mel)
    else:  # librosa.power_to_db(ref=1.0, top_db=None)
        logged = 10.0 * np.log10(np.maximum(np.float32(AMIN), mel))
    return np.ascontiguousarray(logged, dtype=np.float32)


def log_mel(signal: np.ndarray, features: FeaturesConfig) -> np.ndarray:
    """Log-mel spectrogram, time first: shape ``(frames, n_mels)``, float32, in dB
    (or on musicnn's scale with ``features.log_scale == "musicnn"``)."""
    return log_scale(mel_power(signal, features), features)


def slice_power_gains(signal: np.ndarray, starts: np.ndarray, n_samples: int) -> np.ndarray:
    """The power gain that brings each slice ``signal[start:start + n_samples]`` to an RMS of
    :data:`SLICE_RMS_TARGET` (``features.level_normalization: "slice_rms"``), float32.

    Each slice's mean square is summed on its own samples (NumPy's pairwise sum in float64), so a
    slice gets the same gain whatever else was decoded with it. A gain is at most
    ``(SLICE_RMS_TARGET / SLICE_RMS_FLOOR) ** 2`` (40 dB).

    Examples
    --------
    >>> slice_power_gains(np.full(8, 0.5, dtype=np.float32), np.array([0, 4]), 4)
    array([0.04, 0.04], dtype=float32)
    """
    energy = np.array([np.sum(np.square(signal[s : s + n_samples], dtype=np.float64)) for s in starts])
    rms = np.sqrt(energy / n_samples)
    return ((SLICE_RMS_TARGET / np.maximum(rms, SLICE_RMS_FLOOR)) ** 2).astype(np.float32)


def waveform_rows(signal: np.ndarray, features: FeaturesConfig) -> np.ndarray:
    """The signal as rows of ``hop_length`` samples: shape ``(len // hop_length, hop_length)``, float32
    (a trailing partial row is dropped)."""
    hop = features.hop_length
    rows = len(signal) // hop
    return np.ascontiguousarray(signal[: rows * hop], dtype=np.float32).reshape(rows, hop)


def frames_of(signal: np.ndarray, features: FeaturesConfig) -> np.ndarray:
    """The time-first frames a slice is cut from: log-mel frames, or waveform rows
    (``features.representation``)."""
    if features.representation == "waveform":
        return waveform_rows(signal, features)
    return log_mel(signal, features)


def warm_up(features: FeaturesConfig) -> None:
    """Run one tiny transform (the mel filterbank is then cached): forked workers inherit it."""
    log_mel(np.zeros(features.n_fft, dtype=np.float32), features)


def pad_to(signal: np.ndarray, n_samples: int, mode: str) -> np.ndarray:
    """Lengthen a short signal to ``n_samples``: ``silence`` appends zeros, ``loop`` repeats it."""
    if len(signal) >= n_samples:
        return signal
    if mode == "loop":
        return np.resize(signal, n_samples).astype(np.float32, copy=False)
    return np.concatenate([signal, np.zeros(n_samples - len(signal), dtype=np.float32)])


def stable_seed(*parts: object) -> int:
    """A seed from strings and ints that is the same on every machine and run."""
    digest = hashlib.sha256("\x1f".join(map(str, parts)).encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "little")


@dataclass
class TrackSlices:
    """The slices of one track."""

    specs: np.ndarray  # (n_slices, n_frames, n_mels) float32, dB (or waveform rows, see the module notes)
    starts: np.ndarray  # (n_slices,) float64, seconds from the track start
    duration: float  # seconds of decoded audio, before any padding
    padded: bool  # the track was shorter than one slice and was padded


def slice_signal(
    signal: np.ndarray,
    slicing: SlicingConfig,
    features: FeaturesConfig,
    *,
    overlap: float | None = None,
    max_slices: int | None = None,
    random_selection: bool = False,
    selection_key: str = "",
) -> TrackSlices:
    """Cut a decoded signal into slices and compute each slice's log-mel spectrogram (or its
    waveform rows, with ``features.representation: "waveform"``).

    Parameters
    ----------
    signal : np.ndarray
        Mono float32 at ``features.sample_rate`` (see :func:`genrekit.audio.decode`).
    slicing, features : config sections
        Slice length, padding policy and spectrogram settings.
    overlap : float, optional
        Seconds of overlap between consecutive slices; default ``slicing.overlap``.
    max_slices : int, optional
        Keep at most this many slices: the first ones, or a seeded random choice
        (``random_selection``) that depends only on ``slicing.seed`` and ``selection_key``.
    """
    overlap = slicing.overlap if overlap is None else overlap
    geometry = slice_geometry(slicing.slice_duration, overlap, features)
    hop = features.hop_length
    duration = len(signal) / features.sample_rate
    padded = len(signal) < geometry.slice_samples
    if padded:
        if slicing.short_tracks == "drop":
            raise TrackError(f"shorter than one slice ({duration:.2f} s < {slicing.slice_duration:g} s)")
        signal = pad_to(signal, geometry.slice_samples, slicing.pad_mode)

    starts = slice_start_frames(len(signal), geometry, hop)
    if max_slices is not None and len(starts) > max_slices:
        if random_selection:
            rng = np.random.default_rng(stable_seed(slicing.seed, selection_key))
            starts = np.sort(rng.choice(starts, size=max_slices, replace=False))
        else:
            starts = starts[:max_slices]

    specs = [_group_specs(signal, starts[a:b], geometry, features) for a, b in group_bounds(len(starts))]
    return TrackSlices(
        specs=np.concatenate(specs), starts=starts * hop / features.sample_rate, duration=duration, padded=padded
    )


def _group_specs(signal: np.ndarray, starts: np.ndarray, geometry: SliceGeometry, features: FeaturesConfig):
    """The spectrograms of the slices that start at frames ``starts`` of ``signal``, from one transform over
    the span they cover (each slice is a run of its frames)."""
    hop = features.hop_length
    first = int(starts[0])
    span = signal[first * hop : int(starts[-1]) * hop + geometry.slice_samples]
    index = (starts - first)[:, None] + np.arange(geometry.n_frames)[None, :]
    if features.level_normalization == "slice_rms":  # each slice's power scaled before its log
        gains = slice_power_gains(span, (starts - first) * hop, geometry.slice_samples)
        return log_scale(mel_power(span, features)[index] * gains[:, None, None], features)
    return frames_of(span, features)[index]


def group_size(first: int) -> int:
    """The number of slices of the group that begins with a track's slice ``first``:
    :data:`FIRST_GROUP_SLICES` for the first group, :data:`GROUP_SLICES` after."""
    return FIRST_GROUP_SLICES if first == 0 else GROUP_SLICES


def group_bounds(n_slices: int) -> list[tuple[int, int]]:
    """The groups ``[start, stop)`` that a track's ``n_slices`` slices are transformed in (the last one
    partial), the same for a whole signal (:func:`slice_signal`) and one that arrives in blocks
    (:func:`stream_slices`)."""
    bounds, first = [], 0
    while first < n_slices:
        bounds.append((first, min(first + group_size(first), n_slices)))
        first = bounds[-1][1]
    return bounds


def stream_slices(
    blocks: Iterable[np.ndarray], slicing: SlicingConfig, features: FeaturesConfig, *, overlap: float | None = None
) -> Iterator[TrackSlices]:
    """:func:`slice_signal` of a signal that arrives in consecutive blocks (as from
    :func:`genrekit.audio.decode.decode_blocks`), a group of slices (:func:`group_bounds`) as soon as its
    audio is there: the same groups, so the same bits, as the whole signal's. Only the audio from the
    next slice's start on is kept.

    Yields
    ------
    TrackSlices
        One group each (its ``specs`` and ``starts``; ``duration``: the seconds received so far). The last
        one yielded, possibly without slices, holds the track's ``duration`` and ``padded``.

    Raises
    ------
    TrackError
        With ``short_tracks: drop``, a signal shorter than one slice (after it has all arrived).
    """
    overlap = slicing.overlap if overlap is None else overlap
    geometry = slice_geometry(slicing.slice_duration, overlap, features)
    hop, step, rate = features.hop_length, geometry.step_samples, features.sample_rate
    held, offset, received, done = [], 0, 0, 0  # audio from sample ``offset`` on; slices yielded
    for block in blocks:
        held.append(block)
        received += len(block)
        if (done + group_size(done) - 1) * step + geometry.slice_samples > received:
            continue
        buffer = np.concatenate(held)
        while (done + group_size(done) - 1) * step + geometry.slice_samples <= received:
            starts = (np.arange(done, done + group_size(done), dtype=np.int64) * step) // hop
            specs = _group_specs(buffer, starts - offset // hop, geometry, features)
            yield TrackSlices(specs, starts * hop / rate, received / rate, False)
            done += len(starts)
            keep = (done * step) // hop * hop  # the next slice's first sample
            buffer, offset = buffer[keep - offset :], keep
        held = [buffer]
    buffer = np.concatenate([np.zeros(0, dtype=np.float32), *held])
    if received < geometry.slice_samples:  # the whole track, shorter than a slice: padded as slice_signal does
        yield slice_signal(buffer, slicing, features, overlap=overlap)
        return
    count = 1 + (received - geometry.slice_samples) // step
    starts = (np.arange(done, count, dtype=np.int64) * step) // hop
    specs = (
        _group_specs(buffer, starts - offset // hop, geometry, features)
        if len(starts)
        else np.zeros((0, *geometry.spec_shape), dtype=np.float32)
    )
    yield TrackSlices(specs, starts * hop / rate, received / rate, False)


def load_signal(path: Path, features: FeaturesConfig, *, silence_threshold_db: float) -> np.ndarray:
    """Decode a file to mono at ``features.sample_rate`` (:func:`genrekit.audio.decode.decode`) and
    refuse it if silent.

    Raises
    ------
    TrackError
        The file cannot be decoded, or its peak is below ``silence_threshold_db``.
    """
    signal = decode(path, features.sample_rate)
    refuse_silence(peak_dbfs(signal), silence_threshold_db)
    return signal


def joined(groups: Iterable[TrackSlices]) -> TrackSlices:
    """The groups of :func:`stream_slices` as one :class:`TrackSlices` (duration and padding of the last)."""
    groups = list(groups)
    return TrackSlices(
        np.concatenate([group.specs for group in groups]),
        np.concatenate([group.starts for group in groups]),
        groups[-1].duration,
        groups[-1].padded,
    )


def stream_track_slices(
    path: Path,
    slicing: SlicingConfig,
    features: FeaturesConfig,
    *,
    silence_threshold_db: float,
    overlap: float | None = None,
    block_frames: int | None = None,
) -> Iterator[TrackSlices]:
    """Decode a file a block at a time and yield its slices a group at a time (:func:`stream_slices`);
    joined, the groups are :func:`load_track_slices`' slices, bit for bit. Memory does not grow with the
    track's length (at most two groups of slices and a block of audio).

    Raises
    ------
    TrackError
        As :func:`load_track_slices`; a silent file only once it is decoded, before the last group.
    """
    options = {} if block_frames is None else {"block_frames": block_frames}
    blocks = decode_blocks(path, features.sample_rate, **options)
    yield from stream_slices(_audible(blocks, silence_threshold_db), slicing, features, overlap=overlap)


def _audible(blocks: Iterable[np.ndarray], silence_threshold_db: float) -> Iterator[np.ndarray]:
    """The blocks; at their end, refuse a file without samples or a silent one (:func:`refuse_silence`)."""
    peak, received = 0.0, 0
    for block in blocks:
        if len(block):
            peak, received = max(peak, float(np.max(np.abs(block)))), received + len(block)
        yield block
    if not received:
        raise TrackError("no audio samples in file")
    refuse_silence(20.0 * np.log10(peak) if peak > 0 else float("-inf"), silence_threshold_db)


def refuse_silence(level: float, silence_threshold_db: float) -> None:
    """Raise :class:`TrackError` for a peak ``level`` (dBFS) below ``silence_threshold_db``."""
    if level < silence_threshold_db:
        shown = "-inf" if level == float("-inf") else f"{level:.1f}"
        raise TrackError(f"silent (peak {shown} dBFS, below {silence_threshold_db:g} dBFS)")


def load_track_slices(
    path: Path,
    slicing: SlicingConfig,
    features: FeaturesConfig,
    *,
    silence_threshold_db: float,
    overlap: float | None = None,
    max_slices: int | None = None,
    random_selection: bool = False,
    selection_key: str = "",
) -> TrackSlices:
    """Decode a file, refuse it if silent (:func:`load_signal`), and slice it (see :func:`slice_signal`).

    Raises
    ------
    TrackError
        The file cannot be decoded, is silent, or (with ``short_tracks: drop``) too short.
    """
    signal = load_signal(path, features, silence_threshold_db=silence_threshold_db)
    return slice_signal(
        signal,
        slicing,
        features,
        overlap=overlap,
        max_slices=max_slices,
        random_selection=random_selection,
        selection_key=selection_key,
    )
