"""build_dataset.py end to end: real generated audio, the real script as a subprocess."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import h5py
import librosa
import numpy as np
import pytest

from genrekit.core.h5layout import read_tracks, row_arrays
from tests.helpers import (
    SR,
    kill_group_when,
    make_corpus,
    noise,
    run_script,
    start_script,
    tone,
    train_script,
    write_audio,
    write_config,
)

LABELS = {"bass": 5, "treble": 5, "hiss": 5}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    """15 clean 8 s tracks (mp3 and wav) under audio/<label>/."""
    root = tmp_path_factory.mktemp("corpus")
    make_corpus(root / "audio", LABELS, seconds=8.0, fmt="mp3")
    return root / "audio"


def config_for(tmp: Path, audio: Path, **sections) -> Path:
    sections.setdefault("split", {"validation_share": 0.2, "test_share": 0.2, "seed": 7})
    return write_config(tmp / "params.json", paths={"audio_folder": str(audio), "output_folder": "out"}, **sections)


def build(config: Path, *args: str) -> subprocess.CompletedProcess:
    return run_script("build_dataset.py", "--config", str(config), "--quiet", *args)


def content(dataset: Path) -> dict:
    """Everything a build writes into dataset.h5, as plain values."""
    out = {}
    with h5py.File(dataset, "r") as h5:
        out["attrs"] = {k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in h5.attrs.items()}
        out["tracks"] = read_tracks(h5)
        for split in ("train", "val", "test"):
            for name in row_arrays(h5[split]):
                out[f"{split}/{name}"] = h5[split][name][()]
    return out


def assert_same_content(a: Path, b: Path) -> None:
    ca, cb = content(a), content(b)
    assert ca.keys() == cb.keys()
    for key in ca:
        if isinstance(ca[key], np.ndarray):
            np.testing.assert_array_equal(ca[key], cb[key], err_msg=key)
        else:
            assert ca[key] == cb[key], key


@pytest.fixture(scope="module")
def clean_build(corpus, tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("clean")
    result = build(config_for(tmp, corpus))
    assert result.returncode == 0, result.stderr
    return tmp / "out" / "dataset.h5"


def test_layout_slices_and_splits(clean_build):
    with h5py.File(clean_build, "r") as h5:
        assert json.loads(h5.attrs["labels"]) == sorted(LABELS)
        assert h5.attrs["format_version"] == 1
        assert list(h5.attrs["spec_shape"]) == [126, 100]
        tracks = read_tracks(h5)
        assert len(tracks) == 15 and all(t["status"] == "ok" for t in tracks)
        # an 8 s track with 3 s slices every 2 s holds 3 slices, starting at 0, ~2 and ~4 s
        assert {t["n_slices"] for t in tracks} == {3}
        seen_tracks = {}
        for split in ("train", "val", "test"):
            g = h5[split]
            n = len(g["labels"])
            assert g["specs"].shape == (n, 126, 100) and g["specs"].dtype == np.float16
            assert g["specs"].chunks is not None
            for track_id in np.unique(g["track_ids"][()]):
                rows = g["track_ids"][()] == track_id
                assert tracks[track_id]["split"] == split
                seen_tracks[int(track_id)] = split
                np.testing.assert_allclose(g["slice_starts"][()][rows], [0, 2, 4], atol=512 / 22050)
                assert set(g["labels"][()][rows]) == {tracks[track_id]["label"]}
        assert len(seen_tracks) == 15  # every track in exactly one split
        # stratified: each label has 3 train, 1 val, 1 test tracks
        for label in range(3):
            per_split = [
                sum(1 for t in tracks if t["label"] == label and t["split"] == s) for s in ("train", "val", "test")
            ]
            assert per_split == [3, 1, 1]
        spec = h5["train"]["specs"][0].astype(np.float32)
        assert spec.min() >= -100.5 and spec.max() < 60  # dB with a -100 dB floor


def test_rerun_is_noop_and_changed_config_refused(corpus, tmp_path):
    config = config_for(tmp_path, corpus)
    assert build(config).returncode == 0
    clean_build = tmp_path / "out" / "dataset.h5"
    before = clean_build.stat().st_mtime_ns
    again = build(config)
    assert again.returncode == 0 and "up to date" in again.stderr and "nothing to do" in again.stderr
    assert clean_build.stat().st_mtime_ns == before
    shutil.rmtree(tmp_path / "out" / ".build")  # freeing the work folder does not make the dataset stale
    again = build(config)
    assert again.returncode == 0 and "up to date" in again.stderr
    assert clean_build.stat().st_mtime_ns == before

    data = json.loads(config.read_text())
    data["slicing"] = {"overlap": 0.0}
    changed = config.with_name("changed.json")
    changed.write_text(json.dumps(data))
    refused = build(changed)
    assert refused.returncode != 0
    assert "slicing.overlap" in refused.stderr and "--restart" in refused.stderr
    assert clean_build.stat().st_mtime_ns == before  # nothing touched

    restarted = build(changed, "--restart")
    assert restarted.returncode == 0, restarted.stderr
    with h5py.File(clean_build, "r") as h5:
        assert json.loads(h5.attrs["slicing"])["overlap"] == 0.0
        assert {t["n_slices"] for t in read_tracks(h5)} == {2}  # 8 s, 3 s slices every 3 s


def test_deterministic_and_independent_of_workers(corpus, clean_build, tmp_path):
    """Same files, same seed, serial instead of a pool: identical content."""
    result = build(config_for(tmp_path, corpus), "--workers", "1")
    assert result.returncode == 0, result.stderr
    assert_same_content(clean_build, tmp_path / "out" / "dataset.h5")


def _start_build(config: Path) -> subprocess.Popen:
    return start_script("build_dataset.py", "--config", str(config), "--quiet", "--workers", "2")


def test_resume_after_kill_9(corpus, clean_build, tmp_path):
    config = config_for(tmp_path, corpus)
    out = tmp_path / "out"
    shards = out / ".build" / "shards"

    def n_shards() -> int:
        return sum(1 for _ in shards.rglob("*.npz")) if shards.exists() else 0

    # 1. killed at once, 2. after a few tracks were stored
    assert kill_group_when(_start_build(config), lambda: (out / ".build").exists())
    assert not (out / "dataset.h5").exists()
    assert kill_group_when(_start_build(config), lambda: n_shards() >= 4)
    done = n_shards()
    assert 4 <= done < 15 and not (out / "dataset.h5").exists()

    # 3. killed while dataset.h5 is being written (retry until we catch the write)
    tmp_file = out / "dataset.h5.tmp"
    for _ in range(10):
        if kill_group_when(_start_build(config), tmp_file.exists):
            break
        (out / "dataset.h5").unlink()  # it finished first: make the next run assemble again
    else:
        pytest.skip("could not catch the build inside the HDF5 write")
    assert not (out / "dataset.h5").exists()  # a half-written file is never dataset.h5

    final = build(config)
    assert final.returncode == 0, final.stderr
    assert "resuming: 15 of 15" in final.stderr
    assert_same_content(clean_build, out / "dataset.h5")


def test_lock_stops_a_second_build(corpus, tmp_path):
    from filelock import FileLock

    config = config_for(tmp_path, corpus)
    (tmp_path / "out").mkdir()
    with FileLock(str(tmp_path / "out" / ".build.lock")):
        result = build(config)
    assert result.returncode == 1
    assert "another build is running" in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_bad_inputs_are_skipped_and_reported(tmp_path):
    audio = tmp_path / "audio"
    make_corpus(audio, {"a": 3, "b": 3}, seconds=5.0, fmt="wav")
    (audio / "a" / "renamed text.mp3").write_text("this is not audio\n" * 50)
    (audio / "a" / "empty.mp3").write_bytes(b"")
    good = write_audio(tmp_path / "full.mp3", tone(440, 10.0))
    (audio / "b" / "truncated.mp3").write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    (audio / "b" / "garbage.flac").write_bytes(np.random.default_rng(0).bytes(5000))
    write_audio(audio / "b" / "silent.wav", np.zeros(22050 * 4, dtype=np.float32))
    write_audio(audio / "b" / "Ünïcode & spaces — ok.mp3", noise(4.0))
    (audio / "a" / ".DS_Store").write_bytes(b"\x00\x01")
    (audio / "a" / "._hidden.mp3").write_bytes(b"\x00\x05\x16\x07")
    (audio / "a" / "cover.jpg").write_bytes(b"\xff\xd8\xff")
    (audio / "stray.mp3").write_bytes(b"")
    (audio / "empty_label").mkdir()

    result = build(config_for(tmp_path, audio, split={"validation_share": 0.0, "test_share": 0.0}))
    assert result.returncode == 0, result.stderr
    report = json.loads((tmp_path / "out" / "build_report.json").read_text())
    skipped = {s["path"]: s["reason"] for s in report["skipped"]}
    assert set(skipped) == {"a/renamed text.mp3", "a/empty.mp3", "b/garbage.flac", "b/silent.wav"}
    assert "empty" in skipped["a/empty.mp3"] and "silent" in skipped["b/silent.wav"]
    assert "skipped 4 tracks" in result.stderr
    ignored = {i["path"] for i in report["ignored"]}
    assert {"a/.DS_Store", "a/._hidden.mp3", "a/cover.jpg", "stray.mp3"} <= ignored
    assert report["empty_labels"] == ["empty_label"]
    assert report["per_label"]["a"]["skipped"] == 2 and report["per_label"]["b"]["skipped"] == 2
    with h5py.File(tmp_path / "out" / "dataset.h5", "r") as h5:
        tracks = {t["path"]: t for t in read_tracks(h5)}
        assert json.loads(h5.attrs["labels"]) == ["a", "b"]
        # what decodes of a truncated mp3 is kept (about 5 s of 10 s: one slice)
        assert tracks["b/truncated.mp3"]["status"] == "ok" and tracks["b/truncated.mp3"]["n_slices"] >= 1
        assert tracks["b/Ünïcode & spaces — ok.mp3"]["n_slices"] == 1
        assert tracks["b/silent.wav"]["status"].startswith("skipped: silent")
        assert len(h5["train"]["labels"]) == sum(t["n_slices"] for t in tracks.values())


def test_short_tracks_pad_or_drop(tmp_path):
    audio = tmp_path / "audio"
    write_audio(audio / "x" / "short.wav", tone(300, 1.0))
    write_audio(audio / "x" / "long.wav", tone(300, 5.0))
    write_audio(audio / "y" / "long.wav", noise(5.0))
    split = {"validation_share": 0.0, "test_share": 0.0}
    assert build(config_for(tmp_path, audio, split=split)).returncode == 0
    with h5py.File(tmp_path / "out" / "dataset.h5", "r") as h5:
        tracks = {t["path"]: t for t in read_tracks(h5)}
        assert tracks["x/short.wav"]["status"] == "padded" and tracks["x/short.wav"]["n_slices"] == 1
        row = int(np.flatnonzero(h5["train"]["track_ids"][()] == list(tracks).index("x/short.wav"))[0])
        spec = h5["train"]["specs"][row].astype(np.float32)
        # silence padding: frames after the first second sit at the -100 dB floor
        assert spec[:30].max() > -40 and spec[60:].max() < -99

    loop_cfg = tmp_path / "loop"
    loop_cfg.mkdir()
    assert build(config_for(loop_cfg, audio, split=split, slicing={"pad_mode": "loop"})).returncode == 0
    with h5py.File(loop_cfg / "out" / "dataset.h5", "r") as h5:
        assert h5["train"]["specs"][()].astype(np.float32)[:, 60:].max() > -40  # looped, not silent

    drop_cfg = tmp_path / "drop"
    drop_cfg.mkdir()
    assert build(config_for(drop_cfg, audio, split=split, slicing={"short_tracks": "drop"})).returncode == 0
    report = json.loads((drop_cfg / "out" / "build_report.json").read_text())
    assert [s["path"] for s in report["skipped"]] == ["x/short.wav"]
    assert "shorter than one slice" in report["skipped"][0]["reason"]


def test_a_short_loud_excerpt_is_stored_as_the_analyzer_cuts_it_and_blind_to_its_level(tmp_path):
    """The ready model's settings (loop padding, every slice levelled to -20 dBFS): a 1.3-s excerpt,
    peak-normalized as gtzan_excerpts' are, and the same 24 dB quieter, give one slice each, the same
    bits, and the very slice the analyzer's loader cuts from the file (so "short and loud" is nothing a
    model could learn, and the analyzer pads a short file as the build did)."""
    import soundfile

    from genrekit.core.config import load_config
    from genrekit.inference.analyzer import SliceSettings

    audio = tmp_path / "audio"
    y = tone(220, 1.3) + noise(1.3, amp=0.05, seed=3)
    loud = (y / np.abs(y).max()).astype(np.float32)
    (audio / "x").mkdir(parents=True)
    soundfile.write(audio / "x" / "loud.wav", loud, SR, subtype="FLOAT")  # float samples: the 1/16 is exact
    soundfile.write(audio / "x" / "quiet.wav", loud / 16, SR, subtype="FLOAT")
    write_audio(audio / "y" / "long.wav", noise(5.0))
    config = config_for(
        tmp_path,
        audio,
        split={"validation_share": 0.0, "test_share": 0.0},
        slicing={"pad_mode": "loop"},
        features={"level_normalization": "slice_rms"},
    )
    assert build(config).returncode == 0
    with h5py.File(tmp_path / "out" / "dataset.h5", "r") as h5:
        tracks = read_tracks(h5)
        stored = {}
        for track_id, track in enumerate(tracks):
            rows = np.flatnonzero(h5["train"]["track_ids"][()] == track_id)
            stored[track["path"]] = h5["train"]["specs"][rows]
        status = {t["path"]: (t["status"], t["n_slices"]) for t in tracks}
    assert status["x/loud.wav"] == status["x/quiet.wav"] == ("padded", 1)
    np.testing.assert_array_equal(stored["x/loud.wav"], stored["x/quiet.wav"])
    cfg = load_config(config)
    cutting = SliceSettings(cfg.slicing, cfg.features, cfg.build.silence_threshold_db, cfg.slicing.overlap)
    analyzed = cutting.load(audio / "x" / "quiet.wav")
    assert analyzed.padded and len(analyzed.specs) == 1
    np.testing.assert_array_equal(analyzed.specs.astype(stored["x/quiet.wav"].dtype), stored["x/quiet.wav"])


def test_max_slices_random_selection_is_seeded(tmp_path):
    audio = tmp_path / "audio"
    for label in ("p", "q"):
        write_audio(audio / label / "long.wav", tone(200 if label == "p" else 900, 21.0))
    split = {"validation_share": 0.0, "test_share": 0.0}

    def starts(folder: Path, **slicing) -> list:
        folder.mkdir()
        assert build(config_for(folder, audio, split=split, slicing=slicing)).returncode == 0
        with h5py.File(folder / "out" / "dataset.h5", "r") as h5:
            return np.round(h5["train"]["slice_starts"][()], 2).tolist()

    first = starts(tmp_path / "first", max_slices=3)
    assert first == [0.0, 2.0, 3.99] * 2
    seeded = starts(tmp_path / "r1", max_slices=3, random_slice_selection=True, seed=1)
    again = starts(tmp_path / "r2", max_slices=3, random_slice_selection=True, seed=1)
    other = starts(tmp_path / "r3", max_slices=3, random_slice_selection=True, seed=2)
    assert seeded == again and seeded != other and len(seeded) == 6
    assert all(s in np.round(np.arange(10) * 44100 // 512 * 512 / 22050, 2) for s in seeded)


def test_custom_split_and_group_files(corpus, tmp_path):
    split_file = tmp_path / "splits.csv"
    split_file.write_text("path,split\nbass/bass_00.mp3,test\ntreble/treble_04.mp3,val\n")
    group_file = tmp_path / "groups.csv"
    # an "artist" with tracks in two labels: all of them must land in one split
    group_file.write_text(
        "path,group\nbass/bass_01.mp3,artistA\nbass/bass_02.mp3,artistA\n"
        "hiss/hiss_03.mp3,artistA\ntreble/treble_00.mp3,artistB\ntreble/treble_01.mp3,artistB\n"
    )
    config = config_for(
        tmp_path,
        corpus,
        split={
            "validation_share": 0.2,
            "test_share": 0.2,
            "seed": 3,
            "custom_split_file": "splits.csv",
            "group_file": "groups.csv",
        },
    )
    result = build(config)
    assert result.returncode == 0, result.stderr
    with h5py.File(tmp_path / "out" / "dataset.h5", "r") as h5:
        split = {t["path"]: t["split"] for t in read_tracks(h5)}
    assert split["bass/bass_00.mp3"] == "test" and split["treble/treble_04.mp3"] == "val"
    assert split["bass/bass_01.mp3"] == split["bass/bass_02.mp3"] == split["hiss/hiss_03.mp3"]
    assert split["treble/treble_00.mp3"] == split["treble/treble_01.mp3"]
    # the next step accepts a dataset built with split and group files
    processed = run_script("process_dataset.py", "--config", str(config), "--quiet")
    assert processed.returncode == 0, processed.stderr

    split_file.write_text("path,split\nbass/bass_00.mp3,testing\n")
    bad = build(config, "--restart")
    assert bad.returncode == 2
    assert "split.custom_split_file" in bad.stderr and "testing" in bad.stderr


@pytest.mark.slow
def test_audio_augmentation_copies_train_tracks_only_and_resumes_bit_identical(tmp_path):
    """Pitch-shifted and time-stretched copies of the train tracks: in /train only, marked, each at
    its new pitch or length; a build killed during the copies resumes to a serial build's bytes."""
    labels = {"low": 5, "high": 5}
    pitch = {}
    for index, (label, count) in enumerate(labels.items()):
        for k in range(count):  # one pure tone per label, a few cents apart per track
            pitch[f"{label}/{label}_{k}.wav"] = (330.0 if index == 0 else 880.0) * (1 + 0.004 * k)
            write_audio(
                tmp_path / "audio" / label / f"{label}_{k}.wav",
                tone(pitch[f"{label}/{label}_{k}.wav"], 6.0, harmonics=1),
            )
    copies = {"pitch_shift_semitones": [2], "time_stretch_rates": [0.8], "speed_rates": []}
    config = config_for(tmp_path, tmp_path / "audio", audio_augmentation=copies)
    out = tmp_path / "out"
    shards = out / ".build" / "shards"

    def n_shards() -> int:
        return sum(1 for _ in shards.rglob("*.npz")) if shards.exists() else 0

    # killed after the 10 tracks, while the 12 copies of the 6 train tracks are made
    caught = kill_group_when(_start_build(config), lambda: n_shards() >= 12)
    assert caught and not (out / "dataset.h5").exists()
    resumed = run_script("build_dataset.py", "--config", str(config), "--workers", "2")
    assert resumed.returncode == 0, resumed.stderr
    assert "resuming: 10 of 10 tracks" in resumed.stderr
    assert "slices of 12 build-time copies of the train tracks" in resumed.stderr

    serial_config = config_for(tmp_path / "serial", tmp_path / "audio", audio_augmentation=copies)
    assert build(serial_config, "--workers", "1").returncode == 0
    assert_same_content(tmp_path / "serial" / "out" / "dataset.h5", out / "dataset.h5")

    with h5py.File(out / "dataset.h5", "r") as h5:
        assert json.loads(h5.attrs["audio_variants"]) == ["original", "pitch_shift +2", "time_stretch 0.8"]
        assert "variants" not in h5["val"] and "variants" not in h5["test"]
        tracks = read_tracks(h5)
        train = {name: h5["train"][name][()] for name in ("specs", "track_ids", "variants", "labels")}
    train_ids = {i for i, t in enumerate(tracks) if t["split"] == "train"}
    assert set(train["track_ids"]) == train_ids and len(train_ids) == 6
    mel_hz = librosa.mel_frequencies(n_mels=102, fmax=11025)[1:-1]
    for track_id in train_ids:
        own = train["track_ids"] == track_id
        original, pitched, stretched = (
            train["specs"][own & (train["variants"] == v)].astype(np.float32) for v in (0, 1, 2)
        )
        assert len(original) == len(pitched) == 2  # 6 s: slices at 0 and 2 s
        assert len(stretched) == 3  # 6 / 0.8 = 7.5 s: slices at 0, 2 and 4 s
        assert set(train["labels"][own]) == {tracks[track_id]["label"]}
        # the strongest mel band is the tone's, two semitones (a factor 1.122) higher in the pitched copy;
        # a stretch keeps the pitch (bands are 30-60 Hz apart here: the nearest one, or its neighbour)
        peak_band = [spec.mean(axis=(0, 1)).argmax() for spec in (original, pitched, stretched)]
        hz = pitch[tracks[track_id]["path"]]
        assert abs(peak_band[0] - np.abs(mel_hz - hz).argmin()) <= 1
        assert abs(peak_band[1] - np.abs(mel_hz - hz * 2 ** (2 / 12)).argmin()) <= 1
        assert peak_band[1] > peak_band[0] and peak_band[2] == peak_band[0]

    report = json.loads((out / "build_report.json").read_text())
    assert report["audio_augmentation"] == {
        "variants": ["pitch_shift +2", "time_stretch 0.8"],
        "copies": 12,
        "slices": 30,
        "skipped": [],
    }
    assert report["splits"]["train"] == {"tracks": 6, "slices": 12}  # the tracks' own slices

    processed = run_script("process_dataset.py", "--config", str(config), "--quiet")
    assert processed.returncode == 0, processed.stderr
    with h5py.File(out / "processed.h5", "r") as h5:  # shuffled with its rows, never in val or test
        assert np.bincount(h5["train/variants"][()]).tolist() == [12, 12, 18]
        assert "variants" not in h5["val"] and "variants" not in h5["test"]

    # training takes them as train slices, and says how many are copies
    data = json.loads(config.read_text())
    data.update(
        model={"conv_filters": [8, 16], "time_pools": [2, 2], "gru_units": [16]},
        training={"epochs": 1, "batch_size": 16},
    )
    config.write_text(json.dumps(data))
    status, _, stderr = train_script("--config", str(config))
    assert status == 0, stderr
    assert "training on 42 slices (30 of them build-time copies)" in stderr


