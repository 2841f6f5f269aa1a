"""Write the verdict into each file's genre tag, safely and reversibly (``--write-tags``, issue 35).

The top label goes into the standard genre field of each format, with mutagen: ID3 ``TCON`` (mp3,
and the ID3 chunk of wav and aiff), the Vorbis comment ``GENRE`` (flac, ogg, opus), MP4 ``©gen``
(m4a) and ASF ``WM/Genre`` (wma). Only that field changes:

- **Atomic.** A file is never edited where it lies: it is copied to a hidden temporary file beside
  it, mutagen edits the copy, the copy gets the file's permissions, owner and modification time, is
  fsynced, and is renamed over the file (then the folder is fsynced). A crash or ``kill -9`` at any
  moment leaves the file as it was or as it is meant to be, never half-written; a leftover copy is
  removed by the next run.
- **Journaled.** Before each rename, a line of the tag journal (JSON Lines, fsynced) records the
  file, its genre values before and after, and its size and mtime before and after. :func:`undo_file`
  restores the values from it exactly, one atomic rewrite per file, and can be run again at any point:
  it judges each file by its current genre, not by what an earlier undo did.
- **Only unchanged files.** A file is tagged only if its size and mtime are those recorded before
  its analysis (or after genrekit last tagged it, from the journal): a file changed since its
  analysis is skipped, as are read-only files, files with several hard links, and formats without a
  genre field; each with a one-line reason.

The label becomes the name a player shows: GTZAN's ten genres as ID3v1's genre list spells them
(``hiphop`` -> ``Hip-Hop``), any other label with the first letter of each word capitalized
(:func:`tag_name`).
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import shutil
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import NamedTuple

import mutagen
from mutagen.aiff import AIFF
from mutagen.asf import ASF
from mutagen.flac import FLAC
from mutagen.id3 import TCON
from mutagen.mp3 import MP3
from mutagen.mp4 import MP4
from mutagen.oggflac import OggFLAC
from mutagen.oggopus import OggOpus
from mutagen.oggspeex import OggSpeex
from mutagen.oggvorbis import OggVorbis
from mutagen.wave import WAVE

from genrekit.core.atomic import fsync_path, write_bytes
from genrekit.core.errors import GenrekitError, TrackError
from genrekit.inference.results import FileStat, file_stat, recorded_stat, stat_or_none

# The default --min-share: a verdict is written only where the top label's share is at least this.
# Chosen from the ready genre model's artist-held-out cross-validation (benchmarks/ready_model_cv.py):
# at a top share of 0.6 or more its top label is right on 86 % of the clips (96 % of the full clips),
# and 80 % of the clips reach it; 0.5 would be 84 % right, 0.7 89 % of 71 % (docs/GUIDE.md#tag-your-library).
DEFAULT_MIN_SHARE = 0.6
MODES = ("fill", "replace", "add")  # --tag-mode; fill is the default
JOURNAL_VERSION = 1
# Test hook: sleep this many seconds after each journal line, before its file's rename, so a test
# can kill -9 a tagging run between the two (tests/inference/test_tagging.py).
TAG_PAUSE_ENV = "GENREKIT_TEST_TAG_PAUSE"
TEMP_MARK = ".genrekit-tmp"  # the copy of song.mp3 is .song.genrekit-tmp.mp3

# GTZAN's labels as players and ID3v1's genre list spell them.
GTZAN_TAG_NAMES = {
    "blues": "Blues",
    "classical": "Classical",
    "country": "Country",
    "disco": "Disco",
    "hiphop": "Hip-Hop",
    "jazz": "Jazz",
    "metal": "Metal",
    "pop": "Pop",
    "reggae": "Reggae",
    "rock": "Rock",
}

# The genre field of each format mutagen reads: (kind, key). Vorbis comment keys are case-insensitive.
ID3, VORBIS, MP4_ATOM, ASF_ATTRIBUTE = "id3", "vorbis", "mp4", "asf"
FIELDS = (
    ((MP3, WAVE, AIFF), ID3, "TCON"),
    ((FLAC, OggVorbis, OggOpus, OggFLAC, OggSpeex), VORBIS, "GENRE"),
    ((MP4,), MP4_ATOM, "©gen"),
    ((ASF,), ASF_ATTRIBUTE, "WM/Genre"),
)


def tag_name(label: str) -> str:
    """The genre name written for a model label: GTZAN's as ID3v1 spells them (``hiphop`` ->
    ``Hip-Hop``); any other label with ``_`` as a space and each word's first letter capitalized
    (``drum_and_bass`` -> ``Drum And Bass``, ``IDM`` stays ``IDM``)."""
    if label.lower() in GTZAN_TAG_NAMES:
        return GTZAN_TAG_NAMES[label.lower()]
    return re.sub(r"(^|[\s\-/])(\w)", lambda m: m.group(1) + m.group(2).upper(), label.replace("_", " ").strip())


# --------------------------------------------------------------------------- reading and writing one field


class GenreField(NamedTuple):
    kind: str  # ID3, VORBIS, MP4_ATOM or ASF_ATTRIBUTE
    key: str  # TCON, GENRE, ©gen or WM/Genre


def open_audio(path: os.PathLike | str) -> tuple[mutagen.FileType, GenreField]:
    """The file opened with mutagen, and its genre field; raises :class:`TrackError` for a file
    whose tags cannot be read or a format without a genre field."""
    try:
        audio = mutagen.File(path)
    except (mutagen.MutagenError, OSError) as exc:
        raise TrackError(f"its tags cannot be read ({exc})") from exc
    if audio is None:
        raise TrackError("a format without tags that mutagen can write")
    for types, kind, key in FIELDS:
        if isinstance(audio, types):
            return audio, GenreField(kind, key)
    raise TrackError(f"{type(audio).__name__}: a format without a genre field genrekit writes")


def read_genres(audio: mutagen.FileType, field: GenreField) -> list[str]:
    """The genre field's values as stored (``[]``: no field); ID3 numeric genres such as ``(17)`` as written."""
    tags = audio.tags
    if tags is None:
        return []
    if field.kind == ID3:
        frame = tags.get(field.key)
        return [str(text) for text in frame.text] if frame is not None else []
    return [str(value) for value in tags.get(field.key, [])]  # Vorbis keys: case-insensitive


