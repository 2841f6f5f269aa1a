"""The ready genre model, ``gtzan-genres`` (issue 27): ``python -m track_analyzer song.mp3`` with no
other argument ranks GTZAN's ten genres.

On generated audio the verdict itself means little (no GTZAN genre sounds like tones and noise), so
these tests check what the analyzer makes of the committed model: ten labels, a ranking, the files of
every mode, the LiteRT export against the Keras fallback. A real GTZAN clip is analyzed where
``../shared`` is present, and the committed weights are retrained and compared there too (a slow test:
`make test-all`).
"""

from __future__ import annotations

import csv
import importlib.util
import json
import re
import shutil
import sys

import numpy as np
import pytest

from genrekit.core.errors import GenrekitError
from genrekit.inference.analyzer import Analyzer
from genrekit.models import litert, registry
from genrekit.models.bundle import HEAD_FILE, load_bundle
from tests.helpers import REPO_ROOT, label_signal, run_script, write_audio

GENRES = ["blues", "classical", "country", "disco", "hiphop", "jazz", "metal", "pop", "reggae", "rock"]
READY = registry.READY["gtzan-genres"]
SHARED = REPO_ROOT.parent / "shared" / "data"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
TOLERANCE = 1e-5  # LiteRT against Keras through musicnn: about 2e-6 apart (genrekit/models/litert.py)
VERDICT = re.compile(r"^(\w+) (\d+\.\d) %  (\w+) (\d+\.\d) %  (\w+) (\d+\.\d) %$")

needs_musicnn = pytest.mark.skipif(
    importlib.util.find_spec("musicnn") is None,
    reason="the musicnn wheel (its checkpoints) is not installed; make venv installs it",
)
needs_shared = pytest.mark.skipif(
    not (SHARED / "gtzan_more_artists").is_dir(), reason=f"no shared GTZAN clips at {SHARED}"
)


@pytest.fixture(scope="module")
def song(tmp_path_factory):
    """12 s of pulses, then a low tone, as a 44.1 kHz stereo mp3."""
    y = np.concatenate([label_signal(3, 6.0, seed=1), label_signal(0, 6.0, seed=2)])
    return write_audio(tmp_path_factory.mktemp("ready") / "song.mp3", y, channels=2, out_rate=44100)


def verdict_line(line: str) -> list[str]:
    """The three labels of a verdict line, checked to be GTZAN genres with falling shares."""
    match = VERDICT.match(line)
    assert match, line
    labels, shares = match.groups()[::2], [float(share) for share in match.groups()[1::2]]
    assert set(labels) <= set(GENRES) and len(set(labels)) == 3 and shares == sorted(shares, reverse=True)
    return list(labels)


def test_the_default_model_is_the_committed_ready_model():
    bundle = registry.open_model()
    assert bundle.folder == READY and bundle.labels == GENRES
    assert registry.open_model("gtzan-genres") == bundle
    assert registry.family(bundle) == registry.KERAS and bundle.model_path == READY / HEAD_FILE
    assert bundle.head.backbone == "musicnn-msd" and bundle.head.backbone_output == "pooled"
    assert bundle.normalization.method == "none" and bundle.input_shape == (187, 96, 1)
    # every slice levelled, a short file looped, and a slice every 3.008 s at analysis (issue 33)
    assert bundle.features.level_normalization == "slice_rms" and bundle.slicing.pad_mode == "loop"
    assert bundle.analysis_overlap == 0.0
    if litert.interpreter_available():
        assert registry.export_path(bundle) == READY / "model.tflite" and not registry.needs_keras(bundle)
    with np.load(READY / HEAD_FILE, allow_pickle=False) as head:  # plain arrays, nothing pickled
        assert {name: head[name].shape for name in head.files} == {"scores.kernel": (1506, 10), "scores.bias": (10,)}
    card = (READY / "MODEL_CARD.md").read_text(encoding="utf-8")
    for words in ("484", "161 artist", "214", "held out", "zydeco", "research use", "ISC", "calibration"):
        assert words in card, words


def test_a_song_with_no_other_argument_gets_a_ten_genre_verdict(song, tmp_path):
    plain = run_script("-m track_analyzer", str(song))
    assert plain.returncode == 0, plain.stderr
    assert len(plain.stdout.splitlines()) == 1
    top = verdict_line(plain.stdout.strip())

    out, plot = tmp_path / "song.json", tmp_path / "song.png"
    result = run_script("-m track_analyzer", str(song), "--json", str(out), "--plot", str(plot), "--runtime", "litert")
    assert result.returncode == 0, result.stderr
    assert verdict_line(result.stdout.strip()) == top
    data = json.loads(out.read_text())
    assert data["model"] == "gtzan-genres" and data["labels"] == GENRES and data["aggregation"] == "sum"
    ranking = data["ranking"]
    assert sorted(r["label"] for r in ranking) == sorted(GENRES) and [r["label"] for r in ranking[:3]] == top
    assert [r["score"] for r in ranking] == sorted((r["score"] for r in ranking), reverse=True)
    assert sum(r["share"] for r in ranking) == pytest.approx(1.0, abs=1e-6)
    scores = np.array([s["scores"] for s in data["slices"]])
    assert scores.shape == (3, 10)  # 12 s: 3.008 s slices end to end (the bundle's analysis_overlap 0)
    np.testing.assert_allclose(scores.sum(axis=1), 1.0, atol=1e-5)  # a softmax per slice
    assert plot.read_bytes()[:8] == PNG_SIGNATURE


