"""The pretrained musicnn music taggers of Pons & Serra (2019), ported to Keras 3.

The wheel ``musicnn==0.1.0`` (ISC licence) ships TF1 checkpoints of four taggers,
each predicting 50 tags from a 3 s log-mel patch: ``MSD_musicnn`` and
``MTT_musicnn`` (trained on the Million Song Dataset and on MagnaTagATune), and
the VGG-like baselines ``MSD_vgg`` and ``MTT_vgg``. This module rebuilds their
networks from ``keras.layers`` and loads the checkpoint weights; it reads the
wheel's checkpoint files only and never imports the wheel's code (TF1-era,
numpy < 1.17). The architecture follows ``musicnn/models.py`` layer for layer.

musicnn, input ``(187, 96)`` log-mel frames (time, mel), 3 s at 16 kHz:

* front end, on the batch-normalized input: two *timbral* branches (204 filters
  of 7 x 38 and of 7 x 67 time x mel bins) and three *temporal* branches (51
  filters of 128 x 1, 64 x 1 and 32 x 1), each conv + ReLU, batch norm, then the
  maximum over frequency: 408 + 153 = 561 features per frame;
* mid end: three 1-D convolutions over time (64 filters, width 7), the last two
  with residual connections (``cnn1``, ``cnn2``, ``cnn3``);
* back end: the maximum and the mean over time of all 561 + 3 x 64 = 753
  features, batch norm, dropout, dense 200 + ReLU + batch norm (the
  *penultimate* features), dropout, dense 50 (logits), sigmoid (the *taggram*).

The same layers serve as a tagger (:func:`build_musicnn`), as a feature extractor
(:func:`musicnn_feature_model`: the 753-d ``mean_pool`` / ``max_pool`` or the 200-d
``penultimate`` features as a backbone) and as a starting point for fine-tuning.

The input is the musicnn log-mel scale, not dB: ``log10(10000 * power + 1)`` of
the mel power quantised to float16 (:func:`log_compress`); set
``features.log_scale`` to ``"musicnn"`` with :data:`MUSICNN_FEATURES` settings.

Keras and TensorFlow are imported inside the functions that need them: feature
workers import this module for :func:`log_compress` alone.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from pathlib import Path

import numpy as np

from genrekit.core.config import BACKBONE_FEATURES
from genrekit.core.errors import GenrekitError

# The feature settings the taggers were trained with, defined once in genrekit.core.config (where a
# config with model.backbone gets them): 16 kHz, n_fft 512, hop 256, 96 mels (librosa defaults
# otherwise: Slaney mel scale and norm, fmin 0, fmax sr/2), the musicnn log scale.
MUSICNN_FEATURES = BACKBONE_FEATURES
SAMPLE_RATE, N_FFT, HOP_LENGTH, N_MELS = (
    MUSICNN_FEATURES.sample_rate,
    MUSICNN_FEATURES.n_fft,
    MUSICNN_FEATURES.hop_length,
    MUSICNN_FEATURES.n_mels,
)
PATCH_FRAMES = 187  # 3 s: 1 + librosa.time_to_frames(3, sr=16000, hop_length=256, n_fft=512), as musicnn's
# extractor computes it; without centring, 186 hops + 512 = 48128 samples

# Our model name -> the checkpoint folder in the musicnn wheel.
CHECKPOINTS = {
    "musicnn-msd": "MSD_musicnn",
    "musicnn-mtt": "MTT_musicnn",
    "vgg-msd": "MSD_vgg",
    "vgg-mtt": "MTT_vgg",
}

# Tag lists copied verbatim from musicnn 0.1.0, musicnn/configuration.py (MTT_LABELS and
# MSD_LABELS); the order is that of the networks' 50 outputs.
MTT_TAGS = (
    "guitar",
    "classical",
    "slow",
    "techno",
    "strings",
    "drums",
    "electronic",
    "rock",
    "fast",
    "piano",
    "ambient",
    "beat",
    "violin",
    "vocal",
    "synth",
    "female",
    "indian",
    "opera",
    "male",
    "singing",
    "vocals",
    "no vocals",
    "harpsichord",
    "loud",
    "quiet",
    "flute",
    "woman",
    "male vocal",
    "no vocal",
    "pop",
    "soft",
    "sitar",
    "solo",
    "man",
    "classic",
    "choir",
    "voice",
    "new age",
    "dance",
    "male voice",
    "female vocal",
    "beats",
    "harp",
    "cello",
    "no voice",
    "weird",
    "country",
    "metal",
    "female voice",
    "choral",
)
MSD_TAGS = (
    "rock",
    "pop",
    "alternative",
    "indie",
    "electronic",
    "female vocalists",
    "dance",
    "00s",
    "alternative rock",
    "jazz",
    "beautiful",
    "metal",
    "chillout",
    "male vocalists",
    "classic rock",
    "soul",
    "indie rock",
    "Mellow",
    "electronica",
    "80s",
    "folk",
    "90s",
    "chill",
    "instrumental",
    "punk",
    "oldies",
    "blues",
    "hard rock",
    "ambient",
    "acoustic",
    "experimental",
    "female vocalist",
    "guitar",
    "Hip-Hop",
    "70s",
    "party",
    "country",
    "easy listening",
    "sexy",
    "catchy",
    "funk",
    "electro",
    "heavy metal",
    "Progressive rock",
    "60s",
    "rnb",
    "indie pop",
    "sad",
    "House",
    "happy",
)

MUSICNN_FEATURE_NAMES = (
    "timbral",
    "temporal",
    "cnn1",
    "cnn2",
    "cnn3",
    "mean_pool",
    "max_pool",
    "penultimate",
    "logits",
    "taggram",
)
VGG_FEATURE_NAMES = ("pool1", "pool2", "pool3", "pool4", "pool5", "logits", "taggram")

BN_EPSILON = 0.001  # tf.compat.v1.layers.batch_normalization's default (Keras' too)


# --------------------------------------------------------------------------- names and features


def _checkpoint_name(name: str) -> str:
    if name not in CHECKPOINTS:
        raise GenrekitError(f"unknown musicnn model {name!r} (known: {', '.join(CHECKPOINTS)})")
    return CHECKPOINTS[name]


def musicnn_tags(name: str) -> tuple[str, ...]:
    """The 50 tags a model predicts, in the order of its outputs.

    Examples
    --------
    >>> musicnn_tags("musicnn-msd")[:3]
    ('rock', 'pop', 'alternative')
    """
    return MSD_TAGS if _checkpoint_name(name).startswith("MSD") else MTT_TAGS


def musicnn_feature_names(name: str) -> tuple[str, ...]:
    """Names of the outputs of :func:`musicnn_feature_model` for a model name."""
    _checkpoint_name(name)
    return VGG_FEATURE_NAMES if name.startswith("vgg") else MUSICNN_FEATURE_NAMES


def patches(logmel: np.ndarray, n_frames: int = PATCH_FRAMES) -> np.ndarray:
    """Cut ``(frames, n_mels)`` into consecutive non-overlapping ``(n_frames, n_mels)`` patches.

    Tail frames that do not fill a patch are dropped, as musicnn's extractor does
    (``input_overlap=False``).

    Returns
    -------
    np.ndarray
        ``(n_patches, n_frames, n_mels)``; ``n_patches`` may be 0.
    """
    count = logmel.shape[0] // n_frames
    return np.ascontiguousarray(logmel[: count * n_frames].reshape(count, n_frames, logmel.shape[1]))


# --------------------------------------------------------------------------- the networks


def _conv_bn_freq_max(x, filters: int, kernel: tuple[int, int], padding: str, name: str, mel_first: bool = False):
    """Conv + ReLU, batch norm, max over the whole frequency axis: ``(time, filters)``.

    ``x`` is ``(time, mel, 1)``, or ``(mel, time, 1)`` with ``mel_first``.
    """
    from keras import layers

    x = layers.Conv2D(filters, kernel, padding=padding, activation="relu", name=f"{name}_conv")(x)
    x = layers.BatchNormalization(epsilon=BN_EPSILON, name=f"{name}_bn")(x)
    x = layers.MaxPooling2D((x.shape[1], 1) if mel_first else (1, x.shape[2]), name=f"{name}_pool")(x)
    time_steps = x.shape[2] if mel_first else x.shape[1]
    return layers.Reshape((time_steps, filters), name=f"{name}_squeeze")(x)


def _musicnn(inputs, n_tags: int):
    """musicnn's layers on a ``(187, 96)`` input; returns the taggram tensor."""
    from keras import layers

    x = layers.Reshape((*inputs.shape[1:], 1), name="add_channel")(inputs)
    x = layers.BatchNormalization(epsilon=BN_EPSILON, name="input_bn")(x)

    # Timbral branches: zero-pad time only (3 + 3 frames) and convolve 'valid' along
    # frequency, since the maximum over frequency follows anyway.
    padded = layers.ZeroPadding2D(((3, 3), (0, 0)), name="timbral_pad")(x)
    timbral = layers.Concatenate(name="timbral")(
        [
            _conv_bn_freq_max(padded, 204, (7, 38), "valid", "timbral_38"),  # int(0.4 * 96) mel bins
            _conv_bn_freq_max(padded, 204, (7, 67), "valid", "timbral_67"),  # int(0.7 * 96)
        ]
    )
    # Temporal branches: 'same' padding in time (TF's split: 63 frames before, 64 after for 128).
    # They run on the transposed input (mel, time) with 1 x length kernels (transposed on load):
    # the same sums, but TensorFlow's CPU convolution is about 1.5 times faster with the long
    # kernel on the second axis, and these branches cost most of musicnn's time.
    mel_first = layers.Permute((2, 1, 3), name="mel_first")(x)
    temporal = layers.Concatenate(name="temporal")(
        [
            _conv_bn_freq_max(mel_first, 51, (1, length), "same", f"temporal_{length}", mel_first=True)
            for length in (128, 64, 32)
        ]
    )
    frontend = layers.Concatenate(name="frontend")([timbral, temporal])  # (187, 561)

    # Mid end. The original convolves a (time, features, 1) image with a 7 x features kernel
    # after padding 3 + 3 frames; that is a 1-D convolution with 'same' padding.
    conv = layers.Conv1D(64, 7, padding="same", activation="relu", name="cnn1_conv")(frontend)
    cnn1 = layers.BatchNormalization(epsilon=BN_EPSILON, name="cnn1")(conv)
    conv = layers.Conv1D(64, 7, padding="same", activation="relu", name="cnn2_conv")(cnn1)
    conv = layers.BatchNormalization(epsilon=BN_EPSILON, name="cnn2_bn")(conv)
    cnn2 = layers.Add(name="cnn2")([conv, cnn1])
    conv = layers.Conv1D(64, 7, padding="same", activation="relu", name="cnn3_conv")(cnn2)
    conv = layers.BatchNormalization(epsilon=BN_EPSILON, name="cnn3_bn")(conv)
    cnn3 = layers.Add(name="cnn3")([conv, cnn2])
    midend = layers.Concatenate(name="midend")([frontend, cnn1, cnn2, cnn3])  # (187, 753)

    # Back end: temporal pooling, then two dense layers.
    max_pool = layers.GlobalMaxPooling1D(name="max_pool")(midend)
    mean_pool = layers.GlobalAveragePooling1D(name="mean_pool")(midend)
    # [max, mean] concatenated; the checkpoint's weights are for the TF1 flattening that
    # interleaves them, and the loader reorders them (see _interleaved_to_concatenated).
    x = layers.Concatenate(name="pooled")([max_pool, mean_pool])
    x = layers.BatchNormalization(epsilon=BN_EPSILON, name="pooled_bn")(x)
    x = layers.Dropout(0.5, name="pooled_dropout")(x)
    x = layers.Dense(200, activation="relu", name="penultimate_dense")(x)
    x = layers.BatchNormalization(epsilon=BN_EPSILON, name="penultimate")(x)
    x = layers.Dropout(0.5, name="penultimate_dropout")(x)
    logits = layers.Dense(n_tags, name="logits")(x)
    return layers.Activation("sigmoid", name="taggram")(logits)


