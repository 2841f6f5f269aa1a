"""The matrix-product forms of a wide single-channel convolution + batch norm + max over a whole axis
(genrekit/models/max_pooled.py) compute what the Keras layers compute.

Tolerance: 1e-5 of the largest output. The DFT path sums in float32 about 2 x width + 2 kh terms per
output where the direct convolution sums kh x kw, in another order (the Toeplitz path the same kw terms
plus zeros); each rounding is 6e-8 of a term, and the terms are at most the outputs' scale. Measured:
1e-6 of the scale on musicnn's 96-point rows. A wrong bin, sign, shift or transpose moves outputs by
their own scale.
"""

from __future__ import annotations

import numpy as np
import pytest

from genrekit.models import litert
from genrekit.models.max_pooled import (
    BLOCK,
    SpectralWidthMax,
    ToeplitzHeightMax,
    ToeplitzWidthMax,
    dft_matrices,
    toeplitz_matrix,
)

RELATIVE = 1e-5


def assert_close_to_scale(got: np.ndarray, want: np.ndarray) -> None:
    assert got.shape == want.shape
    assert np.abs(got - want).max() <= RELATIVE * np.abs(want).max()


@pytest.mark.parametrize("width", [40, 41])  # the even width has a Nyquist bin, the odd one none
def test_the_dft_matrices_give_the_correlation_at_every_position(width):
    rng = np.random.default_rng(width)
    kh, kw, filters, rows = 3, 17, 5, 9
    kernel = rng.standard_normal((kh, kw, 1, filters))
    x = rng.standard_normal((rows + kh - 1, width))
    m = {name: value.astype(np.float64) for name, value in dft_matrices(kernel, width).items()}
    bins, positions = width // 2 + 1, width - kw + 1
    spectra = x @ m["dft"]  # (rows + kh - 1, 2 bins)
    taps = np.stack([spectra[k : k + rows] for k in range(kh)], axis=1).reshape(rows, kh, 2, bins)
    taps = taps.transpose(3, 0, 2, 1).reshape(bins, rows, 2 * kh)
    spectrum = np.concatenate([taps @ m["real"], taps @ m["imag"]])  # (2 bins, rows, filters)
    got = np.einsum("brc,bf->rfc", spectrum, m["inverse"])
    want = np.zeros((rows, positions, filters))
    for f in range(positions):
        want[:, f] = sum(x[k : k + rows, f : f + kw] @ kernel[k, :, 0, :] for k in range(kh))
    assert_close_to_scale(got, want)


@pytest.mark.parametrize("kh", [1, 3])
def test_the_toeplitz_matrix_gives_the_correlation_of_a_window(kh):
    rng = np.random.default_rng(7)
    kernel = rng.standard_normal((kh, 20, 1, 3))
    window = rng.standard_normal((kh, BLOCK + 19))  # kh rows, flattened row after row
    got = (window.reshape(-1) @ toeplitz_matrix(kernel).astype(np.float64)).reshape(BLOCK, 3)
    want = np.stack([np.einsum("hk,hkc->c", window[:, p : p + 20], kernel[:, :, 0, :]) for p in range(BLOCK)])
    assert_close_to_scale(got, want)


def chain(activation: str, seed: int, kernel=(5, 20), padding: str = "valid", over: str = "width"):
    """Conv2D (one channel) -> BatchNormalization (some negative scales) -> max over the whole width
    (or height) of its output."""
    import keras
    from keras import layers

    keras.utils.set_random_seed(seed)
    inputs = keras.Input((14, 40, 1))
    conv = layers.Conv2D(6, kernel, padding=padding, activation=activation, name="wide")(inputs)
    norm = layers.BatchNormalization(epsilon=1e-3, name="wide_bn")(conv)
    pool = (1, conv.shape[2]) if over == "width" else (conv.shape[1], 1)
    pooled = layers.MaxPooling2D(pool, name="wide_pool")(norm)
    model = keras.Model(inputs, pooled)
    rng = np.random.default_rng(seed)
    # A bias of about 4 against sums of about 1: the minimum over the axis is mostly above 0 after the
    # ReLU, so a wrong minimum (of a negative scale) shows.
    model.get_layer("wide").set_weights(
        [rng.standard_normal((*kernel, 1, 6)).astype(np.float32) * 0.1, 4 + rng.standard_normal(6).astype(np.float32)]
    )
    gamma = np.array([1.5, -0.7, 0.3, -2.0, 1.0, -0.1], dtype=np.float32)  # negative: the max becomes a min
    model.get_layer("wide_bn").set_weights(
        [
            gamma,
            rng.standard_normal(6).astype(np.float32),
            rng.standard_normal(6).astype(np.float32),
            rng.uniform(0.5, 2.0, 6).astype(np.float32),
        ]
    )
    return model


