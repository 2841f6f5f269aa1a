"""A frozen backbone's features of the slices, computed once for every epoch and run."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import h5py
import keras
import numpy as np
from tqdm import tqdm

from genrekit.core.atomic import fsync_path
from genrekit.core.cli import log
from genrekit.training.data import ProcessedData, SpectrogramBatches


def embed_split(
    embedder: keras.Model, processed: Path, split: str, batch_size: int = 64, progress: str | None = None
) -> np.ndarray:
    """The backbone's features of every slice of one split of ``processed.h5``, in row order.

    ``progress``: the description of a tqdm bar on stderr (none without it).
    """
    batches = SpectrogramBatches(processed, split, batch_size)
    vectors = [np.zeros((0, embedder.output_shape[-1]), np.float32)]
    try:
        for i in tqdm(
            range(len(batches)), desc=progress, unit="batch", disable=progress is None, file=sys.stderr, leave=False
        ):
            vectors.append(keras.ops.convert_to_numpy(embedder(batches[i][0], training=False)))
    finally:
        batches.close()
    return np.concatenate(vectors)


def write_backbone_features(embedder: keras.Model, data: ProcessedData, path: Path) -> None:
    """A frozen backbone's features of every train and validation slice, once (atomically)."""
    log("computing the backbone's features of the train and validation slices (once for every epoch and run)")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with h5py.File(tmp, "w") as h5:
        for split in ("train", "val"):
            with h5py.File(data.path, "r") as source:
                labels = source[split]["labels"][()]
            vectors = embed_split(embedder, data.path, split, progress=f"backbone features ({split})")
            h5.create_dataset(f"{split}/specs", data=vectors)
            h5.create_dataset(f"{split}/labels", data=labels)
    fsync_path(tmp)
    os.replace(tmp, path)
