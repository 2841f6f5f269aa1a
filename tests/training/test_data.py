"""SpectrogramBatches: batches streamed from a real processed.h5-layout file written with h5py."""

from __future__ import annotations

import pickle

import h5py
import numpy as np
import pytest

from genrekit.core import h5layout
from genrekit.training.data import SpectrogramBatches, sample_weights

SPEC_SHAPE = (6, 4)


@pytest.fixture()
def h5_file(tmp_path):
    """train: 103 rows whose specs encode their row number; val: 10 rows; test: empty."""
    path = tmp_path / "processed.h5"
    with h5py.File(path, "w") as h5:
        for split, n in (("train", 103), ("val", 10), ("test", 0)):
            arrays = h5layout.create_split_arrays(h5.create_group(split), n, SPEC_SHAPE)
            if n:
                arrays["specs"][...] = np.arange(n, dtype=np.float16)[:, None, None] * np.ones(SPEC_SHAPE)
                arrays["labels"][...] = np.arange(n) % 3
                arrays["track_ids"][...] = np.arange(n) // 5
    return path


def rows_of(batch) -> np.ndarray:
    """The row numbers a batch holds (its specs are filled with them)."""
    return batch[0][:, 0, 0, 0].astype(int)


def epoch_rows(data: SpectrogramBatches) -> list[np.ndarray]:
    return [rows_of(data[i]) for i in range(len(data))]


def test_batches_shape_dtype_and_labels(h5_file):
    data = SpectrogramBatches(h5_file, "val", 4)
    assert len(data) == 3 and data.n_rows == 10 and data.spec_shape == SPEC_SHAPE
    x, y = data[0]
    assert x.shape == (4, *SPEC_SHAPE, 1) and x.dtype == np.float32
    assert y.dtype == np.int32 and list(y) == [0, 1, 2, 0]
    assert data[2][0].shape[0] == 2  # the last batch holds the rest
    with pytest.raises(IndexError):
        data[3]


def test_unshuffled_batches_follow_file_order(h5_file):
    data = SpectrogramBatches(h5_file, "val", 4)
    rows = epoch_rows(data)
    data.on_epoch_end()
    assert np.array_equal(np.concatenate(rows), np.arange(10))
    assert all(np.array_equal(a, b) for a, b in zip(rows, epoch_rows(data)))


def test_every_epoch_visits_each_row_once_in_new_batches(h5_file):
    data = SpectrogramBatches(h5_file, "train", 16, shuffle=True, seed=5)
    epochs = []
    for _ in range(4):
        rows = epoch_rows(data)
        assert sorted(np.concatenate(rows)) == list(range(103))
        assert sorted(len(r) for r in rows) == [7] + [16] * 6
        epochs.append(rows)
        data.on_epoch_end()
    # the batches themselves (not only their order) change between epochs
    first = {tuple(sorted(r)) for r in epochs[0]}
    for other in epochs[1:]:
        assert first != {tuple(sorted(r)) for r in other}
    # batch order changes too: the first batch of each epoch starts at different rows
    assert len({int(rows[0][0]) for rows in epochs}) > 1


def test_a_batch_reads_at_most_two_contiguous_ranges(h5_file):
    data = SpectrogramBatches(h5_file, "train", 16, shuffle=True, seed=1)
    for epoch in range(5):
        data.set_epoch(epoch)
        for i in range(len(data)):
            ranges = data.batch_ranges(i)
            assert 1 <= len(ranges) <= 2
            expected = np.concatenate([np.arange(a, b) for a, b in ranges])
            assert np.array_equal(rows_of(data[i]), expected)


def test_order_depends_only_on_seed_and_epoch(h5_file):
    a = SpectrogramBatches(h5_file, "train", 16, shuffle=True, seed=3)
    b = SpectrogramBatches(h5_file, "train", 16, shuffle=True, seed=3)
    for _ in range(3):  # a walks epoch by epoch, b jumps straight there (as after a resume)
        a.on_epoch_end()
    b.set_epoch(3)
    assert all(np.array_equal(x, y) for x, y in zip(epoch_rows(a), epoch_rows(b)))
    c = SpectrogramBatches(h5_file, "train", 16, shuffle=True, seed=4)
    c.set_epoch(3)
    assert not all(np.array_equal(x, y) for x, y in zip(epoch_rows(a), epoch_rows(c)))


def test_file_opens_lazily_and_pickles_without_handle(h5_file):
    data = SpectrogramBatches(h5_file, "val", 4)
    assert data._file is None  # nothing held open until a batch is read
    before = data[1]
    assert data._file is not None
    copy = pickle.loads(pickle.dumps(data))  # what a worker process receives
    assert copy._file is None
    after = copy[1]
    assert np.array_equal(before[0], after[0]) and np.array_equal(before[1], after[1])
    data.close()
    copy.close()


def test_empty_split_has_no_batches(h5_file):
    data = SpectrogramBatches(h5_file, "test", 4, shuffle=True)
    assert len(data) == 0


def test_sample_weights_balance_the_genres_and_temper_long_tracks():
    # genre 0: one track of 16 slices; genre 1: tracks of 4 and 1 slices; genre 2: nothing
    labels = np.array([0] * 16 + [1] * 5)
    track_ids = np.array([7] * 16 + [3] * 4 + [9])
    assert sample_weights(labels, track_ids, "none") is None
    genres = sample_weights(labels, track_ids, "genres")
    assert genres.dtype == np.float32 and genres.mean() == pytest.approx(1.0)
    assert genres[labels == 0].sum() == pytest.approx(genres[labels == 1].sum())  # each genre as much in all
    assert np.ptp(genres[labels == 1]) == 0  # one weight within a genre
    tracks = sample_weights(labels, track_ids, "genres_tracks")
    assert tracks.mean() == pytest.approx(1.0)
    assert tracks[labels == 0].sum() == pytest.approx(tracks[labels == 1].sum())
    # a slice weighs 1/sqrt(its track's slices): the 4-slice track twice the 1-slice track in all
    assert tracks[track_ids == 3].sum() == pytest.approx(2 * tracks[track_ids == 9].sum())


def test_weighted_batches_carry_each_rows_weight(h5_file):
    weights = np.arange(103, dtype=np.float32)  # a row's weight is its number, as its specs are
    data = SpectrogramBatches(h5_file, "train", 16, shuffle=True, seed=3, weights=weights)
    for i in range(len(data)):
        x, _, w = data[i]
        assert np.array_equal(w, rows_of((x,)))
    with pytest.raises(ValueError, match="102 weights for the 103 rows"):
        SpectrogramBatches(h5_file, "train", 16, weights=weights[1:])
