"""genrekit.models.musicnn: the Keras 3 port of the pretrained musicnn taggers against the original code.

Two references, both made by musicnn 0.1.0's own code (TF 2.15.1 via tf.compat.v1, numpy 1.26):

* ``shared/data/musicnn_reference`` beside the repository (3 GTZAN clips x 2 models, every
  intermediate feature; see its README.txt); tests skip without it;
* ``tests/fixtures/musicnn_synthetic.npz``, committed: synthetic audio through all four
  models (``tools/make_musicnn_fixture.py`` says how it was made).

Tolerances, from what a port can reproduce: our convolutions and sums run in another order
than TF 2.15's (other kernels, batch size 5 instead of 1), so values agree to float32
rounding of deep sums, not bit for bit. Measured on an AVX2 CPU (worst over clips and
models): taggram 3.7e-6 absolute, features 6.3e-6 relative (``cnn3``); asserted: 1e-5 and 2e-5.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

from genrekit.audio.features import log_compress, log_mel
from genrekit.core.config import build_settings, config_from_dict, fingerprint
from genrekit.core.errors import ConfigError, GenrekitError
from genrekit.models.musicnn import (
    CHECKPOINTS,
    MSD_TAGS,
    MTT_TAGS,
    MUSICNN_FEATURES,
    build_musicnn,
    checkpoint_prefix,
    load_musicnn_weights,
    musicnn_feature_model,
    musicnn_feature_names,
    musicnn_tags,
    patches,
    read_checkpoint,
)

REFERENCE = Path(__file__).resolve().parents[3] / "shared" / "data" / "musicnn_reference"
SYNTHETIC = Path(__file__).resolve().parents[1] / "fixtures" / "musicnn_synthetic.npz"
CLIPS = ("classical.00000", "metal.00002", "hiphop.00003")
REFERENCE_FEATURES = ("timbral", "temporal", "cnn1", "cnn2", "cnn3", "mean_pool", "max_pool", "penultimate", "logits")

TAGGRAM_ATOL = 1e-5
FEATURE_RTOL = 2e-5  # of max |reference| per array: features are ReLU outputs with many zeros
# One float16 step of the power (relative 2**-10 at most) moves log10(10000 x + 1) by at most
# log10(1 + 2**-10) = 4.24e-4.
FLOAT16_STEP_IN_LOG = 4.3e-4
# Share of log-mel bins one float16 step away from the original's. Measured with OpenBLAS's
# FMA kernels (Haswell, Zen): 1 bin of 313,152 for the 3 clips, none of 35,808 for the synthetic
# audio (made on the same CPU); with its SSE kernels (Prescott, Nehalem, SandyBridge): up to
# 4 of 35,808 = 1.1e-4 per recording.
MAX_FLIPPED_SHARE = 5e-4

needs_musicnn = pytest.mark.skipif(
    importlib.util.find_spec("musicnn") is None,
    reason="musicnn 0.1.0 is not installed (its checkpoints are the weights); run make venv",
)
needs_reference = pytest.mark.skipif(
    not REFERENCE.is_dir(), reason=f"no reference outputs of the original musicnn at {REFERENCE}"
)


def relative_error(ours: np.ndarray, reference: np.ndarray) -> float:
    """``max |ours - reference| / max |reference|``: the error on the scale of the feature."""
    ours, reference = np.asarray(ours, np.float64), np.asarray(reference, np.float64)
    assert ours.shape == reference.shape
    return float(np.max(np.abs(ours - reference)) / np.max(np.abs(reference)))


def ulp_distance(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """How many float32 values lie between ``a`` and ``b`` (both >= 0 here)."""
    return np.abs(a.view(np.int32).astype(np.int64) - b.view(np.int32).astype(np.int64))


def reference_arrays(clip: str, checkpoint: str) -> dict[str, np.ndarray]:
    with np.load(REFERENCE / f"{clip}__{checkpoint}.npz") as npz:
        return dict(npz)


@pytest.fixture(scope="module")
def synthetic() -> dict[str, np.ndarray]:
    with np.load(SYNTHETIC) as npz:
        return dict(npz)


@pytest.fixture(scope="module")
def feature_models():
    """Every model built and loaded once: name -> feature model (its outputs include the taggram)."""
    if importlib.util.find_spec("musicnn") is None:
        pytest.skip("musicnn 0.1.0 is not installed; run make venv")
    import tensorflow as tf

    # On Ampere+ GPUs TF would run float32 convolutions in TF32 (10-bit mantissa).
    tf32 = tf.config.experimental.tensor_float_32_execution_enabled()
    tf.config.experimental.enable_tensor_float_32_execution(False)
    models = {}
    for name in CHECKPOINTS:
        model = build_musicnn(name)
        load_musicnn_weights(model, name)
        models[name] = musicnn_feature_model(model)
    yield models
    tf.config.experimental.enable_tensor_float_32_execution(tf32)


def run(model, patch_batch: np.ndarray) -> dict[str, np.ndarray]:
    return model.predict(patch_batch, batch_size=len(patch_batch), verbose=0)


# --------------------------------------------------------------------------- names, scale, config


def test_names_and_tags():
    assert set(CHECKPOINTS) == {"musicnn-msd", "musicnn-mtt", "vgg-msd", "vgg-mtt"}
    assert musicnn_tags("musicnn-msd") is MSD_TAGS and musicnn_tags("vgg-mtt") is MTT_TAGS
    for tags in (MSD_TAGS, MTT_TAGS):
        assert len(tags) == len(set(tags)) == 50
    assert (MSD_TAGS[33], MTT_TAGS[21]) == ("Hip-Hop", "no vocals")
    with pytest.raises(GenrekitError, match="unknown musicnn model 'musicnn'"):
        musicnn_tags("musicnn")


def test_log_compress_rounds_to_float16_and_does_not_overflow():
    power = np.array([0.0, 1e-4, 6.5504, 6.6, 1000.0, 3e4], dtype=np.float32)
    out = log_compress(power)
    assert out.dtype == np.float32 and np.all(np.isfinite(out)) and out[0] == 0.0
    quantised = power.astype(np.float16).astype(np.float64)
    np.testing.assert_array_equal(out, np.log10(10000 * quantised + 1).astype(np.float32))
    assert out[4] == np.float32(7.0)
    # powers within one float16 rounding interval give the same value
    assert log_compress(np.float32(6.6)) == log_compress(np.float32(6.6) * np.float32(1 + 1e-4))


def test_patches_are_consecutive_and_drop_the_tail():
    logmel = np.arange(400 * 2, dtype=np.float32).reshape(400, 2)
    cut = patches(logmel, 187)
    assert cut.shape == (2, 187, 2)
    np.testing.assert_array_equal(cut.reshape(-1, 2), logmel[:374])
    assert patches(logmel[:186], 187).shape == (0, 187, 2)


def test_log_scale_key_default_keeps_existing_settings():
    cfg = config_from_dict({})
    assert cfg.features.log_scale == "db"
    # the features settings of datasets built before the key existed
    assert build_settings(cfg)["features"] == {
        "sample_rate": 22050,
        "n_fft": 2048,
        "hop_length": 512,
        "n_mels": 100,
        "fmin": 0.0,
        "fmax": None,
    }
    musicnn_cfg = config_from_dict(
        {"features": {"log_scale": "musicnn", "sample_rate": 16000, "n_fft": 512, "hop_length": 256, "n_mels": 96}}
    )
    assert musicnn_cfg.features == MUSICNN_FEATURES
    assert build_settings(musicnn_cfg)["features"]["log_scale"] == "musicnn"
    assert fingerprint(build_settings(config_from_dict({"features": {"log_scale": "db"}}))) == fingerprint(
        build_settings(cfg)
    )
    with pytest.raises(ConfigError, match=r"features\.log_scale: must be one of 'db', 'musicnn'"):
        config_from_dict({"features": {"log_scale": "log"}})


# --------------------------------------------------------------------------- the feature function


def check_log_mel(ours: np.ndarray, reference: np.ndarray, max_flipped_share: float) -> None:
    """Our ``log_mel`` frames against the original's, frame for frame.

    Where the float16-rounded mel powers agree, the logs agree to 2 ulp: ours is correctly
    rounded, the reference's numpy float32 log10 was within 2 ulp of that. Our STFT and mel
    projection (numpy 2's pocketfft, our BLAS) differ from the original's by ulps; rarely
    that moves a power across a float16 rounding boundary, and there the value moves by one
    float16 step.
    """
    assert ours.shape == reference.shape and ours.dtype == np.float32
    flipped = ulp_distance(ours, reference) > 2
    assert flipped.mean() <= max_flipped_share, f"{flipped.sum()} of {flipped.size} bins"
    np.testing.assert_allclose(ours, reference, rtol=0, atol=FLOAT16_STEP_IN_LOG)


@needs_reference
@pytest.mark.parametrize("clip", CLIPS)
def test_log_mel_matches_the_original_front_end(clip):
    reference = reference_arrays(clip, "MSD_musicnn")
    ours = log_mel(reference["signal_16k"], MUSICNN_FEATURES)
    # Our STFT runs with center=False, the original's with center=True (zero padding of
    # n_fft / 2 = one hop): our frame j is its frame j + 1, and all of ours are interior.
    check_log_mel(ours, reference["logmel"][1 : len(ours) + 1], max_flipped_share=MAX_FLIPPED_SHARE)
    np.testing.assert_array_equal(patches(reference["logmel"]), reference["patches"])


def test_log_mel_matches_the_original_on_synthetic_audio(synthetic):
    ours = log_mel(synthetic["signal"], MUSICNN_FEATURES)
    frames = synthetic["patches"].reshape(-1, 96)  # frames 0..373 of the original's log-mel
    check_log_mel(ours[: len(frames) - 1], frames[1:], max_flipped_share=MAX_FLIPPED_SHARE)


# --------------------------------------------------------------------------- the networks


@needs_reference
@pytest.mark.parametrize("clip", CLIPS)
@pytest.mark.parametrize("name, checkpoint", [("musicnn-msd", "MSD_musicnn"), ("musicnn-mtt", "MTT_musicnn")])
def test_port_matches_the_original_on_real_music(feature_models, name, checkpoint, clip):
    reference = reference_arrays(clip, checkpoint)
    ours = run(feature_models[name], reference["patches"])
    np.testing.assert_allclose(ours["taggram"], reference["taggram"], rtol=0, atol=TAGGRAM_ATOL)
    errors = {key: relative_error(ours[key], reference[key]) for key in REFERENCE_FEATURES}
    assert max(errors.values()) <= FEATURE_RTOL, errors


@pytest.mark.parametrize("name", list(CHECKPOINTS))
def test_port_matches_the_original_on_synthetic_audio(feature_models, synthetic, name):
    ours = run(feature_models[name], synthetic["patches"])
    prefix = f"{CHECKPOINTS[name]}__"
    keys = [key[len(prefix) :] for key in synthetic if key.startswith(prefix)]
    assert "taggram" in keys and len(keys) >= 2
    np.testing.assert_allclose(ours["taggram"], synthetic[prefix + "taggram"], rtol=0, atol=TAGGRAM_ATOL)
    errors = {key: relative_error(ours[key], synthetic[prefix + key]) for key in keys if key != "taggram"}
    assert max(errors.values()) <= FEATURE_RTOL, errors


def test_feature_model_outputs(feature_models):
    batch = np.zeros((1, 187, 96), dtype=np.float32)
    shapes = {key: value.shape[1:] for key, value in run(feature_models["musicnn-msd"], batch).items()}
    assert list(shapes) == list(musicnn_feature_names("musicnn-msd"))
    assert shapes == {
        "timbral": (187, 408),
        "temporal": (187, 153),
        "cnn1": (187, 64),
        "cnn2": (187, 64),
        "cnn3": (187, 64),
        "mean_pool": (753,),
        "max_pool": (753,),
        "penultimate": (200,),
        "logits": (50,),
        "taggram": (50,),
    }
    shapes = {key: value.shape[1:] for key, value in run(feature_models["vgg-mtt"], batch).items()}
    assert shapes == {
        "pool1": (92, 48, 128),
        "pool2": (46, 24, 128),
        "pool3": (23, 12, 128),
        "pool4": (11, 6, 128),
        "pool5": (2, 1, 128),
        "logits": (50,),
        "taggram": (50,),
    }


# --------------------------------------------------------------------------- the weight loader


@needs_musicnn
@pytest.mark.parametrize("name", ["musicnn-mtt", "vgg-msd"])
def test_loader_uses_every_checkpoint_variable_once(feature_models, name):
    checkpoint = read_checkpoint(name)
    model = feature_models[name]
    # Model variables only: 64 for musicnn, 36 for VGG, besides Adam's slots (2 per trainable).
    assert len(checkpoint) == len(model.weights) == (64 if name.startswith("musicnn") else 36)
    assert sum(value.size for value in checkpoint.values()) == model.count_params()
    first_conv = "timbral_38_conv" if name.startswith("musicnn") else "conv1"
    scope = "conv2d" if name.startswith("musicnn") else "1CNN"
    np.testing.assert_array_equal(model.get_layer(first_conv).kernel.numpy(), checkpoint[f"{scope}/kernel"])
    # the wheel's code (TF1-era) is never imported, not even its empty __init__
    assert not [module for module in sys.modules if module.split(".")[0] == "musicnn"]


@needs_musicnn
def test_loader_refuses_a_checkpoint_that_does_not_fit(monkeypatch):
    import genrekit.models.musicnn

    checkpoint = read_checkpoint("musicnn-msd")
    model = build_musicnn("musicnn-msd")
    extra = {**checkpoint, "conv2d_8/kernel": np.zeros((1,), np.float32)}
    monkeypatch.setattr(genrekit.models.musicnn, "read_checkpoint", lambda name: extra)
    with pytest.raises(GenrekitError, match=r"unused: \['conv2d_8/kernel'\]"):
        load_musicnn_weights(model, "musicnn-msd")
    missing = {key: value for key, value in checkpoint.items() if key != "batch_normalization_9/gamma"}
    monkeypatch.setattr(genrekit.models.musicnn, "read_checkpoint", lambda name: missing)
    with pytest.raises(GenrekitError, match="checkpoint has no batch_normalization_9/gamma"):
        load_musicnn_weights(model, "musicnn-msd")
    monkeypatch.undo()
    with pytest.raises(GenrekitError, match="the model has no layer timbral_38_conv"):  # another architecture
        load_musicnn_weights(build_musicnn("vgg-msd"), "musicnn-msd")


def test_missing_package_gives_one_line_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "musicnn", None)  # find_spec then reports it absent
    for call in (lambda: checkpoint_prefix("musicnn-msd"), lambda: read_checkpoint("vgg-mtt")):
        with pytest.raises(GenrekitError) as info:
            call()
        message = str(info.value)
        assert "\n" not in message and "musicnn 0.1.0 is not installed" in message and "make venv" in message
