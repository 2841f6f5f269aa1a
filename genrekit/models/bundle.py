"""The model bundle: a run folder the analyzer can use without the datasets.

A run folder holds ``model.keras`` (input: a normalized spectrogram, time x mels x 1,
exactly as stored in ``processed.h5``) and ``bundle.json``::

    {"format_version": 1, "labels": [...], "features": {...}, "slicing": {...},
     "normalization": {...}, "input_shape": [frames, n_mels, 1],
     "silence_threshold_db": -60.0, "config_fingerprint": "...", "dataset_fingerprint": "..."}

A classical baseline (``train_baselines.py``, :mod:`genrekit.models.baselines`) keeps ``model.npz``
(plain arrays) instead of ``model.keras`` and adds ``"baseline": {"family", "params",
"feature_set"}`` to ``bundle.json``; its model takes the spectrograms in dB (``normalization``
``none``) and computes its feature vectors itself.

``features`` and ``slicing`` are the config sections the training data was built
with; the analyzer takes them from here, never from the user's config, so its
features match the training data.

A run on a frozen pretrained backbone can keep its trained head alone: ``head.npz`` (the head's
arrays) instead of ``model.keras``, and ``"head": {...}``, the ``model`` settings that rebuild the
backbone from its checkpoints and the head around those arrays, in ``bundle.json``. The ready genre
model (``gtzan-genres``, ``genrekit/models/ready/``) is such a folder, with its LiteRT export of
backbone and head together (``model.tflite``), so that 2 MB of musicnn weights are not stored twice.

``"precision": "int8"`` (optional; default ``"float"``) makes the export with int8 weights
(``model.int8.tflite``) the one the analyzer runs by default on a CPU with int8 dot products: set where
it was measured to give the float export's verdicts (the ready genre model's).

``"analysis_overlap": 0.0`` (optional) is the overlap the analyzer cuts the model's slices with when
neither ``analysis.overlap`` nor ``--overlap`` says otherwise (see
:func:`genrekit.inference.analyzer.default_overlap`): set where the model was measured to be as
accurate with it as with the half-slice default (the ready genre model's, at half the slices).

The pretrained taggers (``musicnn-msd``, ``musicnn-mtt``) have a bundle too, made
in memory by :func:`genrekit.models.registry.pretrained_bundle` from musicnn's own input
settings: they go through the very same analysis path as a trained run. Which family a
bundle's model belongs to, and how it is loaded, is :mod:`genrekit.models.registry`'s.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from genrekit.audio.features import slice_geometry
from genrekit.core.atomic import write_json
from genrekit.core.config import (
    FeaturesConfig,
    ModelConfig,
    SlicingConfig,
    _section_from_dict,
    to_jsonable,
    validate_slicing_and_features,
)
from genrekit.core.errors import ConfigError, GenrekitError
from genrekit.dataset.normalization import NormStats

BUNDLE_FILE = "bundle.json"
MODEL_FILE = "model.keras"
BASELINE_FILE = "model.npz"  # a classical baseline's fitted arrays (genrekit.models.baselines)
HEAD_FILE = "head.npz"  # a frozen backbone's trained head alone (genrekit.models.backbone.head_arrays)
BUNDLE_VERSION = 1
PRECISIONS = ("float", "int8")  # of the LiteRT exports (genrekit.models.litert), "precision" in bundle.json


@dataclass(frozen=True)
class Bundle:
    folder: Path
    labels: list[str]
    features: FeaturesConfig
    slicing: SlicingConfig
    normalization: NormStats
    input_shape: tuple[int, int, int]
    silence_threshold_db: float
    extra: dict  # anything else that was stored (fingerprints, dates)
    pretrained: str | None = None  # a ready tagger (registry.PRETRAINED) instead of a run folder
    baseline: dict | None = None  # a scikit-learn baseline (genrekit.models.baselines) instead of a Keras model
    head: ModelConfig | None = None  # a frozen backbone's settings, its trained head alone in head.npz
    # the export the analyzer runs by default where the CPU runs int8 fast: "int8" once measured to give the
    # float export's verdicts (benchmarks/quantization.py), else "float"
    precision: str = "float"
    # the analyzer's default overlap for this model, where measured (seconds; None: the family's default)
    analysis_overlap: float | None = None

    @property
    def model_path(self) -> Path:
        return self.folder / model_file(self.baseline, self.head)

    @property
    def multi_label(self) -> bool:
        """Sigmoid scores, one independent probability per label (taggers), not a softmax."""
        return self.pretrained is not None


def write_bundle(
    folder: Path,
    *,
    labels: list[str],
    features: FeaturesConfig,
    slicing: SlicingConfig,
    normalization: NormStats,
    silence_threshold_db: float,
    **extra: Any,
) -> Path:
    """Write ``bundle.json`` atomically next to a saved ``model.keras``."""
    geometry = slice_geometry(slicing.slice_duration, slicing.overlap, features)
    data = {
        "format_version": BUNDLE_VERSION,
        "labels": list(labels),
        "features": to_jsonable(features),
        "slicing": to_jsonable(slicing),
        "normalization": normalization.to_dict(),
        "input_shape": [geometry.n_frames, geometry.n_mels, 1],
        "silence_threshold_db": float(silence_threshold_db),
        **extra,
    }
    return write_json(Path(folder) / BUNDLE_FILE, data)


def model_file(baseline: dict | None, head: ModelConfig | None) -> str:
    """The model's file in a run folder: a baseline's ``model.npz``, a head-only folder's ``head.npz``,
    else ``model.keras``."""
    if baseline is not None:
        return BASELINE_FILE
    return HEAD_FILE if head is not None else MODEL_FILE


def load_bundle(folder: os.PathLike | str) -> Bundle:
    """Read and check a run folder's bundle; raise :class:`GenrekitError` naming what is wrong."""
    folder = Path(folder)
    path = folder / BUNDLE_FILE
    if not folder.is_dir():
        raise GenrekitError(f"{folder}: model folder not found")
    if not path.is_file():
        raise GenrekitError(f"{path}: not found; is {folder} a run folder written by train_crnn.py?")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise GenrekitError(f"{path}: unreadable bundle ({exc})") from None
    baseline = data.pop("baseline", None)
    if baseline is not None and not isinstance(baseline, dict):
        raise GenrekitError(f"{path}: 'baseline' must be an object")
    head = data.pop("head", None)
    if head is not None:
        try:
            head = _section_from_dict(ModelConfig, head, "head")
        except ConfigError as exc:
            raise GenrekitError(f"{path}: {exc}") from None
        if head.backbone is None or head.backbone_trainable:
            raise GenrekitError(f"{path}: 'head' must name a frozen backbone (head.backbone)")
    model_path = folder / model_file(baseline, head)
    if not model_path.is_file():
        raise GenrekitError(f"{model_path}: not found; the run folder is incomplete")

    def need(key: str) -> Any:
        if key not in data or data[key] is None:
            raise GenrekitError(f"{path}: missing '{key}'")
        return data.pop(key)

    version = need("format_version")
    if version != BUNDLE_VERSION:
        raise GenrekitError(f"{path}: format_version {version} is not supported (expected {BUNDLE_VERSION})")
    labels = need("labels")
    if not isinstance(labels, list) or len(labels) < 2 or len(set(labels)) != len(labels):
        raise GenrekitError(f"{path}: 'labels' must list at least two distinct names")
    try:
        features = _section_from_dict(FeaturesConfig, need("features"), "features")
        slicing = _section_from_dict(SlicingConfig, need("slicing"), "slicing")
        # Only the bundle's own sections: the analyzer checks its own overlap, and the network is
        # the saved model, whatever model.architecture a config would pair with these features.
        validate_slicing_and_features(slicing, features)
    except ConfigError as exc:
        raise GenrekitError(f"{path}: inconsistent feature parameters: {exc}") from None
    geometry = slice_geometry(slicing.slice_duration, slicing.overlap, features)
    try:
        normalization = NormStats.from_dict(need("normalization"))
        normalization.check(geometry.n_mels)  # mel bands, or samples per waveform row
    except ValueError as exc:
        raise GenrekitError(f"{path}: bad normalization: {exc}") from None
    input_shape = tuple(need("input_shape"))
    if input_shape != (geometry.n_frames, geometry.n_mels, 1):
        raise GenrekitError(
            f"{path}: input_shape {list(input_shape)} does not match the feature parameters "
            f"({geometry.n_frames} frames x {geometry.n_mels} mels)"
        )
    threshold = float(need("silence_threshold_db"))
    precision = data.pop("precision", "float")
    if precision not in PRECISIONS:
        raise GenrekitError(f"{path}: 'precision' must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    analysis_overlap = data.pop("analysis_overlap", None)
    if analysis_overlap is not None and not (
        isinstance(analysis_overlap, (int, float)) and 0 <= analysis_overlap < slicing.slice_duration
    ):
        raise GenrekitError(
            f"{path}: 'analysis_overlap' must be a number of seconds >= 0 and below the slice_duration "
            f"({slicing.slice_duration:g}), got {analysis_overlap!r}"
        )
    return Bundle(
        folder,
        labels,
        features,
        slicing,
        normalization,
        input_shape,
        threshold,
        data,
        baseline=baseline,
        head=head,
        precision=precision,
        analysis_overlap=None if analysis_overlap is None else float(analysis_overlap),
    )
