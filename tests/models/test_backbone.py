"""genrekit.models.backbone: a pretrained musicnn under a new head, from pipeline_parameters.json to the analyzer.

The pretrained weights come from the musicnn 0.1.0 wheel that ``make`` installs; without it
these tests skip.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import h5py
import numpy as np
import pytest

from genrekit.core.config import BACKBONE_FEATURES
from genrekit.models.bundle import load_bundle
from tests.conftest import TINY_LABELS, run_pipeline
from tests.helpers import (
    after,
    kill_group_when,
    make_corpus,
    model_weights,
    read_history,
    run_script,
    start_script,
    train_script,
    write_config,
)

pytestmark = [
    pytest.mark.skipif(
        importlib.util.find_spec("musicnn") is None,
        reason="musicnn 0.1.0 (pretrained weights) is not installed; run make venv",
    ),
    pytest.mark.slow,  # musicnn's features, three trainings and a kill -9
]


def backbone_config(root: Path, audio: Path, run_name: str, **model) -> Path:
    return write_config(
        root / "pipeline_parameters.json",
        paths={"audio_folder": str(audio), "output_folder": str(root / "output")},
        split={"validation_share": 0.25, "test_share": 0.25, "seed": 3},
        model={"backbone": "musicnn-msd", **model},
        training={"run_name": run_name, "epochs": 2, "batch_size": 16, "learning_rate": 0.003, "seed": 1},
        analysis={"overlap": 1.0},
    )


def test_frozen_backbone_trains_resumes_and_the_analyzer_uses_it(tmp_path):
    make_corpus(tmp_path / "audio", TINY_LABELS, seconds=5.0, fmt="wav")
    config = backbone_config(tmp_path, tmp_path / "audio", "reference")
    run_pipeline(config, "build_dataset.py", "process_dataset.py")
    with h5py.File(tmp_path / "output" / "dataset.h5", "r") as h5:  # the build made musicnn's input
        assert h5["train"]["specs"].shape[1:] == (187, 96)
        assert json.loads(h5.attrs["features"])["log_scale"] == "musicnn"
    status, _, stderr = train_script("--config", str(config))
    assert status == 0, stderr
    assert "backbone features" in stderr  # computed once, not every epoch
    models = tmp_path / "output" / "models"
    reference = models / "reference"

    # kill -9 in the middle of training, then the same command: the uninterrupted result
    args = ["--config", str(config), "--run-name", "resumed"]
    history = models / "resumed" / "history.csv"
    process = start_script("train_crnn.py", *args)
    assert kill_group_when(process, after(0.2, lambda: history.is_file())), "finished before it was killed"
    assert not (models / "resumed" / "report.json").exists()
    status, _, stderr = train_script(*args)
    assert status == 0, stderr
    assert history.read_text() == (reference / "history.csv").read_text()
    ours, theirs = model_weights(models / "resumed"), model_weights(reference)
    for name in theirs:
        np.testing.assert_array_equal(ours[name], theirs[name], err_msg=name)

    report = json.loads((reference / "report.json").read_text())
    assert report["epochs_trained"] == 2 and report["test_slices"] > 0
    assert report["multiply_adds_per_slice"] > 10**9  # musicnn's front end: about 1.4 G per patch
    bundle = load_bundle(reference)
    assert bundle.features == BACKBONE_FEATURES and bundle.input_shape == (187, 96, 1)
    assert bundle.normalization.method == "none"
    song = next((tmp_path / "audio" / "hiss").iterdir())
    result = run_script(
        "-m track_analyzer",
        str(song),
        "--config",
        str(config),
        "--model",
        str(reference),
        "--json",
        str(tmp_path / "a.json"),
    )
    assert result.returncode == 0, result.stderr
    analysis = json.loads((tmp_path / "a.json").read_text())
    assert analysis["labels"] == sorted(TINY_LABELS) and len(read_history(reference / "history.csv")) == 2
    assert sum(r["share"] for r in analysis["ranking"]) == pytest.approx(1.0, abs=1e-5)

    # training.runs 2: one feature pass for both runs, and an ensemble that holds the backbone once
    import keras

    data = json.loads(config.read_text())
    data["training"]["runs"] = 2
    config.write_text(json.dumps(data))
    status, _, stderr = train_script("--config", str(config), "--run-name", "two-runs", "--epochs", "1")
    assert status == 0, stderr
    assert stderr.count("computing the backbone's features") == 1
    folder = models / "two-runs"
    assert not (folder / "training").exists()  # the shared features are removed with the work folder
    runs = [keras.models.load_model(folder / f"run-0{i}" / "model.keras") for i in (1, 2)]
    ensemble = keras.models.load_model(folder / "model.keras")
    head_parameters = runs[0].get_layer("head").count_params()
    assert ensemble.count_params() == runs[0].count_params() + head_parameters
    # the same backbone under both heads: the mean of the runs' scores, up to float32 rounding
    x = np.random.default_rng(0).standard_normal((3, 187, 96, 1)).astype(np.float32)
    expected = (runs[0].predict(x, verbose=0) + runs[1].predict(x, verbose=0)) / 2
    np.testing.assert_allclose(ensemble.predict(x, verbose=0), expected, atol=1e-6)
    result = run_script("-m track_analyzer", str(song), "--config", str(config), "--model", str(folder))
    assert result.returncode == 0, result.stderr
