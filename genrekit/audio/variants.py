"""Build-time copies of a train track (``audio_augmentation``): its audio pitch-shifted,
time-stretched or sped up or down, between the decode and the slicing."""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from genrekit.core.config import AudioAugmentationConfig
from genrekit.core.errors import TrackError


@dataclass(frozen=True)
class AudioVariant:
    """One build-time copy of a train track: its audio pitch-shifted, time-stretched or sped up/down."""

    # "pitch_shift" (amount in semitones), "time_stretch" (amount: rate, > 1 is faster, same pitch) or
    # "speed" (amount: rate, > 1 is faster and higher, as a record played faster)
    kind: str
    amount: float

    @property
    def name(self) -> str:
        """How ``dataset.h5`` and the build report name it: ``pitch_shift +2`` or ``time_stretch 0.9``."""
        return f"{self.kind} {self.amount:+g}" if self.kind == "pitch_shift" else f"{self.kind} {self.amount:g}"


def audio_variants(augmentation: AudioAugmentationConfig) -> list[AudioVariant]:
    """The copies ``audio_augmentation`` asks for, in config order: pitch shifts, stretches, speeds."""
    return (
        [AudioVariant("pitch_shift", float(n)) for n in augmentation.pitch_shift_semitones]
        + [AudioVariant("time_stretch", float(r)) for r in augmentation.time_stretch_rates]
        + [AudioVariant("speed", float(r)) for r in augmentation.speed_rates]
    )


def apply_variant(signal: np.ndarray, variant: AudioVariant, sample_rate: int) -> np.ndarray:
    """The signal pitch-shifted (same length) or time-stretched (length / rate) by librosa's phase
    vocoder, or sped up or down (length / rate) by resampling: deterministic, so a copy is the same
    bits on every run and worker."""
    if variant.kind == "speed":
        # Read as if recorded at rate × sample_rate and resampled to sample_rate: a speed change
        # costs one resampling, a fraction of a phase vocoder's two STFTs.
        import soxr

        return np.ascontiguousarray(soxr.resample(signal, sample_rate * variant.amount, sample_rate), dtype=np.float32)
    import librosa

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # "n_fft too large" on tracks shorter than one frame
            if variant.kind == "pitch_shift":
                changed = librosa.effects.pitch_shift(signal, sr=sample_rate, n_steps=variant.amount)
            else:
                changed = librosa.effects.time_stretch(signal, rate=variant.amount)
    except (librosa.util.exceptions.ParameterError, ValueError) as exc:  # skip the copy, not the build
        raise TrackError(f"{variant.name}: {exc}") from None
    return np.ascontiguousarray(changed, dtype=np.float32)
