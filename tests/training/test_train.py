"""train_crnn.py: checks before training, the run folder, resume, several runs.

End-to-end tests use the session fixture ``trained_run`` (generated audio through the
real build_dataset.py, process_dataset.py and train_crnn.py); the checks use small
processed.h5 files written with h5py in the documented layout.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest

from genrekit.core import h5layout
from genrekit.core.config import Config, PathsConfig, fingerprint, load_config, processing_settings
from genrekit.core.errors import GenrekitError
from genrekit.dataset.normalization import NormStats
from genrekit.inference.analyzer import analyze
from genrekit.models import registry
from genrekit.models.bundle import load_bundle
from genrekit.models.litert import LiteRTModel
from tests.conftest import TINY_LABELS, TINY_RUN, run_pipeline, tiny_config
from tests.h5fixtures import write_dataset
from tests.helpers import (
    after,
    kill_group_when,
    label_signal,
    make_corpus,
    model_weights,
    read_history,
    run_script,
    start_script,
    train_script,
    write_audio,
)

RUN_FILES = (
    "model.keras",
    "bundle.json",
    "history.csv",
    "curves.png",
    "report.json",
    "confusion.png",
    "predictions.npz",
)


# --------------------------------------------------------------------------- checks before training


def write_processed(cfg: Config, rows: dict[str, int]) -> Path:
    """A processed.h5 in the documented layout, made "with" the settings of ``cfg``."""
    path = cfg.processed_path
    write_dataset(path, cfg, rows)
    settings = processing_settings(cfg)
    with h5py.File(path, "a") as h5:
        n_mels = h5["train"]["specs"].shape[2]
        h5layout.set_json_attr(h5, "normalization", NormStats("standard", np.zeros(n_mels), np.ones(n_mels)).to_dict())
        h5layout.set_json_attr(h5, "processing_settings", settings)
        h5.attrs["processing_fingerprint"] = fingerprint(settings)
        h5.attrs["source_dataset_fingerprint"] = h5.attrs["dataset_fingerprint"]
    return path


def config_in(tmp_path: Path, **sections) -> Config:
    cfg = Config(paths=PathsConfig(audio_folder=tmp_path / "audio", output_folder=tmp_path / "output"))
    return dataclasses.replace(cfg, **sections)


def check_message(cfg: Config) -> str:
    from genrekit.training.data import open_processed

    with pytest.raises(GenrekitError) as info:
        open_processed(cfg)
    message = str(info.value)
    assert "\n" not in message
    return message


def test_no_processed_file_says_which_scripts_to_run(tmp_path):
    config = tmp_path / "params.json"
    config.write_text(json.dumps({"paths": {"output_folder": str(tmp_path / "nothing")}}))
    status, _, stderr = train_script("--config", str(config))
    assert status == 1
    errors = stderr.splitlines()
    assert len(errors) == 1 and errors[0].startswith("error: ")
    assert (
        "processed.h5: not found" in errors[0] and "build_dataset.py" in errors[0] and "process_dataset.py" in errors[0]
    )


def test_processed_file_from_other_settings_names_the_keys(tmp_path):
    cfg = config_in(tmp_path)
    write_processed(cfg, {"train": 15, "val": 15, "test": 15})
    other_features = dataclasses.replace(cfg, features=dataclasses.replace(cfg.features, n_mels=64))
    message = check_message(other_features)
    assert "features.n_mels" in message and "build_dataset.py and process_dataset.py" in message
    other_norm = dataclasses.replace(cfg, processing=dataclasses.replace(cfg.processing, norm_method="min_max"))
    message = check_message(other_norm)
    assert "processing.norm_method" in message and "run process_dataset.py again" in message


def test_processed_file_older_than_dataset(tmp_path):
    cfg = config_in(tmp_path)
    write_processed(cfg, {"train": 15, "val": 15, "test": 15})
    write_dataset(cfg.dataset_path, cfg, {"train": 15, "val": 15, "test": 15}, dataset_fingerprint="rebuilt")
    assert "made from an older dataset.h5; run process_dataset.py again" in check_message(cfg)


def test_split_without_slices(tmp_path):
    cfg = config_in(tmp_path)
    write_processed(cfg, {"train": 15, "val": 0, "test": 15})
    assert "the val split has no slices" in check_message(cfg)


def test_label_without_training_slices(tmp_path):
    cfg = config_in(tmp_path)
    write_processed(cfg, {"train": 5, "val": 15, "test": 15})  # one track: label blues only
    message = check_message(cfg)
    assert "no training slices for label(s) metal, pop" in message


def test_a_good_file_passes(tmp_path):
    from genrekit.training.data import open_processed

    cfg = config_in(tmp_path)
    write_processed(cfg, {"train": 15, "val": 5, "test": 6})
    data = open_processed(cfg)
    assert data.labels == ["blues", "metal", "pop"]
    assert data.rows == {"train": 15, "val": 5, "test": 6} and data.spec_shape == (12, 8)


def test_precision_policy():
    from genrekit.training.device import Device, precision_policy

    cpu, old_gpu, gpu = Device("CPU", False), Device("K80", True, (3, 7)), Device("A100", True, (8, 0))
    assert precision_policy("auto", cpu) == "float32"
    assert precision_policy("auto", old_gpu) == "float32"
    assert precision_policy("auto", gpu) == "mixed_float16"
    assert precision_policy("off", gpu) == "float32"
    assert precision_policy("on", cpu) == "mixed_float16"


# --------------------------------------------------------------------------- the run folder


def test_run_folder_is_complete(trained_run):
    folder = trained_run.run_folder
    for name in RUN_FILES:
        assert (folder / name).is_file(), name
    assert not (folder / "training").exists()  # in-progress state is gone
    assert any((folder / "logs").rglob("events.out.tfevents.*"))  # TensorBoard
    history = read_history(folder / "history.csv")
    assert [int(row["epoch"]) for row in history] == [1, 2]
    assert {"loss", "accuracy", "val_loss", "val_accuracy"} <= set(history[0])
    report = json.loads((folder / "report.json").read_text())
    assert report["epochs_trained"] == 2 and report["best_epoch"] in (1, 2)
    assert report["device"] == "CPU" and report["precision"] == "float32"


def test_report_agrees_with_saved_predictions(trained_run):
    folder = trained_run.run_folder
    report = json.loads((folder / "report.json").read_text())
    saved = np.load(folder / "predictions.npz")
    scores, labels, track_ids = saved["scores"], saved["labels"], saved["track_ids"]
    assert list(saved["label_names"]) == report["labels"]
    assert scores.shape == (report["test_slices"], len(report["labels"]))
    np.testing.assert_allclose(scores.sum(axis=1), 1.0, rtol=1e-4)

    for key in ("slice_accuracy", "track_accuracy"):
        assert 0.0 <= report[key] <= 1.0
    assert report["slice_accuracy"] == pytest.approx(np.mean(scores.argmax(axis=1) == labels))
    tracks = np.unique(track_ids)
    assert report["test_tracks"] == len(tracks)
    right = [scores[track_ids == t].sum(axis=0).argmax() == labels[track_ids == t][0] for t in tracks]
    assert report["track_accuracy"] == pytest.approx(np.mean(right))
    assert np.sum(report["slice"]["confusion_matrix"]) == len(labels)
    assert np.sum(report["track"]["confusion_matrix"]) == len(tracks)
    for level in ("slice", "track"):
        for values in report[level]["per_label"].values():
            assert 0.0 <= values["precision"] <= 1.0 and 0.0 <= values["recall"] <= 1.0


def test_bundle_and_model_take_processed_spectrograms(trained_run):
    cfg = load_config(trained_run.config)
    bundle = load_bundle(trained_run.run_folder)
    with h5py.File(cfg.processed_path, "r") as h5:
        assert bundle.labels == h5layout.labels_of(h5)
        assert bundle.normalization.to_dict() == h5layout.json_attr(h5, "normalization")
        assert list(bundle.input_shape[:2]) == list(h5["test"]["specs"].shape[1:])
        specs = h5["test"]["specs"][:4].astype(np.float32)[..., None]  # as stored: already normalized
    model = registry.load_model(bundle, "keras")
    assert model.count_params() == json.loads((trained_run.run_folder / "report.json").read_text())["parameters"]
    expected = np.load(trained_run.run_folder / "predictions.npz")["scores"][:4]
    np.testing.assert_allclose(np.asarray(model(specs, training=False)), expected, atol=1e-5)
    exported = registry.load_model(bundle)  # model.tflite, written beside model.keras
    assert isinstance(exported, LiteRTModel)
    np.testing.assert_allclose(exported.predict(specs), expected, atol=1e-5)


def test_finished_run_is_left_alone(trained_run):
    report = trained_run.run_folder / "report.json"
    before = report.stat().st_mtime_ns
    status, _, stderr = train_script("--config", str(trained_run.config))
    assert status == 0, stderr
    assert "complete; nothing to do" in stderr
    assert report.stat().st_mtime_ns == before


# --------------------------------------------------------------------------- resume, settings, several runs


@pytest.fixture()
def own_output(trained_run, tmp_path) -> Path:
    """A config whose output folder holds a copy of the trained run's processed.h5 (nothing else)."""
    data = json.loads(trained_run.config.read_text())
    data["paths"]["output_folder"] = str(tmp_path / "output")
    (tmp_path / "output").mkdir()
    shutil.copy(load_config(trained_run.config).processed_path, tmp_path / "output" / "processed.h5")
    config = tmp_path / "params.json"
    config.write_text(json.dumps(data))
    return config


