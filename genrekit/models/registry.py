"""Every model family, in one place: how each is built, saved and loaded.

=========  ==============================================  ===========================  ==============
family     what                                             saved as                     built by
=========  ==============================================  ===========================  ==============
keras      a network of ``model.architecture`` (CRNN,       ``model.keras``, exported    :mod:`.networks`,
           1D CNN, MobileNetV2), a pretrained backbone      to ``model.tflite``          :mod:`.backbone`
           with its head, or the ensemble of several runs                                :func:`ensemble`
keras      the ready genre model (``gtzan-genres``, the     ``head.npz`` (the head       :mod:`.backbone`
           default): a head on the frozen musicnn-msd       alone) and ``model.tflite``
           backbone, trained on 270 GTZAN clips             in ``ready/gtzan-genres/``
baseline   a scikit-learn family on slice feature vectors   ``model.npz`` (arrays only)  :mod:`.baselines`
tagger     a ready musicnn tagger (``musicnn-msd``,         the ``musicnn`` wheel's      :mod:`.musicnn`
           ``musicnn-mtt``)                                 checkpoints, exported to
                                                            ``exports/<name>.tflite``
=========  ==============================================  ===========================  ==============

A Keras model's export comes in two precisions (:data:`litert.PRECISIONS`): ``model.tflite`` (float32)
and ``model.int8.tflite`` (int8 weights where they keep their precision, :mod:`.litert`); the analyzer
runs the int8 one where the bundle names it, it exists and the CPU runs it faster (:func:`choose_precision`).

A run folder's ``bundle.json`` (:mod:`.bundle`) says which family its model is; the analyzer and
the training ask this module for the rest. A Keras model is analyzed through its LiteRT export
(:mod:`.litert`), without TensorFlow; a run folder saved before exports existed is exported on
first use (or with ``tools/export_models.py``), and Keras stays the fallback where no export can be
had. Keras is imported only when a Keras model is built, saved, exported or loaded, so a baseline
needs NumPy alone. A head-only folder (``head.npz``, like the ready genre model's) is a Keras model
too: :func:`keras_model` rebuilds its backbone from the checkpoints and sets the head's arrays.
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np

from genrekit.audio.features import slice_geometry
from genrekit.core.atomic import write_bytes
from genrekit.core.cli import log
from genrekit.core.config import (
    BACKBONE_FEATURES,
    BACKBONE_NORM_METHOD,
    BACKBONE_SLICE_DURATION,
    BuildConfig,
    SlicingConfig,
)
from genrekit.core.errors import GenrekitError
from genrekit.dataset.normalization import NormStats
from genrekit.models import baselines, litert
from genrekit.models.bundle import HEAD_FILE, MODEL_FILE, Bundle, load_bundle

KERAS, BASELINE, TAGGER = "keras", "baseline", "tagger"
PRETRAINED = ("musicnn-msd", "musicnn-mtt")  # the ready taggers: --model musicnn-msd
# The ready taggers' default export where the CPU runs int8 fast (see choose_precision), as measured by
# benchmarks/quantization.py on 170 GTZAN clips (docs/RESULTS.md).
TAGGER_PRECISION = "int8"
EXPORTS = Path(__file__).resolve().parent / "exports"  # the ready taggers' LiteRT exports (tools/export_models.py)
# The ready genre models, trained by tools/train_ready_model.py: --model gtzan-genres, the analyzer's default.
READY = {"gtzan-genres": Path(__file__).resolve().parent / "ready" / "gtzan-genres"}
DEFAULT_MODEL = "gtzan-genres"
# Slices per interpreter call for musicnn (a ready tagger, or a run on its backbone): the exported
# front end's intermediate tensors (genrekit/models/max_pooled.py) stay in the CPU's cache one slice
# at a time. On 2 cores: 11.4-12.0 ms a slice, against 12.1-14.4 in calls of 2 and 18-21 in calls of
# 8; the tagger's whole call on a 4-minute song peaks at 0.22 GB. A CRNN's batches run whole.
MUSICNN_ROWS = 1


def family(bundle: Bundle) -> str:
    """Which family a bundle's model is: :data:`KERAS`, :data:`BASELINE` or :data:`TAGGER`."""
    if bundle.pretrained is not None:
        return TAGGER
    return BASELINE if bundle.baseline is not None else KERAS


# --------------------------------------------------------------------------- ready taggers


