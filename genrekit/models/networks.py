"""The networks of ``train_crnn.py`` (``model.architecture``): the CRNN (default), a 1D CNN on
raw waveform slices, and MobileNetV2 on the mel spectrogram.

CRNN: the network of Choi et al. (2017), as used by the divide-and-conquer article.

Convolution blocks (Conv2D, batch norm, ELU, max pooling, dropout) shrink the
frequency axis to one while keeping a (pooled) time axis; GRU layers then read
that sequence, and a softmax gives one score per label. Input is a normalized
spectrogram exactly as stored in ``processed.h5``: ``(frames, n_mels, 1)``,
time first.

The defaults (``genrekit.core.config.ModelConfig``: filters 16-64-128-160, two GRUs
of 96) give about 400k parameters and 48 M multiply-adds per 3 s slice. The
first block runs at full resolution, so it gets few filters: its cost is memory
traffic (batch norm, ELU, pooling over 126 x 100 maps), not multiply-adds.
Dropout defaults to the classifier head only (0.5): on small datasets dropout
between the batch-normalized blocks cost a lot of validation accuracy.

``cnn1d`` reads a waveform slice as stored in ``processed.h5`` (rows of ``hop_length``
samples, ``features.representation: "waveform"``), joins the rows into one signal and runs
a strided convolution, then one block per ``conv_filters`` entry (Conv1D of ``kernel_size``,
batch norm, ReLU, max pooling by 4), global average and max pooling over time, dropout and
the softmax: the sample-level CNNs of Lee et al. (2017) with larger pools, so that a 3 s
slice at 22.05 kHz costs about as much as the CRNN.

``mobilenetv2`` is ``keras.applications.MobileNetV2`` without its top, on the normalized
spectrogram repeated into the three channels the architecture (and ImageNet weights)
expect, trained from scratch, or from ``model.pretrained_weights`` (a weights file of the
same base, e.g. Keras's ImageNet ``..._no_top.h5``), then global average pooling, dropout
and the softmax.

The code uses ``keras.layers`` only, so any Keras 3 backend runs it.
"""

from __future__ import annotations

import math
import warnings

import keras
from keras import layers

from genrekit.core.config import ModelConfig


def frequency_pools(n_mels: int, n_blocks: int) -> tuple[int, ...]:
    """Max-pooling sizes along frequency that take ``n_mels`` bands down to exactly one.

    Pooling uses ``padding="same"`` (a size ``n`` pooled by ``p`` becomes
    ``ceil(n / p)``). Early blocks get the larger pools, where the feature maps
    are largest and pooling saves the most work; the last block pools whatever
    is left.

    Examples
    --------
    >>> frequency_pools(100, 4)
    (4, 3, 3, 3)
    >>> frequency_pools(128, 4)
    (4, 4, 3, 3)
    """
    pools = []
    size = n_mels
    for blocks_left in range(n_blocks, 0, -1):
        pool = size if blocks_left == 1 else max(1, math.ceil(size ** (1 / blocks_left) - 1e-9))
        pools.append(pool)
        size = math.ceil(size / pool)
    return tuple(pools)


def build_crnn(
    input_shape: tuple[int, int, int],
    n_labels: int,
    config: ModelConfig,
    dtype: str | None = None,
    name: str = "crnn",
) -> keras.Model:
    """Build (not compile) the CRNN.

    Parameters
    ----------
    input_shape : (frames, n_mels, 1)
        One processed spectrogram.
    n_labels : int
        Size of the softmax.
    config : ModelConfig
        Filters and time pooling per block, kernel size, GRU widths, dropout rates.
    dtype : str, optional
        Keras dtype policy of the hidden layers, e.g. ``"mixed_float16"``; the
        softmax always computes in float32 so the scores stay exact.
    """
    _frames, n_mels, _ = input_shape
    freq_pools = frequency_pools(n_mels, len(config.conv_filters))

    inputs = keras.Input(shape=input_shape, name="spectrogram")
    x = inputs
    for i, (filters, time_pool, freq_pool) in enumerate(
        zip(config.conv_filters, config.time_pools, freq_pools), start=1
    ):
        # No bias: batch norm right after it has its own offset.
        x = layers.Conv2D(filters, config.kernel_size, padding="same", use_bias=False, dtype=dtype, name=f"conv{i}")(x)
        # momentum 0.9, not 0.99: small datasets give few steps per epoch, and slow-moving
        # statistics would make validation lag far behind training in the first epochs.
        x = layers.BatchNormalization(momentum=0.9, dtype=dtype, name=f"bn{i}")(x)
        # Pool, then ELU: ELU is increasing, so the maximum commutes with it (the same function),
        # and the activation runs on 1/8 of the first block's values (inference 6 % faster).
        x = layers.MaxPooling2D((time_pool, freq_pool), padding="same", dtype=dtype, name=f"pool{i}")(x)
        x = layers.Activation("elu", dtype=dtype, name=f"elu{i}")(x)
        x = layers.Dropout(config.conv_dropout, dtype=dtype, name=f"conv_dropout{i}")(x)

    # (time, 1, channels) -> a sequence of (time, channels) for the GRUs.
    x = layers.Reshape((-1, config.conv_filters[-1]), dtype=dtype, name="to_sequence")(x)
    for i, units in enumerate(config.gru_units, start=1):
        last = i == len(config.gru_units)
        x = layers.GRU(units, return_sequences=not last, dtype=dtype, name=f"gru{i}")(x)
    if not config.gru_units:  # no recurrent layer: average the sequence instead
        x = layers.GlobalAveragePooling1D(dtype=dtype, name="time_average")(x)
    x = layers.Dropout(config.dropout, dtype=dtype, name="dropout")(x)
    outputs = layers.Dense(n_labels, activation="softmax", dtype="float32", name="scores")(x)
    return keras.Model(inputs, outputs, name=name)


