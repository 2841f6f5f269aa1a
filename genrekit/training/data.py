"""``processed.h5`` for training: its checks (:func:`open_processed`) and its batches.

:class:`SpectrogramBatches` streams batches of spectrograms without loading a split.

Each batch is at most two contiguous row ranges of one split, read with
h5py: contiguous reads of a chunked file are fast, random row access is not.
``process_dataset.py`` already shuffled the train rows on disk once; to vary
what the model sees from epoch to epoch, every epoch starts the batches at a new
random row offset (so batches are made of different rows) and visits them in a
new random order. Both follow from ``(seed, epoch)`` alone, so a resumed
training run sees the very batches it would have seen without interruption.
Training batches can also be augmented (:mod:`genrekit.training.augment`), from a generator
seeded by ``(seed, epoch, batch)``: the same holds for them.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import h5py
import keras
import numpy as np

from genrekit.audio.features import stable_seed
from genrekit.core import h5layout
from genrekit.core.config import AugmentationConfig, Config, changed_keys, processing_settings
from genrekit.core.errors import GenrekitError
from genrekit.dataset.normalization import NormStats
from genrekit.training.augment import augment_batch


@dataclass(frozen=True)
class ProcessedData:
    """What training needs to know about ``processed.h5`` (the arrays stay on disk)."""

    path: Path
    labels: list[str]
    spec_shape: tuple[int, int]
    rows: dict[str, int]
    normalization: NormStats
    silence_threshold_db: float
    fingerprints: dict[str, str]
    train_copies: int = 0  # train slices that are build-time copies (audio_augmentation)


def open_processed(cfg: Config) -> ProcessedData:
    """Check that ``processed.h5`` exists, matches ``cfg`` and can train a model.

    Raises
    ------
    GenrekitError
        One line naming the file and what to do: file missing, made with other
        settings or from an older ``dataset.h5``, a split without slices, or a
        label without training slices.
    """
    path = cfg.processed_path
    if not path.is_file():
        raise GenrekitError(f"{path}: not found; run build_dataset.py then process_dataset.py first")
    try:
        with h5py.File(path, "r") as h5:
            return _read_processed(h5, path, cfg)
    except (OSError, KeyError, ValueError) as exc:
        raise GenrekitError(f"{path}: unreadable or incomplete ({exc}); run process_dataset.py again") from None


def _read_processed(h5: h5py.File, path: Path, cfg: Config) -> ProcessedData:
    if "processing_settings" not in h5.attrs:
        raise GenrekitError(f"{path}: no processing_settings attribute; is it written by process_dataset.py?")
    changed = changed_keys(h5layout.json_attr(h5, "processing_settings"), processing_settings(cfg))
    if changed:
        only_processing = all(key.startswith("processing.") for key in changed)
        scripts = "process_dataset.py" if only_processing else "build_dataset.py and process_dataset.py"
        raise GenrekitError(
            f"{path} was made with other settings (changed: {', '.join(changed)}); run {scripts} again with this config"
        )
    source = str(h5.attrs["source_dataset_fingerprint"])
    if cfg.dataset_path.is_file():
        with h5py.File(cfg.dataset_path, "r") as dataset:
            if str(dataset.attrs.get("dataset_fingerprint", source)) != source:
                raise GenrekitError(
                    f"{path} was made from an older {cfg.dataset_path.name}; run process_dataset.py again"
                )
    labels = h5layout.labels_of(h5)
    if len(labels) < 2:
        raise GenrekitError(f"{path}: {len(labels)} label(s); a classifier needs at least two")
    rows = {split: int(h5[split]["labels"].shape[0]) for split in h5layout.SPLITS}
    # An empty validation or test split is what a share of 0 asks for (a final model trained on
    # everything); an empty one that was asked for slices is a dataset too small for the shares.
    shares = {"train": 1.0, "val": cfg.split.validation_share, "test": cfg.split.test_share}
    for split, count in rows.items():
        if count == 0 and shares[split] > 0:
            raise GenrekitError(
                f"{path}: the {split} split has no slices; add tracks or change "
                f"split.validation_share / split.test_share, then rebuild"
            )
    per_label = np.bincount(h5["train"]["labels"][()], minlength=len(labels))  # int16, small
    missing = [name for name, count in zip(labels, per_label) if count == 0]
    if missing:
        raise GenrekitError(
            f"{path}: no training slices for label(s) {', '.join(missing)}; "
            f"add tracks of that label or change the split, then rebuild"
        )
    return ProcessedData(
        path=path,
        labels=labels,
        spec_shape=tuple(int(n) for n in h5["train"]["specs"].shape[1:]),
        rows=rows,
        normalization=NormStats.from_dict(h5layout.json_attr(h5, "normalization")),
        silence_threshold_db=float(h5.attrs["silence_threshold_db"]),
        fingerprints={
            "config_fingerprint": str(h5.attrs["config_fingerprint"]),
            "dataset_fingerprint": source,
            "processing_fingerprint": str(h5.attrs["processing_fingerprint"]),
        },
        train_copies=(
            int(np.count_nonzero(h5["train"][h5layout.VARIANTS][()])) if h5layout.VARIANTS in h5["train"] else 0
        ),
    )


def sample_weights(labels: np.ndarray, track_ids: np.ndarray, weighting: str) -> np.ndarray | None:
    """Each training slice's weight in the loss, under ``training.sample_weighting``.

    Parameters
    ----------
    labels, track_ids : (n,) int arrays
        The split's slices: their label and the track each came from (a track's build-time copies
        share its id, so they count as that track).
    weighting : {"none", "genres", "genres_tracks"}
        ``"genres"``: every label's slices weigh as much in total. ``"genres_tracks"``: a slice weighs
        ``1 / sqrt(n)``, ``n`` its track's slices, and then every label as much in total.

    Returns
    -------
    (n,) float32 array with mean 1, or None for ``"none"`` (every slice weighs 1).
    """
    if weighting == "none" or len(labels) == 0:
        return None
    weights = np.ones(len(labels))
    if weighting == "genres_tracks":
        _, track_of, slices_per_track = np.unique(track_ids, return_inverse=True, return_counts=True)
        weights /= np.sqrt(slices_per_track[track_of])
    per_label = np.bincount(labels, weights=weights)
    weights /= per_label[labels]
    return (weights * len(weights) / weights.sum()).astype(np.float32)


def train_weights(data: ProcessedData, weighting: str) -> np.ndarray | None:
    """:func:`sample_weights` of ``processed.h5``'s train split, from its labels and track ids (a frozen
    backbone's features keep its row order); None for ``"none"``, without reading the file."""
    if weighting == "none":
        return None
    with h5py.File(data.path, "r") as h5:
        return sample_weights(h5["train"]["labels"][()], h5["train"]["track_ids"][()], weighting)