def genre_names(values: list[str], field: GenreField) -> list[str]:
    """The genres ``values`` name, blanks left out; ID3's numeric references read (``(17)`` -> ``Rock``)."""
    if field.kind == ID3:
        values = TCON(encoding=3, text=values).genres
    return [value for value in values if value.strip()]


def set_genres(audio: mutagen.FileType, field: GenreField, values: list[str]) -> None:
    """Set the genre field to ``values`` (``[]`` removes it), in memory; :func:`save_tags` writes it."""
    if audio.tags is None:
        if not values:
            return
        audio.add_tags()
    tags = audio.tags
    if field.kind == ID3:
        tags.delall(field.key)
        if values:
            tags.add(TCON(encoding=3, text=list(values)))
    elif field.kind == VORBIS:
        # keep the spelling a file has (GENRE, genre...): Vorbis keys are case-insensitive, an undo exact
        key = next((key for key, _ in tags if key.lower() == field.key.lower()), field.key)
        if key in tags:
            del tags[key]
        if values:
            tags[key] = list(values)
    elif values:
        tags[field.key] = list(values)
    elif field.key in tags:
        del tags[field.key]


def save_tags(audio: mutagen.FileType, field: GenreField) -> None:
    """Write the tags into the file mutagen opened. ID3v2.3 tags stay v2.3 (players that read only
    v2.3 keep reading them); other ID3 tags, and new ones, are v2.4."""
    try:
        if field.kind == ID3:
            audio.save(v2_version=3 if audio.tags.version[:2] == (2, 3) else 4)
        else:
            audio.save()
    except (mutagen.MutagenError, OSError) as exc:
        raise TrackError(f"its tags cannot be written ({exc})") from exc


def temp_path(path: Path) -> Path:
    """The hidden copy beside ``path`` that a rewrite edits (hidden: a folder analysis skips it; its
    suffix kept: mutagen knows a format partly by it)."""
    return path.with_name(f".{path.stem}{TEMP_MARK}{path.suffix}")


def unwritable_reason(path: Path) -> str | None:
    """Why ``path`` cannot be rewritten in place of itself, or None."""
    st = os.stat(path)
    # the mode bits, not only access(): a rename could replace a read-only file, and root passes access()
    if not st.st_mode & 0o222 or not os.access(path, os.W_OK):
        return "read-only"
    if not os.access(path.parent, os.W_OK | os.X_OK):
        return "its folder is read-only (the new file is written beside it, then renamed)"
    if st.st_nlink > 1:
        return f"it has {st.st_nlink} hard links (a rewrite would part them)"
    return None


