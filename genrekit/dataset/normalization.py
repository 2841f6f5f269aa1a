"""Spectrogram normalization: the statistics and the transform, shared by
``process_dataset.py`` (which computes them on the train split) and the analyzer
(which applies the very same transform to new audio).

Methods
-------
standard
    Per-mel-band mean and standard deviation: ``(x - mean[band]) / std[band]``.
per_slice
    Each slice by its own mean and standard deviation over all its frames and bands. A
    track's level (and any gain) drops out, so the model cannot key on loudness or
    mastering; the spectral shape and dynamics within the slice remain. Needs no statistics.
min_max
    Global train minimum and maximum: ``(x - min) / (max - min)``, in [0, 1] on train.
non_zero_min_max
    As ``min_max`` plus 0.001, in [0.001, 1.001] on train (SLAPP's method: no exact zeros).
none
    The values as they are: what a pretrained backbone (``model.backbone``) was trained on;
    it normalizes its input itself.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

METHODS = ("standard", "per_slice", "min_max", "non_zero_min_max", "none")
STATELESS = ("none", "per_slice")  # methods that need no train statistics
STD_FLOOR = 1e-2  # dB: a band (nearly) constant in train must not blow val/test values up


@dataclass(frozen=True)
class NormStats:
    """What is needed to normalize a spectrogram exactly as the training data was."""

    method: str
    mean: np.ndarray | None = None  # (n_mels,) float64, standard only
    std: np.ndarray | None = None  # (n_mels,) float64, standard only
    minimum: float | None = None  # min_max methods only
    maximum: float | None = None

    def to_dict(self) -> dict:
        return {
            "method": self.method,
            "mean": None if self.mean is None else [float(v) for v in self.mean],
            "std": None if self.std is None else [float(v) for v in self.std],
            "min": self.minimum,
            "max": self.maximum,
        }

    @classmethod
    def from_dict(cls, data: dict) -> NormStats:
        method = data.get("method")
        if method not in METHODS:
            raise ValueError(f"unknown normalization method {method!r}")
        mean = None if data.get("mean") is None else np.asarray(data["mean"], dtype=np.float64)
        std = None if data.get("std") is None else np.asarray(data["std"], dtype=np.float64)
        stats = cls(method, mean, std, data.get("min"), data.get("max"))
        stats.check()
        return stats

    def check(self, n_mels: int | None = None) -> None:
        """Raise ``ValueError`` when the statistics are missing or do not fit ``n_mels``."""
        if self.method == "standard":
            if self.mean is None or self.std is None or self.mean.shape != self.std.shape:
                raise ValueError("standard normalization needs mean and std of equal length")
            if n_mels is not None and self.mean.shape != (n_mels,):
                raise ValueError(f"normalization has {self.mean.shape[0]} bands, features have {n_mels}")
        elif self.method not in STATELESS and (self.minimum is None or self.maximum is None):
            raise ValueError(f"{self.method} normalization needs min and max")


def apply(specs: np.ndarray, stats: NormStats, out: np.ndarray | None = None) -> np.ndarray:
    """Normalize spectrograms ``(..., frames, n_mels)`` in dB; returns float32.

    ``out``, a float32 array of the same shape, receives the result instead of a
    new array (chunked processing reuses its buffers); it may be ``specs`` itself.
    """
    # One float32 copy, then in-place arithmetic: the same values as ``(x - mean) / std``
    # without further temporaries.
    if out is None:
        out = np.array(specs, dtype=np.float32, copy=True)
    else:
        np.copyto(out, specs)
    if stats.method == "none":
        return out
    if stats.method == "per_slice":
        # float64 sums: the moments of ~13,000 values must not depend on summation order
        # beyond float32 rounding of the result
        axes = (-2, -1)
        mean = out.mean(axis=axes, keepdims=True, dtype=np.float64)
        std = out.std(axis=axes, keepdims=True, dtype=np.float64)
        out -= mean.astype(np.float32)
        out /= np.maximum(std, STD_FLOOR).astype(np.float32)
        return out
    if stats.method == "standard":
        out -= stats.mean.astype(np.float32)
        out /= np.maximum(stats.std, STD_FLOOR).astype(np.float32)
        return out
    out -= np.float32(stats.minimum)
    out /= np.float32(max(stats.maximum - stats.minimum, STD_FLOOR))
    if stats.method == "non_zero_min_max":
        out += np.float32(0.001)
    return out