def _vgg(inputs, n_tags: int):
    """The VGG-like baseline (five 3 x 3 conv blocks of 128 filters); returns the taggram."""
    from keras import layers

    x = layers.Reshape((*inputs.shape[1:], 1), name="add_channel")(inputs)
    x = layers.BatchNormalization(epsilon=BN_EPSILON, name="input_bn")(x)
    # (pool size, strides) per block, 'valid' pooling: (187, 96) -> (92, 48) -> (46, 24)
    # -> (23, 12) -> (11, 6) -> (2, 1).
    pools = (((4, 1), (2, 2)), ((2, 2), (2, 2)), ((2, 2), (2, 2)), ((2, 2), (2, 2)), ((4, 4), (4, 4)))
    for block, (pool, strides) in enumerate(pools, start=1):
        if block > 1:
            x = layers.Dropout(0.25, name=f"dropout{block - 1}")(x)
        x = layers.Conv2D(128, 3, padding="same", activation="relu", name=f"conv{block}")(x)
        x = layers.BatchNormalization(epsilon=BN_EPSILON, name=f"bn{block}")(x)
        x = layers.MaxPooling2D(pool, strides, name=f"pool{block}")(x)
    x = layers.Flatten(name="flatten")(x)
    x = layers.Dropout(0.5, name="dropout5")(x)
    logits = layers.Dense(n_tags, name="logits")(x)
    return layers.Activation("sigmoid", name="taggram")(logits)


