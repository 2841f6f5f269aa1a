"""Keras models exported to LiteRT (``model.tflite``), run without TensorFlow.

A run folder's Keras model is exported beside it when it is saved (:func:`export`), and the
analyzer runs the export with the ``ai-edge-litert`` interpreter (:class:`LiteRTModel`):
importing it and loading a model take a fraction of a second, against about 5 s to import
TensorFlow and Keras. Why LiteRT: measured on 2 cores against ONNX Runtime, OpenVINO and
Keras itself (docs/RESULTS.md), it starts as fast as ONNX Runtime, runs the CRNN as fast as
Keras, is the only one of them that runs musicnn in less memory than the original extractor,
and its inference-only install is the smallest; the exporter ships with TensorFlow.

The model is exported as an equivalent clone (:func:`inference_clone`): the GRUs of the CRNN are
unrolled (16 steps), since a GRU loop becomes TensorFlow "Flex" ops that the LiteRT interpreter
does not run; musicnn's front end (wide single-channel convolutions, each followed by a batch norm
and a max over the mel axis) is computed with matrix products, its timbral branches through a DFT
with 2.6 times fewer multiply-adds (:mod:`genrekit.models.max_pooled`), and other wide single-channel
convolutions are split in two; XNNPACK runs each form faster. The clone computes the same function
with the same weights.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from genrekit.core.cli import quiet_native_logs
from genrekit.core.errors import GenrekitError

EXPORT_FILE = "model.tflite"
# An export whose scores differ from the Keras model's by more than this on the check batch is
# refused. Float32 LiteRT kernels sum in another order than Keras' (oneDNN): about 1e-7 on a CRNN's
# softmax, up to 2e-6 through musicnn (tests/models/test_litert.py).
CHECK_TOLERANCE = 1e-4


def interpreter_available() -> bool:
    """Whether the ``ai-edge-litert`` interpreter is installed."""
    import importlib.util

    return importlib.util.find_spec("ai_edge_litert") is not None


class LiteRTModel:
    """An exported model run by the LiteRT interpreter: ``predict(batch)`` like a Keras model's.

    Parameters
    ----------
    path : path-like
        A ``.tflite`` file written by :func:`export` (any batch size).
    threads : int, optional
        Interpreter threads; default every core.
    max_rows : int, optional
        Run larger batches in pieces of this many slices (bounds the interpreter's memory).
    """

    def __init__(self, path: os.PathLike | str, threads: int | None = None, max_rows: int | None = None):
        from ai_edge_litert.interpreter import Interpreter

        self.path = Path(path)
        with quiet_native_logs():  # "INFO: Created TensorFlow Lite XNNPACK delegate" on the first allocation
            self._interpreter = Interpreter(model_path=str(self.path), num_threads=threads or os.cpu_count() or 1)
            self._interpreter.allocate_tensors()
        source = self._interpreter.get_input_details()[0]
        target = self._interpreter.get_output_details()[0]
        self._input, self._output = source["index"], target["index"]
        self.input_shape = (None, *map(int, source["shape_signature"][1:]))
        self.output_shape = (None, *map(int, target["shape_signature"][1:]))
        self._batch = -1  # the batch size the tensors are allocated for
        self.max_rows = max_rows

    def predict(self, batch: np.ndarray) -> np.ndarray:
        """Scores ``(n, n_labels)`` float32 of a batch ``(n, *input_shape[1:])``, in pieces of at most
        :attr:`max_rows` slices."""
        if self.max_rows and len(batch) > self.max_rows:
            return np.concatenate(
                [self.predict(batch[i : i + self.max_rows]) for i in range(0, len(batch), self.max_rows)]
            )
        batch = np.ascontiguousarray(batch, dtype=np.float32)
        if len(batch) != self._batch:  # tensors sized for this batch; the next of the same size reuses them
            self._interpreter.resize_tensor_input(self._input, batch.shape, strict=False)
            self._interpreter.allocate_tensors()
            self._batch = len(batch)
        self._interpreter.set_tensor(self._input, batch)
        self._interpreter.invoke()
        return self._interpreter.get_tensor(self._output).copy()


# A "valid" single-channel Conv2D at least this wide is exported as two convolutions (_taps_to_channels).
UNFOLD_MIN_WIDTH = 16


def _taps_to_channels(layer):
    """A "valid" Conv2D on one input channel with a ``(kh, kw)`` kernel, as an identity ``(1, kw)``
    convolution that moves the ``kw`` neighbours of every value into channels, then a ``(kh, 1)``
    convolution over those channels, with the layer's weights and name.

    The same sums (the identity adds exact zeros); why: XNNPACK's convolution reads one value per
    kernel tap when there is one input channel, and ``kw`` at a time after the move. musicnn's
    timbral branches (7 x 38 and 7 x 67 on the mel axis, 80 % of its multiply-adds) run 1.1 and 1.4
    times as fast this way.
    """
    import keras

    kh, kw, _, filters = layer.kernel.shape
    taps = keras.layers.Conv2D(kw, (1, kw), use_bias=False, name=f"{layer.name}_taps")
    over_taps = keras.layers.Conv2D(
        filters, (kh, 1), activation=layer.activation, use_bias=layer.use_bias, name=f"{layer.name}_over_taps"
    )
    pair = keras.Sequential([keras.Input(layer.input.shape[1:]), taps, over_taps], name=layer.name)
    taps.set_weights([np.eye(kw, dtype=np.float32).reshape(1, kw, 1, kw)])
    weights = layer.get_weights()
    over_taps.set_weights([weights[0].reshape(kh, 1, kw, filters), *weights[1:]])
    return pair


def _unfoldable(layer) -> bool:
    from genrekit.models.max_pooled import single_channel_conv

    return single_channel_conv(layer) and layer.padding == "valid" and layer.kernel.shape[1] >= UNFOLD_MIN_WIDTH


def _max_chains(model) -> dict[int, tuple]:
    """Conv2D -> BatchNormalization -> MaxPooling2D chains of ``model`` (not nested) that a layer of
    :mod:`genrekit.models.max_pooled` computes (:func:`~genrekit.models.max_pooled.replacement`), with a
    kernel at least :data:`UNFOLD_MIN_WIDTH` wide, where only the batch norm reads the convolution and
    only the max reads the batch norm. Keyed by the ``id`` of each of the three layers, each to
    ``(layer class, conv, norm, pool)``."""
    import keras

    from genrekit.models.max_pooled import replacement

    def only_reader(layer, kind) -> bool:  # ``layer`` is a ``kind`` used once, whose output one layer reads
        return type(layer) is kind and len(layer._inbound_nodes) == len(layer._outbound_nodes) == 1

    chains = {}
    for pool in model.layers:
        if not (type(pool) is keras.layers.MaxPooling2D and len(pool._inbound_nodes) == 1):
            continue
        norm = pool.input._keras_history.operation
        if not only_reader(norm, keras.layers.BatchNormalization):
            continue
        conv = norm.input._keras_history.operation
        if not (only_reader(conv, keras.layers.Conv2D) and conv.kernel.shape[1] >= UNFOLD_MIN_WIDTH):
            continue  # a narrow kernel runs as fast directly
        kind = replacement(conv, norm, pool)
        if kind is not None:
            for layer in (conv, norm, pool):
                chains[id(layer)] = (kind, conv, norm, pool)
    return chains


def inference_clone(model):
    """The Keras model as it is exported, nested models included; the same function with the same
    weights. Every GRU is unrolled; a wide single-channel convolution followed by a batch norm and a max
    over a whole axis (musicnn's front end) becomes one layer of :mod:`genrekit.models.max_pooled`; any
    other wide single-channel "valid" convolution becomes two (:func:`_taps_to_channels`). ``model``
    itself when there is nothing to change."""
    import keras

    from genrekit.models.max_pooled import Computed

    layers = _all_layers(model)
    chains = {}
    for nested in [model, *(layer for layer in layers if hasattr(layer, "layers"))]:
        chains.update(_max_chains(nested))
    if not chains and not any(isinstance(layer, keras.layers.GRU) or _unfoldable(layer) for layer in layers):
        return model

    def clone(layer):
        if id(layer) in chains:
            kind, conv, norm, pool = chains[id(layer)]
            return kind.from_layers(conv, norm, pool) if layer is conv else Computed(name=layer.name)
        if _unfoldable(layer):
            return _taps_to_channels(layer)  # built, with its weights
        config = layer.get_config()
        if isinstance(layer, keras.layers.GRU):
            config["unroll"] = True
        return layer.__class__.from_config(config)

    copy = keras.models.clone_model(model, clone_function=clone, recursive=True)
    _copy_weights(model, copy)
    return copy


def _copy_weights(source, target) -> None:
    """Set the weights of every layer of ``target`` (a clone of ``source``) from its original, except the
    replaced layers (split convolutions, :mod:`~genrekit.models.max_pooled` chains), which have theirs."""
    for original, cloned in zip(source.layers, target.layers, strict=True):
        if type(cloned) is not type(original):
            continue
        if hasattr(original, "layers"):  # a nested model
            _copy_weights(original, cloned)
        else:
            cloned.set_weights(original.get_weights())


def _all_layers(model) -> list:
    layers = []
    for layer in model.layers:
        layers.append(layer)
        if hasattr(layer, "layers"):
            layers.extend(_all_layers(layer))
    return layers


def export(model, path: os.PathLike | str, check_batch: np.ndarray | None = None) -> Path:
    """Export a float32 Keras model to LiteRT at ``path`` (atomically), any batch size.

    The export is loaded back with the interpreter and its scores compared with the Keras
    model's on ``check_batch`` (default: two random inputs); more than :data:`CHECK_TOLERANCE`
    apart, or ops the interpreter cannot run, raise :class:`GenrekitError` and nothing is written.
    """
    import keras

    path = Path(path)
    source = inference_clone(model)
    spec = keras.InputSpec(shape=(None, *model.input_shape[1:]), dtype="float32", name="spectrogram")
    partial = path.with_name(f"{path.stem}.partial-{os.getpid()}.tflite")  # Keras wants the suffix
    try:
        source.export(str(partial), format="litert", verbose=False, input_signature=[spec])
        if check_batch is None:
            check_batch = np.random.default_rng(0).normal(size=(2, *model.input_shape[1:])).astype(np.float32)
        try:
            exported = LiteRTModel(partial).predict(check_batch)
        except RuntimeError as exc:  # e.g. Flex ops the interpreter does not have
            raise GenrekitError(f"{path}: the LiteRT export cannot run ({str(exc).splitlines()[0]})") from None
        expected = np.asarray(model.predict_on_batch(check_batch), dtype=np.float32)
        difference = float(np.max(np.abs(exported - expected)))
        if not difference <= CHECK_TOLERANCE:
            raise GenrekitError(
                f"{path}: the LiteRT export's scores differ from the Keras model's by "
                f"{difference:.2g} (more than {CHECK_TOLERANCE:g})"
            )
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)
    return path
