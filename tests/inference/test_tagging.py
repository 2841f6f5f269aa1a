"""Genre tags written into the files (issue 35): each format's genre field, the audio and the other
tags untouched, the modes, a dry run, the journal and an exact, resumable undo, files skipped with
their reasons, and kill -9 in the middle of a folder's tagging."""

from __future__ import annotations

import csv
import os
import shutil
import subprocess
from pathlib import Path

import mutagen
import pytest
from mutagen.id3 import TCON, TIT2

from genrekit.audio.decode import ffmpeg_executable
from genrekit.inference.results import file_stat
from genrekit.inference.tagging import (
    TAG_PAUSE_ENV,
    TEMP_MARK,
    GenreField,
    TagJournal,
    TagOptions,
    open_audio,
    planned_genres,
    read_genres,
    tag_file,
    tag_name,
    undo_file,
    undo_journal,
    undone_genres,
)
from tests.helpers import kill_group_when, label_signal, run_script, start_script, write_audio

FORMATS = ("mp3", "wav", "aiff", "flac", "ogg", "opus", "m4a", "wma")
# The field each format's genre must land in, as mutagen names it (Vorbis keys are case-insensitive).
GENRE_KEY = {"mp3": "TCON", "wav": "TCON", "aiff": "TCON", "flac": "genre", "ogg": "genre", "opus": "genre"}
GENRE_KEY.update({"m4a": "©gen", "wma": "WM/Genre"})
GENRE_LINE = ("tcon=", "genre=", "©gen=", "wm/genre=")  # the genre field's lines in mutagen's pprint()


def make_song(path: Path, seed: int, genre: str | None = None) -> Path:
    """A 2 s file with a title (and ``genre``) in its tags; wav and aiff get them in an ID3 chunk."""
    tags = {"title": f"song {seed}", **({"genre": genre} if genre else {})}
    write_audio(path, label_signal(seed % 4, 2.0, seed=seed), tags=tags)
    if path.suffix in (".wav", ".aiff"):  # ffmpeg writes their own text chunks, which mutagen does not read
        audio = mutagen.File(path)
        audio.add_tags()
        audio.tags.add(TIT2(encoding=3, text=[tags["title"]]))
        if genre:
            audio.tags.add(TCON(encoding=3, text=[genre]))
        audio.save()
    return path


def pcm(path: Path) -> bytes:
    """Every audio sample of the file, decoded by ffmpeg (all channels, the file's own rate)."""
    cmd = [ffmpeg_executable(), "-nostdin", "-loglevel", "error", "-i", str(path), "-map", "0:a", "-f", "f32le", "-"]
    return subprocess.run(cmd, capture_output=True, check=True).stdout


def tag_lines(path: Path) -> list[str]:
    """All the file's tags as mutagen prints them, sorted: what a comparison of tags compares."""
    audio = mutagen.File(path)
    return sorted(audio.tags.pprint().splitlines()) if audio is not None and audio.tags else []


def other_tags(path: Path) -> list[str]:
    return [line for line in tag_lines(path) if not line.lower().startswith(GENRE_LINE)]


def genres(path: Path) -> list[str]:
    return read_genres(*open_audio(path))


def raw_genre(path: Path) -> list[str]:
    """The genre field read with mutagen alone, under the key the format's standard names."""
    tags = mutagen.File(path).tags
    value = tags[GENRE_KEY[path.suffix[1:]]]
    return list(value.text) if isinstance(value, TCON) else [str(v) for v in value]


def temp_files(folder: Path) -> list[Path]:
    return sorted(folder.rglob(f".*{TEMP_MARK}.*"))


@pytest.fixture(scope="module")
def originals(tmp_path_factory) -> Path:
    """``plain/song.<fmt>`` (no genre) and ``jazz/song.<fmt>`` (genre Jazz) for every format."""
    root = tmp_path_factory.mktemp("originals")
    for k, fmt in enumerate(FORMATS):
        make_song(root / "plain" / f"song.{fmt}", seed=k)
        make_song(root / "jazz" / f"song.{fmt}", seed=k, genre="Jazz")
    return root


def copy_of(originals: Path, target: Path) -> Path:
    shutil.copytree(originals, target)  # copy2: the modification times too
    return target