def pretrained_tagger(name: str):
    """A musicnn tagger taking processed spectrograms ``(187, 96, 1)``, like a trained run's model."""
    from genrekit.models.musicnn import load_musicnn, with_channel_axis  # imports Keras

    tagger = load_musicnn(name)
    return with_channel_axis(tagger, f"{tagger.name}_tagger")


def pretrained_bundle(name: str) -> Bundle:
    """The bundle of a ready tagger: musicnn's features and 3 s patches, no normalization, its 50 tags."""
    from genrekit.models.musicnn import musicnn_tags  # imports Keras

    slicing = SlicingConfig(slice_duration=BACKBONE_SLICE_DURATION, overlap=0.0)
    geometry = slice_geometry(slicing.slice_duration, slicing.overlap, BACKBONE_FEATURES)
    return Bundle(
        Path(name),
        list(musicnn_tags(name)),
        BACKBONE_FEATURES,
        slicing,
        NormStats(BACKBONE_NORM_METHOD),
        (geometry.n_frames, geometry.n_mels, 1),
        BuildConfig().silence_threshold_db,
        {},
        pretrained=name,
        precision=TAGGER_PRECISION,
    )


def open_model(model: os.PathLike | str | None = None) -> Bundle:
    """``--model``: a run folder, or, when no such folder exists, the name of a ready genre model
    (:data:`READY`) or of a ready tagger (:data:`PRETRAINED`); None is :data:`DEFAULT_MODEL`."""
    name = DEFAULT_MODEL if model is None else str(model)
    if name in READY and not Path(name).is_dir():
        return load_bundle(READY[name])
    if name in PRETRAINED and not Path(name).is_dir():
        return pretrained_bundle(name)
    return load_bundle(name)


# --------------------------------------------------------------------------- Keras models


def save_model(model, folder: Path) -> None:
    """``<folder>/model.keras`` and its LiteRT exports (``model.tflite``, ``model.int8.tflite`` where the
    model has layers to quantize), each written whole or not at all."""
    partial = folder / "model.partial.keras"  # Keras wants the .keras suffix
    model.save(partial)
    os.replace(partial, folder / MODEL_FILE)
    export_all(float32_model(model), lambda precision: folder / export_name(precision))


def export_name(precision: str) -> str:
    """A run folder's export file of a precision: ``model.tflite`` or ``model.int8.tflite``."""
    return litert.EXPORT_FILE if precision == "float" else litert.QUANTIZED_FILE


def export_all(model, path_of) -> list[Path]:
    """Export a float32 Keras model in every precision to ``path_of(precision)``; the paths written (no
    int8 export for a model without layers to quantize, or whose int8 export fails: it is optional, and
    the float export is what a run folder needs)."""
    written = [litert.export(model, path_of("float"))]
    try:
        written.append(litert.export(model, path_of("int8"), precision="int8"))
    except Exception as exc:  # the quantizer and the converter raise many kinds
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        log(f"{path_of('int8')}: no int8 export ({reason}); the float export is there")
    return [path for path in written if path is not None]


def write_head(head, folder: Path) -> Path:
    """``<folder>/head.npz``: the arrays of a frozen backbone's trained head
    (:func:`genrekit.models.backbone.head_arrays`), written whole or not at all."""
    from genrekit.models.backbone import head_arrays  # imports Keras

    buffer = io.BytesIO()
    np.savez(buffer, **head_arrays(head))
    return write_bytes(Path(folder) / HEAD_FILE, buffer.getvalue())


def keras_model(bundle: Bundle):
    """A run folder's Keras model: its ``model.keras``, or for a head-only folder (``bundle.head``)
    the backbone rebuilt from its checkpoints under the head of ``head.npz``."""
    if bundle.head is None:
        import keras

        return keras.saving.load_model(bundle.model_path, compile=False)
    from genrekit.models.backbone import build_classifier, build_embedder, build_head, set_head_arrays

    embedder = build_embedder(bundle.head)
    head = build_head(embedder.output_shape[-1], len(bundle.labels), bundle.head)
    with np.load(bundle.model_path, allow_pickle=False) as arrays:
        set_head_arrays(head, dict(arrays))
    return build_classifier(embedder, head)


def tagger_export(name: str, precision: str = "float") -> Path:
    """Where a LiteRT export of a ready tagger is kept (in the package): ``<name>.tflite``, ``<name>.int8.tflite``."""
    return EXPORTS / (f"{name}.tflite" if precision == "float" else f"{name}.{precision}.tflite")