def build_musicnn(name: str = "musicnn-msd"):
    """Build (not load, not compile) a musicnn tagger.

    Parameters
    ----------
    name : str
        ``"musicnn-msd"``, ``"musicnn-mtt"``, ``"vgg-msd"`` or ``"vgg-mtt"``.

    Returns
    -------
    keras.Model
        Input ``(187, 96)`` musicnn log-mel patches (time, mel), float32; output the
        taggram ``(50,)``, sigmoid scores in the order of :func:`musicnn_tags`. The
        weights are random until :func:`load_musicnn_weights`.

    See Also
    --------
    load_musicnn : build and load in one call.
    musicnn_feature_model : the intermediate features of the same layers.
    """
    import keras

    n_tags = len(musicnn_tags(name))
    inputs = keras.Input(shape=(PATCH_FRAMES, N_MELS), name="logmel")
    network = _vgg if name.startswith("vgg") else _musicnn
    return keras.Model(inputs, network(inputs, n_tags), name=name.replace("-", "_"))


def musicnn_feature_model(model):
    """A model sharing ``model``'s layers whose outputs are its named intermediate features.

    Parameters
    ----------
    model : keras.Model
        Made by :func:`build_musicnn` (loaded or not).

    Returns
    -------
    keras.Model
        Same input; a dict of outputs. musicnn: ``timbral (187, 408)``,
        ``temporal (187, 153)``, ``cnn1``/``cnn2``/``cnn3 (187, 64)``,
        ``mean_pool``/``max_pool (753,)``, ``penultimate (200,)``, ``logits`` and
        ``taggram (50,)``. VGG: ``pool1`` ... ``pool5`` (the block outputs),
        ``logits``, ``taggram``.
    """
    import keras

    names = VGG_FEATURE_NAMES if "pool5" in {layer.name for layer in model.layers} else MUSICNN_FEATURE_NAMES
    outputs = {feature: model.get_layer(feature).output for feature in names}
    return keras.Model(model.inputs, outputs, name=f"{model.name}_features")