@pytest.mark.parametrize("fmt", FORMATS)
def test_every_format_gets_the_verdict_in_its_genre_field_and_nothing_else_changes(originals, tmp_path, fmt):
    library = copy_of(originals, tmp_path / "music")
    plain, jazz = library / "plain" / f"song.{fmt}", library / "jazz" / f"song.{fmt}"
    os.chmod(plain, 0o640)
    before = {path: (tag_lines(path), pcm(path), os.stat(path)) for path in (plain, jazz)}
    journal_path = tmp_path / "tags.jsonl"
    with TagJournal(journal_path) as journal:
        fill = [tag_file(path, "hiphop", 0.9, file_stat(path), journal, TagOptions("fill")) for path in (plain, jazz)]
        assert [(o.status, o.before, o.after) for o in fill] == [
            ("written", (), ("Hip-Hop",)),
            ("kept", ("Jazz",), ("Jazz",)),  # fill: a file with a genre keeps it
        ]
        replace = tag_file(jazz, "hiphop", 0.9, file_stat(jazz), journal, TagOptions("replace"))
        assert (replace.status, replace.before, replace.after) == ("written", ("Jazz",), ("Hip-Hop",))
    for path in (plain, jazz):
        assert raw_genre(path) == ["Hip-Hop"]
        assert other_tags(path) == [line for line in before[path][0] if not line.lower().startswith(GENRE_LINE)]
        assert pcm(path) == before[path][1]  # the decoded audio, bit for bit
        st, old = os.stat(path), before[path][2]
        assert (st.st_mode, st.st_mtime_ns) == (old.st_mode, old.st_mtime_ns)
        assert temp_files(library) == []
    with TagJournal(journal_path, write=False) as journal:
        assert [(entry["field"], entry["before"]) for entry in journal.entries] == [
            (GENRE_KEY[fmt].upper() if fmt in ("flac", "ogg", "opus") else GENRE_KEY[fmt], before)
            for before in ([], ["Jazz"])
        ]
        undone = list(undo_journal(journal))
    assert sorted((o.path, o.status) for o in undone) == [(jazz, "restored"), (plain, "restored")]
    for path in (plain, jazz):
        assert tag_lines(path) == before[path][0]  # every tag as it was
        assert pcm(path) == before[path][1]
        assert os.stat(path).st_mtime_ns == before[path][2].st_mtime_ns


def test_tag_names_and_planned_values():
    assert [tag_name(label) for label in ("hiphop", "rock", "Classical")] == ["Hip-Hop", "Rock", "Classical"]
    assert [tag_name(label) for label in ("drum_and_bass", "IDM", "hip-hop", "rock'n'roll")] == [
        "Drum And Bass",
        "IDM",
        "Hip-Hop",
        "Rock'n'roll",
    ]
    assert planned_genres([], "Rock", "fill") == ["Rock"]
    assert planned_genres([" "], "Rock", "fill") == ["Rock"]  # a blank genre is no genre
    assert planned_genres(["Jazz"], "Rock", "fill") is None
    assert planned_genres(["Jazz"], "Rock", "add") == ["Jazz", "Rock"]
    assert planned_genres(["rock"], "Rock", "add") is None  # not twice, whatever the case
    assert planned_genres(["Jazz", "Rock"], "Rock", "replace") == ["Rock"]
    assert planned_genres(["Rock"], "Rock", "replace") is None
    id3 = GenreField("id3", "TCON")
    assert planned_genres(["(17)"], "Rock", "add", id3) is None  # ID3v1 genre 17 is Rock


