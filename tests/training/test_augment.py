"""genrekit.training.augment: each augmentation against an independent formulation, and the loader's use of them."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from genrekit.core import h5layout
from genrekit.core.config import AugmentationConfig
from genrekit.dataset.normalization import NormStats, apply
from genrekit.training.augment import (
    augment_batch,
    gain_per_db,
    mask_stripes,
    mixup,
    random_eq,
    random_gain,
    time_shift,
)
from genrekit.training.data import SpectrogramBatches

OFF = AugmentationConfig(gain_db=0, eq_db=0, time_shift_frames=0, time_masks=0, frequency_masks=0, mixup_alpha=0)


def batch(n=16, frames=40, bands=12, seed=0):
    return np.random.default_rng(seed).normal(size=(n, frames, bands)).astype(np.float32)


def test_time_shift_is_a_shift_with_mirrored_edges():
    specs = batch()
    shifted = time_shift(specs.copy(), np.random.default_rng(1), 5)
    # the same shifts drawn again, applied with numpy's reflect padding
    shifts = np.random.default_rng(1).integers(-5, 6, size=len(specs))
    padded = np.pad(specs, ((0, 0), (5, 5), (0, 0)), mode="reflect")
    expected = np.stack([padded[i, 5 - s : 5 - s + specs.shape[1]] for i, s in enumerate(shifts)])
    assert np.array_equal(shifted, expected)
    assert len(set(shifts)) > 1
    assert np.array_equal(time_shift(specs.copy(), np.random.default_rng(1), 0), specs)


@pytest.mark.parametrize("axis, size", [(1, 40), (2, 12)])
def test_masks_zero_whole_stripes_and_nothing_else(axis, size):
    specs = batch() + 10  # no zeros before masking
    masked = mask_stripes(specs.copy(), np.random.default_rng(2), count=2, max_width=4, axis=axis)
    zero = masked == 0
    # a stripe is all of a frame's bands (axis 1) or all of a band's frames (axis 2)
    stripes = zero.all(axis=3 - axis)
    assert np.array_equal(zero.any(axis=3 - axis), stripes)
    assert stripes.sum(axis=1).max() <= 2 * 4 and stripes.any()
    assert np.array_equal(masked[~zero], specs[~zero])


def test_gain_before_normalization_is_a_band_scaled_offset_after_it():
    rng = np.random.default_rng(3)
    db = rng.normal(-40, 12, size=(8, 30, 6)).astype(np.float32)
    stats = NormStats("standard", mean=np.linspace(-50, -30, 6), std=np.linspace(5, 15, 6))
    offsets = np.random.default_rng(4).uniform(-6, 6, size=8).astype(np.float32)
    gained = random_gain(apply(db, stats), np.random.default_rng(4), 6.0, gain_per_db(stats, 6))
    # float32 rounding of values of a few units: well below 1e-5
    np.testing.assert_allclose(gained, apply(db + offsets[:, None, None], stats), atol=1e-5)
    # per-slice standardization takes any gain out by itself, so it gets none
    assert not gain_per_db(NormStats("per_slice"), 6).any()
    np.testing.assert_allclose(
        apply(db + offsets[:, None, None], NormStats("per_slice")), apply(db, NormStats("per_slice")), atol=1e-4
    )


def test_eq_before_normalization_is_a_smooth_curve_per_slice_after_it():
    rng = np.random.default_rng(6)
    db = rng.normal(-40, 12, size=(8, 30, 6)).astype(np.float32)
    stats = NormStats("standard", mean=np.linspace(-50, -30, 6), std=np.linspace(5, 15, 6))
    equalized = random_eq(apply(db, stats), np.random.default_rng(7), 9.0, gain_per_db(stats, 6))
    # the same weights drawn again: each slice's curve is a tilt and two bends, a half-cosine each
    weights = np.random.default_rng(7).uniform(-1 / 3, 1 / 3, size=(8, 3))
    bands = np.arange(6) / 5
    curves = 9.0 * sum(weights[:, [k - 1]] * np.cos(np.pi * k * bands) for k in (1, 2, 3))
    assert np.abs(curves).max() <= 9.0 and np.ptp(curves, axis=1).min() > 0.5  # every slice gets a real curve
    np.testing.assert_allclose(equalized, apply(db + curves[:, None, :].astype(np.float32), stats), atol=1e-5)


def test_mixup_mixes_different_tracks_and_their_targets():
    specs, targets = batch(n=32), np.eye(32, dtype=np.float32)  # a label per slice: lam can be read back
    track_ids = np.arange(32) // 2  # pairs of slices from one track
    mixed, soft = mixup(specs.copy(), targets.copy(), track_ids, np.random.default_rng(5), alpha=0.4)
    partners = np.random.default_rng(5).permutation(32)
    lam = soft[np.arange(32), np.arange(32)]
    same = track_ids[partners] == track_ids
    assert np.allclose(soft.sum(axis=1), 1) and (lam >= 0.5).all()
    assert (lam[same] == 1).all() and (lam[~same] < 1).all() and (~same).sum() > 20
    expected = lam[:, None, None] * specs + (1 - lam[:, None, None]) * specs[partners]
    np.testing.assert_allclose(mixed, expected, rtol=1e-6, atol=1e-6)


def test_all_off_changes_nothing():
    specs, targets = batch(), np.eye(3, dtype=np.float32)[np.arange(16) % 3]
    out, soft = augment_batch(specs.copy(), targets, np.arange(16), np.random.default_rng(0), OFF, np.ones(12))
    assert np.array_equal(out, specs) and np.array_equal(soft, targets)


@pytest.fixture()
def processed(tmp_path):
    path = tmp_path / "processed.h5"
    rng = np.random.default_rng(0)
    with h5py.File(path, "w") as h5:
        for split, n in (("train", 100), ("val", 20)):
            arrays = h5layout.create_split_arrays(h5.create_group(split), n, (24, 8))
            arrays["specs"][...] = rng.normal(size=(n, 24, 8))
            arrays["labels"][...] = np.arange(n) % 3
            arrays["track_ids"][...] = np.arange(n) // 4
    return path


def test_loader_augments_train_batches_reproducibly(processed):
    def make(seed):
        return SpectrogramBatches(
            processed,
            "train",
            16,
            shuffle=True,
            seed=seed,
            n_labels=3,
            augmentation=AugmentationConfig(time_shift_frames=3),
            gain_per_db=np.ones(8),
        )

    plain = SpectrogramBatches(processed, "train", 16, shuffle=True, seed=7, n_labels=3)
    a, b, other = make(7), make(7), make(8)
    for data in (a, b, plain):
        data.set_epoch(2)
    xa, ya = a[1]
    xb, yb = b[1]
    x_plain, y_plain = plain[1]
    assert np.array_equal(xa, xb) and np.array_equal(ya, yb)  # same seed, epoch and batch: same batch
    assert not np.array_equal(xa, x_plain) and not np.array_equal(xa, other[1][0])
    assert ya.shape == (16, 3) and np.allclose(ya.sum(axis=1), 1) and (ya.max(axis=1) < 1).any()
    assert np.array_equal(y_plain, np.eye(3)[y_plain.argmax(axis=1)])  # one-hot without augmentation
    a.set_epoch(3)
    assert not np.array_equal(a[1][0], xa)  # a new epoch draws anew


def test_validation_batches_are_the_stored_values(processed):
    data = SpectrogramBatches(processed, "val", 8, n_labels=3)
    x, y = data[0]
    with h5py.File(processed) as h5:
        assert np.array_equal(x[..., 0], h5["val/specs"][:8].astype(np.float32))
        assert np.array_equal(y.argmax(axis=1), h5["val/labels"][:8])
