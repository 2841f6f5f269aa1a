"""Augmentation of training batches: random gain and equalization, time shift, masks, mixup.

Plain functions on a batch of processed spectrograms ``(n, frames, n_mels)`` float32,
each drawing from a ``numpy.random.Generator`` it is given: the loader seeds one per
``(seed, epoch, batch)``, so the same seed gives the same augmented batches in any
order, on any worker, after a resume. Only training batches are augmented; validation,
test and the analyzer see the spectrograms as they are.

Why each one (the model must learn genre, not the recording it heard):

* gain: a track's level and mastering shift every dB value; a random offset per slice,
  applied as if before normalization, keeps the model from keying on loudness;
* equalization: a microphone, room or mastering colours the spectrum (more bass, duller
  treble); a random smooth curve per slice keeps the model from keying on one recording's
  colour, which on few artists per genre is the artist's;
* time shift: the same bar must not always sit at the same frames;
* time and frequency masks (SpecAugment, Park et al. 2019): no single instant or band
  (one instrument's register, one recording's hum) may decide;
* mixup (Zhang et al. 2018) between slices of *different* tracks: soft targets between
  two recordings, so memorising one recording stops paying.
"""

from __future__ import annotations

import numpy as np

from genrekit.core.config import AugmentationConfig
from genrekit.dataset.normalization import STD_FLOOR, NormStats


def gain_per_db(stats: NormStats, n_mels: int) -> np.ndarray:
    """How much one dB of level moves each band of a spectrogram normalized with ``stats``.

    Adding ``g`` dB before normalization adds ``g * gain_per_db(...)`` after it. Per-slice
    standardization takes the level out itself (zero); ``none`` keeps dB as they are (one).
    """
    if stats.method == "standard":
        return (1.0 / np.maximum(stats.std, STD_FLOOR)).astype(np.float32)
    if stats.method in ("min_max", "non_zero_min_max"):
        return np.full(n_mels, 1.0 / max(stats.maximum - stats.minimum, STD_FLOOR), dtype=np.float32)
    if stats.method == "per_slice":
        return np.zeros(n_mels, dtype=np.float32)
    return np.ones(n_mels, dtype=np.float32)


def random_gain(specs: np.ndarray, rng: np.random.Generator, max_db: float, per_db: np.ndarray) -> np.ndarray:
    """Add a level offset drawn uniformly in ``[-max_db, max_db]`` dB to each slice, in place."""
    offsets = rng.uniform(-max_db, max_db, size=len(specs)).astype(np.float32)
    specs += offsets[:, None, None] * per_db[None, None, :]
    return specs


def random_eq(specs: np.ndarray, rng: np.random.Generator, max_db: float, per_db: np.ndarray) -> np.ndarray:
    """Add a smooth random equalization curve, at most ``max_db`` dB either way, to each slice, in place.

    Each curve is a random mix of a tilt and two broader bends over the mel bands (the first
    three half-cosines, weights uniform in ``[-1/3, 1/3]``): bass, middle and treble louder or
    softer, as another microphone, room or mastering would make them.
    """
    n_mels = specs.shape[2]
    shapes = np.cos(np.pi * np.arange(1, 4)[:, None] * np.linspace(0.0, 1.0, n_mels)[None, :])
    weights = rng.uniform(-1.0 / 3.0, 1.0 / 3.0, size=(len(specs), 3))
    curves = (max_db * weights @ shapes).astype(np.float32)  # (n, n_mels) in dB
    specs += (curves * per_db[None, :])[:, None, :]
    return specs


def time_shift(specs: np.ndarray, rng: np.random.Generator, max_frames: int) -> np.ndarray:
    """Shift each slice by up to ``max_frames`` frames either way, mirroring frames in at the edge.

    The frames beside a slice are not at hand (training rows are shuffled slices), so the
    ones shifted in are the slice's own, reflected: no silence and no jump at the edge.
    """
    n, frames = specs.shape[:2]
    shifts = rng.integers(-max_frames, max_frames + 1, size=n)
    source = np.arange(frames)[None, :] - shifts[:, None]
    period = 2 * (frames - 1)
    source = np.mod(source, period) if period else np.zeros_like(source)
    source = np.where(source >= frames, period - source, source)  # reflect at the last frame
    return np.take_along_axis(specs, source[:, :, None], axis=1)


def mask_stripes(specs: np.ndarray, rng: np.random.Generator, count: int, max_width: int, axis: int) -> np.ndarray:
    """Set ``count`` stripes of up to ``max_width`` frames (``axis=1``) or bands (``axis=2``) to 0, in place.

    0 is the mean of a normalized spectrogram: a masked stripe carries no information,
    not a loud or silent event.
    """
    n, size = specs.shape[0], specs.shape[axis]
    widths = rng.integers(0, min(max_width, size) + 1, size=(n, count))
    starts = rng.integers(0, size - widths + 1)
    positions = np.arange(size)[None, None, :]
    masked = ((positions >= starts[..., None]) & (positions < (starts + widths)[..., None])).any(axis=1)
    keep = ~masked[:, :, None] if axis == 1 else ~masked[:, None, :]
    specs *= keep
    return specs


def mixup(
    specs: np.ndarray, targets: np.ndarray, track_ids: np.ndarray, rng: np.random.Generator, alpha: float
) -> tuple[np.ndarray, np.ndarray]:
    """Mix each slice with another slice of the batch from a different track.

    Weights ``lam ~ Beta(alpha, alpha)`` folded to ``max(lam, 1 - lam)``, so each mixed
    slice stays mostly itself; its target mixes the two one-hot targets likewise. A slice
    whose partner is of the same track is left as it is.
    """
    n = len(specs)
    partners = rng.permutation(n)
    lam = rng.beta(alpha, alpha, size=n).astype(np.float32)
    lam = np.maximum(lam, 1 - lam)
    lam[track_ids[partners] == track_ids] = 1.0
    mixed = lam[:, None, None] * specs + (1 - lam[:, None, None]) * specs[partners]
    mixed_targets = lam[:, None] * targets + (1 - lam[:, None]) * targets[partners]
    return mixed, mixed_targets


def augment_batch(
    specs: np.ndarray,
    targets: np.ndarray,
    track_ids: np.ndarray,
    rng: np.random.Generator,
    config: AugmentationConfig,
    per_db: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Apply every augmentation ``config`` switches on to one training batch.

    Parameters
    ----------
    specs : (n, frames, n_mels) float32
        Normalized spectrograms; changed in place where possible.
    targets : (n, n_labels) float32
        One-hot targets.
    track_ids : (n,) int
        The track of each slice (mixup pairs different tracks only).
    rng : numpy.random.Generator
    config : AugmentationConfig
    per_db : (n_mels,) float32, optional
        :func:`gain_per_db` of the data's normalization; no gain without it.
    """
    if config.gain_db > 0 and per_db is not None:
        specs = random_gain(specs, rng, config.gain_db, per_db)
    if config.eq_db > 0 and per_db is not None:
        specs = random_eq(specs, rng, config.eq_db, per_db)
    if config.time_shift_frames > 0:
        specs = time_shift(specs, rng, config.time_shift_frames)
    if config.time_masks > 0 and config.time_mask_frames > 0:
        specs = mask_stripes(specs, rng, config.time_masks, config.time_mask_frames, axis=1)
    if config.frequency_masks > 0 and config.frequency_mask_bands > 0:
        specs = mask_stripes(specs, rng, config.frequency_masks, config.frequency_mask_bands, axis=2)
    if config.mixup_alpha > 0:
        specs, targets = mixup(specs, targets, track_ids, rng, config.mixup_alpha)
    return specs, targets
