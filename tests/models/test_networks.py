"""The networks: the CRNN's shapes, frequency pooling, size and cost at the defaults; the 1D CNN and MobileNetV2."""

from __future__ import annotations

import math

import numpy as np
import pytest

from genrekit.audio.features import slice_geometry
from genrekit.core.config import FeaturesConfig, ModelConfig
from genrekit.models.networks import CNN1D_STEM_STRIDE, build_crnn, build_model, frequency_pools, multiply_adds


@pytest.mark.parametrize("n_mels", [1, 2, 7, 32, 40, 64, 96, 100, 128, 257])
@pytest.mark.parametrize("n_blocks", [1, 2, 3, 4, 5])
def test_frequency_pools_end_at_one_band(n_mels, n_blocks):
    pools = frequency_pools(n_mels, n_blocks)
    assert len(pools) == n_blocks and all(p >= 1 for p in pools)
    size = n_mels
    for pool in pools:
        size = math.ceil(size / pool)  # MaxPooling2D(padding="same")
    assert size == 1
    assert list(pools[:-1]) == sorted(pools[:-1], reverse=True)  # larger pools first, where maps are big


def test_default_geometry_and_pools():
    geometry = slice_geometry(3.0, 1.0, FeaturesConfig())
    assert geometry.spec_shape == (126, 100)
    assert frequency_pools(100, 4) == (4, 3, 3, 3)


def test_default_model_size_and_cost():
    """~400k parameters (the article's best model) at no more than ~60-80 M multiply-adds per slice."""
    model = build_crnn((126, 100, 1), 10, ModelConfig())
    assert 360_000 <= model.count_params() <= 440_000
    assert 30e6 <= multiply_adds(model) <= 80e6
    assert model.input_shape == (None, 126, 100, 1)
    assert model.output_shape == (None, 10)


def test_forward_pass_gives_probabilities_and_frequency_axis_one():
    cfg = ModelConfig(conv_filters=(4, 8, 8), time_pools=(2, 1, 3), gru_units=(6, 5), kernel_size=3)
    model = build_crnn((21, 7, 1), 3, cfg)
    pooled = model.get_layer("pool3").output.shape
    assert tuple(pooled[1:]) == (math.ceil(21 / 2 / 3), 1, 8)  # time pooled by 2*1*3 (rounded up), one band
    x = np.random.default_rng(0).standard_normal((5, 21, 7, 1)).astype(np.float32)
    scores = np.asarray(model(x, training=False))
    assert scores.shape == (5, 3)
    np.testing.assert_allclose(scores.sum(axis=1), 1.0, rtol=1e-5)


def test_pooling_before_the_activation_is_the_function_of_activation_then_pooling():
    """build_crnn pools before the ELU (cheaper); ELU is increasing, so that is the textbook order's function."""
    import keras

    keras.utils.set_random_seed(5)
    cfg = ModelConfig(conv_filters=(4, 8), time_pools=(2, 2), gru_units=(6,))
    model = build_crnn((20, 12, 1), 3, cfg)
    names = [layer.name for layer in model.layers]
    assert names.index("pool1") < names.index("elu1")
    for i in (1, 2):  # batch norm with negative scales too, so the ELU sees values of both signs
        bn = model.get_layer(f"bn{i}")
        rng = np.random.default_rng(i)
        bn.set_weights(
            [rng.uniform(-2, 2, w.shape).astype(np.float32) for w in bn.get_weights()[:3]]
            + [rng.uniform(0.5, 2, bn.get_weights()[3].shape).astype(np.float32)]
        )
    x = inputs = keras.Input((20, 12, 1))
    for i in (1, 2):  # the same layers in the order of conv, batch norm, ELU, pooling
        x = model.get_layer(f"bn{i}")(model.get_layer(f"conv{i}")(x))
        x = model.get_layer(f"pool{i}")(model.get_layer(f"elu{i}")(x))
    x = model.get_layer("scores")(model.get_layer("gru1")(model.get_layer("to_sequence")(x)))
    textbook = keras.Model(inputs, x)
    batch = np.random.default_rng(0).standard_normal((6, 20, 12, 1)).astype(np.float32)
    # equal in exact arithmetic; 1e-6 leaves room for an ELU whose float rounding is not monotonic somewhere
    np.testing.assert_allclose(model.predict_on_batch(batch), textbook.predict_on_batch(batch), atol=1e-6, rtol=0)


def test_without_recurrent_layer_averages_the_sequence():
    model = build_crnn((16, 8, 1), 2, ModelConfig(conv_filters=(4,), time_pools=(2,), gru_units=()))
    assert model.get_layer("time_average").output.shape[-1] == 4
    assert model.output_shape == (None, 2)


def test_multiply_adds_by_hand():
    # conv1: 8x6 outputs x 4 filters x 3x3 kernel x 1 channel; pool (2, 6) -> 4 steps of 4 features;
    # gru1: 4 steps x 3 gates x 5 units x (4 inputs + 5 state); dense: 5 x 2.
    model = build_crnn((8, 6, 1), 2, ModelConfig(conv_filters=(4,), time_pools=(2,), gru_units=(5,)))
    expected = 8 * 6 * 4 * 9 * 1 + 4 * 3 * 5 * (4 + 5) + 5 * 2
    assert multiply_adds(model) == expected


