"""The build's per-track work: one track (or build-time copy) in, one shard file out.

:func:`process_track` is a pure function of the file and the config: it decodes, slices and
computes features, then writes a small shard atomically (or a failure record for a track that
cannot be used); a track's build-time copies share its one decode. A shard that exists and matches
its file is finished work; a rerun skips it.
"""

from __future__ import annotations

import io
import json
import socket
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from genrekit.audio.features import load_signal, slice_signal
from genrekit.audio.variants import AudioVariant, apply_variant
from genrekit.core.atomic import write_bytes
from genrekit.core.config import Config, to_jsonable
from genrekit.core.errors import GenrekitError, TrackError
from genrekit.dataset.cluster import SHARED_STORAGE
from genrekit.dataset.scan import TrackFile


def remove_stale_temp_files(folder: Path) -> None:
    """Temp files left by a killed run are never finished work."""
    if folder.is_dir():
        for tmp in folder.rglob("*.tmp-*"):
            tmp.unlink(missing_ok=True)


@dataclass(frozen=True)
class TrackResult:
    """What the assembly needs to know about a processed track (the slices stay in the shard)."""

    path: str
    ok: bool
    n_slices: int = 0
    duration: float = 0.0
    padded: bool = False
    reason: str = ""
    variant: AudioVariant | None = None  # a build-time copy of the track (audio_augmentation)


def shard_settings(cfg: Config) -> dict:
    """The settings that determine a track's shard (not the split, not the label)."""
    return {
        "slicing": to_jsonable(cfg.slicing),
        "features": to_jsonable(cfg.features),
        "silence_threshold_db": cfg.build.silence_threshold_db,
    }


def shard_paths(shard_dir: Path, track: TrackFile, variant: AudioVariant | None = None) -> tuple[Path, Path]:
    key = track.variant_key(variant)
    return shard_dir / f"{key}.npz", shard_dir / f"{key}.fail.json"


def _meta(track: TrackFile, variant: AudioVariant | None) -> dict:
    """What identifies a shard's source: the file's path, size and mtime (and the copy's variant)."""
    meta = {"path": track.path, "size": track.size, "mtime_ns": track.mtime_ns}
    return meta if variant is None else {**meta, "variant": variant.name}


def _matches(meta: dict, track: TrackFile, variant: AudioVariant | None) -> bool:
    return all(meta.get(key) == value for key, value in _meta(track, variant).items())


def read_finished(shard_dir: Path, track: TrackFile, variant: AudioVariant | None = None) -> TrackResult | None:
    """The stored result of a track (or copy) processed before, or None if it must be (re)done."""
    shard, failure = shard_paths(shard_dir, track, variant)
    try:
        if shard.exists():
            with np.load(shard) as data:
                meta = json.loads(str(data["meta"]))
            if _matches(meta, track, variant):
                return TrackResult(
                    track.path, True, meta["n_slices"], meta["duration"], meta["padded"], variant=variant
                )
        elif failure.exists():
            meta = json.loads(failure.read_text(encoding="utf-8"))
            if _matches(meta, track, variant):
                return TrackResult(track.path, False, reason=meta["reason"], variant=variant)
    except (OSError, ValueError, KeyError):
        pass  # unreadable: redo the track
    return None


def sort_out_finished(
    shard_dir: Path, pairs: Iterable[tuple[TrackFile, AudioVariant | None]]
) -> tuple[list[tuple[TrackFile, AudioVariant | None]], list[TrackResult]]:
    """Split tracks (or copies) into those still to do and the results of those done before."""
    todo, finished = [], []
    for track, variant in pairs:
        result = read_finished(shard_dir, track, variant)
        if result is None:
            todo.append((track, variant))
        else:
            finished.append(result)
    return todo, finished


def process_track(
    track: TrackFile,
    audio_folder: Path,
    shard_dir: Path,
    cfg: Config,
    variants: Sequence[AudioVariant | None] = (None,),
) -> list[TrackResult]:
    """Decode one track once, then slice and transform it (variant ``None``) or build-time copies
    of it (the other variants), and store each result atomically in its own shard: one result per
    variant, in order. A copy's decode is the track's, so copies cost no decode of their own.

    A pure function of the file and the config: it can run in any process or on any machine
    that sees ``audio_folder`` and ``shard_dir``.
    """
    if not (audio_folder.is_dir() and shard_dir.is_dir()):  # on a worker that does not see the storage
        missing = audio_folder if not audio_folder.is_dir() else shard_dir
        raise GenrekitError(f"{missing}: not found on the worker {socket.gethostname()}; {SHARED_STORAGE}")
    try:
        signal = load_signal(
            audio_folder / track.path, cfg.features, silence_threshold_db=cfg.build.silence_threshold_db
        )
    except TrackError as exc:
        return [write_failure(shard_dir, track, variant, str(exc)) for variant in variants]
    results = []
    for variant in variants:
        try:
            audio = signal if variant is None else apply_variant(signal, variant, cfg.features.sample_rate)
            slices = slice_signal(
                audio,
                cfg.slicing,
                cfg.features,
                max_slices=cfg.slicing.max_slices,
                random_selection=cfg.slicing.random_slice_selection,
                selection_key=track.path,
            )
        except TrackError as exc:
            results.append(write_failure(shard_dir, track, variant, str(exc)))
            continue
        results.append(
            write_shard(shard_dir, track, slices.specs, slices.starts, slices.duration, slices.padded, variant)
        )
    return results


def write_failure(shard_dir: Path, track: TrackFile, variant: AudioVariant | None, reason: str) -> TrackResult:
    """Record atomically why a track (or copy) cannot be used, so a rerun skips it too."""
    shard, failure = shard_paths(shard_dir, track, variant)
    write_bytes(failure, json.dumps({**_meta(track, variant), "reason": reason}).encode("utf-8"))
    shard.unlink(missing_ok=True)
    return TrackResult(track.path, False, reason=reason, variant=variant)


def write_shard(
    shard_dir: Path,
    track: TrackFile,
    specs: np.ndarray,
    starts: np.ndarray,
    duration: float,
    padded: bool,
    variant: AudioVariant | None = None,
) -> TrackResult:
    """Store one track's (or copy's) slices (``specs``: slices x frames x mels, dB) atomically as its shard."""
    shard, failure = shard_paths(shard_dir, track, variant)
    meta = {**_meta(track, variant), "n_slices": len(starts), "duration": duration, "padded": padded}
    buffer = io.BytesIO()
    np.savez(buffer, specs=specs.astype(np.float16), starts=starts, meta=json.dumps(meta))
    write_bytes(shard, buffer.getvalue())
    failure.unlink(missing_ok=True)
    return TrackResult(track.path, True, meta["n_slices"], duration, padded, variant=variant)
