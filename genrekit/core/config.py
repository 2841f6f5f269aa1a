"""Read ``pipeline_parameters.json`` once into a typed, validated object.

Every key has a default, so a config file only needs the keys a user changes.
Validation happens here, before any work: an unknown key, a wrong type or a
value out of range raises :class:`ConfigError` whose message names the key.
Relative paths resolve against the folder of the config file.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from genrekit.core.errors import ConfigError

DEFAULT_AUDIO_EXTENSIONS = (
    ".mp3",
    ".wav",
    ".flac",
    ".ogg",
    ".oga",
    ".opus",
    ".m4a",
    ".aac",
    ".aif",
    ".aiff",
    ".wma",
    ".au",
)


@dataclass(frozen=True)
class PathsConfig:
    audio_folder: Path = Path("audio")
    output_folder: Path = Path("output")


@dataclass(frozen=True)
class SlicingConfig:
    slice_duration: float = 3.0
    overlap: float = 1.0
    max_slices: int | None = None
    random_slice_selection: bool = False
    seed: int = 42
    short_tracks: Literal["pad", "drop"] = "pad"
    pad_mode: Literal["silence", "loop"] = "silence"


@dataclass(frozen=True)
class FeaturesConfig:
    sample_rate: int = 22050
    n_fft: int = 2048
    hop_length: int = 512
    n_mels: int = 100
    fmin: float = 0.0
    fmax: float | None = None
    # "db": 10 log10(power) (our CRNN); "musicnn": log10(10000 * power + 1) of float16-rounded
    # power, the scale of the pretrained musicnn taggers (genrekit.models.musicnn). Added after
    # datasets existed: left out of their settings at its default, so they stay current.
    log_scale: Literal["db", "musicnn"] = field(default="db", metadata={"omit_at_default": True})
    # "log_mel": spectrogram slices (frames x n_mels); "waveform": the slice's samples as rows of
    # hop_length samples (frames x hop_length), for model.architecture "cnn1d".
    representation: Literal["log_mel", "waveform"] = field(default="log_mel", metadata={"omit_at_default": True})
    # "slice_rms": every slice's audio brought to the same RMS level before its log-mel (genrekit.audio.features:
    # SLICE_RMS_TARGET), so a recording's level (a quiet master, a peak-normalized excerpt) says nothing about its
    # label; "none": the level as decoded. Log-mel slices only. Added after datasets existed: left out at its default.
    level_normalization: Literal["none", "slice_rms"] = field(default="none", metadata={"omit_at_default": True})


@dataclass(frozen=True)
class SplitConfig:
    validation_share: float = 0.1
    test_share: float = 0.1
    seed: int = 42
    custom_split_file: Path | None = None
    group_file: Path | None = None
    # Groups derived from the files instead of a group file (genrekit.dataset.groups). Added after datasets
    # existed: left out of their settings at its default, so they stay current.
    group_by: Literal["parent_folder", "artist_tag", "album_tag"] | None = field(
        default=None, metadata={"omit_at_default": True}
    )


@dataclass(frozen=True)
class BuildConfig:
    workers: int | None = None
    audio_extensions: tuple[str, ...] = DEFAULT_AUDIO_EXTENSIONS
    silence_threshold_db: float = -60.0
    # Where tracks run: "local" (a process pool of ``workers``) or "dask" (a dask.distributed
    # cluster at ``dask_scheduler``, or a LocalCluster of ``workers`` processes when it is null).
    # Neither changes dataset.h5, so neither is part of the build settings.
    executor: Literal["local", "dask"] = field(default="local", metadata={"omit_at_default": True})
    dask_scheduler: str | None = field(default=None, metadata={"omit_at_default": True})


@dataclass(frozen=True)
class AudioAugmentationConfig:
    """Extra copies of every train track, made from its audio at build time (never val/test):
    one per pitch shift (semitones), one per time-stretch rate (>1 is faster) and one per speed
    (resampled: tempo and pitch together, >1 is faster and higher). Empty: none."""

    # The default since issue 26: two speed copies, which did better on artists never heard than the
    # phase vocoder's four for half the copies and a fraction of their cost (docs/RESULTS.md).
    pitch_shift_semitones: tuple[float, ...] = ()
    time_stretch_rates: tuple[float, ...] = ()
    # added after datasets existed: left out of their settings when empty (omit_value), as they were built
    speed_rates: tuple[float, ...] = field(default=(0.9, 1.1), metadata={"omit_value": ()})


@dataclass(frozen=True)
class ProcessingConfig:
    norm_method: Literal["standard", "per_slice", "min_max", "non_zero_min_max", "none"] = "standard"
    shuffle: bool = True
    seed: int = 42
    memory_limit_mb: int = 512


@dataclass(frozen=True)
class ModelConfig:
    # Keys added after runs existed are left out of their settings at their defaults (omit_at_default),
    # so those runs stay current.
    architecture: Literal["crnn", "cnn1d", "mobilenetv2"] = field(default="crnn", metadata={"omit_at_default": True})
    conv_filters: tuple[int, ...] = (16, 64, 128, 160)
    time_pools: tuple[int, ...] = (2, 2, 2, 1)
    kernel_size: int = 3
    gru_units: tuple[int, ...] = (96, 96)
    conv_dropout: float = 0.0
    dropout: float = 0.5
    # A pretrained music model (genrekit.models.musicnn) under a new head instead of the CRNN. Keys added
    # after runs existed: left out of their settings at their defaults, so those runs stay current.
    backbone: Literal["musicnn-msd", "musicnn-mtt"] | None = field(default=None, metadata={"omit_at_default": True})
    backbone_trainable: bool = field(default=False, metadata={"omit_at_default": True})
    backbone_output: Literal["pooled", "penultimate"] = field(default="pooled", metadata={"omit_at_default": True})
    backbone_lr_factor: float = field(default=0.1, metadata={"omit_at_default": True})
    # mobilenetv2 only: width multiplier, and a user's own (e.g. ImageNet) weights file for the base
    mobilenet_alpha: float = field(default=1.0, metadata={"omit_at_default": True})
    pretrained_weights: Path | None = field(default=None, metadata={"omit_at_default": True})


@dataclass(frozen=True)
class AugmentationConfig:
    """Random changes to training batches (genrekit.training.augment); 0 switches one off."""

    gain_db: float = 6.0  # level offset drawn in [-gain_db, gain_db] dB per slice
    # a smooth random equalization curve per slice, at most eq_db dB either way (genrekit.training.augment.random_eq).
    # Always in the run settings: runs made before it existed trained without it, and must not resume
    # under the new default.
    eq_db: float = 20.0
    time_shift_frames: int = 0  # shift by up to this many frames either way
    time_masks: int = 2  # SpecAugment time masks per slice
    time_mask_frames: int = 12  # the widest one, in frames
    frequency_masks: int = 2
    frequency_mask_bands: int = 10  # the widest one, in mel bands
    mixup_alpha: float = 0.2  # Beta(alpha, alpha) weights of mixup between tracks


@dataclass(frozen=True)
class TrainingConfig:
    run_name: str = "crnn"
    epochs: int = 7  # with the default 2 speed copies: about the steps of 20 epochs over the tracks alone
    batch_size: int = 32
    learning_rate: float = 3e-4
    early_stopping_patience: int = 10
    reduce_lr_patience: int = 4
    reduce_lr_factor: float = 0.5
    # "cosine": the learning rate falls from learning_rate to 0 along half a cosine over the epochs,
    # set before every batch (instead of ReduceLROnPlateau). Always in the run settings: runs made
    # before it existed trained at a constant rate, and must not resume under the new default.
    lr_schedule: Literal["constant", "cosine"] = "cosine"
    seed: int = 42
    runs: int = 3
    # with runs > 1: the run folder's model averages the runs' scores ("ensemble": true), or is the run
    # with the lowest validation loss (false). Added after runs existed: left out of their settings at
    # its default, so they stay current.
    ensemble: bool = field(default=True, metadata={"omit_at_default": True})
    mixed_precision: Literal["auto", "on", "off"] = "auto"
    # "auto": tf.distribute.MirroredStrategy over every visible GPU when there are several
    # (global batch = batch_size x GPUs); "off": one device. Added after runs existed.
    distribute: Literal["auto", "off"] = field(default="auto", metadata={"omit_at_default": True})
    # How much each training slice weighs in the loss. "none": all the same. "genres": every genre's
    # slices weigh as much in total (a class-balanced loss, for genres of unequal size). "genres_tracks":
    # a slice weighs 1/sqrt(its track's slices) before that, so that a long track counts more than a
    # short one, but not in proportion to its length. Added after runs existed.
    sample_weighting: Literal["none", "genres", "genres_tracks"] = field(
        default="none", metadata={"omit_at_default": True}
    )
    augmentation: AugmentationConfig = field(default_factory=AugmentationConfig)


@dataclass(frozen=True)
class AnalysisConfig:
    overlap: float | None = None  # None: the model's default (genrekit.inference.analyzer.default_overlap)
    aggregation: Literal["sum", "mean-log", "vote"] = "sum"
    batch_size: int = 64
    top_k: int = 3


@dataclass(frozen=True)
class Config:
    """The whole pipeline configuration; one attribute per section."""

    paths: PathsConfig = field(default_factory=PathsConfig)
    slicing: SlicingConfig = field(default_factory=SlicingConfig)
    features: FeaturesConfig = field(default_factory=FeaturesConfig)
    split: SplitConfig = field(default_factory=SplitConfig)
    build: BuildConfig = field(default_factory=BuildConfig)
    audio_augmentation: AudioAugmentationConfig = field(default_factory=AudioAugmentationConfig)
    processing: ProcessingConfig = field(default_factory=ProcessingConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    training: TrainingConfig = field(default_factory=TrainingConfig)
    analysis: AnalysisConfig = field(default_factory=AnalysisConfig)
    source: Path | None = None  # the file it was read from; not a key

    @property
    def dataset_path(self) -> Path:
        return self.paths.output_folder / "dataset.h5"

    @property
    def processed_path(self) -> Path:
        return self.paths.output_folder / "processed.h5"

    @property
    def models_folder(self) -> Path:
        return self.paths.output_folder / "models"


SECTIONS = {name: tp for name, tp in typing.get_type_hints(Config).items() if name != "source"}


# --------------------------------------------------------------------------- parsing


def _coerce(value: Any, tp: Any, key: str) -> Any:
    """Check ``value`` against annotation ``tp``; return it in the field's type."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):  # X | None
        if value is None:
            return None
        inner = next(a for a in args if a is not type(None))
        return _coerce(value, inner, key)
    if origin is Literal:
        if value not in args:
            choices = ", ".join(repr(a) for a in args)
            raise ConfigError(f"{key}: must be one of {choices}, got {value!r}")
        return value
    if origin is tuple:
        if not isinstance(value, list):
            raise ConfigError(f"{key}: must be a list, got {type(value).__name__} {value!r}")
        return tuple(_coerce(v, args[0], f"{key}[{i}]") for i, v in enumerate(value))
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{key}: must be true or false, got {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{key}: must be an integer, got {value!r}")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{key}: must be a number, got {value!r}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{key}: must be a string, got {value!r}")
        return value
    if dataclasses.is_dataclass(tp):  # a section inside a section
        return _section_from_dict(tp, value, key)
    if tp is Path:
        if not isinstance(value, str) or not value:
            raise ConfigError(f"{key}: must be a non-empty path string, got {value!r}")
        return Path(os.path.expanduser(value))
    raise TypeError(f"unsupported annotation {tp!r} for {key}")  # a bug, not a user error


