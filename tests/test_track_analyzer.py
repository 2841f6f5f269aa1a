"""track_analyzer with the tiny model trained in the test session (``trained_run`` in conftest.py).

The tiny model tells its three labels (bass: a low tone, treble: a high tone, hiss: noise)
only roughly apart after 2 epochs, so the tests check the analyzer's arithmetic, files and
parity with the training data rather than how right the verdicts are.
"""

from __future__ import annotations

import csv
import itertools
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import h5py
import mutagen
import numpy as np
import pytest

from genrekit.audio.features import slice_geometry
from genrekit.core import h5layout
from genrekit.core.config import load_config
from genrekit.core.errors import GenrekitError, TrackError
from genrekit.dataset.normalization import apply
from genrekit.inference.analyzer import default_overlap, slice_settings
from genrekit.models.aggregate import aggregate
from genrekit.models.bundle import load_bundle
from genrekit.models.litert import LiteRTModel
from tests.conftest import TINY_LABELS
from tests.helpers import (
    REPO_ROOT,
    SR,
    analyze_cli,
    analyzer_cli,
    label_signal,
    one_error_line,
    run_script,
    script_env,
    write_audio,
)
from track_analyzer import Analyzer, TrackAnalysis, analyze

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
SIGNALS = {name: kind for kind, name in enumerate(TINY_LABELS)}  # make_corpus's label_signal kind per label
THIRD = 60.0  # seconds of each label in the long track


def signal(label: str, seconds: float, seed: int) -> np.ndarray:
    return label_signal(SIGNALS[label], seconds, seed=seed)


def is_png(path: Path) -> bool:
    return path.is_file() and path.read_bytes()[:8] == PNG_SIGNATURE


@pytest.fixture(scope="module")
def long_mp3(tmp_path_factory) -> Path:
    """3 min of bass, then treble, then hiss: a 44.1 kHz stereo mp3, like a CD rip."""
    y = np.concatenate([signal(name, THIRD, seed=700 + i) for i, name in enumerate(("bass", "treble", "hiss"))])
    return write_audio(tmp_path_factory.mktemp("long") / "long.mp3", y, out_rate=44100, channels=2)


@pytest.fixture(scope="module")
def analyzer(trained_run) -> Analyzer:
    return Analyzer(trained_run.run_folder)


@pytest.fixture(scope="module")
def analysis_overlap(trained_run) -> float:
    return load_config(trained_run.config).analysis.overlap


@pytest.fixture(scope="module")
def long_result(analyzer, long_mp3, analysis_overlap) -> TrackAnalysis:
    return analyze(long_mp3, analyzer, overlap=analysis_overlap)


def edited_bundle(run_folder: Path, target: Path, edit) -> Path:
    """A copy of a run folder whose bundle.json went through ``edit(dict)``."""
    target.mkdir(parents=True)
    shutil.copy(run_folder / "model.keras", target / "model.keras")
    data = json.loads((run_folder / "bundle.json").read_text())
    edit(data)
    (target / "bundle.json").write_text(json.dumps(data))
    return target


# --------------------------------------------------------------------------- Python API


