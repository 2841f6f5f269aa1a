"""Write small (or, chunk by chunk, large) ``dataset.h5`` files in the documented layout.

For tests and benchmarks of the stages after the build: the numbers are
synthetic log-mel-like values (a different mean and spread per band), so
statistics can be checked against numpy on the whole array.
"""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np

from genrekit.core import h5layout
from genrekit.core.config import Config, build_settings, fingerprint, to_jsonable

LABELS = ["blues", "metal", "pop"]


def band_profile(n_mels: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-band mean and spread (dB) of the synthetic spectrograms."""
    bands = np.arange(n_mels)
    return -80.0 + 60.0 * bands / max(1, n_mels - 1), 3.0 + 4.0 * (bands % 4)


def write_dataset(
    path: Path,
    cfg: Config,
    rows: dict[str, int],
    spec_shape: tuple[int, int] = (12, 8),
    slices_per_track: int = 5,
    seed: int = 0,
    chunk_rows: int = 256,
    dataset_fingerprint: str | None = None,
) -> Path:
    """Write a ``dataset.h5`` with ``rows[split]`` slices per split.

    Tracks of ``slices_per_track`` slices each (the last one of a split may be
    shorter) get consecutive ids across train, val and test; labels cycle
    through :data:`LABELS`. ``specs`` are generated ``chunk_rows`` rows at a
    time, so files larger than memory can be written. The build settings are
    those of ``cfg``, so ``process_dataset.py`` accepts the file with that config.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    mean, spread = band_profile(spec_shape[1])
    settings = build_settings(cfg)
    tracks = []
    with h5py.File(path, "w") as h5:
        h5.attrs["format_version"] = h5layout.FORMAT_VERSION
        h5layout.set_json_attr(h5, "labels", LABELS)
        h5layout.set_json_attr(h5, "features", to_jsonable(cfg.features))
        h5layout.set_json_attr(h5, "slicing", to_jsonable(cfg.slicing))
        h5layout.set_json_attr(h5, "split", to_jsonable(cfg.split))
        h5layout.set_json_attr(h5, "build_settings", settings)
        h5.attrs["config_fingerprint"] = fingerprint(settings)
        h5.attrs["dataset_fingerprint"] = dataset_fingerprint or fingerprint([seed, rows, list(spec_shape)])
        h5.attrs["silence_threshold_db"] = cfg.build.silence_threshold_db
        h5.attrs["spec_shape"] = list(spec_shape)
        for split in h5layout.SPLITS:
            n = rows.get(split, 0)
            arrays = h5layout.create_split_arrays(h5.create_group(split), n, spec_shape)
            first_track = len(tracks)
            track_ids = first_track + np.arange(n) // slices_per_track
            for track_id in range(first_track, int(track_ids[-1]) + 1 if n else first_track):
                count = int(np.sum(track_ids == track_id))
                tracks.append(
                    (
                        f"{LABELS[track_id % len(LABELS)]}/t{track_id:05d}.wav",
                        track_id % len(LABELS),
                        split,
                        2.0 * count + 1.0,
                        count,
                        "ok",
                    )
                )
            arrays["track_ids"][...] = track_ids
            arrays["labels"][...] = track_ids % len(LABELS)
            arrays["slice_starts"][...] = 2.0 * (np.arange(n) % slices_per_track)
            for start in range(0, n, chunk_rows):
                stop = min(n, start + chunk_rows)
                noise = rng.standard_normal((stop - start, *spec_shape), dtype=np.float32)
                arrays["specs"][start:stop] = (mean + spread * noise).astype(np.float16)
        h5.create_dataset("tracks", data=np.array(tracks, dtype=h5layout.TRACKS_DTYPE))
    return path


def read_split(path: Path, split: str) -> dict[str, np.ndarray]:
    """The four arrays of one split, in memory."""
    with h5py.File(path, "r") as h5:
        return {name: h5[split][name][()] for name in h5layout.ARRAYS}
