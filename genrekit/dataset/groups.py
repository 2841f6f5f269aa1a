"""Groups for the split (``split.group_by``): tracks of one artist or album never straddle two splits.

Clips of one artist in train and test measure artist recognition, not genre. A group file
(``split.group_file``) says which tracks belong together; these functions derive one from
what the files already say: the folder that holds them, or their artist or album tags.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path, PurePosixPath

from tqdm import tqdm

from genrekit.audio.decode import ffmpeg_executable

TAG_WORKERS = 8  # ffmpeg processes reading tags at once: they wait on the disk more than the CPU


def read_tags(path: Path) -> dict[str, str]:
    """A file's metadata tags (ID3, Vorbis comments, MP4 atoms...), keys in lower case; ``{}`` when unreadable.

    ffmpeg maps each container's tag names to common ones (ID3's ``TPE1`` to ``artist``,
    ``TALB`` to ``album``), so one reader serves every format the build decodes.
    """
    cmd = [
        ffmpeg_executable(),
        "-nostdin",
        "-hide_banner",
        "-loglevel",
        "error",
        "-i",
        str(path),
        "-f",
        "ffmetadata",
        "-",
    ]
    proc = subprocess.run(cmd, capture_output=True)
    tags: dict[str, str] = {}
    if proc.returncode != 0:
        return tags
    for line in proc.stdout.decode("utf-8", errors="replace").splitlines():
        key, sep, value = line.partition("=")
        if sep and not line.startswith(";") and value.strip():
            tags.setdefault(key.strip().lower(), value.strip())
    return tags


def tag_group(tags: dict[str, str], group_by: str) -> str | None:
    """The group a file's tags put it in: its artist, or its artist and album; ``None`` without the tag.

    An album is keyed with its artist, so two artists' albums both called "Greatest Hits"
    stay apart.
    """
    artist = tags.get("album_artist") or tags.get("artist")
    if group_by == "artist_tag":
        return artist
    album = tags.get("album")
    return None if album is None else f"{artist or ''} / {album}"


def folder_group(path: str) -> str | None:
    """The folder holding a track (``blues/John Lee Hooker/x.mp3`` -> ``blues/John Lee Hooker``).

    A file directly in its label folder has no group: the label folder is not an artist.
    """
    parent = PurePosixPath(path).parent
    return None if len(parent.parts) < 2 else parent.as_posix()


def derive_groups(
    audio_folder: Path, paths: Iterable[str], group_by: str, progress: bool = True
) -> tuple[dict[str, str], list[str]]:
    """``path -> group`` for ``split.group_by``, and the tracks it found no group for.

    Tracks without a group are units of their own, as without a group file.
    """
    paths = list(paths)
    if group_by == "parent_folder":
        found = {path: folder_group(path) for path in paths}
    else:
        with ThreadPoolExecutor(TAG_WORKERS) as pool:
            tags = pool.map(lambda p: read_tags(audio_folder / p), paths)
            found = {
                path: tag_group(t, group_by)
                for path, t in zip(
                    paths,
                    tqdm(
                        tags,
                        total=len(paths),
                        desc=f"reading tags ({group_by})",
                        unit="track",
                        disable=not progress or len(paths) < 50,
                        leave=False,
                    ),
                )
            }
    groups = {path: group for path, group in found.items() if group is not None}
    return groups, sorted(path for path, group in found.items() if group is None)
