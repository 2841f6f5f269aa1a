"""genrekit.audio.features: slice counts, offsets, exactness of the shared transform, padding."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from genrekit.audio.features import (
    FIRST_GROUP_SLICES,
    GROUP_SLICES,
    SLICE_RMS_FLOOR,
    SLICE_RMS_TARGET,
    group_bounds,
    joined,
    log_mel,
    pad_to,
    slice_geometry,
    slice_signal,
    slice_start_frames,
    stream_slices,
)
from genrekit.core.config import BACKBONE_FEATURES, Config, FeaturesConfig
from genrekit.core.errors import TrackError
from tests.helpers import SR, noise, tone

CFG = Config()


def test_geometry_at_defaults():
    g = slice_geometry(3.0, 1.0, CFG.features)
    assert (g.slice_samples, g.step_samples, g.n_frames, g.n_mels) == (66150, 44100, 126, 100)


@pytest.mark.parametrize("seconds, expected", [(30.0, 14), (29.0, 14), (28.99, 13), (3.0, 1), (4.9, 1), (5.0, 2)])
def test_slice_counts(seconds, expected):
    g = slice_geometry(3.0, 1.0, CFG.features)
    assert len(slice_start_frames(int(round(seconds * SR)), g, 512)) == expected


def test_starts_snap_down_to_whole_hops():
    ts = slice_signal(noise(30.0), CFG.slicing, CFG.features)
    assert ts.specs.shape == (14, 126, 100) and ts.specs.dtype == np.float32
    nominal = np.arange(14) * 2.0
    assert np.all(ts.starts <= nominal + 1e-9) and np.all(nominal - ts.starts < 512 / SR)
    np.testing.assert_allclose((ts.starts * SR) % 512, 0, atol=1e-6)


# The mel power is a sum of n_fft/2+1 = 1025 non-negative products; BLAS adds them in an order
# that depends on the matrix width (the span's frame count), the kernel (OPENBLAS_CORETYPE) and
# the CPU. Summing non-negative float32 terms in another order moves the result by a few ulps
# (observed: up to 8); 32 ulps of relative power error is 10*log10(1 + 32*eps) = 1.7e-5 dB.
# The dB value is then rounded to float32 once more: half an ulp of up to 2**6 dB, 3.8e-6 dB.
# Being off by one frame instead moves values by whole dB.
EPS32 = float(np.finfo(np.float32).eps)
SPAN_TOLERANCE_DB = 10 * np.log10(1 + 32 * EPS32) + 2**6 * EPS32


def test_each_slice_equals_the_transform_of_that_slice_alone():
    y = tone(330, 12.0) + noise(12.0, amp=0.05)
    ts = slice_signal(y, CFG.slicing, CFG.features, overlap=2.0)
    g = slice_geometry(3.0, 2.0, CFG.features)
    assert len(ts.starts) == 10
    for k in range(10):
        start = int(round(ts.starts[k] * SR))
        alone = log_mel(y[start : start + g.slice_samples], CFG.features)
        np.testing.assert_allclose(ts.specs[k], alone, rtol=0, atol=SPAN_TOLERANCE_DB)
    # a slice one hop off is far outside that tolerance: the test can tell
    start = int(round(ts.starts[4] * SR)) + CFG.features.hop_length
    shifted = log_mel(y[start : start + g.slice_samples], CFG.features)
    assert np.max(np.abs(ts.specs[4] - shifted)) > 1000 * SPAN_TOLERANCE_DB


def test_the_same_span_gives_the_same_bits_whatever_the_blas_threads():
    """What makes dataset.h5 independent of build.workers: log_mel runs BLAS on one thread."""
    from threadpoolctl import threadpool_limits

    y = noise(20.0, seed=3)
    with threadpool_limits(1):
        one = log_mel(y, CFG.features)
    with threadpool_limits(4):
        four = log_mel(y, CFG.features)
    np.testing.assert_array_equal(one, four)


def test_log_mel_scale():
    spec = log_mel(np.zeros(SR * 3, dtype=np.float32), CFG.features)
    assert spec.shape == (126, 100) and np.allclose(spec, -100.0, atol=1e-3)
    loud = log_mel(tone(1000, 3.0, amp=0.5), CFG.features)
    assert loud.max() > 0


def test_padding_modes():
    y = tone(440, 1.0)
    assert np.array_equal(pad_to(y, 3 * SR, "silence")[SR:], np.zeros(2 * SR, dtype=np.float32))
    looped = pad_to(y, 3 * SR, "loop")
    assert np.array_equal(looped[SR : 2 * SR], y)
    ts = slice_signal(y, CFG.slicing, CFG.features)
    assert ts.padded and ts.specs.shape == (1, 126, 100) and ts.duration == pytest.approx(1.0)
    drop = dataclasses.replace(CFG.slicing, short_tracks="drop")
    with pytest.raises(TrackError, match="shorter than one slice"):
        slice_signal(y, drop, CFG.features)


def test_max_slices_first_or_seeded_random():
    y = noise(30.0)
    first = slice_signal(y, CFG.slicing, CFG.features, max_slices=4)
    np.testing.assert_allclose(first.starts, slice_signal(y, CFG.slicing, CFG.features).starts[:4])
    a = slice_signal(y, CFG.slicing, CFG.features, max_slices=4, random_selection=True, selection_key="x.mp3")
    b = slice_signal(y, CFG.slicing, CFG.features, max_slices=4, random_selection=True, selection_key="x.mp3")
    c = slice_signal(y, CFG.slicing, CFG.features, max_slices=4, random_selection=True, selection_key="y.mp3")
    np.testing.assert_array_equal(a.starts, b.starts)
    assert len(a.starts) == 4 and np.all(np.diff(a.starts) > 0) and not np.array_equal(a.starts, c.starts)
    np.testing.assert_array_equal(a.specs, b.specs)


def test_waveform_slices_are_the_samples_at_the_spectrogram_starts():
    """features.representation "waveform": each slice holds its samples as rows of hop_length samples
    (a copy, so bit-equal), from the same hop-aligned starts as the log-mel slices."""
    waveform = dataclasses.replace(CFG.features, representation="waveform")
    g = slice_geometry(3.0, 1.0, waveform)
    assert (g.n_frames, g.n_mels) == (66150 // 512, 512)  # 129 rows; the last partial row is dropped
    signal = noise(30.0)
    ts = slice_signal(signal, CFG.slicing, waveform, max_slices=6, random_selection=True, selection_key="x")
    assert ts.specs.shape == (6, 129, 512) and ts.specs.dtype == np.float32
    np.testing.assert_array_equal(
        ts.starts,
        slice_signal(signal, CFG.slicing, CFG.features, max_slices=6, random_selection=True, selection_key="x").starts,
    )
    for rows, start in zip(ts.specs, ts.starts):
        first = int(round(start * SR))
        np.testing.assert_array_equal(rows.reshape(-1), signal[first : first + 129 * 512])


@pytest.mark.parametrize(
    "features",
    [
        FeaturesConfig(),
        FeaturesConfig(n_mels=32, fmin=50.0, fmax=8000.0),
        FeaturesConfig(sample_rate=16000, n_fft=512, hop_length=256, n_mels=96),
    ],
)
def test_log_mel_is_librosas(features):
    """The mel path is written out in NumPy (librosa's import costs more than analyzing a song): the same
    filterbank and power as librosa's, and the same dB to within float32 rounding (measured: equal)."""
    import librosa

    from genrekit.audio.features import mel_filters, power_spectrogram

    signal = (0.3 * np.random.default_rng(5).standard_normal(features.sample_rate * 4)).astype(np.float32)
    np.testing.assert_allclose(
        mel_filters(features.sample_rate, features.n_fft, features.n_mels, features.fmin, features.fmax),
        librosa.filters.mel(
            sr=features.sample_rate,
            n_fft=features.n_fft,
            n_mels=features.n_mels,
            fmin=features.fmin,
            fmax=features.fmax,
        ),
        rtol=1e-6,
        atol=0,
    )
    power = np.abs(librosa.stft(signal, n_fft=features.n_fft, hop_length=features.hop_length, center=False)) ** 2
    np.testing.assert_allclose(
        power_spectrogram(signal, features.n_fft, features.hop_length), power.T, rtol=1e-5, atol=1e-9
    )
    mel = librosa.feature.melspectrogram(
        y=signal,
        sr=features.sample_rate,
        n_fft=features.n_fft,
        hop_length=features.hop_length,
        n_mels=features.n_mels,
        fmin=features.fmin,
        fmax=features.fmax,
        center=False,
        power=2.0,
    )
    reference = librosa.power_to_db(mel, ref=1.0, amin=1e-10, top_db=None).T
    np.testing.assert_allclose(log_mel(signal, features), reference, rtol=0, atol=1e-4)


LEVELLED = dataclasses.replace(BACKBONE_FEATURES, level_normalization="slice_rms")
MUSICNN_SLICING = dataclasses.replace(Config().slicing, slice_duration=3.008)
# musicnn's scale rounds the power to float16 (genrekit.audio.features.log_compress): a power a few float32 ulps
# away can round to the next float16, a step of 2**-10 in the power, log10(1 + 2**-10) = 4.2e-4 on the scale.
F16_STEP = float(np.log10(1 + 2.0**-10)) + 1e-5


def test_slice_rms_levels_every_slice_to_the_target():
    """Each slice is the log-mel of its own samples brought to -20 dBFS RMS, whatever their level."""
    sr = LEVELLED.sample_rate
    # 250 Hz repeats every 64 samples: every slice (starts on 256-sample hops) holds the same samples, but for the level
    quiet_then_loud = np.concatenate([0.01 * tone(250, 6.1, sr=sr), 0.8 * tone(250, 6.1, sr=sr)])
    ts = slice_signal(quiet_then_loud, MUSICNN_SLICING, LEVELLED, overlap=0.0)
    g = slice_geometry(3.008, 0.0, LEVELLED)
    assert len(ts.starts) == 4
    for k in range(4):
        start = int(round(ts.starts[k] * sr))
        alone = quiet_then_loud[start : start + g.slice_samples]
        levelled = alone * np.float32(SLICE_RMS_TARGET / np.sqrt(np.mean(np.square(alone, dtype=np.float64))))
        np.testing.assert_allclose(ts.specs[k], log_mel(levelled, BACKBONE_FEATURES), rtol=0, atol=F16_STEP)
    # the quiet and the loud slices are the same at the same level now, 38 dB apart before
    np.testing.assert_allclose(ts.specs[0], ts.specs[3], rtol=0, atol=F16_STEP)
    plain = slice_signal(quiet_then_loud, MUSICNN_SLICING, BACKBONE_FEATURES, overlap=0.0)
    assert np.max(np.abs(plain.specs[0] - plain.specs[3])) > 1.0


def test_slice_rms_is_blind_to_the_recording_level():
    """A power-of-two gain scales the FFT, the energies and the gains exactly: the same bits; another
    gain only by float32 rounding."""
    sr = LEVELLED.sample_rate
    y = 0.3 * tone(330, 10.0, sr=sr) + noise(10.0, amp=0.05, sr=sr)
    reference = slice_signal(y, MUSICNN_SLICING, LEVELLED).specs
    np.testing.assert_array_equal(slice_signal(4 * y, MUSICNN_SLICING, LEVELLED).specs, reference)
    np.testing.assert_allclose(slice_signal(0.37 * y, MUSICNN_SLICING, LEVELLED).specs, reference, atol=F16_STEP)


def test_slice_rms_raises_near_silence_by_40_db_at_most():
    sr = LEVELLED.sample_rate
    whisper = 3e-3 * tone(440, 3.1, sr=sr)  # -63 dBFS RMS: raised by 40 dB only, to -23
    ts = slice_signal(whisper, MUSICNN_SLICING, LEVELLED)
    raised = log_mel(whisper[:48128] * np.float32(SLICE_RMS_TARGET / SLICE_RMS_FLOOR), BACKBONE_FEATURES)
    np.testing.assert_allclose(ts.specs[0], raised, rtol=0, atol=F16_STEP)
    assert raised.max() > 1.0  # not silence: the comparison can tell a gain from another
    at_target = log_mel(whisper[:48128] * np.float32(SLICE_RMS_TARGET / 10 ** (-63 / 20)), BACKBONE_FEATURES)
    assert np.max(np.abs(at_target - raised)) > 0.1


def blocks_of(signal: np.ndarray, size: int):
    return (signal[i : i + size] for i in range(0, len(signal), size))


@pytest.mark.parametrize(
    "features, slicing, overlap",
    [
        (FeaturesConfig(), CFG.slicing, None),  # dB log-mel, the default slicing
        (BACKBONE_FEATURES, MUSICNN_SLICING, 1.504),  # musicnn's scale, the ready model's half-slice hop
        (LEVELLED, MUSICNN_SLICING, 0.0),  # each slice levelled on its own samples
    ],
)
def test_streamed_slices_are_the_whole_signals_bit_for_bit(features, slicing, overlap):
    """stream_slices cuts the groups of slice_signal, so any block size gives the same bits: blocks smaller
    than a hop, a slice, or larger than the signal; a signal of several groups and a partial last one."""
    sr = features.sample_rate
    y = np.concatenate(
        [0.3 * tone(220 * (1 + k), 60.0, sr=sr) + noise(60.0, amp=0.05, sr=sr, seed=k) for k in range(4)]
    )
    whole = slice_signal(y, slicing, features, overlap=overlap)
    assert len(whole.starts) > 2 * GROUP_SLICES  # several groups, the last one partial
    for size in (100, 7919, 3 * sr + 17, len(y) + 1):
        groups = list(stream_slices(blocks_of(y, size), slicing, features, overlap=overlap))
        streamed = joined(groups)
        np.testing.assert_array_equal(streamed.specs, whole.specs)
        np.testing.assert_array_equal(streamed.starts, whole.starts)
        assert (streamed.duration, streamed.padded) == (whole.duration, whole.padded)
        assert [len(group.starts) for group in groups] == [b - a for a, b in group_bounds(len(whole.starts))]


def test_groups_start_small_then_hold_group_slices():
    """A first small group (the analyzer's first scores come sooner), then full groups, the last partial."""
    first, size = FIRST_GROUP_SLICES, GROUP_SLICES
    assert group_bounds(1) == [(0, 1)]
    assert group_bounds(first) == [(0, first)]
    assert group_bounds(first + 1) == [(0, first), (first, first + 1)]
    assert group_bounds(first + 2 * size + 3) == [
        (0, first),
        (first, first + size),
        (first + size, first + 2 * size),
        (first + 2 * size, first + 2 * size + 3),
    ]


def test_a_streamed_short_signal_is_padded_as_a_whole_one():
    y = 0.3 * tone(440, 1.0)
    for mode in ("silence", "loop"):
        slicing = dataclasses.replace(CFG.slicing, pad_mode=mode)
        streamed, whole = (
            joined(stream_slices(blocks_of(y, 1000), slicing, CFG.features)),
            slice_signal(y, slicing, CFG.features),
        )
        assert streamed.padded and whole.padded and streamed.duration == whole.duration
        np.testing.assert_array_equal(streamed.specs, whole.specs)
    with pytest.raises(TrackError, match="shorter than one slice"):
        list(stream_slices(blocks_of(y, 1000), dataclasses.replace(CFG.slicing, short_tracks="drop"), CFG.features))


def test_a_long_file_streamed_in_small_blocks_gives_the_slices_of_its_whole_decode(tmp_path):
    """A 3-minute 44.1 kHz stereo mp3, decoded 4096 frames at a time: the slices of load_track_slices, bit for
    bit; a silent file is refused once decoded."""
    from genrekit.audio.features import load_track_slices, stream_track_slices
    from tests.helpers import label_signal, write_audio

    y = np.concatenate([label_signal(k % 4, 30.0, seed=k) for k in range(6)])
    path = write_audio(tmp_path / "long.mp3", 0.8 * y, out_rate=44100, channels=2)
    options = {"silence_threshold_db": -60.0, "overlap": 1.504}
    whole = load_track_slices(path, MUSICNN_SLICING, BACKBONE_FEATURES, **options)
    groups = list(stream_track_slices(path, MUSICNN_SLICING, BACKBONE_FEATURES, block_frames=4096, **options))
    assert len(groups) == len(group_bounds(len(whole.starts)))
    streamed = joined(groups)
    np.testing.assert_array_equal(streamed.specs, whole.specs)
    np.testing.assert_array_equal(streamed.starts, whole.starts)
    assert streamed.duration == whole.duration
    silent = write_audio(tmp_path / "silent.wav", np.zeros(5 * 22050, dtype=np.float32))
    with pytest.raises(TrackError, match="silent"):
        list(stream_track_slices(silent, MUSICNN_SLICING, BACKBONE_FEATURES, block_frames=4096, **options))