# --------------------------------------------------------------------------- the weights


def checkpoint_prefix(name: str) -> str:
    """Path prefix of a model's TF1 checkpoint inside the installed musicnn wheel.

    Finding the package does not import it (``find_spec`` runs no module code).

    Raises
    ------
    GenrekitError
        musicnn is not installed, or its checkpoint files are missing.
    """
    folder_name = _checkpoint_name(name)
    spec = importlib.util.find_spec("musicnn")
    if spec is None or not spec.submodule_search_locations:
        raise GenrekitError(
            "musicnn 0.1.0 is not installed (its checkpoints hold the pretrained weights); run make venv"
        )
    folder = Path(next(iter(spec.submodule_search_locations))) / folder_name
    # The checkpoint files are named ".index" and ".data-00000-of-00001": the prefix is the folder
    # itself plus "/". (The folder's "checkpoint" file points to the authors' machine, so
    # tf.train.load_checkpoint(folder) cannot resolve it.)
    if not (folder / ".index").is_file():
        raise GenrekitError(f"{folder}: musicnn checkpoint not found (reinstall musicnn 0.1.0: run make venv)")
    return f"{folder}/"


def _is_optimizer_state(variable: str) -> bool:
    """Adam's moment estimates and power accumulators, saved beside the model variables."""
    return variable.endswith(("/Adam", "/Adam_1")) or variable in ("beta1_power", "beta2_power")


