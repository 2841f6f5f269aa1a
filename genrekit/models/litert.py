"""Keras models exported to LiteRT (``model.tflite``), run without TensorFlow.

A run folder's Keras model is exported beside it when it is saved (:func:`export`), and the
analyzer runs the export with the ``ai-edge-litert`` interpreter (:class:`LiteRTModel`):
importing it and loading a model take a fraction of a second, against about 5 s to import
TensorFlow and Keras. Why LiteRT: measured on 2 cores against ONNX Runtime, OpenVINO and
Keras itself (docs/RESULTS.md), it starts as fast as ONNX Runtime, runs the CRNN as fast as
Keras, is the only one of them that runs musicnn in less memory than the original extractor,
and its inference-only install is the smallest; the exporter ships with TensorFlow.

The GRUs of the CRNN are unrolled for the export (16 steps): a GRU loop becomes TensorFlow
"Flex" ops that the LiteRT interpreter does not run, an unrolled one plain ops; the unrolled
clone computes the same function with the same weights.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

import numpy as np

from genrekit.core.cli import quiet_native_logs
from genrekit.core.errors import GenrekitError

EXPORT_FILE = "model.tflite"
# An export whose scores differ from the Keras model's by more than this on the check batch is
# refused. Float32 LiteRT kernels sum in another order than Keras' (oneDNN): about 1e-7 on a CRNN's
# softmax, up to 2e-6 through musicnn's 1.4 G multiply-adds per slice (tests/models/test_litert.py).
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

    def __init__(self, path: os.PathLike | str, threads: Optional[int] = None, max_rows: Optional[int] = None):
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
            return np.concatenate([self.predict(batch[i:i + self.max_rows])
                                   for i in range(0, len(batch), self.max_rows)])
        batch = np.ascontiguousarray(batch, dtype=np.float32)
        if len(batch) != self._batch:  # tensors sized for this batch; the next of the same size reuses them
            self._interpreter.resize_tensor_input(self._input, batch.shape, strict=False)
            self._interpreter.allocate_tensors()
            self._batch = len(batch)
        self._interpreter.set_tensor(self._input, batch)
        self._interpreter.invoke()
        return self._interpreter.get_tensor(self._output).copy()


def unrolled(model):
    """The Keras model with every GRU unrolled (same weights, same function), nested models included."""
    import keras

    def clone(layer):
        config = layer.get_config()
        if isinstance(layer, keras.layers.GRU):
            config["unroll"] = True
        return layer.__class__.from_config(config)

    if not any(isinstance(layer, keras.layers.GRU) for layer in _all_layers(model)):
        return model
    copy = keras.models.clone_model(model, clone_function=clone, recursive=True)
    copy.set_weights(model.get_weights())
    return copy


def _all_layers(model) -> list:
    layers = []
    for layer in model.layers:
        layers.append(layer)
        if hasattr(layer, "layers"):
            layers.extend(_all_layers(layer))
    return layers


def export(model, path: os.PathLike | str, check_batch: Optional[np.ndarray] = None) -> Path:
    """Export a float32 Keras model to LiteRT at ``path`` (atomically), any batch size.

    The export is loaded back with the interpreter and its scores compared with the Keras
    model's on ``check_batch`` (default: two random inputs); more than :data:`CHECK_TOLERANCE`
    apart, or ops the interpreter cannot run, raise :class:`GenrekitError` and nothing is written.
    """
    import keras

    path = Path(path)
    source = unrolled(model)
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
            raise GenrekitError(f"{path}: the LiteRT export's scores differ from the Keras model's by "
                                f"{difference:.2g} (more than {CHECK_TOLERANCE:g})")
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)
    return path
