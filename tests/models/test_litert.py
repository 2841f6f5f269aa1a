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


# The int8 exports against the float ones. Dynamic-range int8 weights move a slice's probabilities by a few
# hundredths (measured on the 40 s song below: 0.061 for the ready model, 0.015-0.017 for the taggers; on
# 60 real GTZAN slices 0.06); 0.15 leaves room for other CPUs' kernels while a wrong or unquantized layer
# moves them by their own scale. The verdict (the sum of the slices' scores) and a tagger's top five tags
# must not move: the share of files where they do is measured on real music by benchmarks/quantization.py.
INT8_TOLERANCE = 0.15


@pytest.mark.parametrize("name", ["gtzan-genres", *registry.PRETRAINED])
def test_the_shipped_int8_exports_keep_the_float_exports_verdict(name, song):
    bundle = registry.open_model(name)
    slices = load_track_slices(
        song,
        SlicingConfig(slice_duration=BACKBONE_SLICE_DURATION, overlap=1.504),
        BACKBONE_FEATURES,
        silence_threshold_db=SILENCE,
    )
    x = slices.specs[..., np.newaxis].astype(np.float32)
    scores = {
        precision: litert.LiteRTModel(registry.export_path(bundle, precision), max_rows=registry.MUSICNN_ROWS).predict(
            x
        )
        for precision in litert.PRECISIONS
    }
    assert litert.int8_weights(registry.export_path(bundle, "int8")) == 5  # musicnn's five front-end branches
    assert litert.int8_weights(registry.export_path(bundle, "float")) == 0
    np.testing.assert_allclose(scores["int8"], scores["float"], atol=INT8_TOLERANCE, rtol=0)
    assert not np.array_equal(scores["int8"], scores["float"])  # it is another computation
    track = {precision: value.sum(axis=0) for precision, value in scores.items()}
    assert np.argmax(track["int8"]) == np.argmax(track["float"])
    if bundle.multi_label:
        assert set(np.argsort(-track["int8"])[:5]) == set(np.argsort(-track["float"])[:5])


def test_the_int8_export_quantizes_the_banded_front_end_and_2d_convolutions_only(tmp_path):
    """A timbral-like and a temporal-like chain (their banded forms), a 2D convolution over several channels
    and a dense head: the first three get int8 weights, the head and the one-channel convolution do not."""
    import keras
    from keras import layers

    from tests.models.test_max_pooled import chain

    keras.utils.set_random_seed(8)
    timbral, temporal = chain("relu", 5), chain("relu", 6, (1, 20), "same", "height")
    inputs = keras.Input((14, 40, 1))
    narrow = layers.Conv2D(8, (3, 3), activation="relu", name="narrow")(inputs)  # one input channel
    wide = layers.Conv2D(8, (3, 3), activation="relu", name="channels")(narrow)  # eight: quantized
    features = layers.Concatenate()(
        [layers.Flatten()(timbral(inputs)), layers.Flatten()(temporal(inputs)), layers.GlobalMaxPooling2D()(wide)]
    )
    model = keras.Model(inputs, layers.Dense(4, activation="softmax", name="head")(features))
    clone = litert.inference_clone(model, quantized=True)
    assert sorted(litert.quantized_layers(clone)) == ["channels", "wide", "wide"]  # the two chains' layers
    kinds = {type(layer).__name__ for layer in litert._all_layers(clone)}
    assert {"ToeplitzWidthMax", "ToeplitzHeightMax"} <= kinds and "SpectralWidthMax" not in kinds
    path = litert.export(model, tmp_path / "model.int8.tflite", precision="int8")
    assert litert.int8_weights(path) == 3
    x = np.random.default_rng(8).standard_normal((8, 14, 40, 1)).astype(np.float32)
    np.testing.assert_allclose(litert.LiteRTModel(path).predict(x), model.predict_on_batch(x), atol=INT8_TOLERANCE)
    float_path = litert.export(model, tmp_path / "model.tflite")
    assert litert.int8_weights(float_path) == 0


def test_a_model_without_layers_to_quantize_has_no_int8_export(tmp_path):
    import keras
    from keras import layers

    inputs = keras.Input((20, 16, 1))
    model = keras.Model(inputs, layers.Dense(3, activation="softmax")(layers.Flatten()(inputs)))
    assert litert.export(model, tmp_path / "model.int8.tflite", precision="int8") is None
    assert not (tmp_path / "model.int8.tflite").exists()


def test_the_precision_chosen_by_default():
    """The ready model names int8 (bundle.json), which runs where the CPU has int8 dot products; asked for,
    either runs anywhere; a run folder runs float unless its bundle names int8."""
    ready = registry.open_model()
    assert ready.precision == "int8"
    assert registry.choose_precision(ready) == ("int8" if litert.int8_pays() else "float")
    assert registry.choose_precision(ready, "float") == "float" and registry.choose_precision(ready, "int8") == "int8"
    assert registry.choose_precision(registry.open_model("musicnn-msd"), "auto") == registry.choose_precision(ready)
    assert registry.load_model(ready, runtime="keras").__class__.__name__ != "LiteRTModel"  # keras: float32


@needs_musicnn
@pytest.mark.slow
def test_the_embedder_exports_give_the_features_a_head_sees(song, tmp_path):
    """registry.embedder_export: musicnn up to its pooled features through the float export (Keras' features,
    to float32 rounding) and through the int8 one (within a few hundredths of their scale: the features
    the int8 ready model's head sees); made once, then reused."""
    from genrekit.core.config import ModelConfig
    from genrekit.models.backbone import build_embedder

    slices = load_track_slices(
        song,
        SlicingConfig(slice_duration=BACKBONE_SLICE_DURATION, overlap=0.0),
        BACKBONE_FEATURES,
        silence_threshold_db=SILENCE,
    )
    x = slices.specs[..., np.newaxis].astype(np.float32)
    keras_features = np.asarray(build_embedder(ModelConfig(backbone="musicnn-msd")).predict_on_batch(x))
    scale = np.abs(keras_features).max()
    features = {}
    for precision in litert.PRECISIONS:
        path = registry.embedder_export("musicnn-msd", "pooled", precision, tmp_path)
        assert path == tmp_path / f"musicnn-msd-pooled.{precision}.tflite"
        made = path.stat().st_mtime_ns
        assert registry.embedder_export("musicnn-msd", "pooled", precision, tmp_path).stat().st_mtime_ns == made
        features[precision] = litert.LiteRTModel(path, max_rows=registry.MUSICNN_ROWS).predict(x)
        assert features[precision].shape == keras_features.shape == (len(x), 1506)
    np.testing.assert_allclose(features["float"], keras_features, atol=TOLERANCE * scale, rtol=0)
    assert np.abs(features["int8"] - keras_features).max() <= litert.QUANTIZED_CHECK_TOLERANCE * scale