def read_checkpoint(name: str) -> dict[str, np.ndarray]:
    """The model variables of a musicnn checkpoint (optimizer state left out), by TF1 name."""
    import tensorflow as tf

    reader = tf.compat.v1.train.NewCheckpointReader(checkpoint_prefix(name))
    return {
        variable: reader.get_tensor(variable)
        for variable in sorted(reader.get_variable_to_shape_map())
        if not _is_optimizer_state(variable)
    }


def _interleaved_to_concatenated(values: np.ndarray) -> np.ndarray:
    """Reorder the 1506 pooled features from TF1's ``[max0, mean0, max1, mean1, ...]`` (the
    flattening of ``concat([max, mean], axis=2)``) to ``[max0, max1, ..., mean0, mean1, ...]``."""
    return np.concatenate([values[0::2], values[1::2]])


def _squeeze_width(kernel: np.ndarray) -> np.ndarray:
    """TF1 mid-end kernel ``(7, features, 1, 64)`` -> Keras Conv1D kernel ``(7, features, 64)``."""
    return kernel[:, :, 0, :]


def _time_to_second_axis(kernel: np.ndarray) -> np.ndarray:
    """A temporal branch's ``(length, 1, 1, filters)`` kernel for the transposed (mel, time) input."""
    return np.ascontiguousarray(kernel.transpose(1, 0, 2, 3))


def _keep(values: np.ndarray) -> np.ndarray:
    return values


BN = ("gamma", "beta", "moving_mean", "moving_variance")  # Keras' order of a BatchNormalization's weights
DENSE = ("kernel", "bias")  # also Conv1D / Conv2D


def _weight_map(name: str) -> list[tuple[str, str, tuple[str, ...], Callable[[np.ndarray], np.ndarray]]]:
    """``(keras layer, TF1 scope, variables, transform)`` for every layer with weights.

    TF1 named layers by creation order (``conv2d``, ``conv2d_1``, ...,
    ``batch_normalization_3``); the order below follows ``musicnn/models.py`` and was
    checked against the op graph in the wheel's ``.meta`` files.
    """
    if name.startswith("vgg"):
        entries = [("input_bn", "batch_normalization", BN, _keep)]
        for block in range(1, 6):
            entries += [
                (f"conv{block}", f"{block}CNN", DENSE, _keep),
                (f"bn{block}", f"batch_normalization_{block}", BN, _keep),
            ]
        return [*entries, ("logits", "dense", DENSE, _keep)]
    branches = ["timbral_38", "timbral_67", "temporal_128", "temporal_64", "temporal_32"]
    entries = [("input_bn", "batch_normalization", BN, _keep)]
    for i, branch in enumerate(branches):
        kernel = _time_to_second_axis if branch.startswith("temporal") else _keep
        entries += [
            (f"{branch}_conv", f"conv2d_{i}" if i else "conv2d", ("kernel",), kernel),
            (f"{branch}_conv", f"conv2d_{i}" if i else "conv2d", ("bias",), _keep),
            (f"{branch}_bn", f"batch_normalization_{i + 1}", BN, _keep),
        ]
    for i, bn in enumerate(["cnn1", "cnn2_bn", "cnn3_bn"]):
        entries += [
            (f"cnn{i + 1}_conv", f"conv2d_{i + 5}", ("kernel",), _squeeze_width),
            (f"cnn{i + 1}_conv", f"conv2d_{i + 5}", ("bias",), _keep),
            (bn, f"batch_normalization_{i + 6}", BN, _keep),
        ]
    return [
        *entries,
        ("pooled_bn", "batch_normalization_9", BN, _interleaved_to_concatenated),
        ("penultimate_dense", "dense", ("kernel",), _interleaved_to_concatenated),  # kernel rows
        ("penultimate_dense", "dense", ("bias",), _keep),
        ("penultimate", "batch_normalization_10", BN, _keep),
        ("logits", "dense_1", DENSE, _keep),
    ]


