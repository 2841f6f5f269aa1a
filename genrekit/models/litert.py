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

Beside it, :func:`export` can write a copy with int8 weights (``precision="int8"``,
:data:`QUANTIZED_FILE`): dynamic-range quantization (the weights int8 per output channel, the
activations quantized per row at run time by the interpreter's XNNPACK kernels, float32 between
layers), by ``ai-edge-quantizer``, of the layers that do the model's bulk and keep their precision
(:func:`quantized_layers`): musicnn's front end, in its banded-matrix forms, and multi-channel 2D
convolutions (the CRNN's). Dense layers (heads), 1D convolutions (musicnn's mid-end) and the GRUs stay
float32: quantized, they moved a ready model's scores by up to 0.7 (docs/RESULTS.md). No calibration
data is needed, so any run folder can have one.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
from pathlib import Path

import numpy as np

from genrekit.core.cli import quiet_native_logs
from genrekit.core.errors import GenrekitError
from genrekit.models import bundle

EXPORT_FILE = "model.tflite"
QUANTIZED_FILE = "model.int8.tflite"  # the export with int8 weights (precision "int8")
PRECISIONS = bundle.PRECISIONS  # float32, int8 weights
# An export whose scores differ from the Keras model's by more than this on the check batch is
# refused. Float32 LiteRT kernels sum in another order than Keras' (oneDNN): about 1e-7 on a CRNN's
# softmax, up to 2e-6 through musicnn (tests/models/test_litert.py).
CHECK_TOLERANCE = 1e-4
# The same for the int8 export: a guard against a broken export (a wrong layer moves probabilities by
# their own scale), not its fidelity, which benchmarks/quantization.py measures on real music. Measured
# on the check batch: up to 0.04 (the ready model's softmax on random spectrograms).
QUANTIZED_CHECK_TOLERANCE = 0.1


def int8_pays() -> bool:
    """Whether this CPU has int8 dot-product instructions (x86 AVX-512 VNNI or AVX-VNNI: ``/proc/cpuinfo``),
    on which the int8 exports ran faster than the float ones (docs/RESULTS.md). Elsewhere (AVX2 alone,
    other architectures) it was not measured, and the float export stays the default."""
    try:
        text = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False
    flags = next((line.split(":", 1)[1].split() for line in text.splitlines() if line.startswith("flags")), [])
    return bool({"avx512_vnni", "avx_vnni"} & set(flags))


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


def _max_chains(model, quantized: bool = False) -> dict[int, tuple]:
    """Conv2D -> BatchNormalization -> MaxPooling2D chains of ``model`` (not nested) that a layer of
    :mod:`genrekit.models.max_pooled` computes (:func:`~genrekit.models.max_pooled.replacement`), with a
    kernel at least :data:`UNFOLD_MIN_WIDTH` wide, where only the batch norm reads the convolution and
    only the max reads the batch norm. Keyed by the ``id`` of each of the three layers, each to
    ``(layer class, conv, norm, pool)``; ``quantized``: the forms for int8 weights."""
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
        kind = replacement(conv, norm, pool, quantized)
        if kind is not None:
            for layer in (conv, norm, pool):
                chains[id(layer)] = (kind, conv, norm, pool)
    return chains


def inference_clone(model, quantized: bool = False):
    """The Keras model as it is exported, nested models included; the same function with the same
    weights. Every GRU is unrolled; a wide single-channel convolution followed by a batch norm and a max
    over a whole axis (musicnn's front end) becomes one layer of :mod:`genrekit.models.max_pooled` (for
    an export with int8 weights, ``quantized``, the banded-matrix forms only); any other wide
    single-channel "valid" convolution becomes two (:func:`_taps_to_channels`). ``model`` itself when
    there is nothing to change."""
    import keras

    from genrekit.models.max_pooled import Computed

    layers = _all_layers(model)
    chains = {}
    for nested in [model, *(layer for layer in layers if hasattr(layer, "layers"))]:
        chains.update(_max_chains(nested, quantized))
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


