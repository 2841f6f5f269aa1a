"""The model bundle: a run folder the analyzer can use without the datasets.

A run folder holds ``model.keras`` (input: a normalized spectrogram, time x mels x 1,
exactly as stored in ``processed.h5``) and ``bundle.json``::

    {"format_version": 1, "labels": [...], "features": {...}, "slicing": {...},
     "normalization": {...}, "input_shape": [frames, n_mels, 1],
     "silence_threshold_db": -60.0, "config_fingerprint": "...", "dataset_fingerprint": "..."}

A classical baseline (``train_baselines.py``, :mod:`genrekit.baselines`) keeps ``model.npz``
(plain arrays) instead of ``model.keras`` and adds ``"baseline": {"family", "params",
"feature_set"}`` to ``bundle.json``; its model takes the spectrograms in dB (``normalization``
``none``) and computes its feature vectors itself.

``features`` and ``slicing`` are the config sections the training data was built
with; the analyzer takes them from here, never from the user's config, so its
features match the training data.

The pretrained taggers (``musicnn-msd``, ``musicnn-mtt``) have a bundle too, made
in memory by :func:`pretrained_bundle` from musicnn's own input settings: they go
through the very same analysis path as a trained run.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from genrekit.atomic import write_json
from genrekit.config import (BACKBONE_FEATURES, BACKBONE_NORM_METHOD, BACKBONE_SLICE_DURATION, BuildConfig,
                             FeaturesConfig, SlicingConfig, _section_from_dict, to_jsonable,
                             validate_slicing_and_features)
from genrekit.errors import ConfigError, GenrekitError
from genrekit.features import slice_geometry
from genrekit.normalization import NormStats

BUNDLE_FILE = "bundle.json"
MODEL_FILE = "model.keras"
BASELINE_FILE = "model.npz"  # a classical baseline's fitted arrays (genrekit.baselines)
BUNDLE_VERSION = 1
PRETRAINED = ("musicnn-msd", "musicnn-mtt")  # the ready taggers: --model musicnn-msd


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
    pretrained: Optional[str] = None  # a ready tagger of PRETRAINED instead of a run folder
    baseline: Optional[dict] = None  # a scikit-learn baseline (genrekit.baselines) instead of a Keras model

    @property
    def model_path(self) -> Path:
        return self.folder / (BASELINE_FILE if self.baseline is not None else MODEL_FILE)

    @property
    def multi_label(self) -> bool:
        """Sigmoid scores, one independent probability per label (taggers), not a softmax."""
        return self.pretrained is not None

    def load_model(self):
        """The Keras model (imports Keras on first use), or a baseline's NumPy model."""
        if self.baseline is not None:  # arrays and JSON only: no Keras, no pickle
            from genrekit.baselines import load_model

            return load_model(self.model_path, self.baseline, self.features, len(self.labels))
        import keras

        if self.pretrained is not None:
            return pretrained_tagger(self.pretrained)
        return keras.saving.load_model(self.model_path, compile=False)


def pretrained_tagger(name: str):
    """A musicnn tagger taking processed spectrograms ``(187, 96, 1)``, like a trained run's model."""
    from genrekit.musicnn import load_musicnn, with_channel_axis

    tagger = load_musicnn(name)
    return with_channel_axis(tagger, f"{tagger.name}_tagger")


def pretrained_bundle(name: str) -> Bundle:
    """The bundle of a ready tagger: musicnn's features and 3 s patches, no normalization, its 50 tags."""
    from genrekit.musicnn import musicnn_tags

    slicing = SlicingConfig(slice_duration=BACKBONE_SLICE_DURATION, overlap=0.0)
    geometry = slice_geometry(slicing.slice_duration, slicing.overlap, BACKBONE_FEATURES)
    return Bundle(Path(name), list(musicnn_tags(name)), BACKBONE_FEATURES, slicing, NormStats(BACKBONE_NORM_METHOD),
                  (geometry.n_frames, geometry.n_mels, 1), BuildConfig().silence_threshold_db, {}, pretrained=name)


def open_model(model: os.PathLike | str) -> Bundle:
    """``--model``: a run folder, or the name of a ready tagger (:data:`PRETRAINED`) when no such folder exists."""
    if str(model) in PRETRAINED and not Path(model).is_dir():
        return pretrained_bundle(str(model))
    return load_bundle(model)


def write_bundle(folder: Path, *, labels: list[str], features: FeaturesConfig, slicing: SlicingConfig,
                 normalization: NormStats, silence_threshold_db: float, **extra: Any) -> Path:
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
    model_file = BASELINE_FILE if baseline is not None else MODEL_FILE
    if not (folder / model_file).is_file():
        raise GenrekitError(f"{folder / model_file}: not found; the run folder is incomplete")

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
        raise GenrekitError(f"{path}: input_shape {list(input_shape)} does not match the feature parameters "
                            f"({geometry.n_frames} frames x {geometry.n_mels} mels)")
    threshold = float(need("silence_threshold_db"))
    return Bundle(folder, labels, features, slicing, normalization, input_shape, threshold, data,
                  baseline=baseline)
