"""genrekit.dataset.splits: stratified, seeded, grouped, order-independent."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from genrekit.core.errors import ConfigError
from genrekit.dataset.splits import assign_splits, read_custom_splits, read_mapping, split_targets


def corpus(counts: dict[str, int]) -> list[tuple[str, str]]:
    return [(f"{label}/t{i:03d}.mp3", label) for label, n in counts.items() for i in range(n)]


def test_targets_round_half_up_and_keep_val_test_non_empty():
    assert split_targets(10, 0.1, 0.1) == {"train": 8, "val": 1, "test": 1}
    assert split_targets(100, 0.15, 0.15) == {"train": 70, "val": 15, "test": 15}
    assert split_targets(5, 0.1, 0.1) == {"train": 3, "val": 1, "test": 1}
    assert split_targets(2, 0.1, 0.1) == {"train": 2, "val": 0, "test": 0}
    assert split_targets(4, 0.0, 0.0) == {"train": 4, "val": 0, "test": 0}


def test_stratified_per_label_and_every_track_once():
    tracks = corpus({"rock": 50, "jazz": 20, "folk": 7})
    split = assign_splits(tracks, 0.1, 0.2, seed=1)
    assert set(split) == {p for p, _ in tracks}
    for label, n in (("rock", 50), ("jazz", 20), ("folk", 7)):
        got = Counter(split[p] for p, lb in tracks if lb == label)
        assert dict(got) == {k: v for k, v in split_targets(n, 0.1, 0.2).items() if v}


def test_deterministic_and_independent_of_listing_order():
    tracks = corpus({"a": 30, "b": 30})
    shuffled = tracks[:]
    random.Random(5).shuffle(shuffled)
    assert assign_splits(tracks, 0.2, 0.2, seed=3) == assign_splits(shuffled, 0.2, 0.2, seed=3)
    assert assign_splits(tracks, 0.2, 0.2, seed=3) != assign_splits(tracks, 0.2, 0.2, seed=4)


def test_groups_never_straddle_splits_even_across_labels():
    tracks = corpus({"a": 40, "b": 40})
    groups = {p: f"artist{i % 13}" for i, (p, _) in enumerate(tracks)}
    split = assign_splits(tracks, 0.15, 0.15, seed=0, groups=groups)
    for artist in set(groups.values()):
        assert len({split[p] for p, g in groups.items() if g == artist}) == 1
    counts = Counter(split.values())
    assert counts["val"] > 0 and counts["test"] > 0 and counts["train"] > counts["test"]


def test_custom_splits_are_kept_and_pull_their_group():
    tracks = corpus({"a": 10, "b": 10})
    custom = {"a/t000.mp3": "test", "b/t009.mp3": "val"}
    groups = {"a/t000.mp3": "g", "a/t001.mp3": "g", "b/t005.mp3": "g"}
    split = assign_splits(tracks, 0.1, 0.1, seed=0, custom=custom, groups=groups)
    assert split["a/t000.mp3"] == split["a/t001.mp3"] == split["b/t005.mp3"] == "test"
    assert split["b/t009.mp3"] == "val"


def test_reading_split_and_group_files(tmp_path):
    csv_file = tmp_path / "s.csv"
    csv_file.write_text("path,split\nrock\\a.mp3,train\n\nrock/b b.mp3, test\n")
    assert read_custom_splits(csv_file) == {"rock/a.mp3": "train", "rock/b b.mp3": "test"}
    json_file = tmp_path / "g.json"
    json_file.write_text('{"rock/a.mp3": "x"}')
    assert read_mapping(json_file, "group", "split.group_file") == {"rock/a.mp3": "x"}
    for text, needle in (
        ("file,split\na,train\n", "header"),
        ("path,split\na,valid\n", "valid"),
        ("path,split\na\n", "line 2"),
    ):
        csv_file.write_text(text)
        with pytest.raises(ConfigError, match=needle) as err:
            read_custom_splits(csv_file)
        assert "split.custom_split_file" in str(err.value)