CNN1D_STEM_STRIDE = 4
CNN1D_POOL = 4


def build_cnn1d(
    input_shape: tuple[int, int, int],
    n_labels: int,
    config: ModelConfig,
    dtype: str | None = None,
    name: str = "cnn1d",
) -> keras.Model:
    """Build (not compile) the 1D CNN on a waveform slice ``(rows, row_samples, 1)``.

    The stem convolution has ``conv_filters[0]`` filters, a kernel of ``2 * stride + 1`` samples
    and stride :data:`CNN1D_STEM_STRIDE`; every further ``conv_filters`` entry adds a block.
    """
    rows, row_samples, _ = input_shape
    inputs = keras.Input(shape=input_shape, name="spectrogram")  # one input name for every architecture
    x = layers.Reshape((rows * row_samples, 1), dtype=dtype, name="to_signal")(inputs)
    blocks = [(config.conv_filters[0], 2 * CNN1D_STEM_STRIDE + 1, CNN1D_STEM_STRIDE)]
    blocks += [(filters, config.kernel_size, 1) for filters in config.conv_filters[1:]]
    for i, (filters, kernel, stride) in enumerate(blocks, start=1):
        x = layers.Conv1D(
            filters, kernel, strides=stride, padding="same", use_bias=False, dtype=dtype, name=f"conv{i}"
        )(x)
        x = layers.BatchNormalization(momentum=0.9, dtype=dtype, name=f"bn{i}")(x)
        x = layers.Activation("relu", dtype=dtype, name=f"relu{i}")(x)
        x = layers.MaxPooling1D(CNN1D_POOL, padding="same", dtype=dtype, name=f"pool{i}")(x)
        x = layers.Dropout(config.conv_dropout, dtype=dtype, name=f"conv_dropout{i}")(x)
    # Average and maximum over time: genre evidence can be everywhere (timbre) or in moments (a fill).
    x = layers.Concatenate(dtype=dtype, name="time_pooling")(
        [
            layers.GlobalAveragePooling1D(dtype=dtype, name="time_average")(x),
            layers.GlobalMaxPooling1D(dtype=dtype, name="time_max")(x),
        ]
    )
    x = layers.Dropout(config.dropout, dtype=dtype, name="dropout")(x)
    outputs = layers.Dense(n_labels, activation="softmax", dtype="float32", name="scores")(x)
    return keras.Model(inputs, outputs, name=name)