def rewrite_genres(path: Path, values: list[str], before_rename=None) -> tuple[list[str], FileStat]:
    """Set the genre field of ``path`` (a real path, no symbolic link) to ``values`` atomically.

    The file is copied beside itself (:func:`temp_path`), mutagen edits the copy, the copy gets the
    file's permissions, owner, and access and modification times, is fsynced, and is renamed over
    the file. ``before_rename(written, stat)``, if given, is called just before the rename with the
    values read back from the copy and the copy's :class:`FileStat`. Returns those two.
    """
    st = os.stat(path)
    tmp = temp_path(path)
    try:
        shutil.copy2(path, tmp)  # the bytes, the permission bits, the times, extended attributes
        copied = os.stat(tmp)
        if (copied.st_uid, copied.st_gid) != (st.st_uid, st.st_gid):
            try:
                os.chown(tmp, st.st_uid, st.st_gid)
            except PermissionError as exc:
                raise TrackError(f"owned by another user (uid {st.st_uid}): a rewrite cannot keep its owner") from exc
        audio, field = open_audio(tmp)
        set_genres(audio, field, values)
        save_tags(audio, field)
        written = read_genres(*open_audio(tmp))
        os.utime(tmp, ns=(st.st_atime_ns, st.st_mtime_ns))
        fsync_path(tmp)
        stat = file_stat(tmp)
        if file_stat(path) != (st.st_size, st.st_mtime_ns):  # someone wrote to it meanwhile: theirs stands
            raise TrackError("changed while it was being tagged")
        if before_rename is not None:
            before_rename(written, stat)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_path(path.parent)
    return written, stat


# --------------------------------------------------------------------------- the journal