@pytest.mark.parametrize("activation", ["relu", "linear"])
@pytest.mark.parametrize(
    "kind, kernel, padding, over, shape",
    [
        (SpectralWidthMax, (5, 20), "valid", "width", (10, 1)),
        (ToeplitzWidthMax, (5, 20), "valid", "width", (10, 1)),  # 21 positions: the last block past the end
        (ToeplitzHeightMax, (1, 20), "same", "height", (1, 40)),  # 40 positions: 5 blocks of 8
        (ToeplitzHeightMax, (1, 17), "valid", "height", (1, 24)),  # the last block past the end
    ],
)
def test_each_layer_computes_the_chain_it_replaces(kind, kernel, padding, over, shape, activation):
    from genrekit.models.max_pooled import replacement

    model = chain(activation, 3, kernel, padding, over)
    conv, norm, pool = (model.get_layer(name) for name in ("wide", "wide_bn", "wide_pool"))
    assert replacement(conv, norm, pool, quantized=kind is ToeplitzWidthMax) is kind
    x = np.random.default_rng(4).standard_normal((8, 14, 40, 1)).astype(np.float32)
    want = np.asarray(model.predict_on_batch(x))
    got = np.asarray(kind.from_layers(conv, norm, pool)(x))
    assert got.shape == want.shape == (8, *shape, 6)
    assert_close_to_scale(got, want)


def test_inference_clone_computes_the_chain_with_the_layer_and_exports_it(tmp_path):
    """The clone holds the layer where each chain was, inside a nested model; it scores as the model, and so
    does the export."""
    import keras
    from keras import layers

    timbral, temporal = chain("relu", 5), chain("relu", 6, (1, 20), "same", "height")
    inputs = keras.Input((14, 40, 1))
    features = layers.Concatenate()([layers.Flatten()(timbral(inputs)), layers.Flatten()(temporal(inputs))])
    model = keras.Model(inputs, layers.Dense(3, activation="softmax")(features))
    clone = litert.inference_clone(model)
    kinds = [[type(layer).__name__ for layer in clone.layers[k].layers[1:]] for k in (1, 2)]
    assert kinds == [["SpectralWidthMax", "Computed", "Computed"], ["ToeplitzHeightMax", "Computed", "Computed"]]
    x = np.random.default_rng(6).standard_normal((8, 14, 40, 1)).astype(np.float32)
    want = np.asarray(model.predict_on_batch(x))
    np.testing.assert_allclose(clone.predict_on_batch(x), want, atol=1e-6, rtol=0)
    exported = litert.LiteRTModel(litert.export(model, tmp_path / "model.tflite")).predict(x)
    np.testing.assert_allclose(exported, want, atol=1e-5, rtol=0)  # probabilities, as tests/models/test_litert.py


def test_a_chain_whose_batch_norm_is_read_elsewhere_is_only_split():
    """The max must be the only reader of the batch norm, else the new layer would drop what the other reads."""
    import keras
    from keras import layers

    inputs = keras.Input((14, 40, 1))
    norm = layers.BatchNormalization(name="wide_bn")(layers.Conv2D(6, (5, 20), activation="relu", name="wide")(inputs))
    both = layers.Concatenate()(
        [layers.Flatten()(layers.MaxPooling2D((1, 21))(norm)), layers.GlobalAveragePooling2D()(norm)]
    )
    clone = litert.inference_clone(keras.Model(inputs, both))
    assert "SpectralWidthMax" not in {type(layer).__name__ for layer in clone.layers}
    assert [type(layer).__name__ for layer in clone.get_layer("wide").layers] == ["Conv2D", "Conv2D"]