def _section_from_dict(cls: type, data: Any, name: str) -> Any:
    if not isinstance(data, dict):
        raise ConfigError(f"{name}: must be an object, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    known = {f.name for f in dataclasses.fields(cls)}
    for key in data:
        if key not in known:
            raise ConfigError(f"{name}.{key}: unknown key (known: {', '.join(sorted(known))})")
    values = {k: _coerce(v, hints[k], f"{name}.{k}") for k, v in data.items()}
    return cls(**values)


def _resolve(path: Path | None, base: Path) -> Path | None:
    if path is None:
        return None
    # normpath: messages then show /data/out, not /repo/demo/../data/out
    return Path(os.path.normpath(path if path.is_absolute() else base / path))


def config_from_dict(data: Any, base_dir: Path = Path("."), source: Path | None = None) -> Config:
    """Build and validate a :class:`Config` from parsed JSON.

    Parameters
    ----------
    data : dict
        The parsed JSON object.
    base_dir : Path
        Folder that relative paths resolve against (the config file's folder).
    source : Path, optional
        The file the data came from, kept for messages.
    """
    if not isinstance(data, dict):
        raise ConfigError("the top level must be a JSON object")
    sections = {}
    for key, value in data.items():
        if key.startswith("_"):  # "_comment" keys are allowed and ignored
            continue
        if key not in SECTIONS:
            raise ConfigError(f"{key}: unknown section (known: {', '.join(SECTIONS)})")
        sections[key] = _section_from_dict(SECTIONS[key], value, key)
    cfg = Config(**sections, source=source)
    if cfg.model.backbone is not None:
        cfg = fit_to_backbone(cfg, data)
    base_dir = base_dir.resolve()
    cfg = dataclasses.replace(
        cfg,
        paths=PathsConfig(
            audio_folder=_resolve(cfg.paths.audio_folder, base_dir),
            output_folder=_resolve(cfg.paths.output_folder, base_dir),
        ),
        split=dataclasses.replace(
            cfg.split,
            custom_split_file=_resolve(cfg.split.custom_split_file, base_dir),
            group_file=_resolve(cfg.split.group_file, base_dir),
        ),
        model=dataclasses.replace(cfg.model, pretrained_weights=_resolve(cfg.model.pretrained_weights, base_dir)),
    )
    validate(cfg)
    return cfg


# What a pretrained backbone takes as input: musicnn's log-mel patches (16 kHz, 512-point FFT, hop 256,
# 96 slaney mel bands, log10(10000 x + 1)), 187 frames = 186 hops + one FFT = 48128 samples = 3.008 s,
# not normalized (its first layer is a batch normalization trained on that scale).
BACKBONE_FEATURES = FeaturesConfig(
    sample_rate=16000, n_fft=512, hop_length=256, n_mels=96, fmin=0.0, fmax=None, log_scale="musicnn"
)
# Feature keys a backbone leaves to the user: they change the audio before its spectrogram, not its shape or scale.
BACKBONE_FREE_FEATURES = ("level_normalization",)
BACKBONE_SLICE_DURATION = 3.008
BACKBONE_NORM_METHOD = "none"


def backbone_inputs() -> dict[str, Any]:
    """The dotted keys a backbone fixes, and the values it needs."""
    needed = {
        f"features.{k}": getattr(BACKBONE_FEATURES, k)
        for k in (f.name for f in dataclasses.fields(FeaturesConfig))
        if k not in BACKBONE_FREE_FEATURES
    }
    needed["slicing.slice_duration"] = BACKBONE_SLICE_DURATION
    needed["processing.norm_method"] = BACKBONE_NORM_METHOD
    return needed


def fit_to_backbone(cfg: Config, data: dict) -> Config:
    """Give a config with ``model.backbone`` the backbone's features, slice length and normalization.

    Keys the user left out get the backbone's values; a key set to another value is refused,
    naming every such key and the value the backbone needs.
    """
    needed = backbone_inputs()
    given = {
        f"{section}.{key}": getattr(getattr(cfg, section), key)
        for section, values in data.items()
        if isinstance(values, dict) and section in SECTIONS
        for key in values
    }
    wrong = [key for key, value in needed.items() if key in given and given[key] != value]
    if wrong:
        shown = ", ".join(f"{key} {json.dumps(needed[key])} (not {json.dumps(given[key])})" for key in wrong)
        raise ConfigError(f"model.backbone: {cfg.model.backbone} needs {shown}; set these keys so or leave them out")
    return dataclasses.replace(
        cfg,
        # the backbone's features, but for the keys it leaves to the config (level_normalization)
        features=dataclasses.replace(
            BACKBONE_FEATURES, **{key: getattr(cfg.features, key) for key in BACKBONE_FREE_FEATURES}
        ),
        slicing=dataclasses.replace(cfg.slicing, slice_duration=BACKBONE_SLICE_DURATION),
        processing=dataclasses.replace(cfg.processing, norm_method=BACKBONE_NORM_METHOD),
    )


def load_config(path: os.PathLike | str) -> Config:
    """Read and validate a config file; raise :class:`ConfigError` naming the key at fault."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read config file ({exc.strerror})") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path}: invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}") from None
    try:
        return config_from_dict(data, base_dir=path.parent, source=path)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None


# --------------------------------------------------------------------------- validation


def _require(ok: bool, key: str, message: str) -> None:
    if not ok:
        raise ConfigError(f"{key}: {message}")


def validate_slicing_and_features(s: SlicingConfig, f: FeaturesConfig) -> None:
    """The checks of :func:`validate` on how audio becomes slices: those a model bundle also needs."""
    _require(s.slice_duration > 0, "slicing.slice_duration", f"must be > 0, got {s.slice_duration}")
    _require(s.overlap >= 0, "slicing.overlap", f"must be >= 0, got {s.overlap}")
    _require(
        s.overlap < s.slice_duration,
        "slicing.overlap",
        f"must be smaller than slicing.slice_duration ({s.slice_duration}), got {s.overlap}",
    )
    _require(
        s.max_slices is None or s.max_slices >= 1, "slicing.max_slices", f"must be null or >= 1, got {s.max_slices}"
    )

    _require(f.sample_rate >= 1000, "features.sample_rate", f"must be >= 1000 Hz, got {f.sample_rate}")
    _require(f.n_fft >= 16, "features.n_fft", f"must be >= 16, got {f.n_fft}")
    _require(f.hop_length >= 1, "features.hop_length", f"must be >= 1, got {f.hop_length}")
    _require(f.n_mels >= 1, "features.n_mels", f"must be > 0, got {f.n_mels}")
    _require(
        f.n_mels <= f.n_fft // 2 + 1, "features.n_mels", f"must be <= n_fft/2+1 ({f.n_fft // 2 + 1}), got {f.n_mels}"
    )
    nyquist = f.sample_rate / 2
    _require(0 <= f.fmin < nyquist, "features.fmin", f"must be in [0, {nyquist}), got {f.fmin}")
    _require(
        f.fmax is None or f.fmin < f.fmax <= nyquist,
        "features.fmax",
        f"must be null or in (fmin, {nyquist}], got {f.fmax}",
    )
    slice_samples = round(s.slice_duration * f.sample_rate)
    _require(
        slice_samples >= f.n_fft,
        "slicing.slice_duration",
        f"must hold at least one FFT frame (n_fft {f.n_fft} samples), got {s.slice_duration} s",
    )


def validate(cfg: Config) -> None:
    """Range and consistency checks that types alone cannot express."""
    s, f, sp, b, p, m, t, a = (
        cfg.slicing,
        cfg.features,
        cfg.split,
        cfg.build,
        cfg.processing,
        cfg.model,
        cfg.training,
        cfg.analysis,
    )
    validate_slicing_and_features(s, f)
    for key, share in (("split.validation_share", sp.validation_share), ("split.test_share", sp.test_share)):
        _require(0 <= share < 1, key, f"must be in [0, 1), got {share}")
    _require(
        sp.group_by is None or sp.group_file is None,
        "split.group_by",
        "give split.group_file or split.group_by, not both",
    )
    _require(
        sp.validation_share + sp.test_share < 1,
        "split.test_share",
        f"validation_share + test_share must be < 1, got {sp.validation_share + sp.test_share}",
    )

    _require(b.workers is None or b.workers >= 1, "build.workers", f"must be null or >= 1, got {b.workers}")
    _require(len(b.audio_extensions) > 0, "build.audio_extensions", "must list at least one extension")
    for i, ext in enumerate(b.audio_extensions):
        _require(
            ext.startswith(".") and len(ext) > 1, f"build.audio_extensions[{i}]", f"must look like '.mp3', got {ext!r}"
        )
    _require(
        b.silence_threshold_db < 0, "build.silence_threshold_db", f"must be < 0 dBFS, got {b.silence_threshold_db}"
    )
    if b.dask_scheduler is not None:
        _require(
            b.executor == "dask",
            "build.dask_scheduler",
            f'is only used with build.executor "dask" (build.executor is {b.executor!r})',
        )
        _require(
            bool(re.fullmatch(r"([a-z]+://)?[^\s/]+", b.dask_scheduler)),
            "build.dask_scheduler",
            f'must be a scheduler address like "tcp://10.0.0.5:8786", got {b.dask_scheduler!r}',
        )

    aa = cfg.audio_augmentation
    for key, values, ok, rule in (
        (
            "audio_augmentation.pitch_shift_semitones",
            aa.pitch_shift_semitones,
            lambda v: v != 0 and abs(v) <= 12,
            "non-zero and within ±12 semitones",
        ),
        (
            "audio_augmentation.time_stretch_rates",
            aa.time_stretch_rates,
            lambda v: v != 1 and 0.5 <= v <= 2,
            "in [0.5, 2] and not 1",
        ),
        ("audio_augmentation.speed_rates", aa.speed_rates, lambda v: v != 1 and 0.5 <= v <= 2, "in [0.5, 2] and not 1"),
    ):
        for i, value in enumerate(values):
            _require(ok(value), f"{key}[{i}]", f"must be {rule}, got {value}")
        _require(len(set(values)) == len(values), key, f"lists a value twice: {list(values)}")

    _require(p.memory_limit_mb >= 16, "processing.memory_limit_mb", f"must be >= 16, got {p.memory_limit_mb}")

    waveform = f.representation == "waveform"
    _require(
        not (waveform and f.level_normalization != "none"),
        "features.level_normalization",
        f"{f.level_normalization!r} applies to log-mel slices; waveform slices need 'none'",
    )
    _require(
        waveform == (m.architecture == "cnn1d"),
        "model.architecture",
        f"{m.architecture!r} needs features.representation "
        f"{'waveform' if m.architecture == 'cnn1d' else 'log_mel'}, got {f.representation!r}",
    )
    _require(
        m.backbone is None or m.architecture == "crnn",
        "model.backbone",
        f'replaces the network: leave model.architecture at "crnn", got {m.architecture!r}',
    )
    _require(
        m.pretrained_weights is None or m.architecture == "mobilenetv2",
        "model.pretrained_weights",
        f'loads into model.architecture "mobilenetv2" only, got {m.architecture!r}',
    )
    _require(m.mobilenet_alpha > 0, "model.mobilenet_alpha", f"must be > 0, got {m.mobilenet_alpha}")
    if m.architecture == "mobilenetv2":  # keras.applications refuses inputs smaller than 32 x 32
        n_frames = 1 + (round(s.slice_duration * f.sample_rate) - f.n_fft) // f.hop_length
        _require(
            min(n_frames, f.n_mels) >= 32,
            "model.architecture",
            f'"mobilenetv2" needs at least 32 frames and 32 mel bands per slice, got {n_frames} x {f.n_mels}',
        )
    _require(len(m.conv_filters) >= 1, "model.conv_filters", "must list at least one block")
    _require(all(n >= 1 for n in m.conv_filters), "model.conv_filters", "every entry must be >= 1")
    _require(
        len(m.time_pools) == len(m.conv_filters),
        "model.time_pools",
        f"must have one entry per conv block ({len(m.conv_filters)}), got {len(m.time_pools)}",
    )
    _require(all(n >= 1 for n in m.time_pools), "model.time_pools", "every entry must be >= 1")
    _require(m.kernel_size >= 1, "model.kernel_size", f"must be >= 1, got {m.kernel_size}")
    _require(all(n >= 1 for n in m.gru_units), "model.gru_units", "every entry must be >= 1")
    for key, rate in (("model.conv_dropout", m.conv_dropout), ("model.dropout", m.dropout)):
        _require(0 <= rate < 1, key, f"must be in [0, 1), got {rate}")

    _require(
        bool(t.run_name) and "/" not in t.run_name and t.run_name not in (".", ".."),
        "training.run_name",
        f"must be a plain folder name, got {t.run_name!r}",
    )
    _require(t.epochs >= 1, "training.epochs", f"must be >= 1, got {t.epochs}")
    _require(t.batch_size >= 1, "training.batch_size", f"must be >= 1, got {t.batch_size}")
    _require(t.learning_rate > 0, "training.learning_rate", f"must be > 0, got {t.learning_rate}")
    _require(t.early_stopping_patience >= 1, "training.early_stopping_patience", "must be >= 1")
    _require(t.reduce_lr_patience >= 1, "training.reduce_lr_patience", "must be >= 1")
    _require(0 < t.reduce_lr_factor < 1, "training.reduce_lr_factor", f"must be in (0, 1), got {t.reduce_lr_factor}")
    _require(t.runs >= 1, "training.runs", f"must be >= 1, got {t.runs}")
    aug = t.augmentation
    _require(aug.gain_db >= 0, "training.augmentation.gain_db", f"must be >= 0, got {aug.gain_db}")
    _require(aug.eq_db >= 0, "training.augmentation.eq_db", f"must be >= 0, got {aug.eq_db}")
    for key in ("time_shift_frames", "time_masks", "time_mask_frames", "frequency_masks", "frequency_mask_bands"):
        value = getattr(aug, key)
        _require(value >= 0, f"training.augmentation.{key}", f"must be >= 0, got {value}")
    _require(aug.mixup_alpha >= 0, "training.augmentation.mixup_alpha", f"must be >= 0, got {aug.mixup_alpha}")

    _require(
        a.overlap is None or 0 <= a.overlap < s.slice_duration,
        "analysis.overlap",
        f"must be null or in [0, slicing.slice_duration ({s.slice_duration})), got {a.overlap}",
    )
    _require(a.batch_size >= 1, "analysis.batch_size", f"must be >= 1, got {a.batch_size}")
    _require(a.top_k >= 1, "analysis.top_k", f"must be >= 1, got {a.top_k}")


def require_audio_folder(cfg: Config) -> None:
    """The build needs the audio folder; other scripts do not."""
    folder = cfg.paths.audio_folder
    _require(folder.is_dir(), "paths.audio_folder", f"folder not found: {folder}")
    for key, path in (
        ("split.custom_split_file", cfg.split.custom_split_file),
        ("split.group_file", cfg.split.group_file),
    ):
        _require(path is None or path.is_file(), key, f"file not found: {path}")


# --------------------------------------------------------------------------- fingerprints


def audio_variant_count(augmentation: AudioAugmentationConfig) -> int:
    """How many build-time copies ``audio_augmentation`` makes of every train track."""
    return (
        len(augmentation.pitch_shift_semitones) + len(augmentation.time_stretch_rates) + len(augmentation.speed_rates)
    )


def _omitted(f: dataclasses.Field, value: Any) -> bool:
    """Whether a key added after datasets or runs existed is left out of the settings, so those stay
    current: at its default (``omit_at_default``), or at the value they were made with (``omit_value``)."""
    if "omit_value" in f.metadata:
        return value == f.metadata["omit_value"]
    return bool(f.metadata.get("omit_at_default")) and value == f.default


def to_jsonable(obj: Any) -> Any:
    """Plain JSON values for a config (or one of its sections)."""
    if dataclasses.is_dataclass(obj):
        return {
            f.name: to_jsonable(getattr(obj, f.name))
            for f in dataclasses.fields(obj)
            if f.name != "source" and not _omitted(f, getattr(obj, f.name))
        }
    if isinstance(obj, (tuple, list)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, Path):
        return str(obj)
    return obj


def flatten(data: dict, prefix: str = "") -> dict[str, Any]:
    """``{"a": {"b": 1}}`` -> ``{"a.b": 1}``."""
    out: dict[str, Any] = {}
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(flatten(value, name + "."))
        else:
            out[name] = value
    return out


def fingerprint(data: Any) -> str:
    """A short stable hash of JSON-able data (sorted keys)."""
    blob = json.dumps(to_jsonable(data), sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def changed_keys(old: dict, new: dict) -> list[str]:
    """Dotted names of keys whose values differ between two nested dicts."""
    a, b = flatten(old), flatten(new)
    return sorted(k for k in a.keys() | b.keys() if a.get(k, object()) != b.get(k, object()))


# --------------------------------------------------------------------------- what determines each output


def build_settings(cfg: Config) -> dict:
    """The settings that determine ``dataset.h5`` (``build.workers`` does not).

    The split and group files count by their content (``<key>_sha256``), so editing one is a
    settings change like editing a key.
    """
    split = to_jsonable(cfg.split)
    for name in ("custom_split_file", "group_file"):
        path = getattr(cfg.split, name)
        if path is not None and path.is_file():
            split[f"{name}_sha256"] = hashlib.sha256(path.read_bytes()).hexdigest()
    return {
        "paths": {"audio_folder": str(cfg.paths.audio_folder)},
        "slicing": to_jsonable(cfg.slicing),
        "features": to_jsonable(cfg.features),
        "split": split,
        "build": {
            "audio_extensions": list(cfg.build.audio_extensions),
            "silence_threshold_db": cfg.build.silence_threshold_db,
        },
        # absent without copies, so datasets built before audio_augmentation existed stay current
        **(
            {"audio_augmentation": to_jsonable(cfg.audio_augmentation)}
            if audio_variant_count(cfg.audio_augmentation)
            else {}
        ),
    }


def processing_settings(cfg: Config) -> dict:
    """The settings that determine ``processed.h5`` (``processing.memory_limit_mb`` does not)."""
    processing = to_jsonable(cfg.processing)
    processing.pop("memory_limit_mb")
    return {**build_settings(cfg), "processing": processing}