def test_mixed_precision_keeps_float32_scores():
    model = build_crnn(
        (16, 8, 1), 3, ModelConfig(conv_filters=(4, 4), time_pools=(2, 2), gru_units=(4,)), dtype="mixed_float16"
    )
    assert model.get_layer("conv1").compute_dtype == "float16"
    assert model.get_layer("conv1").kernel.dtype == "float32"  # variables stay float32
    assert model.get_layer("scores").compute_dtype == "float32"
    assert model.output.dtype == "float32"


# --------------------------------------------------------------------------- other architectures


def test_cnn1d_joins_the_rows_into_one_signal():
    """A waveform slice stored as rows of hop_length samples is read as one signal: the stem convolution
    sees rows * row_samples samples, strided by 4, and the output is a softmax over the labels."""
    model = build_model((6, 32, 1), 3, ModelConfig(architecture="cnn1d", conv_filters=(4, 8)))
    assert model.get_layer("to_signal").output.shape[1:] == (6 * 32, 1)
    assert model.get_layer("conv1").output.shape[1:] == (6 * 32 // CNN1D_STEM_STRIDE, 4)
    x = np.random.default_rng(0).standard_normal((2, 6, 32, 1)).astype(np.float32)
    np.testing.assert_allclose(np.asarray(model(x, training=False)).sum(axis=1), 1.0, rtol=1e-5)
    # stem: 48 steps x 4 filters x 9 taps; pool 4 -> 12 steps; conv2: 12 x 8 x 3 taps x 4; dense 16 x 3
    assert multiply_adds(model) == 48 * 4 * 9 + 12 * 8 * 3 * 4 + 16 * 3


def test_mobilenetv2_takes_the_spectrogram_as_three_channels():
    model = build_model((126, 100, 1), 10, ModelConfig(architecture="mobilenetv2"))
    assert model.input_shape == (None, 126, 100, 1) and model.output_shape == (None, 10)
    assert model.get_layer("to_rgb").output.shape[-1] == 3
    assert 2.0e6 <= model.count_params() <= 2.5e6  # MobileNetV2 1.0 without its top, and a dense layer
    assert 50e6 <= multiply_adds(model) <= 120e6  # depthwise convolutions counted, nested base included


@pytest.mark.parametrize("file_format", ["keras3", "legacy_h5"])
def test_mobilenetv2_loads_pretrained_weights_and_names_a_file_that_does_not_fit(tmp_path, file_format):
    """model.pretrained_weights: a weights file of the no-top base (here written by the test, in Keras 3's
    format and in the legacy HDF5 layout of Keras's own ImageNet downloads) fills the base; a file of
    another width is refused naming the key."""
    import h5py
    import keras
    from keras.src.legacy.saving import legacy_h5_format

    base = keras.applications.MobileNetV2(
        input_shape=(40, 32, 3), alpha=0.35, include_top=False, weights=None, pooling="avg"
    )
    rng = np.random.default_rng(0)
    base.set_weights([rng.standard_normal(w.shape).astype(np.float32) for w in base.get_weights()])
    if file_format == "keras3":
        path = tmp_path / "imagenet_like.weights.h5"
        base.save_weights(path)
    else:  # as mobilenet_v2_weights_tf_dim_ordering_tf_kernels_0.35_224_no_top.h5
        path = tmp_path / "imagenet_like_no_top.h5"
        with h5py.File(path, "w") as f:
            legacy_h5_format.save_weights_to_hdf5_group(f, base)

    model = build_model(
        (40, 32, 1), 3, ModelConfig(architecture="mobilenetv2", mobilenet_alpha=0.35, pretrained_weights=path)
    )
    loaded = model.get_layer(base.name).get_weights()
    assert len(loaded) == len(base.get_weights())
    for ours, theirs in zip(loaded, base.get_weights()):
        np.testing.assert_array_equal(ours, theirs)  # a copy of the file's values
    with pytest.raises(ValueError, match=r"model\.pretrained_weights: .*missing\.h5: no such file"):
        build_model((40, 32, 1), 3, ModelConfig(architecture="mobilenetv2", pretrained_weights=tmp_path / "missing.h5"))
    with pytest.raises(ValueError, match=r"model\.pretrained_weights: .*imagenet_like"):
        build_model(
            (40, 32, 1), 3, ModelConfig(architecture="mobilenetv2", mobilenet_alpha=0.5, pretrained_weights=path)
        )


def test_mobilenetv2_batch_norm_follows_a_small_dataset():
    model = build_model((40, 32, 1), 3, ModelConfig(architecture="mobilenetv2", mobilenet_alpha=0.35))
    momenta = {
        layer.momentum
        for layer in model.get_layer("mobilenetv2_0.35_40").layers
        if type(layer).__name__ == "BatchNormalization"
    }
    assert momenta == {0.9}