def test_modes_dry_run_min_share_and_id3v23(tmp_path):
    song = make_song(tmp_path / "jazz.mp3", seed=1, genre="Jazz")
    journal_path = tmp_path / "tags.jsonl"
    original = song.read_bytes()
    with TagJournal(journal_path, write=False) as journal:  # a dry run reads a journal, never starts one
        dry = tag_file(song, "rock", 0.9, file_stat(song), journal, TagOptions("replace", dry_run=True))
    assert (dry.status, dry.before, dry.after) == ("dry run", ("Jazz",), ("Rock",))
    assert song.read_bytes() == original and not journal_path.exists()

    with TagJournal(journal_path) as journal:
        low = tag_file(song, "rock", 0.49, file_stat(song), journal, TagOptions("add", 0.5))
        assert low.status == "below min-share" and "49.0%" in low.reason and song.read_bytes() == original
        steps = []
        for mode in ("add", "add", "replace", "replace", "fill"):
            outcome = tag_file(song, "rock", 0.5, file_stat(song), journal, TagOptions(mode, 0.5))
            steps.append((mode, outcome.status, genres(song)))
        assert steps == [
            ("add", "written", ["Jazz", "Rock"]),
            ("add", "already", ["Jazz", "Rock"]),
            ("replace", "written", ["Rock"]),
            ("replace", "already", ["Rock"]),
            ("fill", "already", ["Rock"]),
        ]
    assert len(TagJournal(journal_path, write=False).entries) == 2

    bare = make_song(tmp_path / "bare.mp3", seed=3)
    mutagen.File(bare).delete()  # an mp3 without any ID3 tag: frames from its first byte
    with TagJournal(journal_path) as journal:
        assert tag_file(bare, "rock", 0.9, file_stat(bare), journal, TagOptions()).status == "written"
    assert genres(bare) == ["Rock"]

    old = make_song(tmp_path / "v23.mp3", seed=2, genre="Jazz")
    audio = mutagen.File(old)
    audio.save(v2_version=3)
    with TagJournal(journal_path) as journal:
        assert tag_file(old, "metal", 0.9, file_stat(old), journal, TagOptions("add")).status == "written"
    tags = mutagen.File(old).tags
    assert tags.version[:2] == (2, 3)  # players that read only ID3v2.3 keep reading it
    assert genres(old) == ["Jazz/Metal"]  # ID3v2.3 joins several values with '/'
    with TagJournal(journal_path, write=False) as journal:
        entries = [entry for entry in journal.entries if entry["path"] == str(old.resolve())]
        assert entries[0]["after"] == ["Jazz/Metal"]  # the journal holds what reads back
        assert undo_file(old.resolve(), entries).status == "restored"
    assert genres(old) == ["Jazz"] and mutagen.File(old).tags.version[:2] == (2, 3)


def test_undo_walks_back_every_change_and_can_be_run_again(originals, tmp_path):
    library = copy_of(originals, tmp_path / "music")
    songs = [library / "jazz" / "song.flac", library / "plain" / "song.mp3", library / "jazz" / "song.wma"]
    hand_edited = library / "plain" / "song.ogg"
    before = {path: tag_lines(path) for path in [*songs, hand_edited]}
    journal_path = tmp_path / "tags.jsonl"
    with TagJournal(journal_path) as journal:
        for path in [*songs, hand_edited]:
            assert tag_file(path, "rock", 0.9, file_stat(path), journal, TagOptions("add")).status == "written"
        for path in songs:  # a second run with another model: its own journal lines
            assert tag_file(path, "metal", 0.9, None, journal, TagOptions("replace")).status == "written"
    audio = mutagen.File(hand_edited)
    audio["genre"] = ["Polka"]  # the user's own edit after the tagging
    audio.save()
    with TagJournal(journal_path, write=False) as journal:
        assert len(journal.entries) == 7
        by_path = {}
        for entry in journal.entries:
            by_path.setdefault(entry["path"], []).append(entry)
        # an interrupted undo: the first file restored only
        first = songs[0].resolve()
        assert undo_file(first, by_path[str(first)]).status == "restored"
        outcomes = {o.path: o for o in undo_journal(journal)}
        again = {o.path: o.status for o in undo_journal(journal)}
    assert outcomes[first].status == "nothing to undo"
    assert [outcomes[path.resolve()].status for path in songs[1:]] == ["restored", "restored"]
    assert outcomes[hand_edited.resolve()].status == "skipped"
    assert "changed since genrekit wrote it" in outcomes[hand_edited.resolve()].reason
    assert genres(hand_edited) == ["Polka"]  # the user's edit stands
    for path in songs:
        assert tag_lines(path) == before[path]
        assert again[path.resolve()] == "nothing to undo"


def test_undone_genres_walks_back_through_the_journal():
    def entry(before, after):
        return {"before": before, "after": after}

    chain = [entry([], ["Rock"]), entry(["Rock"], ["Metal"])]
    assert undone_genres(["Metal"], chain) == []
    assert undone_genres(["Rock"], chain) == []  # half undone (or the last change never made): on from there
    assert undone_genres([], chain) == []
    assert undone_genres(["Polka"], chain) is None  # neither what genrekit left nor what it found
    never_renamed = [entry(["Jazz"], ["Rock"]), entry(["Jazz"], ["Rock"])]  # a kill between line and rename
    assert undone_genres(["Rock"], never_renamed) == ["Jazz"]
    edited_between = [entry([], ["Rock"]), entry(["Polka"], ["Metal"])]  # the user's Polka is kept
    assert undone_genres(["Metal"], edited_between) == ["Polka"]


