"""Build-time copies of a track's audio (genrekit.audio.variants): what each kind does to the signal."""

from __future__ import annotations

import numpy as np
import pytest

from genrekit.audio.variants import AudioVariant, apply_variant, audio_variants
from genrekit.core.config import config_from_dict
from genrekit.core.errors import ConfigError
from tests.helpers import tone

SR = 22050


def peak_hz(signal: np.ndarray) -> float:
    spectrum = np.abs(np.fft.rfft(signal * np.hanning(len(signal))))
    return float(np.argmax(spectrum) * SR / len(signal))


@pytest.mark.parametrize("rate", [0.8, 1.25])
def test_speed_changes_length_and_pitch_together(rate):
    """A speed copy plays the track ``rate`` times faster: 1/rate as long, every frequency × rate
    (within one FFT bin of the copy's length)."""
    signal = tone(440.0, 6.0, sr=SR, harmonics=1).astype(np.float32)
    copy = apply_variant(signal, AudioVariant("speed", rate), SR)
    assert copy.dtype == np.float32
    assert abs(len(copy) - len(signal) / rate) <= 1
    assert abs(peak_hz(copy) - 440.0 * rate) <= SR / len(copy)
    # no randomness: the same bits on every call (and so on every build worker)
    assert np.array_equal(copy, apply_variant(signal, AudioVariant("speed", rate), SR))


def test_phase_vocoder_keeps_what_a_speed_change_does_not():
    """A time stretch keeps the pitch, a pitch shift keeps the length; a speed copy changes both."""
    signal = tone(440.0, 6.0, sr=SR, harmonics=1).astype(np.float32)
    stretched = apply_variant(signal, AudioVariant("time_stretch", 1.25), SR)
    shifted = apply_variant(signal, AudioVariant("pitch_shift", 2.0), SR)
    assert abs(len(stretched) - len(signal) / 1.25) <= 512 and abs(peak_hz(stretched) - 440.0) <= 2
    assert len(shifted) == len(signal) and abs(peak_hz(shifted) - 440.0 * 2 ** (2 / 12)) <= 2


def test_variants_follow_the_config_order_and_are_named():
    cfg = config_from_dict(
        {"audio_augmentation": {"pitch_shift_semitones": [-1], "time_stretch_rates": [1.1], "speed_rates": [0.9, 1.1]}}
    )
    assert [v.name for v in audio_variants(cfg.audio_augmentation)] == [
        "pitch_shift -1",
        "time_stretch 1.1",
        "speed 0.9",
        "speed 1.1",
    ]


@pytest.mark.parametrize("rates", [[1.0], [0.3], [0.9, 0.9], "0.9"])
def test_bad_speed_rates_name_the_key(rates):
    with pytest.raises(ConfigError, match=r"audio_augmentation\.speed_rates"):
        config_from_dict({"audio_augmentation": {"speed_rates": rates}})
