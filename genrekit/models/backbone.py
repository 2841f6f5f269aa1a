"""A pretrained music model (musicnn) as the backbone of a genre classifier.

With ``model.backbone: "musicnn-msd"`` (or ``"musicnn-mtt"``) the classifier is

    spectrogram (187, 96, 1) -> musicnn up to its pooled or penultimate features -> head

and the head is new: dropout, then a softmax over the dataset's labels. The
backbone runs in inference mode (its batch norms keep their pretrained
statistics, which a small corpus would only spoil).

A frozen backbone (``model.backbone_trainable: false``, the default) computes the
same features for a slice in every epoch, so training computes them once per
slice (:func:`embed_split`) and fits the head on them: an epoch then costs a
dense layer, not musicnn. Fine-tuning (``true``) trains the whole network on the
spectrograms, the backbone at ``model.backbone_lr_factor`` times the head's
learning rate (:class:`TwoRateAdam`).

Every model here is made of ``keras.layers``: the exported ``model.keras`` loads
like the CRNN's, and the analyzer uses it without knowing it holds a backbone.
"""

from __future__ import annotations

import keras
import numpy as np
from keras import layers

from genrekit.core.config import ModelConfig
from genrekit.models.musicnn import N_MELS, PATCH_FRAMES, load_musicnn, with_channel_axis

# musicnn's layer whose output feeds the head: the batch-normalized [max, mean] pooling of its
# 753 features over time (1506 values), or its 200-d penultimate dense layer.
FEATURE_LAYERS = {"pooled": "pooled_bn", "penultimate": "penultimate"}
INPUT_SHAPE = (PATCH_FRAMES, N_MELS, 1)  # the spectrogram as stored in processed.h5, plus a channel


def build_embedder(config: ModelConfig) -> keras.Model:
    """The pretrained backbone: a spectrogram ``(187, 96, 1)`` in, its feature vector out."""
    tagger = load_musicnn(config.backbone)
    features = keras.Model(
        tagger.inputs, tagger.get_layer(FEATURE_LAYERS[config.backbone_output]).output, name="backbone_features"
    )
    # in inference mode: batch norms keep the pretrained statistics, also while fine-tuning
    embedder = with_channel_axis(features, config.backbone.replace("-", "_"))
    embedder.trainable = config.backbone_trainable
    return embedder


def build_head(dimension: int, n_labels: int, config: ModelConfig) -> keras.Model:
    """The new classifier on top of the backbone's features: dropout and a softmax."""
    inputs = keras.Input((dimension,), name="backbone_features")
    x = layers.Dropout(config.dropout, name="dropout")(inputs)
    outputs = layers.Dense(n_labels, activation="softmax", dtype="float32", name="scores")(x)
    return keras.Model(inputs, outputs, name="head")


def head_arrays(head: keras.Model) -> dict[str, np.ndarray]:
    """The weights of a head of :func:`build_head` as plain arrays, by ``<layer>.<weight>`` name
    (``scores.kernel``, ``scores.bias``): what a head-only folder's ``head.npz`` holds."""
    return {
        f"{layer.name}.{weight.name}": keras.ops.convert_to_numpy(weight)
        for layer in head.layers
        for weight in layer.weights
    }


def set_head_arrays(head: keras.Model, arrays: dict[str, np.ndarray]) -> None:
    """Give a head of :func:`build_head` the weights of :func:`head_arrays`; raise ``ValueError`` when
    one is missing, left over or of another shape."""
    weights = {f"{layer.name}.{weight.name}": weight for layer in head.layers for weight in layer.weights}
    if set(weights) != set(arrays):
        raise ValueError(
            f"the head's weights are {', '.join(sorted(weights))}, the file holds {', '.join(sorted(arrays)) or 'none'}"
        )
    for name, weight in weights.items():
        if tuple(arrays[name].shape) != tuple(weight.shape):
            raise ValueError(
                f"{name} has shape {list(weight.shape)} in the head, {list(arrays[name].shape)} in the file"
            )
        weight.assign(arrays[name])


def build_classifier(embedder: keras.Model, head: keras.Model) -> keras.Model:
    """Backbone and head as one model taking a processed spectrogram, like the CRNN."""
    inputs = keras.Input(INPUT_SHAPE, name="spectrogram")
    return keras.Model(inputs, head(embedder(inputs)), name="backbone_classifier")


def ensemble_classifier(members: list[keras.Model]) -> keras.Model:
    """Classifiers of :func:`build_classifier` that share one frozen backbone (the runs of
    ``training.runs``) as one model: the backbone once, the mean of the heads' scores.

    Their frozen backbones hold the same pretrained weights, so this scores a slice as the mean
    of the members' scores at the cost of one backbone, not one per member.
    """
    embedder = next(layer for layer in members[0].layers if isinstance(layer, keras.Model) and layer.name != "head")
    heads = [member.get_layer("head") for member in members]
    for i, head in enumerate(heads):
        head.name = f"head_{i + 1:02d}"  # nested models need distinct names
    inputs = keras.Input(INPUT_SHAPE, name="spectrogram")
    features = embedder(inputs)
    scores = layers.Average(name="mean_score")([head(features) for head in heads])
    return keras.Model(inputs, scores, name="backbone_ensemble")