def test_files_that_cannot_be_tagged_are_skipped_with_their_reason(originals, tmp_path):
    library = copy_of(originals, tmp_path / "music")
    read_only = library / "plain" / "song.flac"
    changed = library / "plain" / "song.mp3"
    linked = library / "plain" / "song.m4a"
    au = write_audio(library / "plain" / "song.au", label_signal(0, 1.0, seed=5))
    aac = write_audio(library / "plain" / "song.aac", label_signal(0, 1.0, seed=6))
    analyzed = {path: file_stat(path) for path in (read_only, changed, linked, au, aac)}
    os.chmod(read_only, 0o444)
    st = os.stat(changed)
    os.utime(changed, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))  # edited since its analysis
    os.link(linked, tmp_path / "elsewhere.m4a")
    symlink = library / "link.opus"
    symlink.symlink_to(library / "plain" / "song.opus")
    contents = {path: path.read_bytes() for path in analyzed}
    with TagJournal(tmp_path / "tags.jsonl") as journal:
        reasons = {
            path.name: tag_file(path, "rock", 0.9, stat, journal, TagOptions()).reason
            for path, stat in analyzed.items()
        }
        missing = tag_file(library / "gone.mp3", "rock", 0.9, analyzed[changed], journal, TagOptions())
        via_link = tag_file(symlink, "rock", 0.9, file_stat(symlink), journal, TagOptions())
    assert reasons == {
        "song.flac": "read-only",
        "song.mp3": "changed since its analysis (size or modification time)",
        "song.m4a": "it has 2 hard links (a rewrite would part them)",
        "song.au": "a format without tags that mutagen can write",
        "song.aac": "AAC: a format without a genre field genrekit writes",
    }
    assert (missing.status, missing.reason) == ("skipped", "no such file")
    assert all(path.read_bytes() == contents[path] for path in analyzed)  # none of them touched
    assert via_link.status == "written" and symlink.is_symlink()  # the link's target is tagged, the link stays
    assert genres(library / "plain" / "song.opus") == ["Rock"]


# --------------------------------------------------------------------------- the command line


def analyze_and_tag(library: Path, out: Path, *extra: str, env: dict | None = None, start: bool = False):
    args = [str(library), "--csv", str(out / "results.csv"), "--write-tags", "--min-share", "0", *extra]
    if start:
        return start_script("-m track_analyzer", *args, env=env)
    return run_script("-m track_analyzer", *args)


def verdicts(out: Path) -> dict[str, str]:
    """``{relative path: genre name}`` from the results' top labels."""
    with open(out / "results.csv", newline="") as handle:
        return {row["path"]: tag_name(row["top_label"]) for row in csv.DictReader(handle) if row["top_label"]}


