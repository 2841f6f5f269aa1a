"""Names and helpers for the HDF5 files the pipeline writes (``dataset.h5``, ``processed.h5``).

Layout (both files)::

    /                    attrs: format_version, labels (JSON list, model order), config_fingerprint,
                                features (JSON), slicing (JSON), split (JSON), config (JSON of the build config)
    /train, /val, /test  groups, each with
        specs            (N, frames, n_mels) float16, chunked, dB (dataset.h5) or normalized (processed.h5)
        labels           (N,) int16, index into the label list
        track_ids        (N,) int32, row of /tracks
        slice_starts     (N,) float64, seconds from the track start
        variants         (N,) int8, only in /train and only with build-time copies (audio_augmentation):
                         0 for a slice of the track itself, i for one of its copy number i, named by
                         the root attribute ``audio_variants`` (JSON list, entry 0 "original")
    /tracks              compound table, one row per audio file found, indexed by track id:
                         path (str, relative to audio_folder, POSIX), label (int16), split (str: train/val/test,
                         or "" when skipped), duration (float64 s), n_slices (int32),
                         status (str: "ok", "padded", or "skipped: <reason>")

``processed.h5`` adds the root attributes ``normalization`` (JSON of
:meth:`genrekit.dataset.normalization.NormStats.to_dict`), ``processing_settings`` (JSON),
``processing_fingerprint`` and ``source_dataset_fingerprint``.
"""

from __future__ import annotations

import json
from typing import Any

import h5py
import numpy as np

FORMAT_VERSION = 1
SPLITS = ("train", "val", "test")
ARRAYS = ("specs", "labels", "track_ids", "slice_starts")
ARRAY_DTYPES = {
    "specs": np.float16,
    "labels": np.int16,
    "track_ids": np.int32,
    "slice_starts": np.float64,
    "variants": np.int8,
}
VARIANTS = "variants"  # the optional per-slice array that marks build-time copies
SPEC_CHUNK_ROWS = 32  # one training batch per chunk at the default batch size

TRACKS_DTYPE = np.dtype(
    [
        ("path", h5py.string_dtype("utf-8")),
        ("label", np.int16),
        ("split", h5py.string_dtype("utf-8")),
        ("duration", np.float64),
        ("n_slices", np.int32),
        ("status", h5py.string_dtype("utf-8")),
    ]
)


def json_attr(h5: h5py.File | h5py.Group, name: str) -> Any:
    """Read a JSON-encoded attribute."""
    value = h5.attrs[name]
    if isinstance(value, bytes):
        value = value.decode("utf-8")
    return json.loads(value)


def set_json_attr(h5: h5py.File | h5py.Group, name: str, value: Any) -> None:
    h5.attrs[name] = json.dumps(value, sort_keys=True, ensure_ascii=False)


def labels_of(h5: h5py.File) -> list[str]:
    return list(json_attr(h5, "labels"))


def read_tracks(h5: h5py.File) -> list[dict]:
    """The tracks table as a list of plain dicts (strings decoded)."""
    rows = []
    for row in h5["tracks"][()]:
        rows.append(
            {
                name: (row[name].decode("utf-8") if isinstance(row[name], bytes) else row[name].item())
                for name in TRACKS_DTYPE.names
            }
        )
    return rows


def row_arrays(group: h5py.Group) -> tuple[str, ...]:
    """The per-slice arrays a split holds: :data:`ARRAYS`, and :data:`VARIANTS` where present."""
    return ARRAYS + ((VARIANTS,) if VARIANTS in group else ())


def create_split_arrays(
    group: h5py.Group, n_rows: int, spec_shape: tuple[int, int], variants: bool = False
) -> dict[str, h5py.Dataset]:
    """Create the four arrays of one split (five with ``variants``), sized for ``n_rows`` slices."""
    frames, mels = spec_shape
    chunk = (max(1, min(SPEC_CHUNK_ROWS, n_rows)), frames, mels)
    out = {
        "specs": group.create_dataset(
            "specs", shape=(n_rows, frames, mels), dtype=np.float16, chunks=chunk if n_rows else None
        )
    }
    for name in ARRAYS[1:] + ((VARIANTS,) if variants else ()):
        out[name] = group.create_dataset(name, shape=(n_rows,), dtype=ARRAY_DTYPES[name])
    return out