@pytest.mark.slow
def test_sample_weighting_reaches_the_loss_and_a_bad_value_names_its_key(tmp_path):
    """training.sample_weighting on labels of 4, 2 and 1 tracks: one epoch from the same seed with and
    without weights ends at other weights (the weights reach the loss); an unknown value is refused with
    the key's name."""
    make_corpus(tmp_path / "audio", {"bass": 4, "treble": 2, "hiss": 1}, seconds=4.0, fmt="wav")
    config = tiny_config(tmp_path, tmp_path / "audio", split={"validation_share": 0.0, "test_share": 0.0})
    run_pipeline(config, "build_dataset.py", "process_dataset.py")
    data = json.loads(config.read_text())
    trained = {}
    for weighting in ("none", "genres_tracks", "tracks"):
        data["training"] = {**data.get("training", {}), "sample_weighting": weighting}
        config.write_text(json.dumps(data))
        status, _, stderr = train_script("--config", str(config), "--run-name", weighting, "--epochs", "1")
        if weighting == "tracks":
            assert status != 0 and "training.sample_weighting" in stderr, stderr
            continue
        assert status == 0, stderr
        run = load_bundle(tmp_path / "output" / "models" / weighting)
        trained[weighting] = registry.load_model(run, "keras").get_weights()
    assert any(not np.array_equal(a, b) for a, b in zip(trained["none"], trained["genres_tracks"], strict=True))