def test_folder_mode_and_evaluate(tmp_path):
    for k, genre in enumerate(("blues", "jazz")):
        write_audio(tmp_path / "music" / genre / f"{genre}.wav", label_signal(k, 4.0, seed=10 + k))
    table = tmp_path / "music.csv"
    folder = run_script("-m track_analyzer", str(tmp_path / "music"), "--csv", str(table))
    assert folder.returncode == 0, folder.stderr
    lines = folder.stdout.strip().splitlines()
    assert [line.split("\t")[0] for line in lines] == ["blues/blues.wav", "jazz/jazz.wav"]
    for line in lines:
        verdict_line(line.split("\t")[1])
    with open(table, newline="") as f:
        rows = list(csv.DictReader(f))
    assert [row["status"] for row in rows] == ["ok", "ok"]
    assert all(sum(float(row[f"share_{genre}"]) for genre in GENRES) == pytest.approx(1.0, abs=1e-5) for row in rows)

    report = tmp_path / "evaluate.json"
    evaluated = run_script("-m track_analyzer", "--evaluate", str(tmp_path / "music"), "--json", str(report))
    assert evaluated.returncode == 0, evaluated.stderr
    data = json.loads(report.read_text())
    assert data["model"] == "gtzan-genres" and data["labels"] == GENRES and len(data["tracks"]) == 2
    assert 0.0 <= data["report"]["accuracy"] <= 1.0


def test_either_export_runs_on_request_and_a_results_file_keeps_its_precision(song, tmp_path):
    """--precision float and int8 both give a ten-genre verdict (int8 on any CPU, when asked for); a library's
    results file records the precision, and is not resumed with the other (their scores differ)."""
    for precision in ("float", "int8"):
        result = run_script("-m track_analyzer", str(song), "--precision", precision)
        assert result.returncode == 0, result.stderr
        verdict_line(result.stdout.strip())
    write_audio(tmp_path / "music" / "a.wav", label_signal(1, 4.0, seed=3))
    table = tmp_path / "music.csv"
    first = run_script("-m track_analyzer", str(tmp_path / "music"), "--csv", str(table), "--precision", "float")
    assert first.returncode == 0, first.stderr
    assert json.loads(table.with_name("music.csv.settings.json").read_text())["precision"] == "float"
    other = run_script("-m track_analyzer", str(tmp_path / "music"), "--csv", str(table), "--precision", "int8")
    assert other.returncode != 0 and "precision" in other.stderr
    keras_int8 = run_script("-m track_analyzer", str(song), "--precision", "int8", "--runtime", "keras")
    assert keras_int8.returncode != 0 and "--precision int8" in keras_int8.stderr


def test_help_says_what_the_default_model_is():
    result = run_script("-m track_analyzer", "--help")
    assert result.returncode == 0
    text = " ".join(result.stdout.split())
    for words in (
        "(the default; --model gtzan-genres)",
        "484 GTZAN clips",
        "161 artist groups",
        "whole artists held out",
        "balanced accuracy",
        "research use",
    ):
        assert words in text, words


@needs_musicnn
def test_the_export_and_the_keras_fallback_agree(song):
    """The LiteRT export (what the analyzer runs) and the Keras model rebuilt from musicnn's checkpoints
    and ``head.npz`` (``--runtime keras``) score the same slices alike."""
    exported = Analyzer(runtime="litert", precision="float")  # no model: the ready genre model
    rebuilt = Analyzer("gtzan-genres", runtime="keras")
    assert isinstance(exported.model, litert.LiteRTModel) and not isinstance(rebuilt.model, litert.LiteRTModel)
    slices = exported.slice_settings().load(song)
    ours, theirs = exported.analyze_slices(song, slices), rebuilt.analyze_slices(song, slices)
    np.testing.assert_allclose(ours.scores, theirs.scores, atol=TOLERANCE, rtol=0)
    assert [r.label for r in ours.ranking] == [r.label for r in theirs.ranking]


@needs_musicnn
def test_a_broken_ready_folder_is_refused_in_one_line(tmp_path):
    folder = shutil.copytree(READY, tmp_path / "ready")
    np.savez(
        folder / HEAD_FILE,
        **{"scores.kernel": np.zeros((200, 10), np.float32), "scores.bias": np.zeros(10, np.float32)},
    )
    with pytest.raises(GenrekitError, match=r"head\.npz: cannot load the model \(scores\.kernel has shape"):
        registry.load_model(registry.open_model(folder), runtime="keras")
    (folder / HEAD_FILE).unlink()
    with pytest.raises(GenrekitError, match=r"head\.npz: not found"):
        load_bundle(folder)


@needs_shared
def test_a_real_gtzan_clip(tmp_path):
    """A 16 kHz clip of ``gtzan_more_artists`` (resampled as the build does): a training clip of the
    ready model, so its genre must be among the three best."""
    clip = SHARED / "gtzan_more_artists" / "metal" / "metal.00022.flac"
    out = tmp_path / "clip.json"
    result = run_script("-m track_analyzer", str(clip), "--json", str(out))
    assert result.returncode == 0, result.stderr
    assert "metal" in verdict_line(result.stdout.strip())
    assert len(json.loads(out.read_text())["slices"]) == 9  # 30 s: a slice every 3.008 s


@pytest.mark.slow
@needs_shared
@needs_musicnn
def test_retraining_gives_the_committed_weights(tmp_path):
    """``tools/train_ready_model.py --check``: the committed script trains the committed model again
    (about 3 minutes on 2 cores: build, processing, musicnn's features of 4,607 slices, 20 epochs, the
    LiteRT export), so a change that moves the weights is caught by `make test-all` and CI."""
    result = run_script("tools/train_ready_model.py", "--check", "--work", str(tmp_path), timeout=1800)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "the retrained model agrees" in result.stdout, result.stdout
    print(result.stdout, file=sys.stderr)