def build_mobilenetv2(
    input_shape: tuple[int, int, int],
    n_labels: int,
    config: ModelConfig,
    dtype: str | None = None,
    name: str = "mobilenetv2",
) -> keras.Model:
    """Build (not compile) MobileNetV2 on a spectrogram ``(frames, n_mels, 1)``.

    The base gets ``model.pretrained_weights`` when set (raises ``ValueError`` naming the file when
    it does not fit); otherwise it starts from random weights.
    """
    frames, n_mels, _ = input_shape
    previous = keras.config.dtype_policy()
    if dtype is not None:  # keras.applications builds its layers under the global policy
        keras.config.set_dtype_policy(dtype)
    try:
        base = keras.applications.MobileNetV2(
            input_shape=(frames, n_mels, 3),
            alpha=config.mobilenet_alpha,
            include_top=False,
            weights=None,
            pooling="avg",
        )
    finally:
        keras.config.set_dtype_policy(previous)
    for layer in base.layers:
        # 0.9, not Keras's 0.999 for MobileNetV2: on a small dataset (tens of steps per epoch) the
        # moving statistics would stay near their start for hundreds of steps, and every validation
        # and test prediction with them would be at chance level (as for the CRNN's batch norm).
        if isinstance(layer, layers.BatchNormalization):
            layer.momentum = 0.9
    if config.pretrained_weights is not None:
        if not config.pretrained_weights.is_file():
            raise ValueError(f"model.pretrained_weights: {config.pretrained_weights}: no such file")
        try:
            with warnings.catch_warnings():  # Keras notes containers without weights; a mismatch still raises
                warnings.filterwarnings("ignore", message="Skipping nested container")
                base.load_weights(config.pretrained_weights)
        except Exception as exc:  # h5py, shape and name mismatches all end here
            raise ValueError(
                f"model.pretrained_weights: {config.pretrained_weights} does not fit MobileNetV2 "
                f"(alpha {config.mobilenet_alpha:g}, no top): {exc}"
            ) from exc
    inputs = keras.Input(shape=input_shape, name="spectrogram")
    x = layers.Concatenate(axis=-1, dtype=dtype, name="to_rgb")([inputs, inputs, inputs])
    x = base(x)
    x = layers.Dropout(config.dropout, dtype=dtype, name="dropout")(x)
    outputs = layers.Dense(n_labels, activation="softmax", dtype="float32", name="scores")(x)
    return keras.Model(inputs, outputs, name=name)


BUILDERS = {"crnn": build_crnn, "cnn1d": build_cnn1d, "mobilenetv2": build_mobilenetv2}


def build_model(
    input_shape: tuple[int, int, int], n_labels: int, config: ModelConfig, dtype: str | None = None
) -> keras.Model:
    """Build (not compile) the network that ``model.architecture`` names."""
    return BUILDERS[config.architecture](input_shape, n_labels, config, dtype=dtype)


def mean_of(members: list[keras.Model]) -> keras.Model:
    """One model whose scores are the mean of ``members``' scores (the runs of ``training.runs``):
    what ``model.keras`` of a run folder with several runs is, with ``training.ensemble``."""
    for i, member in enumerate(members):
        member.name = f"run_{i + 1:02d}"  # nested models need distinct names
    inputs = keras.Input(shape=tuple(members[0].inputs[0].shape[1:]), name="spectrogram")
    scores = keras.layers.Average(name="mean_score")([member(inputs) for member in members])
    return keras.Model(inputs, scores, name="ensemble")


def compile_crnn(
    model: keras.Model, learning_rate: float, optimizer: keras.optimizers.Optimizer | None = None
) -> keras.Model:
    """Adam (or ``optimizer``) and categorical cross-entropy on one-hot (or mixed) targets, tracking accuracy."""
    model.compile(
        optimizer=optimizer or keras.optimizers.Adam(learning_rate),
        loss="categorical_crossentropy",
        metrics=["accuracy"],
    )
    return model


def multiply_adds(model: keras.Model) -> int:
    """Multiply-adds of one forward pass for one input (convolutions, GRUs, dense layers),
    nested models included.

    Batch norm, pooling and activations are left out: they cost a few
    operations per value, against hundreds per value for the layers counted.
    """
    total = 0
    for layer in model.layers:
        if isinstance(layer, keras.Model):  # a nested model (a pretrained backbone, a head)
            total += multiply_adds(layer)
        elif isinstance(layer, layers.Conv1D):
            steps, out_channels = layer.output.shape[1:]
            total += steps * out_channels * layer.kernel_size[0] * layer.input.shape[-1]
        elif isinstance(layer, layers.DepthwiseConv2D):
            _, height, width, out_channels = layer.output.shape
            kh, kw = layer.kernel_size
            total += height * width * out_channels * kh * kw
        elif isinstance(layer, layers.Conv2D):
            _, height, width, out_channels = layer.output.shape
            in_channels = layer.input.shape[-1]
            kh, kw = layer.kernel_size
            total += height * width * out_channels * kh * kw * in_channels
        elif isinstance(layer, layers.GRU):
            steps, features = layer.input.shape[1:]
            units = layer.units
            total += steps * 3 * units * (features + units)
        elif isinstance(layer, layers.Dense):
            total += layer.input.shape[-1] * layer.units
    return int(total)