@pytest.mark.slow
def test_killed_at_any_instant_resumes_to_the_uninterrupted_result(own_output):
    """kill -9 of train_crnn.py at three instants, then the same command: the same weights and history,
    bit for bit, as a run that was never interrupted (same seed). On the CPU this holds by construction:
    batches and dropout masks follow from (seed, epoch), weights and optimizer state come back from the
    last epoch's backup, and TensorFlow's CPU kernels are deterministic for a given thread count."""
    status, _, stderr = train_script("--config", str(own_output), "--run-name", "reference", "--epochs", "3")
    assert status == 0, stderr
    models = own_output.parent / "output" / "models"
    reference = models / "reference"

    args = ["--config", str(own_output), "--run-name", "resumed", "--epochs", "3"]
    folder = models / "resumed"

    def history_rows():
        return len(read_history(folder / "history.csv")) if (folder / "history.csv").is_file() else 0

    instants = {
        "before the first epoch ended": lambda: (folder / "run_settings.json").is_file(),
        "in the middle of epoch 2": after(0.3, lambda: history_rows() >= 1),
        "while the run folder is written": lambda: (folder / "model.keras").is_file(),
    }
    for instant, condition in instants.items():
        process = start_script("train_crnn.py", *args)
        assert kill_group_when(process, condition), f"train_crnn.py finished before it could be killed {instant}"
        assert not (folder / "report.json").exists(), instant
    assert history_rows() == 3  # the last kill came after the last epoch

    status, _, stderr = train_script(*args)
    assert status == 0, stderr
    assert "epoch 3/3: loss" not in stderr  # not trained again
    assert (folder / "history.csv").read_text() == (reference / "history.csv").read_text()
    ours, theirs = model_weights(folder), model_weights(reference)
    assert ours.keys() == theirs.keys()
    for name in ours:
        np.testing.assert_array_equal(ours[name], theirs[name], err_msg=name)
    np.testing.assert_array_equal(
        np.load(folder / "predictions.npz")["scores"], np.load(reference / "predictions.npz")["scores"]
    )
    assert not (folder / "training").exists()


