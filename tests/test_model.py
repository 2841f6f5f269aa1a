"""The CRNN: shapes, the frequency pooling, size and cost at the defaults."""

from __future__ import annotations

import math

import numpy as np
import pytest

from genrekit.config import FeaturesConfig, ModelConfig
from genrekit.features import slice_geometry
from genrekit.model import build_crnn, frequency_pools, multiply_adds


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
    model = build_crnn((16, 8, 1), 3, ModelConfig(conv_filters=(4, 4), time_pools=(2, 2), gru_units=(4,)),
                       dtype="mixed_float16")
    assert model.get_layer("conv1").compute_dtype == "float16"
    assert model.get_layer("conv1").kernel.dtype == "float32"  # variables stay float32
    assert model.get_layer("scores").compute_dtype == "float32"
    assert model.output.dtype == "float32"