def load_musicnn_weights(model, name: str) -> None:
    """Set ``model``'s weights from the musicnn checkpoint of ``name``.

    Every checkpoint variable (optimizer state aside) goes to exactly one Keras
    weight and every Keras weight gets one, with equal shapes; anything else is an
    error, so a wrong mapping cannot load silently.

    Parameters
    ----------
    model : keras.Model
        Made by ``build_musicnn(name)``.
    name : str
        The model name, e.g. ``"musicnn-msd"``.

    Raises
    ------
    GenrekitError
        musicnn is not installed, or the checkpoint does not fit the model.
    """
    checkpoint = read_checkpoint(name)
    values: dict[int, np.ndarray] = {}  # id of the Keras variable -> its new value
    used: list[str] = []
    layer_names = {layer.name for layer in model.layers}
    for layer_name, scope, variables, transform in _weight_map(name):
        if layer_name not in layer_names:
            raise GenrekitError(f"{name}: the model has no layer {layer_name}; build it with build_musicnn({name!r})")
        layer = model.get_layer(layer_name)
        by_name = {weight.name: weight for weight in layer.weights}
        for variable in variables:
            source = f"{scope}/{variable}"
            if source not in checkpoint:
                raise GenrekitError(f"{name}: checkpoint has no {source} (for layer {layer_name})")
            value = transform(checkpoint[source])
            target = by_name[variable]
            if tuple(value.shape) != tuple(target.shape):
                raise GenrekitError(
                    f"{name}: {source} has shape {value.shape}, layer {layer_name} needs {tuple(target.shape)}"
                )
            values[id(target)] = value
            used.append(source)
    unused = sorted(set(checkpoint) - set(used))
    twice = sorted({source for source in used if used.count(source) > 1})
    unset = [weight.path for weight in model.weights if id(weight) not in values]
    if unused or twice or unset:
        raise GenrekitError(
            f"{name}: checkpoint does not fit the model (unused: {unused}, "
            f"used twice: {twice}, weights not set: {unset})"
        )
    for weight in model.weights:
        weight.assign(values[id(weight)])


def load_musicnn(name: str = "musicnn-msd"):
    """:func:`build_musicnn` and :func:`load_musicnn_weights` in one call: a ready tagger."""
    model = build_musicnn(name)
    load_musicnn_weights(model, name)
    return model


def with_channel_axis(model, name: str):
    """``model`` (a musicnn tagger or a part of one) taking ``(187, 96, 1)`` spectrograms.

    ``processed.h5`` slices get a trailing channel axis on their way into every model of
    this project (the analyzer, the training loader); musicnn's input has none. The model
    runs in inference mode (``training=False``): its batch norms keep their statistics.
    """
    import keras

    inputs = keras.Input((*model.input_shape[1:], 1), name="spectrogram")
    x = keras.layers.Reshape(model.input_shape[1:], name="drop_channel")(inputs)
    return keras.Model(inputs, model(x, training=False), name=name)