@pytest.mark.slow
def test_a_run_started_with_other_settings_is_refused_unless_restart(own_output):
    args = ["--config", str(own_output), "--run-name", "changed", "--epochs", "1"]
    assert train_script(*args)[0] == 0
    folder = own_output.parent / "output" / "models" / "changed"
    # a run made before training.lr_schedule and augmentation.eq_db existed trained at a constant rate and
    # without equalization: not as the defaults now say
    settings = json.loads((folder / "run_settings.json").read_text())
    del settings["training"]["lr_schedule"], settings["training"]["augmentation"]["eq_db"]
    (folder / "run_settings.json").write_text(json.dumps(settings))
    status, _, stderr = train_script(*args)
    assert status == 1 and "training.augmentation.eq_db, training.lr_schedule" in stderr
    data = json.loads(own_output.read_text())
    data["model"]["gru_units"] = [8]
    own_output.write_text(json.dumps(data))
    status, _, stderr = train_script(*args)
    assert status == 1 and "model.gru_units" in stderr and "--restart" in stderr
    status, _, stderr = train_script(*args, "--restart")
    assert status == 0, stderr
    assert [int(row["epoch"]) for row in read_history(folder / "history.csv")] == [1]
    assert json.loads((folder / "run_settings.json").read_text())["model"]["gru_units"] == [8]


@pytest.mark.slow
def test_training_on_everything_without_validation_or_test_split(tmp_path):
    """split shares of 0: a final model trained on all the data (an ensemble of two runs), which the
    analyzer then uses."""
    make_corpus(tmp_path / "audio", TINY_LABELS, seconds=4.0, fmt="wav")
    config = tiny_config(
        tmp_path,
        tmp_path / "audio",
        split={"validation_share": 0.0, "test_share": 0.0},
        training={"early_stopping_patience": 1, "reduce_lr_patience": 1, "runs": 2},
    )
    run_pipeline(config, "build_dataset.py", "process_dataset.py")
    status, stdout, stderr = train_script("--config", str(config), "--epochs", "3")
    assert status == 0, stderr
    assert "no validation split" in stderr and "no test split" in stderr
    assert "no test split, so no test accuracy" in stdout
    folder = tmp_path / "output" / "models" / TINY_RUN
    for run in ("run-01", "run-02"):
        report = json.loads((folder / run / "report.json").read_text())
        assert (report["tested"], report["validated"]) == (False, False)
        assert report["slice_accuracy"] is None and report["track_accuracy"] is None and report["test_slices"] == 0
        assert report["epochs_trained"] == 3 and not report["stopped_early"]  # patience 1 would have stopped it
        assert len(report["notes"]) == 2
        history = read_history(folder / run / "history.csv")
        assert [int(row["epoch"]) for row in history] == [1, 2, 3] and not history[0]["val_loss"]
        assert not (folder / run / "predictions.npz").exists() and not (folder / run / "training").exists()
    # strict JSON (no Infinity or NaN): nothing to average without a validation or a test split
    summary = json.loads((folder / "summary.json").read_text(), parse_constant=lambda name: pytest.fail(name))
    assert summary["best_val_loss"] is None and summary["slice_accuracy"] is None
    assert (summary["model"], summary["best_run"], "ensemble" in summary) == ("ensemble", "run-01", False)

    song = next((tmp_path / "audio" / "hiss").iterdir())
    result = run_script(
        "-m track_analyzer",
        str(song),
        "--config",
        str(config),
        "--model",
        str(folder),
        "--json",
        str(tmp_path / "a.json"),
    )
    assert result.returncode == 0, result.stderr
    analysis = json.loads((tmp_path / "a.json").read_text())
    assert analysis["labels"] == sorted(TINY_LABELS) and result.stdout.strip()


