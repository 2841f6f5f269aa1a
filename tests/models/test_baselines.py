"""train_baselines.py and genrekit.models.baselines: features, predictions from saved arrays, run folders, analyzer."""

from __future__ import annotations

import json

import librosa
import numpy as np
import pytest

from genrekit.core.config import FeaturesConfig
from genrekit.models.baselines import (
    FAMILIES,
    BaselineModel,
    export_arrays,
    feature_names,
    load_model,
    make_estimator,
    predict_scores,
    save_model,
    slice_features,
)
from genrekit.models.bundle import load_bundle
from genrekit.training.baselines import GRIDS
from tests.conftest import run_pipeline, tiny_config
from tests.helpers import make_corpus, run_script

FEATURES = FeaturesConfig(n_mels=32)


def blobs(n_labels: int, seed: int = 0, per_label: int = 30, dim: int = 6) -> tuple[np.ndarray, np.ndarray]:
    """Overlapping Gaussian clusters: probabilities away from 0 and 1, so the comparison is meaningful."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 1.0, (n_labels, dim))
    X = np.concatenate([c + rng.normal(0, 1.0, (per_label, dim)) for c in centres])
    return X, np.repeat(np.arange(n_labels), per_label)


@pytest.mark.filterwarnings(
    "ignore:The `probability` parameter:FutureWarning"
)  # see genrekit.training.baselines.search
@pytest.mark.parametrize("n_labels", [2, 4])
@pytest.mark.parametrize("family", FAMILIES)
def test_saved_arrays_reproduce_predict_proba(family, n_labels, tmp_path):
    X, y = blobs(n_labels)
    queries = blobs(n_labels, seed=1, per_label=10)[0]
    params = GRIDS[family][1]
    estimator = make_estimator(family, params, seed=0).fit(X, y)
    arrays, stored = export_arrays(family, estimator, X, y)
    # through model.npz (allow_pickle=False) and back: only plain arrays survive the trip
    save_model(
        tmp_path, BaselineModel(family, stored, arrays, np.zeros(X.shape[1]), np.ones(X.shape[1]), FEATURES, n_labels)
    )
    loaded = load_model(
        tmp_path / "model.npz",
        {"family": family, "params": stored, "feature_set": "slice-stats-v1"},
        FEATURES,
        n_labels,
    )
    ours = predict_scores(family, loaded.arrays, loaded.params, queries, n_labels)
    theirs = estimator.predict_proba(queries)
    # the same formulas in float64 in another summation order; libsvm's pairwise coupling stops
    # at the same iteration, so 1e-9 leaves a margin of ~1e6 over the rounding differences
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-9)
    assert 0.05 < theirs.max(axis=1).mean() < 0.999 or family == "knn"  # not all saturated


def test_features_match_librosa_mfcc_and_names():
    rng = np.random.default_rng(0)
    specs = rng.uniform(-90, -10, (3, 40, 32)).astype(np.float16)
    X = slice_features(specs, FEATURES)
    names = feature_names(FEATURES)
    assert X.shape == (3, len(names))
    mfcc = librosa.feature.mfcc(S=specs[1].astype(np.float64).T, n_mfcc=20)  # (20, frames)
    begin = names.index("mfcc0_mean")
    np.testing.assert_allclose(X[1, begin : begin + 20], mfcc.mean(axis=1), rtol=1e-10, atol=1e-9)
    np.testing.assert_allclose(X[1, :32], specs[1].astype(np.float64).mean(axis=0), rtol=1e-12)
    # a float32 spectrogram gives the vector of its float16 copy (the analyzer's and the dataset's)
    np.testing.assert_array_equal(slice_features(specs.astype(np.float32)[..., None], FEATURES), X)


def test_train_baselines_run_folders_and_analyzer(tmp_path, trained_run):
    audio = tmp_path / "audio"
    make_corpus(audio, {"bass": 4, "treble": 4, "hiss": 4}, seconds=3.0)
    config = tiny_config(tmp_path, audio)
    run_pipeline(config, "build_dataset.py")
    result = run_script("train_baselines.py", "--config", str(config), "--quiet")
    assert result.returncode == 0, result.stderr[-3000:]
    models = tmp_path / "output" / "models"
    summary = json.loads((models / "baselines.json").read_text())
    assert sorted(summary) == sorted(FAMILIES)

    crnn_report = json.loads((trained_run.run_folder / "report.json").read_text())
    from genrekit.inference.analyzer import analyze

    for family in FAMILIES:
        folder = models / f"baseline-{family}"
        for name in ("model.npz", "bundle.json", "report.json", "confusion.png", "predictions.npz"):
            assert (folder / name).is_file(), f"{family}: {name} missing"
        report = json.loads((folder / "report.json").read_text())
        assert set(crnn_report) <= set(report)  # the CRNN's schema, plus the search
        assert set(report["track"]) == set(crnn_report["track"])
        assert report["hyperparameters"] in [row["params"] for row in report["hyperparameter_search"]]
        assert len(report["hyperparameter_search"]) == len(GRIDS[family])
        assert report["slice_accuracy"] >= 2 / 3, f"{family}: {report['slice_accuracy']}"  # easy generated labels

        # the analyzer, on a test track at the build's own slicing, gives the test scores of training
        bundle = load_bundle(folder)
        assert bundle.baseline["family"] == family
        predictions = np.load(folder / "predictions.npz")
        track_id = int(predictions["track_ids"][0])
        import h5py

        with h5py.File(tmp_path / "output" / "dataset.h5") as h5:
            path = audio / h5["tracks"][track_id]["path"].decode()
        analysis = analyze(path, folder, overlap=0.5)
        expected = predictions["scores"][predictions["track_ids"] == track_id]
        assert analysis.scores.shape == expected.shape
        # same audio path, same features from float16-rounded spectrograms; the spectrogram of the
        # whole track differs from the build's in the last float32 bits at most (see genrekit.audio.features)
        np.testing.assert_allclose(analysis.scores, expected, atol=1e-4)

    # the command line, once: a baseline run folder is a --model like any other
    cli = run_script("-m track_analyzer", str(path), "--model", str(models / "baseline-svm"), "--overlap", "0.5")
    assert cli.returncode == 0, cli.stderr[-2000:]
    assert "%" in cli.stdout

    again = run_script("train_baselines.py", "--config", str(config), "--quiet", "--models", "gnb")
    assert again.returncode == 0 and "complete; nothing to do" in again.stderr


def test_train_baselines_errors(tmp_path):
    config = tiny_config(tmp_path, tmp_path / "audio")
    result = run_script("train_baselines.py", "--config", str(config))
    assert result.returncode != 0
    assert result.stderr.strip().splitlines()[-1].startswith("error: ") and "dataset.h5" in result.stderr
