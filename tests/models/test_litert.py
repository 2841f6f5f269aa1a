"""The LiteRT exports score slices as the Keras models do, and the analyzer runs them without TensorFlow
(issue 23).

Tolerance: the scores are probabilities in [0, 1] computed in float32 by two engines that sum in
different orders (oneDNN for Keras, XNNPACK for LiteRT). Measured: about 1e-7 on a CRNN's softmax and
up to 2e-6 through musicnn's 1.4 G multiply-adds per slice; 1e-5 leaves room for other CPUs and kernels
while a wrong weight, layer or normalization moves scores by far more.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys

import numpy as np
import pytest

from genrekit.audio.features import load_track_slices, slice_geometry
from genrekit.core.config import (
    BACKBONE_FEATURES,
    BACKBONE_SLICE_DURATION,
    BuildConfig,
    FeaturesConfig,
    ModelConfig,
    SlicingConfig,
)
from genrekit.models import litert, registry
from tests.helpers import REPO_ROOT, label_signal, script_env, write_audio

TOLERANCE = 1e-5
SILENCE = BuildConfig().silence_threshold_db
needs_musicnn = pytest.mark.skipif(
    importlib.util.find_spec("musicnn") is None,
    reason="the musicnn wheel (its checkpoints) is not installed; make venv installs it",
)


@pytest.fixture(scope="module")
def song(tmp_path_factory):
    """40 s of four kinds of sound in turn, as a 44.1 kHz stereo mp3."""
    y = np.concatenate([label_signal(kind, 10.0, seed=50 + kind) for kind in range(4)])
    return write_audio(tmp_path_factory.mktemp("litert") / "song.mp3", y, out_rate=44100, channels=2)


def standardized(specs: np.ndarray) -> np.ndarray:
    """Slices as a trained run's analyzer feeds them: per band standardized, with a channel axis."""
    mean, std = specs.mean(axis=(0, 1)), specs.std(axis=(0, 1)) + 1e-3
    return ((specs - mean) / std)[..., np.newaxis].astype(np.float32)


def assert_same_scores(model, path, x: np.ndarray) -> None:
    exported = litert.LiteRTModel(path).predict(x)
    expected = np.asarray(model.predict_on_batch(x), dtype=np.float32)
    assert exported.shape == expected.shape
    np.testing.assert_allclose(exported, expected, atol=TOLERANCE, rtol=0)
    # the track's verdict: the same ranking of the summed slice scores
    assert list(np.argsort(-exported.sum(axis=0), kind="stable")) == list(
        np.argsort(-expected.sum(axis=0), kind="stable")
    )


def crnn_slices(song, features: FeaturesConfig | None = None, duration: float = 3.0) -> np.ndarray:
    features = features or FeaturesConfig()
    slices = load_track_slices(
        song, SlicingConfig(slice_duration=duration, overlap=1.0), features, silence_threshold_db=SILENCE
    )
    return standardized(slices.specs[:24])


@pytest.mark.parametrize("architecture", ["crnn", pytest.param("mobilenetv2", marks=pytest.mark.slow)])
def test_networks_export_with_the_same_scores(architecture, song, tmp_path):
    import keras

    from genrekit.models.networks import build_model

    keras.utils.set_random_seed(1)
    x = crnn_slices(song)
    model = build_model(x.shape[1:], 10, ModelConfig(architecture=architecture))
    assert_same_scores(model, litert.export(model, tmp_path / "model.tflite"), x)


def test_the_1d_cnn_on_waveform_rows_exports_with_the_same_scores(song, tmp_path):
    import keras

    from genrekit.models.networks import build_model

    keras.utils.set_random_seed(2)
    features = FeaturesConfig(representation="waveform", sample_rate=16000, hop_length=400)
    slices = load_track_slices(
        song, SlicingConfig(slice_duration=2.0, overlap=0.5), features, silence_threshold_db=SILENCE
    )
    x = (slices.specs[:24] / (np.abs(slices.specs).max() + 1e-6))[..., np.newaxis].astype(np.float32)
    model = build_model(
        x.shape[1:], 6, ModelConfig(architecture="cnn1d", conv_filters=(16, 32, 32), time_pools=(1, 1, 1))
    )
    assert_same_scores(model, litert.export(model, tmp_path / "model.tflite"), x)


@pytest.mark.slow
def test_an_ensemble_of_crnns_exports_with_the_same_scores(song, tmp_path):
    import keras

    from genrekit.models.networks import build_crnn

    keras.utils.set_random_seed(3)
    x = crnn_slices(song)
    small = ModelConfig(conv_filters=(16, 32, 32), time_pools=(2, 2, 2), gru_units=(16, 16))
    ensemble = registry.ensemble([build_crnn(x.shape[1:], 10, small, name=f"m{i}") for i in range(3)])
    assert_same_scores(ensemble, litert.export(ensemble, tmp_path / "model.tflite"), x)