def test_speed_copies_are_resampled_train_tracks(tmp_path):
    """``speed_rates``: a copy of each train track played faster or slower, tempo and pitch together:
    1/rate as long and every frequency × rate, in /train only, marked, counted in the report."""
    hz = {}
    for label, base in (("low", 330.0), ("high", 880.0)):
        for k in range(4):
            hz[f"{label}/{label}_{k}.wav"] = base * (1 + 0.004 * k)
            write_audio(
                tmp_path / "audio" / label / f"{label}_{k}.wav", tone(hz[f"{label}/{label}_{k}.wav"], 6.0, harmonics=1)
            )
    copies = {"pitch_shift_semitones": [], "time_stretch_rates": [], "speed_rates": [0.8]}
    config = config_for(
        tmp_path,
        tmp_path / "audio",
        audio_augmentation=copies,
        split={"validation_share": 0.25, "test_share": 0.25, "seed": 3},
    )
    built = run_script("build_dataset.py", "--config", str(config))
    assert built.returncode == 0, built.stderr
    assert "slices of 4 build-time copies of the train tracks" in built.stderr

    out = tmp_path / "out"
    with h5py.File(out / "dataset.h5", "r") as h5:
        assert json.loads(h5.attrs["audio_variants"]) == ["original", "speed 0.8"]
        assert "variants" not in h5["val"] and "variants" not in h5["test"]
        tracks = read_tracks(h5)
        train = {name: h5["train"][name][()] for name in ("specs", "track_ids", "variants")}
    mel_hz = librosa.mel_frequencies(n_mels=102, fmax=11025)[1:-1]
    train_ids = {i for i, t in enumerate(tracks) if t["split"] == "train"}
    assert set(train["track_ids"]) == train_ids and len(train_ids) == 4
    for track_id in train_ids:
        own = train["track_ids"] == track_id
        original, slower = (train["specs"][own & (train["variants"] == v)].astype(np.float32) for v in (0, 1))
        assert len(original) == 2 and len(slower) == 3  # 6 s, and 6 / 0.8 = 7.5 s: slices at 0, 2 and 4 s
        peak_band = [spec.mean(axis=(0, 1)).argmax() for spec in (original, slower)]
        expected = hz[tracks[track_id]["path"]]
        assert abs(peak_band[0] - np.abs(mel_hz - expected).argmin()) <= 1
        assert abs(peak_band[1] - np.abs(mel_hz - 0.8 * expected).argmin()) <= 1 and peak_band[1] < peak_band[0]
    report = json.loads((out / "build_report.json").read_text())
    assert report["audio_augmentation"] == {"variants": ["speed 0.8"], "copies": 4, "slices": 12, "skipped": []}