def export_tagger(name: str) -> list[Path]:
    """Export a ready tagger (:data:`PRETRAINED`) to :func:`tagger_export`, in both precisions (needs Keras
    and the musicnn wheel)."""
    EXPORTS.mkdir(exist_ok=True)
    return export_all(pretrained_tagger(name), lambda precision: tagger_export(name, precision))


def export_run(bundle: Bundle) -> list[Path]:
    """Export a run folder's Keras model (:func:`keras_model`) to ``model.tflite`` and ``model.int8.tflite``
    (a run saved before exports existed, or before int8 exports)."""
    return export_all(float32_model(keras_model(bundle)), lambda precision: bundle.folder / export_name(precision))


def embedder_export(backbone: str, output: str, precision: str, folder: os.PathLike | str) -> Path:
    """A pretrained backbone up to its features (:func:`genrekit.models.backbone.build_embedder`: ``output``
    ``"pooled"`` or ``"penultimate"``) exported to LiteRT in ``precision``, kept in ``folder`` and made once
    (needs Keras and the musicnn wheel). Its features are what a head sees at analysis through that
    export: ``LiteRTModel(path, max_rows=MUSICNN_ROWS).predict(spectrograms)`` (``(n, 187, 96, 1)``),
    e.g. to train and score heads on int8 features (benchmarks/ready_model_cv.py)."""
    path = Path(folder) / f"{backbone}-{output}.{precision}.tflite"
    if not path.is_file():
        from genrekit.core.config import ModelConfig
        from genrekit.models.backbone import build_embedder  # imports Keras

        path.parent.mkdir(parents=True, exist_ok=True)
        litert.export(build_embedder(ModelConfig(backbone=backbone, backbone_output=output)), path, precision=precision)
    return path


def ensemble(members: list, shared_backbone: bool = False):
    """One Keras model scoring a slice as the mean of ``members``' scores (the runs of
    ``training.runs``, with ``training.ensemble``); with ``shared_backbone`` (heads on one frozen
    backbone), the backbone once under the heads (:func:`genrekit.models.backbone.ensemble_classifier`)."""
    if shared_backbone:
        from genrekit.models.backbone import ensemble_classifier  # imports Keras

        return ensemble_classifier(members)
    from genrekit.models.networks import mean_of  # imports Keras

    return mean_of(members)


# --------------------------------------------------------------------------- loading


def export_path(bundle: Bundle, precision: str = "float") -> Path | None:
    """The LiteRT export of ``precision`` the analyzer runs for this bundle, if one can be had without
    Keras: the run folder's ``model.tflite`` (``model.int8.tflite``), or a ready tagger's export in the
    package; None for a baseline."""
    if family(bundle) == BASELINE or not litert.interpreter_available():
        return None
    path = export_file(bundle, precision)
    return path if path.is_file() else None


def export_file(bundle: Bundle, precision: str = "float") -> Path:
    """Where a Keras-family bundle's LiteRT export of ``precision`` is (or would be): ``model.tflite``
    (``model.int8.tflite``) in the run folder, or a ready tagger's export in the package."""
    if family(bundle) == TAGGER:
        return tagger_export(bundle.pretrained, precision)
    return bundle.folder / export_name(precision)


PRECISIONS = ("auto", *litert.PRECISIONS)


def choose_precision(bundle: Bundle, requested: str = "auto") -> str:
    """The export precision the analyzer runs (``--precision``): ``requested``, or for ``auto`` the int8
    export where the bundle names it (``bundle.precision``: measured to keep the verdicts), has one, and
    the CPU runs int8 faster (:func:`genrekit.models.litert.int8_pays`); else float."""
    if requested not in PRECISIONS:
        raise GenrekitError(f"unknown precision {requested!r} (choose from {', '.join(PRECISIONS)})")
    if requested != "auto":
        return requested
    int8 = bundle.precision == "int8" and litert.int8_pays() and export_path(bundle, "int8") is not None
    return "int8" if int8 else "float"


def needs_keras(bundle: Bundle, runtime: str = "auto", precision: str = "auto") -> bool:
    """Whether loading the bundle's model imports Keras (and TensorFlow)."""
    return family(bundle) != BASELINE and (
        runtime == "keras" or export_path(bundle, choose_precision(bundle, precision)) is None
    )