class TagJournal:
    """The tag journal: a header line, then a line per change, each written and fsynced before it.

    Parameters
    ----------
    path : Path
        The journal; a missing one is started (when ``write``).
    write : bool
        Open it to record changes (False: to read it only, for a dry run or an undo).

    A line cut by a crash is a change that had not happened yet (its line precedes the rename): it
    is dropped. The journal is locked while open, so two runs cannot use it at once.
    """

    def __init__(self, path: os.PathLike | str, *, write: bool = True):
        self.path = Path(path)
        self.entries: list[dict] = []
        self._after: dict[str, FileStat] = {}  # path -> the FileStat genrekit last left it with
        self._handle = None
        self._pause = float(os.environ.get(TAG_PAUSE_ENV, "0"))
        try:
            if write and (not self.path.exists() or not self.path.stat().st_size):
                self.path.parent.mkdir(parents=True, exist_ok=True)
                write_bytes(self.path, (json.dumps({"genrekit_tag_journal": JOURNAL_VERSION}) + "\n").encode())
                fsync_path(self.path.parent)
            if self.path.exists():
                self._handle = open(self.path, "r+b" if write else "rb")  # noqa: SIM115 (closed by close())
        except OSError as exc:
            raise GenrekitError(f"{self.path}: cannot open the tag journal ({exc.strerror or exc})") from exc
        if self._handle is not None:
            try:
                fcntl.flock(self._handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError as exc:
                self.close()
                raise GenrekitError(f"{self.path}: the tag journal is in use by another run") from exc
            self._read(write)

    def _read(self, write: bool) -> None:
        data = self._handle.read()
        complete = data[: data.rfind(b"\n") + 1]
        if write and len(complete) != len(data):
            self._handle.truncate(len(complete))
            self._handle.flush()
            os.fsync(self._handle.fileno())
        self._handle.seek(len(complete))  # the next line goes after the last whole one
        lines = complete.decode("utf-8", errors="replace").splitlines()
        try:
            if not lines or json.loads(lines[0]).get("genrekit_tag_journal") != JOURNAL_VERSION:
                raise ValueError
            for line in lines[1:]:
                self._index(json.loads(line))
        except (ValueError, AttributeError, KeyError, TypeError) as exc:
            self.close()
            raise GenrekitError(f"{self.path}: not a genrekit tag journal (version {JOURNAL_VERSION})") from exc

    def _index(self, entry: dict) -> None:
        self._after[entry["path"]] = FileStat(*entry["stat_after"])
        self.entries.append(entry)

    def after_stat(self, path: Path) -> FileStat | None:
        """The :class:`FileStat` genrekit last left ``path`` (a real path) with, if it changed it."""
        return self._after.get(str(path))

    def add(self, entry: dict) -> None:
        """Append one change's line durably (one write, then fsync)."""
        try:
            self._handle.write((json.dumps(entry, ensure_ascii=False) + "\n").encode("utf-8"))
            self._handle.flush()
            os.fsync(self._handle.fileno())
        except OSError as exc:
            raise GenrekitError(f"{self.path}: cannot write the tag journal ({exc.strerror or exc})") from exc
        self._index(entry)
        if self._pause:
            time.sleep(self._pause)

    def close(self) -> None:
        if self._handle is not None and not self._handle.closed:
            self._handle.close()

    def __enter__(self) -> TagJournal:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()


# --------------------------------------------------------------------------- tagging and undoing files


@dataclass(frozen=True)
class TagOptions:
    """How ``--write-tags`` writes: ``mode`` (fill, replace, add), ``min_share``, ``dry_run``."""

    mode: str = "fill"
    min_share: float = DEFAULT_MIN_SHARE
    dry_run: bool = False

    def __post_init__(self):
        if self.mode not in MODES:
            raise GenrekitError(f"tag mode {self.mode!r}: choose from {', '.join(MODES)}")
        if not 0 <= self.min_share <= 1:
            raise GenrekitError(f"min share {self.min_share:g}: must be between 0 and 1")


@dataclass(frozen=True)
class TagOutcome:
    """What happened to one file. ``status``: for tagging ``written``, ``dry run``, ``below min-share``,
    ``kept`` (fill mode: it has a genre), ``already`` (it has the verdict), ``skipped`` (``reason``
    says why); for an undo ``restored``, ``dry run``, ``nothing to undo``, ``skipped``."""

    path: Path
    status: str
    before: tuple[str, ...] = ()
    after: tuple[str, ...] = ()
    reason: str = ""


def planned_genres(values: list[str], genre: str, mode: str, field: GenreField | None = None) -> list[str] | None:
    """The genre values after writing ``genre`` with ``mode`` over ``values``; None when nothing changes.

    ``fill``: only where there is no genre; ``replace``: ``genre`` alone; ``add``: ``genre`` after
    the others. A genre already there (in any case) is not added twice.
    """
    names = genre_names(values, field) if field is not None else [v for v in values if v.strip()]
    folded = [name.casefold() for name in names]
    if mode == "replace":
        return None if folded == [genre.casefold()] else [genre]
    if genre.casefold() in folded or (mode == "fill" and names):
        return None
    return [*(v for v in values if v.strip()), genre]


def tag_file(
    path: os.PathLike | str,
    label: str,
    share: float,
    analyzed: FileStat | None,
    journal: TagJournal,
    options: TagOptions,
) -> TagOutcome:
    """Write the genre of ``label`` (:func:`tag_name`) into ``path`` if its ``share`` is high enough
    and the file is as ``analyzed`` (its :class:`FileStat` before the analysis) or as genrekit last
    left it (``journal``); the change is journaled before it is made. Never raises for one file."""
    path = Path(path)
    real = Path(os.path.realpath(path))  # a symbolic link's target is rewritten, the link stays
    genre = tag_name(label)
    if share < options.min_share:
        return TagOutcome(path, "below min-share", reason=f"top share {share:.1%} < {options.min_share:.0%}")
    if not options.dry_run:
        temp_path(real).unlink(missing_ok=True)  # the copy a killed run left
    current = stat_or_none(real)
    if current is None:
        return TagOutcome(path, "skipped", reason="no such file")
    if current not in (analyzed, journal.after_stat(real)):
        return TagOutcome(path, "skipped", reason="changed since its analysis (size or modification time)")
    try:
        reason = unwritable_reason(real)
        if reason:
            return TagOutcome(path, "skipped", reason=reason)
        audio, field = open_audio(real)
        before = read_genres(audio, field)
        after = planned_genres(before, genre, options.mode, field)
        if after is None:  # it has the verdict already, or (fill) another genre
            already = genre.casefold() in (name.casefold() for name in genre_names(before, field))
            return TagOutcome(path, "already" if already else "kept", tuple(before), tuple(before))
        if options.dry_run:
            return TagOutcome(path, "dry run", tuple(before), tuple(after))

        def record(written: list[str], stat: FileStat) -> None:
            journal.add(
                {
                    "path": str(real),
                    "field": field.key,
                    "before": before,
                    "after": written,
                    "stat_before": list(current),
                    "stat_after": list(stat),
                    "time": datetime.now(UTC).isoformat(timespec="seconds"),
                }
            )

        written, _ = rewrite_genres(real, after, before_rename=record)
    except TrackError as exc:
        return TagOutcome(path, "skipped", reason=str(exc))
    except OSError as exc:
        return TagOutcome(path, "skipped", reason=f"cannot be rewritten ({exc.strerror or exc})")
    return TagOutcome(path, "written", tuple(before), tuple(written))


def tag_files(
    records: Iterable[dict], root: Path, journal: TagJournal, options: TagOptions
) -> Iterator[tuple[str, TagOutcome | None]]:
    """Tag each file of a library's results (:func:`genrekit.inference.results.record_of`; ``path``
    relative to ``root``) with its top label: ``(path, outcome)`` in order, None for a file that was
    not analyzed."""
    for record in records:
        ranking = record.get("ranking")
        if not ranking:
            yield record["path"], None
            continue
        top = ranking[0]
        outcome = tag_file(root / record["path"], top["label"], top["share"], recorded_stat(record), journal, options)
        yield record["path"], outcome


def undone_genres(current: list[str], entries: list[dict]) -> list[str] | None:
    """The genre values from before ``entries`` (one file's journal entries, oldest first), walking
    back from ``current``; None if ``current`` is none of the values the entries found or left.

    The walk starts at the last entry that left or found ``current``. An entry whose file still holds
    its ``before`` values is a change that never happened (a run killed between its journal line and
    the rename) or one undone already: it is passed over. A walk that meets values no entry left (the
    genre edited by hand between two taggings) stops there: that edit is kept.
    """
    last = next(
        (i for i in range(len(entries) - 1, -1, -1) if current in (entries[i]["after"], entries[i]["before"])), None
    )
    if last is None:
        return None
    values = current
    for entry in reversed(entries[: last + 1]):
        if values == entry["after"]:
            values = entry["before"]
        elif values != entry["before"]:
            break
    return values


def undo_file(path: Path, entries: list[dict], dry_run: bool = False) -> TagOutcome:
    """Restore the genre values ``path`` had before genrekit tagged it (``entries``: its journal
    entries, oldest first), atomically; resumable: a file restored already has nothing to undo."""
    if not dry_run:
        temp_path(path).unlink(missing_ok=True)
    if not path.exists():
        return TagOutcome(path, "skipped", reason="no such file")
    try:
        audio, field = open_audio(path)
        current = read_genres(audio, field)
        if field.key != entries[-1]["field"]:
            return TagOutcome(
                path, "skipped", reason=f"its genre field is {field.key}, the journal's {entries[-1]['field']}"
            )
        target = undone_genres(current, entries)
        if target is None:
            return TagOutcome(path, "skipped", tuple(current), reason="its genre was changed since genrekit wrote it")
        if target == current:
            return TagOutcome(path, "nothing to undo", tuple(current), tuple(current))
        if dry_run:
            return TagOutcome(path, "dry run", tuple(current), tuple(target))
        reason = unwritable_reason(path)
        if reason:
            return TagOutcome(path, "skipped", tuple(current), reason=reason)
        written, _ = rewrite_genres(path, target)
    except TrackError as exc:
        return TagOutcome(path, "skipped", reason=str(exc))
    except OSError as exc:
        return TagOutcome(path, "skipped", reason=f"cannot be rewritten ({exc.strerror or exc})")
    return TagOutcome(path, "restored", tuple(current), tuple(written))


def undo_journal(journal: TagJournal, dry_run: bool = False) -> Iterator[TagOutcome]:
    """Undo every change a tag journal records, file by file in path order (:func:`undo_file`)."""
    by_path: dict[str, list[dict]] = {}
    for entry in journal.entries:
        by_path.setdefault(entry["path"], []).append(entry)
    for name in sorted(by_path):
        yield undo_file(Path(name), by_path[name], dry_run)