class SpectrogramBatches(keras.utils.PyDataset):
    """Batches ``(specs[..., None] as float32, targets)`` of one split of ``processed.h5``.

    Parameters
    ----------
    path : Path
        The ``processed.h5`` file.
    split : {"train", "val", "test"}
    batch_size : int
    shuffle : bool
        Vary batch composition and order every epoch (train); otherwise batch
        ``i`` is rows ``[i * batch_size, (i + 1) * batch_size)`` (evaluation).
    seed : int
        Seed of the per-epoch shuffling.
    add_channel : bool
        Give each spectrogram a trailing channel axis (what the networks take); off for
        feature vectors (a frozen backbone's, see :mod:`genrekit.models.backbone`).
    n_labels : int, optional
        Give targets as one-hot float32 rows of this width (what training compiles for,
        and what mixup needs); without it, the int32 labels.
    augmentation : AugmentationConfig, optional
        Augment every batch (training only; needs ``n_labels``).
    gain_per_db : (n_mels,) float32, optional
        :func:`genrekit.training.augment.gain_per_db` of the split's normalization, for random gain.
    multiple_of : int
        Cut every batch to a multiple of this many rows (the devices of a
        ``tf.distribute`` strategy, which fails on batches it cannot split evenly): up to
        ``multiple_of - 1`` rows of the last batch are left out.
    weights : (n_rows,) float32 array, optional
        Each row's weight in the loss (:func:`sample_weights`): batches become
        ``(inputs, targets, weights)``.
    **kwargs
        ``workers``, ``use_multiprocessing``, ``max_queue_size`` of
        :class:`keras.utils.PyDataset`.
    """

    def __init__(
        self,
        path: Path,
        split: str,
        batch_size: int,
        *,
        shuffle: bool = False,
        seed: int = 0,
        add_channel: bool = True,
        n_labels: int | None = None,
        augmentation: AugmentationConfig | None = None,
        gain_per_db: np.ndarray | None = None,
        multiple_of: int = 1,
        weights: np.ndarray | None = None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if augmentation is not None and n_labels is None:
            raise ValueError("augmentation needs n_labels (mixup makes soft targets)")
        self.multiple_of = int(multiple_of)
        self.path = Path(path)
        self.split = split
        self.batch_size = int(batch_size)
        self.shuffle = shuffle
        self.seed = int(seed)
        self.add_channel = add_channel
        self.n_labels = n_labels
        self.augmentation = augmentation
        self.gain_per_db = gain_per_db
        self.weights = weights
        with h5py.File(self.path, "r") as h5:
            self.n_rows = int(h5[split]["labels"].shape[0])
            self.spec_shape = tuple(int(n) for n in h5[split]["specs"].shape[1:])
        if weights is not None and len(weights) != self.n_rows:
            raise ValueError(f"{len(weights)} weights for the {self.n_rows} rows of {path}'s {split} split")
        self._file: h5py.File | None = None
        self._file_pid: int | None = None
        self.set_epoch(0)

    # ------------------------------------------------------------------ epochs

    def set_epoch(self, epoch: int) -> None:
        """Arrange the batches of ``epoch`` (0-based); a no-op without ``shuffle``."""
        self.epoch = int(epoch)
        n_batches = len(self)
        if not self.shuffle or self.n_rows == 0:
            self._offset, self._order = 0, np.arange(n_batches)
            return
        rng = np.random.default_rng([self.seed, self.epoch])
        self._offset = int(rng.integers(self.n_rows))
        self._order = rng.permutation(n_batches)

    def on_epoch_end(self) -> None:
        self.set_epoch(self.epoch + 1)

    # ------------------------------------------------------------------ batches

    def __len__(self) -> int:
        last = self.n_rows % self.batch_size
        return self.n_rows // self.batch_size + (last - last % self.multiple_of > 0)

    def batch_ranges(self, index: int) -> list[tuple[int, int]]:
        """The row ranges ``[(start, stop), ...]`` that make up batch ``index`` this epoch.

        Rows are taken as a ring starting at this epoch's offset, so a batch
        that runs past the last row continues at row 0.
        """
        if not 0 <= index < len(self):
            raise IndexError(f"batch {index} out of range (0..{len(self) - 1})")
        position = int(self._order[index]) * self.batch_size
        size = min(self.batch_size, self.n_rows - position)
        size -= size % self.multiple_of
        start = (self._offset + position) % self.n_rows
        stop = start + size
        if stop <= self.n_rows:
            return [(start, stop)]
        return [(start, self.n_rows), (0, stop - self.n_rows)]

    def _h5(self) -> h5py.File:
        # Opened on first use in each process: h5py handles must not cross a fork.
        if self._file is None or self._file_pid != os.getpid():
            self._file = h5py.File(self.path, "r")
            self._file_pid = os.getpid()
        return self._file

    def read_rows(self, start: int, stop: int, name: str) -> np.ndarray:
        """Rows ``[start, stop)`` of one array of this split."""
        return self._h5()[self.split][name][start:stop]

    def __getitem__(self, index: int) -> tuple[np.ndarray, ...]:
        ranges = self.batch_ranges(index)
        specs = np.concatenate([self.read_rows(a, b, "specs") for a, b in ranges]).astype(np.float32)
        labels = np.concatenate([self.read_rows(a, b, "labels") for a, b in ranges]).astype(np.int32)
        targets = labels if self.n_labels is None else np.eye(self.n_labels, dtype=np.float32)[labels]
        if self.augmentation is not None:
            track_ids = np.concatenate([self.read_rows(a, b, "track_ids") for a, b in ranges])
            rng = np.random.default_rng([self.seed, self.epoch, index])
            specs, targets = augment_batch(specs, targets, track_ids, rng, self.augmentation, self.gain_per_db)
        inputs = specs[..., None] if self.add_channel else specs
        if self.weights is None:
            return inputs, targets
        return inputs, targets, np.concatenate([self.weights[a:b] for a, b in ranges])

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def __getstate__(self) -> dict:
        # Worker processes get a copy without the open file and open their own.
        state = self.__dict__.copy()
        state["_file"] = None
        state["_file_pid"] = None
        return state


class EpochSync(keras.callbacks.Callback):
    """Tell a shuffled dataset and the model's random layers which epoch ``fit`` is starting.

    Keras' ``BackupAndRestore`` keeps weights and optimizer state, not the state of
    the random generators of dropout layers: after a resume they would start over
    and draw other masks than the uninterrupted run. Instead every generator starts
    each epoch from a state that follows from ``(seed, epoch, its position)``, like
    the batches do, so a resumed run computes exactly what an uninterrupted one does.
    """

    def __init__(self, dataset: SpectrogramBatches, seed: int):
        super().__init__()
        self.dataset = dataset
        self.seed = int(seed)

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        if self.dataset.epoch != epoch:
            self.dataset.set_epoch(epoch)
        generators = [v for v in self.model.variables if v.name == "seed_generator_state"]
        for position, state in enumerate(generators):
            start = stable_seed("dropout", self.seed, epoch, position) % 2**31
            state.assign(keras.ops.convert_to_tensor([start, 0], dtype=state.dtype))