def _export_on_first_use(bundle: Bundle, precision: str) -> Path | None:
    """Export a run folder saved before exports existed, once, if Keras and the interpreter are here
    and the folder is writable; the export of ``precision`` (None when there is none: the analyzer then
    runs Keras)."""
    import importlib.util

    if (
        family(bundle) != KERAS
        or not litert.interpreter_available()
        or importlib.util.find_spec("keras") is None
        or not os.access(bundle.folder, os.W_OK)
    ):
        return None
    log(f"{bundle.folder}: exporting model.keras to {export_name(precision)} for fast analysis (once)")
    export_run(bundle)
    return export_path(bundle, precision)


RUNTIMES = ("auto", "litert", "keras")


def _load(bundle: Bundle, runtime: str, precision: str):
    """The bundle's model as stored, unchecked: its LiteRT export of ``precision`` (``auto``: when there is
    one or one can be made; ``litert``: or an error), or the Keras model (``keras``, or ``auto`` without
    an export)."""
    kind = family(bundle)
    if kind == BASELINE:  # arrays and JSON only: no Keras, no pickle
        return baselines.load_model(bundle.model_path, bundle.baseline, bundle.features, len(bundle.labels))
    exported = None
    if runtime != "keras":
        exported = export_path(bundle, precision)
        if exported is None and export_path(bundle) is None:  # no export at all: a run saved before them
            exported = _export_on_first_use(bundle, precision)
    if exported is None and (runtime == "litert" or precision == "int8"):
        raise GenrekitError(
            f"{export_file(bundle, precision)}: no LiteRT export (and none can be made here: it needs Keras, "
            f"the ai-edge-litert interpreter and a writable run folder); tools/export_models.py makes it"
        )
    if exported is not None:
        musicnn = bundle.features.log_scale == "musicnn"
        return litert.LiteRTModel(exported, max_rows=MUSICNN_ROWS if musicnn else None)
    if kind == TAGGER:
        return pretrained_tagger(bundle.pretrained)
    return keras_model(bundle)


def load_model(bundle: Bundle, runtime: str = "auto", precision: str = "auto"):
    """The bundle's model (``runtime``: see :data:`RUNTIMES` and :func:`_load`; ``precision``: see
    :func:`choose_precision`), checked against the bundle's input shape and labels: its LiteRT export
    (:class:`genrekit.models.litert.LiteRTModel`) when there is one, else the Keras model in float32,
    or a classical baseline's :class:`genrekit.models.baselines.BaselineModel`."""
    if runtime == "keras":  # float32
        if precision == "int8":
            raise GenrekitError("--precision int8 runs the int8 LiteRT export; the Keras model is float32")
        precision = "float"
    precision = choose_precision(bundle, precision)
    try:
        model = _load(bundle, runtime, precision)
    except GenrekitError:
        raise
    except Exception as exc:  # keras and the interpreter raise many kinds (ValueError, OSError, zipfile errors...)
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise GenrekitError(f"{bundle.model_path}: cannot load the model ({reason})") from None
    if bundle.baseline is not None:
        return model
    source = model.path if isinstance(model, litert.LiteRTModel) else bundle.model_path
    input_shape = tuple(model.input_shape[1:])
    if input_shape != tuple(bundle.input_shape):
        raise GenrekitError(
            f"{source}: the model takes input {list(input_shape)}, but bundle.json says {list(bundle.input_shape)}"
        )
    n_outputs = model.output_shape[-1]
    if n_outputs != len(bundle.labels):
        raise GenrekitError(
            f"{source}: the model has {n_outputs} outputs, but bundle.json lists {len(bundle.labels)} labels"
        )
    return model if isinstance(model, litert.LiteRTModel) else float32_model(model)


def float32_model(model):
    """The model with every layer computing in float32.

    A model trained with mixed precision on a GPU keeps its ``mixed_float16`` layers when
    loaded; on a CPU those run about 15 times slower than float32. Its weights are float32
    already, so a float32 clone with the same weights gives the same scores to ~1e-4.
    """
    import keras

    if all(layer.dtype_policy.name == "float32" for layer in model.layers):
        return model

    def clone(layer):
        config = layer.get_config()
        config["dtype"] = "float32"
        return layer.__class__.from_config(config)

    copy = keras.models.clone_model(model, clone_function=clone)
    copy.set_weights(model.get_weights())
    return copy