@pytest.mark.slow
def test_cosine_schedule_sets_the_rate_of_every_batch(own_output):
    """training.lr_schedule "cosine": the rate of the last batch of epoch e is base/2 (1 + cos(pi t/T)),
    t = that batch's index from the start, T = epochs x batches per epoch; no plateau reduction."""
    data = json.loads(own_output.read_text())
    data["training"].update(lr_schedule="cosine", reduce_lr_patience=1)  # a plateau would halve a constant rate
    own_output.write_text(json.dumps(data))
    status, _, stderr = train_script("--config", str(own_output), "--run-name", "cosine", "--epochs", "3")
    assert status == 0, stderr
    cfg = load_config(own_output)
    with h5py.File(cfg.processed_path, "r") as h5:
        steps = -(-len(h5["train/labels"]) // cfg.training.batch_size)
    base, total = cfg.training.learning_rate, 3 * steps
    expected = [base / 2 * (1 + np.cos(np.pi * ((epoch + 1) * steps - 1) / total)) for epoch in range(3)]
    folder = own_output.parent / "output" / "models" / "cosine"
    # float32 variable: 1e-6 relative
    np.testing.assert_allclose(
        [float(row["learning_rate"]) for row in read_history(folder / "history.csv")], expected, rtol=1e-6
    )
    settings = json.loads((folder / "run_settings.json").read_text())
    assert settings["training"]["lr_schedule"] == "cosine"


@pytest.mark.slow
def test_several_runs_report_mean_and_std(own_output):
    data = json.loads(own_output.read_text())
    data["training"]["runs"] = 2
    own_output.write_text(json.dumps(data))
    status, stdout, stderr = train_script("--config", str(own_output), "--run-name", "multi", "--epochs", "1")
    assert status == 0, stderr
    folder = own_output.parent / "output" / "models" / "multi"
    summary = json.loads((folder / "summary.json").read_text())
    assert summary["runs"] == 2 and summary["seeds"] == [1, 2]
    reports = [json.loads((folder / f"run-0{i}" / "report.json").read_text()) for i in (1, 2)]
    assert [r["seed"] for r in reports] == [1, 2]
    for key in ("slice_accuracy", "track_accuracy"):
        values = [r[key] for r in reports]
        assert summary[key]["mean"] == pytest.approx(np.mean(values))
        assert summary[key]["std"] == pytest.approx(np.std(values, ddof=1))
        assert f"{key.replace('_', ' ')} " in stdout
    for i in (1, 2):
        for name in RUN_FILES:
            assert (folder / f"run-0{i}" / name).is_file()
    assert load_bundle(folder).labels == reports[0]["labels"]

    # training.ensemble (the default): the folder's model scores a slice by the mean of the runs' scores
    # (float32 sums of two terms: 1e-6 covers the rounding of another summation order)
    import keras

    runs = [keras.models.load_model(folder / f"run-0{i}" / "model.keras") for i in (1, 2)]
    x = np.random.default_rng(0).standard_normal((5, *runs[0].inputs[0].shape[1:])).astype(np.float32)
    runs = [run.predict(x, verbose=0) for run in runs]
    ensemble = keras.models.load_model(folder / "model.keras").predict(x, verbose=0)
    np.testing.assert_allclose(ensemble, (runs[0] + runs[1]) / 2, atol=1e-6)
    assert summary["model"] == "ensemble"
    assert set(summary["ensemble"]) == {"slice_accuracy", "track_accuracy"}
    assert f"their ensemble {summary['ensemble']['track_accuracy']:.4f}" in stdout
    song = next(Path(data["paths"]["audio_folder"], "hiss").iterdir())
    result = run_script(
        "-m track_analyzer",
        str(song),
        "--config",
        str(own_output),
        "--model",
        str(folder),
        "--json",
        str(folder / "a.json"),
    )
    assert result.returncode == 0, result.stderr
    assert json.loads((folder / "a.json").read_text())["labels"] == sorted(TINY_LABELS)

    # training.ensemble false: the folder's model is the run with the lowest validation loss
    data["training"]["ensemble"] = False
    own_output.write_text(json.dumps(data))
    status, stdout, stderr = train_script("--config", str(own_output), "--run-name", "multi-best", "--epochs", "1")
    assert status == 0, stderr
    best_folder = own_output.parent / "output" / "models" / "multi-best"
    summary = json.loads((best_folder / "summary.json").read_text())
    assert summary["model"] == summary["best_run"] and "ensemble" not in summary
    best = best_folder / summary["best_run"]
    assert (best_folder / "model.keras").read_bytes() == (best / "model.keras").read_bytes()


@pytest.mark.slow
def test_mobilenetv2_from_pretrained_weights_trains_reports_and_serves_the_analyzer(own_output, tmp_path):
    """model.architecture "mobilenetv2" with model.pretrained_weights (a file the test writes, as a user's
    ImageNet file): train_crnn.py trains it from those weights, writes the usual run folder, and
    track_analyzer gives a verdict with it."""
    import keras

    base = keras.applications.MobileNetV2(
        input_shape=(40, 32, 3), alpha=0.35, include_top=False, weights=None, pooling="avg"
    )
    weights = tmp_path / "mine_no_top.weights.h5"
    base.save_weights(weights)
    data = json.loads(own_output.read_text())
    data["model"] = {"architecture": "mobilenetv2", "mobilenet_alpha": 0.35, "pretrained_weights": str(weights)}
    own_output.write_text(json.dumps(data))

    status, stdout, stderr = train_script("--config", str(own_output), "--run-name", "mobile", "--epochs", "1")
    assert status == 0, stderr
    folder = own_output.parent / "output" / "models" / "mobile"
    assert all((folder / name).is_file() for name in RUN_FILES)
    report = json.loads((folder / "report.json").read_text())
    assert report["epochs_trained"] == 1 and 0 <= report["slice_accuracy"] <= 1
    assert json.loads((folder / "run_settings.json").read_text())["model"]["architecture"] == "mobilenetv2"
    assert "test accuracy" in stdout

    song = tmp_path / "song.wav"
    write_audio(song, label_signal(1, 3.0, seed=9))
    verdict = analyze(song, folder, overlap=0.5)  # in this process: the CLI is tested elsewhere
    assert verdict.labels == tuple(sorted(TINY_LABELS)) and verdict.scores.shape == (5, 3)


@pytest.mark.slow
def test_cnn1d_on_waveform_slices_from_build_to_analyzer(tmp_path):
    """features.representation "waveform" + model.architecture "cnn1d": the build stores each slice's
    samples (rows of hop_length), processing standardizes each slice, train_crnn.py trains the 1D CNN,
    resumes it after kill -9 and writes the usual run folder, and the analyzer cuts a new file the same
    way. The classical baselines, which need log-mel spectrograms, refuse the dataset in one line."""
    make_corpus(tmp_path / "audio", TINY_LABELS, seconds=4.0, fmt="wav")
    config = tiny_config(
        tmp_path,
        tmp_path / "audio",
        features={"representation": "waveform", "sample_rate": 8000},
        processing={"norm_method": "per_slice"},
        model={"architecture": "cnn1d", "conv_filters": [4, 8]},
    )
    run_pipeline(config, "build_dataset.py", "process_dataset.py")
    cfg = load_config(config)
    with h5py.File(cfg.dataset_path, "r") as h5:
        assert h5["train/specs"].shape[1:] == (8000 // 512, 512)  # 15 rows of 512 samples: 0.96 s of 1 s
    with h5py.File(cfg.processed_path, "r") as h5:
        rows = h5["train/specs"][()].astype(np.float64)
    np.testing.assert_allclose(rows.std(axis=(1, 2)), 1.0, rtol=2e-3)  # float16 storage: 1e-3 relative

    # killed -9 during training, then the same command resumes; on the CPU the epochs it had saved
    # come out the same, bit for bit
    folder = tmp_path / "output" / "models" / TINY_RUN
    history = folder / "history.csv"
    process = start_script("train_crnn.py", "--config", str(config), "--epochs", "3")
    assert kill_group_when(process, after(0.3, history.is_file)), "train_crnn.py finished before it was killed"
    assert not (folder / "report.json").exists()
    first_rows = read_history(history)
    status, stdout, stderr = train_script("--config", str(config), "--epochs", "3")
    assert status == 0, stderr
    assert "gain_db, eq_db and frequency_masks do not apply" in stderr
    assert read_history(history)[: len(first_rows)] == first_rows and len(read_history(history)) == 3
    assert all((folder / name).is_file() for name in RUN_FILES) and "test accuracy" in stdout
    assert load_bundle(folder).input_shape == (15, 512, 1)
    verdict = analyze(next((tmp_path / "audio" / "bass").iterdir()), folder, overlap=0.5)
    assert verdict.labels == tuple(sorted(TINY_LABELS)) and verdict.scores.shape == (7, 3)  # 4 s: a slice per 0.5 s

    result = run_script("train_baselines.py", "--config", str(config), "--quiet")
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1 and "features.representation is 'waveform'" in result.stderr
