"""Scan a folder-per-label audio tree: which files are tracks, which are set aside and why."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from genrekit.audio.variants import AudioVariant


@dataclass(frozen=True)
class TrackFile:
    """One audio file found in the audio folder."""

    path: str  # relative to the audio folder, POSIX separators: the track's key
    label: str
    size: int
    mtime_ns: int

    @property
    def key(self) -> str:
        return hashlib.sha1(self.path.encode("utf-8")).hexdigest()[:20]

    def variant_key(self, variant: AudioVariant | None) -> str:
        """The shard name of the track, or of one of its build-time copies."""
        if variant is None:
            return self.key
        return hashlib.sha1(f"{self.path}\x1f{variant.name}".encode()).hexdigest()[:20]


@dataclass
class Scan:
    tracks: list[TrackFile]
    ignored: list[dict]  # files that are not tracks: hidden, not audio, outside label folders
    label_folders: list[str]


def is_hidden(part: str) -> bool:
    """Hidden files and folders (and macOS archive litter) are never tracks."""
    return part.startswith(".") or part == "__MACOSX"


def scan_audio_folder(audio_folder: Path, extensions: Iterable[str]) -> Scan:
    """Find every track under ``<audio_folder>/<label>/`` (recursively), sorted by path."""
    extensions = {e.lower() for e in extensions}
    tracks, ignored = [], []
    label_folders = sorted(p.name for p in audio_folder.iterdir() if p.is_dir() and not is_hidden(p.name))
    for entry in sorted(audio_folder.iterdir()):
        if entry.is_file() and not is_hidden(entry.name):
            ignored.append({"path": entry.name, "reason": "not inside a label folder"})
    for label in label_folders:
        for root, dirs, files in os.walk(audio_folder / label):
            dirs[:] = sorted(d for d in dirs if not is_hidden(d))
            for name in sorted(files):
                full = Path(root) / name
                rel = full.relative_to(audio_folder).as_posix()
                if is_hidden(name):
                    ignored.append({"path": rel, "reason": "hidden file"})
                elif full.suffix.lower() not in extensions:
                    ignored.append({"path": rel, "reason": f"not an audio extension ({full.suffix or 'none'})"})
                else:
                    st = full.stat()
                    tracks.append(TrackFile(rel, label, st.st_size, st.st_mtime_ns))
    tracks.sort(key=lambda t: t.path)
    return Scan(tracks, ignored, label_folders)