def test_wide_single_channel_convolutions_are_exported_as_two_with_the_same_scores(tmp_path):
    """inference_clone splits a "valid" (kh, kw >= UNFOLD_MIN_WIDTH) convolution on one channel in two (musicnn's
    timbral branches), inside nested models too; narrower or "same" ones stay as they are."""
    import keras
    from keras import layers

    keras.utils.set_random_seed(6)
    inputs = keras.Input((24, 40, 1))
    wide = layers.Conv2D(6, (5, litert.UNFOLD_MIN_WIDTH + 4), activation="relu", name="wide")(inputs)
    narrow = layers.Conv2D(6, (3, 3), padding="same", name="narrow")(inputs)
    pooled = layers.Concatenate()([layers.GlobalMaxPooling2D()(wide), layers.GlobalMaxPooling2D()(narrow)])
    inner = keras.Model(inputs, pooled, name="inner")
    model = keras.Sequential([keras.Input((24, 40, 1)), inner, layers.Dense(4, activation="softmax")])
    clone = litert.inference_clone(model)
    split = clone.get_layer("inner").get_layer("wide")
    assert [type(layer).__name__ for layer in split.layers] == ["Conv2D", "Conv2D"]
    assert type(clone.get_layer("inner").get_layer("narrow")) is layers.Conv2D
    x = np.random.default_rng(6).standard_normal((8, 24, 40, 1)).astype(np.float32)
    np.testing.assert_allclose(clone.predict_on_batch(x), model.predict_on_batch(x), atol=1e-6, rtol=0)
    assert_same_scores(model, litert.export(model, tmp_path / "model.tflite"), x)


@needs_musicnn
@pytest.mark.slow
@pytest.mark.parametrize("shared_backbone", [False, True])
def test_backbone_runs_export_with_the_same_scores(shared_backbone, song, tmp_path):
    import keras

    from genrekit.models import backbone

    keras.utils.set_random_seed(4)
    config = ModelConfig(backbone="musicnn-msd", backbone_output="pooled")
    embedder = backbone.build_embedder(config)
    heads = [backbone.build_head(embedder.output_shape[-1], 10, config) for _ in range(2)]
    members = [backbone.build_classifier(embedder, head) for head in heads]
    model = registry.ensemble(members, shared_backbone=True) if shared_backbone else members[0]
    slices = load_track_slices(
        song,
        SlicingConfig(slice_duration=BACKBONE_SLICE_DURATION, overlap=0.0),
        BACKBONE_FEATURES,
        silence_threshold_db=SILENCE,
    )
    x = slices.specs[:10, ..., np.newaxis].astype(np.float32)
    assert_same_scores(model, litert.export(model, tmp_path / "model.tflite"), x)


@needs_musicnn
@pytest.mark.parametrize("name", registry.PRETRAINED)
def test_the_shipped_tagger_exports_score_as_the_keras_port(name, song):
    """genrekit/models/exports/<name>.tflite (made by tools/export_models.py --taggers) against the Keras
    port of the wheel's checkpoints, on every patch of a real track."""
    slices = load_track_slices(
        song,
        SlicingConfig(slice_duration=BACKBONE_SLICE_DURATION, overlap=0.0),
        BACKBONE_FEATURES,
        silence_threshold_db=SILENCE,
    )
    x = slices.specs[..., np.newaxis].astype(np.float32)
    assert len(x) == 13
    assert_same_scores(registry.pretrained_tagger(name), registry.tagger_export(name), x)


def test_a_trained_run_analyzes_the_same_with_either_runtime(trained_run, song):
    from genrekit.inference.analyzer import Analyzer

    exported, keras_run = Analyzer(trained_run.run_folder), Analyzer(trained_run.run_folder, runtime="keras")
    assert isinstance(exported.model, litert.LiteRTModel) and not isinstance(keras_run.model, litert.LiteRTModel)
    a, b = exported.analyze(song, overlap=0.5), keras_run.analyze(song, overlap=0.5)
    np.testing.assert_allclose(a.scores, b.scores, atol=TOLERANCE, rtol=0)
    assert [r.label for r in a.ranking] == [r.label for r in b.ranking]


def imported_modules(*args: str) -> set[str]:
    """The top-level packages a ``python -m track_analyzer`` run imports (``-X importtime``)."""
    env = {**script_env(), "TF_CPP_MIN_LOG_LEVEL": "0"}  # nothing hides fd 2 (cli.quiet_native_logs)
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "track_analyzer", *args],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = [line.split("|")[-1].strip() for line in proc.stderr.splitlines() if line.startswith("import time:")]
    return {name.split(".")[0] for name in lines[1:]}


def test_the_analyzer_never_imports_tensorflow_with_an_export(trained_run, song):
    assert (trained_run.run_folder / litert.EXPORT_FILE).is_file()  # train_crnn.py wrote it
    modules = imported_modules(str(song), "--model", str(trained_run.run_folder), "--config", str(trained_run.config))
    assert "ai_edge_litert" in modules and not modules & {"tensorflow", "keras", "tf_keras"}
    with_keras = imported_modules(
        str(song), "--model", str(trained_run.run_folder), "--config", str(trained_run.config), "--runtime", "keras"
    )
    assert "tensorflow" in with_keras  # the check above can fail


def test_geometry_of_the_shipped_exports():
    for name in registry.PRETRAINED:
        model = litert.LiteRTModel(registry.tagger_export(name))
        geometry = slice_geometry(BACKBONE_SLICE_DURATION, 0.0, BACKBONE_FEATURES)
        assert model.input_shape == (None, geometry.n_frames, geometry.n_mels, 1) and model.output_shape == (None, 50)