def test_full_length_mp3_slices_scores_and_ranking(long_result, analyzer, analysis_overlap):
    result, bundle = long_result, analyzer.bundle
    assert result.labels == tuple(bundle.labels)
    assert abs(result.duration - 3 * THIRD) < 0.2 and not result.padded

    # A slice every (slice_duration - overlap) seconds over the whole track, starts snapped to a hop.
    geometry = slice_geometry(bundle.slicing.slice_duration, analysis_overlap, bundle.features)
    n_samples = round(result.duration * bundle.features.sample_rate)
    expected = 1 + (n_samples - geometry.slice_samples) // geometry.step_samples
    hop = bundle.features.hop_length
    assert result.scores.shape == (expected, len(bundle.labels))
    np.testing.assert_array_equal(
        result.starts, (np.arange(expected) * geometry.step_samples // hop) * hop / bundle.features.sample_rate
    )

    np.testing.assert_allclose(result.scores.sum(axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(result.track_scores, result.scores.sum(axis=0), rtol=1e-6)
    ranking = result.ranking
    best_first = np.argsort(-result.track_scores, kind="stable")
    assert [r.label for r in ranking] == [bundle.labels[i] for i in best_first]
    assert sum(r.score for r in ranking) == pytest.approx(expected, rel=1e-5)
    assert sum(r.share for r in ranking) == pytest.approx(1.0)
    assert all(a.score >= b.score for a, b in itertools.pairwise(ranking))
    assert ranking[0].label == result.top_label
    assert re.fullmatch(r"\w+ \d+\.\d %  \w+ \d+\.\d %", result.summary(2))
    assert (
        result.summary(2) == f"{ranking[0].label} {100 * ranking[0].share:.1f} %  "
        f"{ranking[1].label} {100 * ranking[1].share:.1f} %"
    )

    # Slices sit where their audio is: the hiss label scores higher over the hiss third than the treble one.
    hiss = bundle.labels.index("hiss")
    treble_third = (result.starts > THIRD + 1) & (result.starts < 2 * THIRD - 2)
    hiss_third = result.starts > 2 * THIRD + 1
    assert result.scores[hiss_third, hiss].mean() > result.scores[treble_third, hiss].mean()


def test_a_trained_run_analyzes_a_slice_every_half_slice_by_default(analyzer, long_mp3):
    """No overlap given: half a slice (1.5 s at 3 s slices; this run's slices are shorter), whatever its length."""
    duration = analyzer.bundle.slicing.slice_duration
    assert default_overlap(analyzer.bundle) == duration / 2
    result = analyze(long_mp3, analyzer)
    assert result.overlap == duration / 2
    hop_seconds = analyzer.bundle.features.hop_length / analyzer.bundle.features.sample_rate
    assert np.all(np.abs(np.diff(result.starts) - duration / 2) <= hop_seconds)  # starts snapped to a hop
    assert result.starts[-1] + duration > result.duration - duration / 2  # to the end of the track


def test_a_bundle_can_name_its_own_analysis_overlap(trained_run, long_mp3, tmp_path):
    """bundle.json's "analysis_overlap" (the ready model's: 0) is the default; a bad one is refused in one line."""
    folder = shutil.copytree(trained_run.run_folder, tmp_path / "run")
    bundle_file = folder / "bundle.json"
    data = json.loads(bundle_file.read_text())
    bundle_file.write_text(json.dumps({**data, "analysis_overlap": 0}))
    own = Analyzer(folder)
    assert default_overlap(own.bundle) == 0.0
    result = analyze(long_mp3, own)
    duration = own.bundle.slicing.slice_duration
    hop_seconds = own.bundle.features.hop_length / own.bundle.features.sample_rate
    assert result.overlap == 0.0 and np.all(np.abs(np.diff(result.starts) - duration) <= hop_seconds)
    assert analyze(long_mp3, own, overlap=duration / 2).overlap == duration / 2  # an explicit one still wins
    bundle_file.write_text(json.dumps({**data, "analysis_overlap": duration}))
    with pytest.raises(GenrekitError, match=r"bundle\.json: 'analysis_overlap' must be .* below the slice_duration"):
        load_bundle(folder)


@pytest.mark.parametrize("method", ["mean-log", "vote"])
def test_other_aggregations(analyzer, long_mp3, long_result, method):
    result = analyze(long_mp3, analyzer, overlap=long_result.overlap, aggregation=method)
    np.testing.assert_allclose(result.scores, long_result.scores, atol=1e-6)  # same slices, same scores
    np.testing.assert_allclose(result.track_scores, aggregate(result.scores, method))
    assert sum(r.share for r in result.ranking) == pytest.approx(1.0)
    if method == "vote":
        assert result.track_scores.sum() == len(result.starts)
        assert result.top_label == result.labels[np.bincount(result.scores.argmax(1)).argmax()]


def test_short_track_is_padded_even_if_the_build_dropped_short_ones(analyzer, trained_run, tmp_path, analysis_overlap):
    short = write_audio(tmp_path / "short.wav", signal("treble", 0.4, seed=1))
    result = analyze(short, analyzer, overlap=analysis_overlap)
    assert result.padded and result.scores.shape == (1, len(result.labels)) and result.starts.tolist() == [0.0]
    assert result.duration == pytest.approx(0.4, abs=1e-3)

    def drop_short(data):
        data["slicing"]["short_tracks"] = "drop"

    bundle = load_bundle(edited_bundle(trained_run.run_folder, tmp_path / "drop", drop_short))
    assert bundle.slicing.short_tracks == "drop"
    slices = slice_settings(bundle, analysis_overlap).load(short)
    assert slices.padded and len(slices.starts) == 1


def test_api_errors(analyzer, trained_run, tmp_path, analysis_overlap):
    silent = write_audio(tmp_path / "silent.wav", np.zeros(SR * 2, dtype=np.float32))
    with pytest.raises(TrackError, match="silent"):
        analyze(silent, analyzer, overlap=analysis_overlap)
    with pytest.raises(TrackError, match="cannot read file"):
        analyze(tmp_path / "missing.mp3", analyzer, overlap=analysis_overlap)
    corrupt = tmp_path / "corrupt.mp3"
    corrupt.write_bytes(b"ID3" + bytes(range(256)) * 8)
    with pytest.raises(TrackError, match="cannot decode audio"):
        analyze(corrupt, analyzer, overlap=analysis_overlap)
    with pytest.raises(GenrekitError, match="smaller than the model's slice_duration"):
        analyze(silent, analyzer, overlap=analyzer.bundle.slicing.slice_duration)

    def one_label_more(data):
        data["labels"] = [*data["labels"], "polka"]

    with pytest.raises(GenrekitError, match=r"3 outputs, but bundle\.json lists 4 labels"):
        Analyzer(edited_bundle(trained_run.run_folder, tmp_path / "labels", one_label_more))

    broken = edited_bundle(trained_run.run_folder, tmp_path / "broken", lambda data: None)
    (broken / "model.keras").write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(GenrekitError, match=r"model\.keras: cannot load the model"):
        Analyzer(broken)


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # Keras' own, saving a mixed-precision model
def test_mixed_precision_model_runs_in_float32(trained_run, tmp_path, long_mp3, analysis_overlap):
    """A bundle trained with mixed precision on a GPU analyzes in float32 (float16 crawls on CPUs)."""
    import keras

    from genrekit.core.config import ModelConfig
    from genrekit.models.networks import build_crnn

    bundle = load_bundle(trained_run.run_folder)
    mixed = build_crnn(
        bundle.input_shape,
        len(bundle.labels),
        ModelConfig(conv_filters=(4,), time_pools=(2,), gru_units=(4,)),
        dtype="mixed_float16",
    )
    folder = edited_bundle(trained_run.run_folder, tmp_path / "mixed", lambda data: None)
    mixed.save(folder / "model.keras")

    keras_analyzer = Analyzer(folder, runtime="keras")
    assert {layer.dtype_policy.name for layer in keras_analyzer.model.layers} == {"float32"}
    analyzer = Analyzer(folder)  # exported on first use, from the float32 clone
    assert isinstance(analyzer.model, LiteRTModel) and (folder / "model.tflite").is_file()
    slices = analyzer.slice_settings(analysis_overlap).load(long_mp3)
    x = apply(slices.specs[:32], bundle.normalization)[..., np.newaxis]
    reference = keras.ops.convert_to_numpy(mixed(x, training=False))
    for runner in (keras_analyzer, analyzer):
        np.testing.assert_allclose(runner.predict(slices.specs[:32]), reference, atol=5e-3)


# --------------------------------------------------------------------------- parity with the build


def test_parity_with_dataset_h5_and_processed_h5(trained_run, analyzer):
    """A training track's analysis slices are the very spectrograms of dataset.h5 (and score as processed.h5's)."""
    cfg = load_config(trained_run.config)
    with h5py.File(cfg.dataset_path, "r") as h5:
        tracks = h5layout.read_tracks(h5)
        train = h5["train"]
        track_ids, starts = train["track_ids"][()], train["slice_starts"][()]
        track_id = int(track_ids[0])
        rows = np.flatnonzero(track_ids == track_id)
        stored = train["specs"][rows[0] : rows[-1] + 1]
        stored_starts = starts[rows]
    audio = cfg.paths.audio_folder / tracks[track_id]["path"]
    assert tracks[track_id]["split"] == "train"

    # The build's overlap gives the build's slices, bit for bit: the same span of the same decoded
    # signal through the same single-threaded transform.
    slices = analyzer.slice_settings(cfg.slicing.overlap).load(audio)
    np.testing.assert_array_equal(slices.starts, stored_starts)
    np.testing.assert_array_equal(slices.specs.astype(np.float16), stored)
    # Another overlap still meets them at shared starts. Its transform spans other frames, so BLAS
    # sums the mel projection in another order (a few float32 ulps, see test_features); stored as
    # float16, that can move a value to the neighbouring float16 at most.
    slices = analyzer.slice_settings(0.0).load(audio)
    shared, ours, theirs = np.intersect1d(slices.starts, stored_starts, return_indices=True)
    assert len(shared) == len(slices.starts) and len(shared) >= 2
    np.testing.assert_array_max_ulp(slices.specs[ours].astype(np.float16), stored[theirs], maxulp=1)

    # The scores match the model on the normalized rows of processed.h5 (stored as float16).
    result = analyzer.analyze(audio, overlap=cfg.slicing.overlap)
    with h5py.File(cfg.processed_path, "r") as h5:
        group = h5["train"]
        rows = np.flatnonzero(group["track_ids"][()] == track_id)
        processed_starts = group["slice_starts"][()][rows]
        order = np.argsort(processed_starts)
        processed = np.stack([group["specs"][r] for r in rows[order]]).astype(np.float32)
    np.testing.assert_array_equal(result.starts, processed_starts[order])
    expected = analyzer.model.predict(processed[..., np.newaxis])
    np.testing.assert_allclose(result.scores, expected, atol=1e-3)


# --------------------------------------------------------------------------- command line


@pytest.fixture(scope="module")
def file_run(trained_run, long_mp3, tmp_path_factory):
    out = tmp_path_factory.mktemp("file_run")
    proc = analyze_cli(trained_run, long_mp3, "--top-k", "2", "--json", out / "song.json", "--plot", out / "song.png")
    return proc, out


def test_cli_file_line_json_and_plot(file_run, long_result):
    proc, out = file_run
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""  # TensorFlow's start-up chatter is kept out
    data = json.loads((out / "song.json").read_text())
    assert data["labels"] == list(long_result.labels) and data["multi_label"] is False

    ranking = data["ranking"]
    assert [r["label"] for r in ranking] == [r.label for r in long_result.ranking]
    assert sum(r["share"] for r in ranking) == pytest.approx(1.0)
    assert proc.stdout == "  ".join(f"{r['label']} {100 * r['share']:.1f} %" for r in ranking[:2]) + "\n"

    slices = data["slices"]
    assert [s["start"] for s in slices] == long_result.starts.tolist()
    scores = np.array([s["scores"] for s in slices])
    np.testing.assert_allclose(scores, long_result.scores, atol=1e-5)  # the CLI and the API agree
    np.testing.assert_allclose([r["score"] for r in ranking], np.sort(scores.sum(axis=0))[::-1], rtol=1e-5)
    assert is_png(out / "song.png")


def test_cli_says_a_silent_file_is_silent(trained_run, tmp_path):
    # (an undecodable file takes the same path: see test_api_errors and the folder test)
    silent = write_audio(tmp_path / "silent.mp3", np.zeros(SR * 3, dtype=np.float32))
    line = one_error_line(analyze_cli(trained_run, silent))
    assert "silent.mp3: silent" in line


def _drop_features(data):
    del data["features"]


def _shorter_hop(data):
    data["features"]["hop_length"] = 256  # twice the frames the model takes


def _fft_longer_than_slice(data):
    data["features"]["n_fft"] = 65536


@pytest.mark.parametrize(
    "edit, message",
    [
        (_drop_features, "missing 'features'"),
        (_shorter_hop, "does not match the feature parameters"),
        (_fft_longer_than_slice, "inconsistent feature parameters"),
    ],
)
def test_cli_refuses_bad_bundles(trained_run, long_mp3, tmp_path, edit, message):
    folder = edited_bundle(trained_run.run_folder, tmp_path / "run", edit)
    line = one_error_line(analyze_cli(trained_run, long_mp3, model=folder))
    assert message in line and "bundle.json" in line


def test_cli_refuses_bad_inputs_and_options(trained_run, long_mp3, tmp_path):
    assert "no such file" in one_error_line(analyze_cli(trained_run, tmp_path / "nothing.mp3"))
    assert "bundle.json: not found" in one_error_line(analyze_cli(trained_run, long_mp3, model=tmp_path))
    assert "slice_duration" in one_error_line(analyze_cli(trained_run, long_mp3, "--overlap", "1.5"))
    assert "--plot" in one_error_line(analyze_cli(trained_run, tmp_path, "--plot", tmp_path / "x.png"))
    usage = analyze_cli(trained_run)  # neither a file nor --evaluate
    assert usage.returncode == 2 and "--evaluate" in usage.stderr


def test_cli_writes_a_files_genre_tag_with_a_run_folders_label(trained_run, tmp_path):
    song = write_audio(tmp_path / "song.mp3", signal("bass", 4.0, seed=3), tags={"title": "low"})
    proc = analyze_cli(trained_run, song, "--json", tmp_path / "song.json", "--write-tags", "--min-share", "0")
    assert proc.returncode == 0, proc.stderr
    verdict = json.loads((tmp_path / "song.json").read_text())["ranking"][0]["label"]
    genre = verdict.capitalize()  # a run's own labels: bass -> Bass
    assert proc.stdout.splitlines()[1] == f"{song}\tgenre: (none) -> {genre}"
    assert str(mutagen.File(song).tags["TCON"]) == genre and str(mutagen.File(song).tags["TIT2"]) == "low"
    journal = tmp_path / "song.tag-journal.jsonl"  # beside --json
    assert f"genre tags: 1 written; journal: {journal}" in proc.stderr
    again = analyze_cli(trained_run, song, "--json", tmp_path / "song.json", "--write-tags", "--min-share", "1")
    assert again.returncode == 0 and f"{song}: genre not written: top share" in again.stderr
    undo = analyzer_cli("--undo-tags", journal)
    assert undo.returncode == 0, undo.stderr
    assert "TCON" not in mutagen.File(song).tags and str(mutagen.File(song).tags["TIT2"]) == "low"


def test_cli_refuses_tag_options_out_of_place(trained_run, long_mp3, tmp_path):
    tagger = one_error_line(analyzer_cli(long_mp3, "--model", "musicnn-msd", "--write-tags"))
    assert "musicnn-msd is a tagger" in tagger
    assert "needs --csv or --json" in one_error_line(analyze_cli(trained_run, long_mp3.parent, "--write-tags"))
    assert "no such tag journal" in one_error_line(analyzer_cli("--undo-tags", tmp_path / "none.jsonl"))
    (tmp_path / "other.jsonl").write_text('{"settings": {}}\n')
    assert "not a genrekit tag journal" in one_error_line(analyzer_cli("--undo-tags", tmp_path / "other.jsonl"))
    for args, message in (
        ((long_mp3, "--tag-mode", "add"), "--tag-mode: only with --write-tags"),
        ((long_mp3, "--dry-run"), "--dry-run: only with --write-tags or --undo-tags"),
        (("--evaluate", tmp_path, "--write-tags"), "not --evaluate"),
        ((long_mp3, "--undo-tags", tmp_path / "j.jsonl"), "--undo-tags JOURNAL is a mode of its own"),
        ((long_mp3, "--write-tags", "--min-share", "1.5"), "must be between 0 and 1"),
    ):
        usage = analyze_cli(trained_run, *args)
        assert usage.returncode == 2 and message in usage.stderr, usage.stderr


def test_help_does_not_import_tensorflow():
    proc = analyzer_cli("--help")
    assert proc.returncode == 0 and "--evaluate" in proc.stdout and "<TAB>" in proc.stdout
    probe = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, track_analyzer, track_analyzer.cli, "
            "track_analyzer.__main__; print('tensorflow' in sys.modules, 'keras' in sys.modules)",
        ],
        cwd=REPO_ROOT,
        env=script_env(),
        capture_output=True,
        text=True,
    )
    assert probe.stdout.split() == ["False", "False"], probe.stderr


def make_tree(root: Path, files: dict[str, tuple[str, float]]) -> Path:
    """Write ``{relative path: (label signal, seconds)}``; label ``None`` writes silence."""
    for i, (rel, (label, seconds)) in enumerate(files.items()):
        y = signal(label, seconds, seed=900 + i) if label else np.zeros(int(seconds * SR), dtype=np.float32)
        write_audio(root / rel, y)
    return root


def test_cli_folder_table_csv_json(trained_run, analyzer, tmp_path, analysis_overlap):
    folder = make_tree(
        tmp_path / "music",
        {
            "a/x.wav": ("bass", 3.0),
            "a/b/y.mp3": ("hiss", 2.5),
            "z.flac": ("treble", 2.0),
            "quiet.wav": (None, 2.0),
            ".hidden.wav": ("bass", 1.0),
        },
    )
    (folder / "broken.mp3").write_bytes(b"not audio at all" * 64)
    (folder / "notes.txt").write_text("not a track")
    proc = analyze_cli(
        trained_run, folder, "--top-k", "1", "--csv", tmp_path / "out.csv", "--json", tmp_path / "out.json"
    )
    assert proc.returncode == 0, proc.stderr

    rows = [line.split("\t") for line in proc.stdout.splitlines()]
    assert [r[0] for r in rows] == ["a/b/y.mp3", "a/x.wav", "z.flac"]
    assert all(re.fullmatch(r"\w+ \d+\.\d %", r[1]) for r in rows)
    assert "broken.mp3: skipped: cannot decode audio" in proc.stderr
    assert "quiet.wav: skipped: silent" in proc.stderr

    with open(tmp_path / "out.csv", newline="") as handle:
        table = list(csv.DictReader(handle))
    assert [r["path"] for r in table] == ["a/b/y.mp3", "a/x.wav", "broken.mp3", "quiet.wav", "z.flac"]
    statuses = {r["path"]: r["status"] for r in table}
    assert statuses["a/x.wav"] == "ok" and statuses["broken.mp3"].startswith("skipped: cannot decode")
    labels = analyzer.labels
    for row in (r for r in table if r["status"] == "ok"):
        shares = np.array([float(row[f"share_{name}"]) for name in labels])
        assert shares.sum() == pytest.approx(1.0, abs=1e-5)
        # The folder verdict is the single-file verdict: one code path.
        single = analyze(folder / row["path"], analyzer, overlap=analysis_overlap)
        np.testing.assert_allclose(shares, single.shares, atol=1e-5)
        assert row["top_label"] == single.top_label

    header, *records = [json.loads(line) for line in (tmp_path / "out.json").read_text().splitlines()]
    assert header["settings"]["labels"] == list(labels) and header["settings"]["mode"] == "folder"
    assert [t["path"] for t in records] == [r["path"] for r in table]  # JSON Lines, in path order
    assert {t["path"]: t["status"] for t in records} == statuses
    top_share = {r["path"]: float(r["top_share"]) for r in table if r["status"] == "ok"}
    for record in records:
        if record["path"] in top_share:  # the CSV's 6 decimals: within 5e-7
            assert record["ranking"][0]["share"] == pytest.approx(top_share[record["path"]], abs=1e-6)


def test_cli_evaluate_accuracy_and_confusion(trained_run, tmp_path):
    tree = make_tree(
        tmp_path / "labelled",
        {
            "bass/b1.wav": ("bass", 3.0),
            "bass/more/b2.mp3": ("bass", 2.0),
            "treble/t1.wav": ("treble", 3.0),
            "treble/t2.wav": ("treble", 2.0),
            "hiss/h1.wav": ("hiss", 3.0),
            "hiss/h2.flac": ("hiss", 2.0),
            "jazz/j1.wav": ("bass", 2.0),  # not a label of the model
        },
    )
    (tree / "hiss" / "broken.wav").write_bytes(b"RIFF" + b"\0" * 40)
    csv_path = tmp_path / "report" / "eval.csv"
    proc = analyze_cli(trained_run, "--evaluate", tree, "--csv", csv_path, "--json", tmp_path / "eval.json")
    assert proc.returncode == 0, proc.stderr
    assert "jazz: not a label of the model" in proc.stderr and "broken.wav: skipped" in proc.stderr

    with open(csv_path, newline="") as handle:
        table = [r for r in csv.DictReader(handle) if r["status"] == "ok"]
    assert len(table) == 6
    correct = sum(r["top_label"] == r["true_label"] for r in table)
    assert (
        proc.stdout.splitlines()[0] == f"track accuracy {100 * correct / 6:.1f} % ({correct}/6 tracks, aggregation sum)"
    )
    assert "confusion matrix" in proc.stdout

    report = json.loads((tmp_path / "eval.json").read_text())["report"]
    labels = load_bundle(trained_run.run_folder).labels
    matrix = np.array(report["confusion_matrix"])
    assert matrix.shape == (3, 3) and matrix.sum(axis=1).tolist() == [2, 2, 2]
    for row in table:
        matrix[labels.index(row["true_label"]), labels.index(row["top_label"])] -= 1
    assert not matrix.any()  # the matrix counts exactly the CSV's verdicts
    assert report["accuracy"] == pytest.approx(correct / 6)
    assert is_png(csv_path.parent / "confusion.png")


# --------------------------------------------------------------------------- the ready taggers

needs_musicnn = pytest.mark.skipif(
    __import__("importlib.util").util.find_spec("musicnn") is None,
    reason="musicnn 0.1.0 (pretrained weights) is not installed; run make venv",
)


@needs_musicnn
def test_ready_tagger_ranks_its_50_tags_by_mean_probability(tmp_path):
    from genrekit.models.musicnn import musicnn_tags

    song = write_audio(
        tmp_path / "song.mp3", signal("treble", 7.0, seed=4) + signal("hiss", 7.0, seed=5), channels=2, out_rate=44100
    )
    out, plot = tmp_path / "tags.json", tmp_path / "tags.png"
    result = run_script(
        "-m track_analyzer",
        str(song),
        "--model",
        "musicnn-msd",
        "--top-k",
        "4",
        "--json",
        str(out),
        "--plot",
        str(plot),
    )
    assert result.returncode == 0, result.stderr
    assert len(re.findall(r"\S+ \d+\.\d %", result.stdout)) == 4
    data = json.loads(out.read_text())
    assert data["labels"] == list(musicnn_tags("musicnn-msd")) and len(data["labels"]) == 50
    assert data["aggregation"] == "mean" and data["slice_duration"] == 3.008 and data["multi_label"] is True
    scores = np.array([s["scores"] for s in data["slices"]])
    starts = np.array([s["start"] for s in data["slices"]])
    # 7 s: musicnn's extractor's patches, 187 frames of 256 samples one after the other, at 0 and 2.992 s
    assert scores.shape == (2, 50) and np.all((scores >= 0) & (scores <= 1))
    np.testing.assert_allclose(starts, np.arange(2) * 187 * 256 / 16000)
    assert data["overlap"] == pytest.approx(3.008 - 2.992)
    mean = dict(zip(data["labels"], scores.mean(axis=0)))
    ranking = data["ranking"]
    assert [r["score"] for r in ranking] == sorted((r["score"] for r in ranking), reverse=True)
    for r in ranking:  # a tag's score and share are its mean probability over the slices
        assert r["score"] == pytest.approx(mean[r["label"]], abs=1e-6) and r["share"] == pytest.approx(r["score"])
    assert plot.read_bytes()[:8] == PNG_SIGNATURE

    refused = run_script("-m track_analyzer", str(song), "--model", "musicnn-msd", "--aggregation", "sum")
    assert refused.returncode == 1 and refused.stderr.count("\n") == 1
    assert "tagger" in refused.stderr and "'mean'" in refused.stderr


@needs_musicnn
def test_ready_tagger_in_folder_mode(tmp_path):
    from genrekit.models.musicnn import musicnn_tags

    for k, label in enumerate(("bass", "hiss")):
        write_audio(tmp_path / "music" / f"{label}.wav", signal(label, 4.0, seed=k))
    table = tmp_path / "tags.csv"
    result = run_script("-m track_analyzer", str(tmp_path / "music"), "--model", "musicnn-mtt", "--csv", str(table))
    assert result.returncode == 0, result.stderr
    assert [line.split("\t")[0] for line in result.stdout.splitlines()] == ["bass.wav", "hiss.wav"]
    with open(table, newline="") as f:
        rows = list(csv.DictReader(f))
    assert [row["status"] for row in rows] == ["ok", "ok"]
    assert all(f"share_{tag}" in rows[0] for tag in musicnn_tags("musicnn-mtt"))