def quantized_layers(clone) -> list[str]:
    """Names of the layers of an :func:`inference_clone` (nested included) whose weights the int8 export
    quantizes: the banded-matrix forms of :mod:`genrekit.models.max_pooled` and multi-channel Conv2D
    layers. Others lose precision, or time, with int8 weights (see the module notes)."""
    import keras

    from genrekit.models.max_pooled import ToeplitzHeightMax, ToeplitzWidthMax

    def counts(layer) -> bool:
        if isinstance(layer, ToeplitzHeightMax | ToeplitzWidthMax):
            return True
        return type(layer) is keras.layers.Conv2D and layer.kernel.shape[2] > 1

    return [layer.name for layer in _all_layers(clone) if counts(layer)]


def quantize_weights(model_bytes: bytes, layers: list[str]) -> bytes:
    """A float LiteRT model with the weights of ``layers``' matrix products and convolutions in int8, per
    output channel (dynamic-range quantization by ``ai-edge-quantizer``: the activations stay float32
    and are quantized per row by the kernels at run time)."""
    from ai_edge_quantizer import qtyping, quantizer

    # The converter names an op's output after the layer that made it: ".../<layer>_1/MatMul".
    scope = "(^|/)(" + "|".join(map(re.escape, layers)) + r")(_\d+)?/"
    quantizing = quantizer.Quantizer(bytearray(model_bytes))
    for op in (qtyping.TFLOperationName.FULLY_CONNECTED, qtyping.TFLOperationName.CONV_2D):
        quantizing.add_dynamic_config(regex=scope, operation_name=op, num_bits=8)
    # its progress bar of the tensors rewritten ignores enable_progress_bar (0.10.0): stderr held meanwhile
    with contextlib.redirect_stderr(io.StringIO()):
        quantized = quantizing.quantize(enable_progress_bar=False, enable_progress_report=False)
    return bytes(quantized.quantized_model)


def int8_weights(path: os.PathLike | str) -> int:
    """How many int8 weight tensors a LiteRT model holds (0 for a float export)."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(path))
    return sum(detail["dtype"] == np.int8 for detail in interpreter.get_tensor_details())


def export(
    model, path: os.PathLike | str, check_batch: np.ndarray | None = None, precision: str = "float"
) -> Path | None:
    """Export a float32 Keras model to LiteRT at ``path`` (atomically), any batch size; with
    ``precision="int8"``, its copy with int8 weights (:func:`quantize_weights` of
    :func:`quantized_layers`), or nothing (None) when the model has no such layer.

    The export is loaded back with the interpreter and its scores compared with the Keras
    model's on ``check_batch`` (default: two random inputs); more than :data:`CHECK_TOLERANCE`
    (:data:`QUANTIZED_CHECK_TOLERANCE` for int8) apart (times the largest output where it exceeds 1:
    features rather than scores), or ops the interpreter cannot run, raise :class:`GenrekitError` and
    nothing is written.
    """
    import keras

    if precision not in PRECISIONS:
        raise ValueError(f"precision {precision!r} is not one of {PRECISIONS}")
    path = Path(path)
    source = inference_clone(model, quantized=precision == "int8")
    layers = quantized_layers(source) if precision == "int8" else []
    if precision == "int8" and not layers:
        return None
    spec = keras.InputSpec(shape=(None, *model.input_shape[1:]), dtype="float32", name="spectrogram")
    partial = path.with_name(f"{path.stem}.partial-{os.getpid()}.tflite")  # Keras wants the suffix
    try:
        source.export(str(partial), format="litert", verbose=False, input_signature=[spec])
        if layers:
            partial.write_bytes(quantize_weights(partial.read_bytes(), layers))
        if check_batch is None:
            check_batch = np.random.default_rng(0).normal(size=(2, *model.input_shape[1:])).astype(np.float32)
        try:
            exported = LiteRTModel(partial).predict(check_batch)
        except RuntimeError as exc:  # e.g. Flex ops the interpreter does not have
            raise GenrekitError(f"{path}: the LiteRT export cannot run ({str(exc).splitlines()[0]})") from None
        expected = np.asarray(model.predict_on_batch(check_batch), dtype=np.float32)
        # scores are probabilities; other outputs (a backbone's features) are compared to their scale
        difference = float(np.max(np.abs(exported - expected))) / max(1.0, float(np.max(np.abs(expected))))
        tolerance = QUANTIZED_CHECK_TOLERANCE if layers else CHECK_TOLERANCE
        if not difference <= tolerance:
            raise GenrekitError(
                f"{path}: the LiteRT export's scores differ from the Keras model's by "
                f"{difference:.2g} (more than {tolerance:g})"
            )
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)
    return path
