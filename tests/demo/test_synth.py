"""The demo corpus synthesizer: genres that really differ, seeded determinism, real mp3 files."""

from __future__ import annotations

import json

import librosa
import numpy as np
import pytest

from demo import synth
from genrekit.audio.decode import decode
from tests.helpers import run_script

SR = synth.SAMPLE_RATE


def onset_rate(y: np.ndarray) -> float:
    """Detected note/drum onsets per second."""
    return len(librosa.onset.onset_detect(y=y, sr=SR)) / (len(y) / SR)


def centroid(y: np.ndarray) -> float:
    """Mean spectral centroid in Hz (brightness)."""
    return float(librosa.feature.spectral_centroid(y=y, sr=SR).mean())


def test_render_track_shape_and_level():
    for name in synth.GENRE_NAMES:
        y = synth.render_track(name, 4.0, seed=1)
        assert y.dtype == np.float32 and y.shape == (4 * SR,)
        assert np.all(np.isfinite(y))
        assert 0.3 < np.max(np.abs(y)) < 1.0, name  # audible, never clipping


def test_at_least_five_genres_with_distinct_scores():
    assert len(synth.GENRES) >= 5
    assert len(set(synth.GENRE_NAMES)) == len(synth.GENRES)
    fingerprints = {
        (g.tempo, g.kick, g.snare, g.hat, g.bass, g.bass_wave, g.chord_wave, g.progressions) for g in synth.GENRES
    }
    assert len(fingerprints) == len(synth.GENRES)
    with pytest.raises(KeyError, match="unknown genre 'polka'"):
        synth.genre_by_name("polka")


def test_slow_drumless_genre_and_fast_distorted_genre_differ_measurably():
    calm = [synth.render_track("glasswing", 8.0, seed=s) for s in range(3)]
    loud = [synth.render_track("ironclad", 8.0, seed=s) for s in range(3)]
    # many more onsets per second (tempo and drum density) ...
    assert min(onset_rate(y) for y in loud) > 3 * max(onset_rate(y) for y in calm)
    # ... and a much brighter timbre (distorted saws and hi-hats against low-passed sine pads)
    assert min(centroid(y) for y in loud) > 2 * max(centroid(y) for y in calm)


def test_every_genre_is_told_apart_by_a_nearest_centroid_classifier():
    """Crude features (mean and spread of each mel band) already separate the genres:
    tracks vary inside a genre less than genres differ from one another."""

    def features(y: np.ndarray) -> np.ndarray:
        mel = librosa.power_to_db(librosa.feature.melspectrogram(y=y, sr=SR, n_mels=40))
        return np.concatenate([mel.mean(axis=1), mel.std(axis=1)])

    names = synth.GENRE_NAMES
    train = {g: np.mean([features(synth.render_track(g, 6.0, seed=s)) for s in range(3)], axis=0) for g in names}
    correct = 0
    for g in names:
        for s in (10, 11):  # unseen seeds
            f = features(synth.render_track(g, 6.0, seed=s))
            guess = min(names, key=lambda other: np.linalg.norm(f - train[other]))
            correct += guess == g
    assert correct >= 0.9 * 2 * len(names)


def test_same_seed_same_track_other_seed_other_track():
    a = synth.render_track("neonfloor", 3.0, seed=5)
    b = synth.render_track("neonfloor", 3.0, seed=5)
    c = synth.render_track("neonfloor", 3.0, seed=6)
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)


def test_tracks_of_one_genre_vary_in_tempo():
    rates = [onset_rate(synth.render_track("dustwaltz", 8.0, seed=s)) for s in range(4)]
    assert max(rates) - min(rates) > 0.05 * np.mean(rates)