@pytest.mark.parametrize(
    "sections, key",
    [
        ({"slicing": {"overlap": 3.0}}, "slicing.overlap"),
        ({"slicing": {"slice_duration": "3"}}, "slicing.slice_duration"),
        ({"features": {"n_mels": 0}}, "features.n_mels"),
        ({"split": {"test_share": 1.0}}, "split.test_share"),
        ({"split": {"validation_share": 0.6, "test_share": 0.5}}, "split.test_share"),
        ({"slicing": {"max_slice": 4}}, "slicing.max_slice"),
        ({"paths": {"audio_folder": "does/not/exist"}}, "paths.audio_folder"),
        ({"split": {"custom_split_file": "missing.csv"}}, "split.custom_split_file"),
    ],
)
def test_config_errors_exit_2_naming_the_key(tmp_path, sections, key):
    (tmp_path / "audio" / "x").mkdir(parents=True)
    base = {"paths": {"audio_folder": "audio", "output_folder": "out"}}
    for name, values in sections.items():
        base.setdefault(name, {}).update(values)
    config = write_config(tmp_path / "params.json", **base)
    result = build(config)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and key in lines[0] and lines[0].startswith("error:")
    assert not (tmp_path / "out").exists()  # validation happens before any work


def test_help_and_missing_config(tmp_path):
    assert "--restart" in run_script("build_dataset.py", "--help").stdout
    missing = build(tmp_path / "nope.json")
    assert missing.returncode == 2 and "nope.json" in missing.stderr