def test_cli_tags_a_folder_says_why_it_skips_and_undoes_it(originals, tmp_path):
    library = copy_of(originals, tmp_path / "music")
    write_audio(library / "plain" / "song.au", label_signal(0, 1.0, seed=5))
    first = run_script("-m track_analyzer", str(library), "--csv", str(tmp_path / "results.csv"))
    assert first.returncode == 0, first.stderr
    os.chmod(library / "plain" / "song.flac", 0o444)
    st = os.stat(library / "plain" / "song.mp3")
    os.utime(library / "plain" / "song.mp3", ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    before = {path: (path.read_bytes(), tag_lines(path)) for path in library.rglob("song.*")}

    dry = analyze_and_tag(library, tmp_path, "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert all(path.read_bytes() == content for path, (content, _) in before.items())
    assert not (tmp_path / "results.tag-journal.jsonl").exists()

    proc = analyze_and_tag(library, tmp_path)
    assert proc.returncode == 0, proc.stderr
    expected = verdicts(tmp_path)
    written = {line.split("\t")[0]: line.split("\t")[1] for line in proc.stdout.splitlines() if "genre:" in line}
    assert set(written) == {f"plain/song.{fmt}" for fmt in FORMATS if fmt not in ("flac", "mp3")}
    assert {line.split("\t")[0] for line in dry.stdout.splitlines() if line.endswith("(dry run)")} == set(written)
    for name, change in written.items():
        assert change == f"genre: (none) -> {expected[name]}"
        assert genres(library / name) == [expected[name]]
    assert "plain/song.flac: genre not written: read-only" in proc.stderr
    assert "plain/song.mp3: genre not written: changed since its analysis" in proc.stderr
    assert "plain/song.au: genre not written: a format without tags that mutagen can write" in proc.stderr
    summary = proc.stderr.strip().splitlines()[-1]
    jazz = sum(expected[f"jazz/song.{fmt}"] == "Jazz" for fmt in FORMATS)  # fill: those have the verdict already
    counts = ["6 written", *([f"{jazz} already tagged"] if jazz else []), *([f"{8 - jazz} kept"] if jazz < 8 else [])]
    assert summary.startswith("genre tags: " + ", ".join(counts))
    assert "3 skipped" in summary
    assert summary.endswith(f"journal: {tmp_path / 'results.tag-journal.jsonl'}")

    undo = run_script("-m track_analyzer", "--undo-tags", str(tmp_path / "results.tag-journal.jsonl"))
    assert undo.returncode == 0, undo.stderr
    assert len(undo.stdout.splitlines()) == 6
    assert all(tag_lines(path) == lines for path, (_, lines) in before.items())
    again = run_script("-m track_analyzer", "--undo-tags", str(tmp_path / "results.tag-journal.jsonl"))
    assert again.returncode == 0 and again.stdout == "" and "6 with nothing to undo" in again.stderr


def test_kill_9_during_a_folders_tagging_leaves_every_file_whole_and_the_rerun_completes(tmp_path):
    library = tmp_path / "music"
    songs = [make_song(library / f"{k:02d}.{FORMATS[k % len(FORMATS)]}", seed=k) for k in range(12)]
    original = {path: (path.read_bytes(), pcm(path), tag_lines(path)) for path in songs}
    journal = tmp_path / "results.tag-journal.jsonl"

    def changes() -> int:
        return max(0, journal.read_bytes().count(b"\n") - 1) if journal.exists() else 0

    def assert_whole(expected: dict[str, str]) -> int:
        """Every file as it was, or tagged with its verdict and the same audio; the number tagged."""
        tagged = 0
        for path in songs:
            if path.read_bytes() != original[path][0]:
                assert genres(path) == [expected[path.name]] and pcm(path) == original[path][1], path
                tagged += 1
        return tagged

    # 1. the run sleeps 3 s after each journal line, before the rename: killed there, at the third file
    proc = analyze_and_tag(library, tmp_path, "--tag-mode", "replace", env={TAG_PAUSE_ENV: "3"}, start=True)
    assert kill_group_when(proc, lambda: changes() >= 3, timeout=300), "finished before the kill"
    expected = verdicts(tmp_path)
    assert assert_whole(expected) == 2
    assert temp_files(library) == [
        library / f".{songs[2].stem}{TEMP_MARK}{songs[2].suffix}"
    ]  # the third's copy, not renamed
    # 2. killed again, without the pause, at whatever moment it has reached after two more journal lines
    proc = analyze_and_tag(library, tmp_path, "--tag-mode", "replace", start=True)
    kill_group_when(proc, lambda: changes() >= 5, timeout=300)
    assert assert_whole(expected) >= 3
    # 3. the rerun completes: every file tagged, no copy left
    rerun = analyze_and_tag(library, tmp_path, "--tag-mode", "replace")
    assert rerun.returncode == 0, rerun.stderr
    assert "12 of 12 files are in the results already" in rerun.stderr
    assert assert_whole(expected) == 12 and temp_files(library) == []
    # 4. the undo passes over the change that the first kill cut before its rename
    undo = run_script("-m track_analyzer", "--undo-tags", str(journal))
    assert undo.returncode == 0, undo.stderr
    assert all(tag_lines(path) == original[path][2] and pcm(path) == original[path][1] for path in songs)


def test_results_without_file_stats_are_refused_for_tagging_and_still_resume(tmp_path):
    library = tmp_path / "music"
    for k in range(3):
        make_song(library / f"{k}.flac", seed=k)
    results = tmp_path / "results.csv"
    assert run_script("-m track_analyzer", str(library), "--csv", str(results)).returncode == 0
    with open(results, newline="") as handle:
        rows = list(csv.DictReader(handle))
    legacy = [name for name in rows[0] if name not in ("size", "mtime_ns")]  # as genrekit wrote it before
    with open(results, "w", newline="") as handle:
        writer = csv.DictWriter(handle, legacy, extrasaction="ignore", lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows[:2])  # one file left to analyze
    refused = analyze_and_tag(library, tmp_path)
    assert refused.returncode == 1 and refused.stderr.count("\n") == 1
    assert "results.csv: made by an older genrekit" in refused.stderr and "--restart" in refused.stderr
    resumed = run_script("-m track_analyzer", str(library), "--csv", str(results))
    assert resumed.returncode == 0, resumed.stderr
    assert results.read_text().splitlines()[0] == ",".join(legacy) and len(results.read_text().splitlines()) == 4
    tagged = analyze_and_tag(library, tmp_path, "--restart")
    assert tagged.returncode == 0, tagged.stderr
    assert "genre tags: 3 written" in tagged.stderr
