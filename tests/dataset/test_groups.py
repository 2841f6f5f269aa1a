"""genrekit.dataset.groups and split.group_by: groups from tags and folders keep artists out of two splits."""

from __future__ import annotations

import json

import h5py
import pytest

from genrekit.core.h5layout import read_tracks
from genrekit.dataset.groups import folder_group, read_tags, tag_group
from tests.helpers import label_signal, run_script, write_audio, write_config


def test_tags_are_read_from_mp3_and_flac(tmp_path):
    for suffix in (".mp3", ".flac"):
        path = write_audio(
            tmp_path / f"x{suffix}",
            label_signal(0, 0.5, 0),
            tags={"artist": "Robert Johnson", "album": "King of the Delta Blues"},
        )
        tags = read_tags(path)
        assert tags["artist"] == "Robert Johnson" and tags["album"] == "King of the Delta Blues"
    assert read_tags(tmp_path / "missing.mp3") == {}


def test_group_of_tags_and_folders():
    tags = {"artist": "A", "album": "Greatest Hits"}
    assert tag_group(tags, "artist_tag") == "A"
    assert tag_group(tags, "album_tag") == "A / Greatest Hits"  # apart from B's "Greatest Hits"
    assert tag_group({"album_artist": "Various", "artist": "A"}, "artist_tag") == "Various"
    assert tag_group({"title": "x"}, "artist_tag") is None and tag_group({"artist": "A"}, "album_tag") is None
    assert folder_group("blues/John Lee Hooker/x.mp3") == "blues/John Lee Hooker"
    assert folder_group("blues/x.mp3") is None


def split_of(output):
    with h5py.File(output / "dataset.h5", "r") as h5:
        return {t["path"]: t["split"] for t in read_tracks(h5)}


@pytest.mark.parametrize("group_by", ["artist_tag", "parent_folder"])
def test_build_keeps_each_artist_in_one_split(tmp_path, group_by):
    """Two labels, three artists each (two 1 s tracks per artist), one untagged track per label."""
    audio = tmp_path / "audio"
    artist_of = {}
    for index, label in enumerate(("blues", "jazz")):
        for artist in range(3):
            for k in range(2):
                name = f"{label} artist {artist}"
                relative = f"{label}/{name}/t{k}.mp3" if group_by == "parent_folder" else f"{label}/{artist}_{k}.mp3"
                write_audio(audio / relative, label_signal(index, 1.0, 10 * artist + k), tags={"artist": name})
                artist_of[relative] = name
        write_audio(audio / label / "loose.mp3", label_signal(index, 1.0, 99))
    config = write_config(
        tmp_path / "params.json",
        paths={"audio_folder": "audio", "output_folder": "out"},
        split={"validation_share": 0.3, "test_share": 0.3, "seed": 1, "group_by": group_by},
    )
    result = run_script("build_dataset.py", "--config", str(config), "--quiet")
    assert result.returncode == 0, result.stderr
    split = split_of(tmp_path / "out")
    by_artist = {}
    for path, artist in artist_of.items():
        by_artist.setdefault(artist, set()).add(split[path])
    assert all(len(splits) == 1 for splits in by_artist.values())
    assert {s for splits in by_artist.values() for s in splits} == {"train", "val", "test"}
    report = json.loads((tmp_path / "out" / "build_report.json").read_text())
    assert report["groups"] == 6 and report["tracks_without_group"] == ["blues/loose.mp3", "jazz/loose.mp3"]
    assert "no group for 2 track(s)" in result.stderr


def test_group_by_and_group_file_together_are_refused(tmp_path):
    (tmp_path / "audio" / "a").mkdir(parents=True)
    (tmp_path / "groups.csv").write_text("path,group\n")
    config = write_config(
        tmp_path / "params.json",
        paths={"audio_folder": "audio", "output_folder": "out"},
        split={"group_file": "groups.csv", "group_by": "artist_tag"},
    )
    result = run_script("build_dataset.py", "--config", str(config), "--quiet")
    assert result.returncode == 2 and "split.group_by" in result.stderr
