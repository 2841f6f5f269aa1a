"""genrekit.core.config: defaults, types, ranges, relative paths, fingerprints."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from genrekit.core.config import (
    build_settings,
    changed_keys,
    config_from_dict,
    fingerprint,
    load_config,
    processing_settings,
)
from genrekit.core.errors import ConfigError

REPO = Path(__file__).resolve().parents[2]


def test_shipped_file_holds_every_key_at_its_default():
    from genrekit.core.cli import DEFAULT_CONFIG

    assert DEFAULT_CONFIG == REPO / "pipeline_parameters.json"  # what --config defaults to, from any folder
    data = json.loads((REPO / "pipeline_parameters.json").read_text())
    cfg = config_from_dict(data, base_dir=REPO)
    assert cfg == config_from_dict({}, base_dir=REPO)
    assert cfg.slicing.slice_duration == 3.0 and cfg.slicing.overlap == 1.0
    assert (cfg.features.sample_rate, cfg.features.n_fft, cfg.features.hop_length, cfg.features.n_mels) == (
        22050,
        2048,
        512,
        100,
    )
    assert (cfg.split.validation_share, cfg.split.test_share) == (0.1, 0.1)


def test_relative_paths_resolve_against_the_config_folder(tmp_path):
    path = tmp_path / "sub" / "p.json"
    path.parent.mkdir()
    path.write_text(
        json.dumps(
            {
                "paths": {"audio_folder": "../music", "output_folder": "/abs/out"},
                "split": {"group_file": "groups.csv"},
                "model": {"architecture": "mobilenetv2", "pretrained_weights": "w/imagenet.h5"},
            }
        )
    )
    cfg = load_config(path)
    assert cfg.model.pretrained_weights == tmp_path / "sub" / "w" / "imagenet.h5"
    assert cfg.paths.audio_folder.resolve() == (tmp_path / "music").resolve()
    assert cfg.paths.output_folder == Path("/abs/out")
    assert cfg.split.group_file == tmp_path / "sub" / "groups.csv"


@pytest.mark.parametrize(
    "data, key",
    [
        ({"slicing": {"overlap": 5.0}}, "slicing.overlap"),
        ({"slicing": {"overlap": -1}}, "slicing.overlap"),
        ({"slicing": {"max_slices": 0}}, "slicing.max_slices"),
        ({"slicing": {"random_slice_selection": "yes"}}, "slicing.random_slice_selection"),
        ({"slicing": {"pad_mode": "zeros"}}, "slicing.pad_mode"),
        ({"features": {"sample_rate": 22050.5}}, "features.sample_rate"),
        ({"features": {"n_mels": -3}}, "features.n_mels"),
        ({"features": {"fmax": 20000}}, "features.fmax"),
        ({"features": {"n_fft": 131072}}, "slicing.slice_duration"),
        ({"split": {"validation_share": 1}}, "split.validation_share"),
        ({"processing": {"norm_method": "zscore"}}, "processing.norm_method"),
        ({"model": {"time_pools": [2, 2]}}, "model.time_pools"),
        ({"model": {"architecture": "resnet"}}, "model.architecture"),
        ({"model": {"architecture": "cnn1d"}}, "model.architecture"),  # needs waveform slices
        ({"features": {"representation": "waveform"}}, "model.architecture"),  # the CRNN reads spectrograms
        ({"model": {"architecture": "mobilenetv2"}, "features": {"n_mels": 16}}, "model.architecture"),
        ({"model": {"architecture": "mobilenetv2", "mobilenet_alpha": 0}}, "model.mobilenet_alpha"),
        ({"model": {"architecture": "mobilenetv2", "backbone": "musicnn-msd"}}, "model.backbone"),
        ({"model": {"pretrained_weights": "imagenet.h5"}}, "model.pretrained_weights"),  # the CRNN takes none
        ({"training": {"batch_size": 0}}, "training.batch_size"),
        ({"training": {"run_name": "a/b"}}, "training.run_name"),
        ({"training": {"augmentation": {"mixup_alpha": -0.1}}}, "training.augmentation.mixup_alpha"),
        ({"training": {"augmentation": {"eq_db": -1}}}, "training.augmentation.eq_db"),
        ({"training": {"augmentation": {"time_masks": 1.5}}}, "training.augmentation.time_masks"),
        ({"training": {"augmentation": {"pitch": 2}}}, "training.augmentation.pitch"),
        ({"training": {"augmentation": []}}, "training.augmentation"),
        ({"audio_augmentation": {"pitch_shift_semitones": [2, 0]}}, "audio_augmentation.pitch_shift_semitones[1]"),
        ({"audio_augmentation": {"pitch_shift_semitones": [13]}}, "audio_augmentation.pitch_shift_semitones[0]"),
        ({"audio_augmentation": {"time_stretch_rates": [1.0]}}, "audio_augmentation.time_stretch_rates[0]"),
        ({"audio_augmentation": {"time_stretch_rates": [0.4]}}, "audio_augmentation.time_stretch_rates[0]"),
        ({"audio_augmentation": {"time_stretch_rates": [0.9, 0.9]}}, "audio_augmentation.time_stretch_rates"),
        ({"audio_augmentation": {"time_stretch_rates": "0.9"}}, "audio_augmentation.time_stretch_rates"),
        ({"analysis": {"overlap": 3.0}}, "analysis.overlap"),
        ({"analysis": {"aggregation": "max"}}, "analysis.aggregation"),
        ({"build": {"executor": "ray"}}, "build.executor"),
        ({"build": {"dask_scheduler": "tcp://10.0.0.5:8786"}}, "build.dask_scheduler"),  # executor is "local"
        ({"build": {"executor": "dask", "dask_scheduler": "tcp://host:8786/path"}}, "build.dask_scheduler"),
        ({"training": {"distribute": "on"}}, "training.distribute"),
        ({"features": {"hop": 256}}, "features.hop"),
        ({"feature": {}}, "feature"),
        ({"paths": []}, "paths"),
    ],
)
def test_bad_values_name_the_key(data, key):
    with pytest.raises(ConfigError) as err:
        config_from_dict(data)
    assert str(err.value).startswith(f"{key}:")


def test_bad_json_names_the_file_and_line(tmp_path):
    path = tmp_path / "p.json"
    path.write_text('{\n  "paths": {,}\n}')
    with pytest.raises(ConfigError, match=r"p\.json: invalid JSON at line 2"):
        load_config(path)


def test_comment_keys_are_allowed():
    assert config_from_dict({"_comment": "hello"}) == config_from_dict({})


def test_settings_fingerprints_ignore_workers_and_memory():
    a = config_from_dict({})
    b = config_from_dict({"build": {"workers": 1}, "processing": {"memory_limit_mb": 64}})
    c = config_from_dict({"features": {"n_mels": 64}})
    assert fingerprint(build_settings(a)) == fingerprint(build_settings(b))
    assert fingerprint(processing_settings(a)) == fingerprint(processing_settings(b))
    assert fingerprint(build_settings(a)) != fingerprint(build_settings(c))
    assert changed_keys(build_settings(a), build_settings(c)) == ["features.n_mels"]


def test_a_backbone_brings_its_features_slices_and_normalization():
    cfg = config_from_dict({"model": {"backbone": "musicnn-msd"}})
    f = cfg.features
    assert (f.sample_rate, f.n_fft, f.hop_length, f.n_mels, f.log_scale) == (16000, 512, 256, 96, "musicnn")
    assert cfg.slicing.slice_duration == 3.008 and cfg.processing.norm_method == "none"
    from genrekit.audio.features import slice_geometry

    assert slice_geometry(3.008, 0.0, f).spec_shape == (187, 96)  # musicnn's patch: 187 frames
    # keys set to the values the backbone needs are fine; other keys of those sections stay the user's
    same = config_from_dict(
        {"model": {"backbone": "musicnn-mtt"}, "features": {"n_mels": 96}, "slicing": {"overlap": 0.5}}
    )
    assert same.features == f and same.slicing.overlap == 0.5
    # the keys a backbone leaves to the config keep the config's value (the ready model's level normalization)
    levelled = config_from_dict(
        {"model": {"backbone": "musicnn-msd"}, "features": {"level_normalization": "slice_rms"}}
    )
    assert levelled.features == dataclasses.replace(f, level_normalization="slice_rms")


def test_a_backbone_refuses_other_features_naming_keys_and_values():
    with pytest.raises(ConfigError) as err:
        config_from_dict(
            {
                "model": {"backbone": "musicnn-msd"},
                "features": {"n_mels": 128, "n_fft": 512},
                "slicing": {"slice_duration": 3.0},
                "processing": {"norm_method": "standard"},
            }
        )
    message = str(err.value)
    assert message.startswith("model.backbone: musicnn-msd needs ") and "\n" not in message
    for part in (
        "features.n_mels 96 (not 128)",
        "slicing.slice_duration 3.008 (not 3.0)",
        'processing.norm_method "none" (not "standard")',
    ):
        assert part in message
    assert "n_fft" not in message  # set to what the backbone needs


def test_no_audio_augmentation_leaves_older_dataset_settings_unchanged():
    """Datasets built before audio_augmentation existed had no copies: switched off, the settings
    are theirs; at the defaults (copies), the key is in the settings and such a dataset is stale.
    Those built with the phase vocoder's copies before speed_rates existed keep their settings too."""
    off = config_from_dict(
        {"audio_augmentation": {"pitch_shift_semitones": [], "time_stretch_rates": [], "speed_rates": []}}
    )
    assert "audio_augmentation" not in build_settings(off)
    assert build_settings(config_from_dict({}))["audio_augmentation"] == {
        "pitch_shift_semitones": [],
        "time_stretch_rates": [],
        "speed_rates": [0.9, 1.1],
    }
    # the phase vocoder's copies (the default before speed_rates existed): the settings of then
    phase_vocoder = config_from_dict(
        {
            "audio_augmentation": {
                "pitch_shift_semitones": [-2.0, 2.0],
                "time_stretch_rates": [0.9, 1.1],
                "speed_rates": [],
            }
        }
    )
    assert build_settings(phase_vocoder)["audio_augmentation"] == {
        "pitch_shift_semitones": [-2.0, 2.0],
        "time_stretch_rates": [0.9, 1.1],
    }


def test_keys_added_later_leave_older_settings_unchanged():
    """New keys at their defaults are left out of the settings, so existing datasets and runs stay current."""
    settings = json.dumps(processing_settings(config_from_dict({})))
    for key in ("log_scale", "backbone", "backbone_trainable", "backbone_output", "backbone_lr_factor"):
        assert f'"{key}"' not in settings
    assert '"log_scale"' in json.dumps(build_settings(config_from_dict({"model": {"backbone": "musicnn-msd"}})))