def test_medley_changes_genre_at_the_section_boundary():
    y, sections = synth.render_medley(["glasswing", "ironclad"], section_seconds=6.0, seed=2, crossfade=1.0)
    assert len(y) == 11 * SR  # two sections minus the crossfade
    assert [s["genre"] for s in sections] == ["glasswing", "ironclad"]
    assert sections[0]["start"] == 0 and sections[-1]["end"] == pytest.approx(11.0)
    assert sections[0]["end"] == sections[1]["start"] == pytest.approx(5.5)
    first, second = y[: 5 * SR], y[6 * SR :]
    assert centroid(second) > 2 * centroid(first)


def test_write_corpus_writes_decodable_mp3s_in_folder_per_label_layout(tmp_path):
    paths = synth.write_corpus(tmp_path, tracks_per_genre=2, seconds=2.0, seed=1, genres=["shardstep", "dustwaltz"])
    assert sorted(p.relative_to(tmp_path).as_posix() for p in paths) == [
        "dustwaltz/dustwaltz_000.mp3",
        "dustwaltz/dustwaltz_001.mp3",
        "shardstep/shardstep_000.mp3",
        "shardstep/shardstep_001.mp3",
    ]
    for path in paths:
        assert path.read_bytes()[:3] in (b"ID3", b"\xff\xfb", b"\xff\xf3", b"\xff\xf2")
        y = decode(path, SR)
        assert abs(len(y) / SR - 2.0) < 0.1  # the encoder adds a few ms of padding at most
        assert np.max(np.abs(y)) > 0.1


def test_mp3_bytes_are_the_same_for_the_same_seed(tmp_path):
    first = synth.write_corpus(tmp_path / "a", tracks_per_genre=1, seconds=1.0, seed=3, genres=["velvetswing"])
    second = synth.write_corpus(tmp_path / "b", tracks_per_genre=1, seconds=1.0, seed=3, genres=["velvetswing"])
    assert first[0].read_bytes() == second[0].read_bytes()


def test_make_corpus_script_writes_skips_and_rewrites(tmp_path):
    corpus, song = tmp_path / "corpus", tmp_path / "song.mp3"

    def make_corpus(tracks_per_genre: int):
        return run_script(
            "demo/make_corpus.py",
            str(corpus),
            "--song",
            str(song),
            "--genres",
            "glasswing,ironclad",
            "--tracks-per-genre",
            str(tracks_per_genre),
            "--seconds",
            "1.5",
            "--song-genres",
            "ironclad,glasswing",
            "--song-seconds",
            "8",
            "--seed",
            "4",
            "--workers",
            "1",
            timeout=120,
        )

    first = make_corpus(2)
    assert first.returncode == 0, first.stderr
    assert sorted(p.relative_to(corpus).as_posix() for p in corpus.rglob("*.mp3")) == [
        "glasswing/glasswing_000.mp3",
        "glasswing/glasswing_001.mp3",
        "ironclad/ironclad_000.mp3",
        "ironclad/ironclad_001.mp3",
    ]
    description = json.loads(song.with_suffix(".json").read_text())
    assert [s["genre"] for s in description["sections"]] == ["ironclad", "glasswing"]
    assert abs(len(decode(song, SR)) / SR - 8.0) < 0.1
    assert json.loads((corpus / ".corpus.json").read_text())["seed"] == 4

    stamp = (corpus / "ironclad" / "ironclad_000.mp3").stat().st_mtime_ns
    again = make_corpus(2)
    assert again.returncode == 0 and "up to date" in again.stderr
    assert (corpus / "ironclad" / "ironclad_000.mp3").stat().st_mtime_ns == stamp

    fewer = make_corpus(1)  # a smaller corpus replaces the larger one: no stale tracks stay behind
    assert fewer.returncode == 0, fewer.stderr
    assert sorted(p.name for p in corpus.rglob("*.mp3")) == ["glasswing_000.mp3", "ironclad_000.mp3"]


def test_make_corpus_script_refuses_an_unknown_genre(tmp_path):
    result = run_script("demo/make_corpus.py", str(tmp_path), "--genres", "polka", timeout=60)
    assert result.returncode == 2
    assert "unknown genre 'polka'" in result.stderr
