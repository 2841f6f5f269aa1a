"""Write tests/fixtures/musicnn_synthetic.npz: the ORIGINAL musicnn 0.1.0 run on synthetic audio.

It checks genrekit.models.musicnn (the Keras 3 port) in any clone, without the shared reference data.
It must run in a throwaway reference environment OUTSIDE the repository, never in .venv:

    python3.11 -m venv /tmp/musicnn_ref_venv
    /tmp/musicnn_ref_venv/bin/pip install tensorflow-cpu==2.15.1 numpy==1.26.4 librosa==0.10.2 soundfile soxr
    /tmp/musicnn_ref_venv/bin/pip install --no-deps musicnn==0.1.0
    /tmp/musicnn_ref_venv/bin/python tools/make_musicnn_fixture.py tests/fixtures/musicnn_synthetic.npz

What it does: synthesises 6.5 s at 16 kHz with numpy (tones, a chirp, noise, clicks, a short
silence), writes it as a float WAV and tags that file with musicnn's own
``extractor()`` for all four models (3 s patches, no overlap, batch size 1: the original
code path, unmodified). The per-patch features come from the same graph
(``musicnn.models.define_model``) run patch by patch, as ``extractor()`` does, because
``extractor()`` returns stale ``cnn*``/``penultimate`` rows for patches after the first
(a bug in musicnn 0.1.0); its taggram is checked to be bit-identical to that graph's.

Arrays written (float32): ``signal`` (n,), ``patches`` (2, 187, 96) = batch_data()'s output,
i.e. the network input; per model ``<MODEL>__taggram`` (2, 50), and for musicnn models
``__mean_pool``/``__max_pool`` (2, 753), ``__penultimate`` (2, 200); for VGG models
``__pool5`` (2, 2, 1, 128). ``versions`` is a JSON string of the environment.
"""

import json
import os
import platform
import sys
import tempfile
import warnings

import numpy as np

if np.__version__ != "1.26.4":
    sys.exit("run me in the musicnn reference venv (numpy 1.26.4, tensorflow-cpu 2.15.1): see my docstring")
try:
    import librosa
    import soundfile
    import tensorflow as tf
    from musicnn import configuration, models  # the original code
    from musicnn import extractor as musicnn_extractor
except ImportError as exc:
    sys.exit(f"{exc}: run me in the musicnn reference venv, see my docstring")
if not (tf.__version__ == "2.15.1" and librosa.__version__ == "0.10.2"):
    sys.exit(f"tensorflow {tf.__version__}, librosa {librosa.__version__}: need 2.15.1 and 0.10.2, see my docstring")

warnings.filterwarnings("ignore", message=".*is deprecated", category=UserWarning)  # tf.compat.v1.layers

SR = configuration.SR
N_FRAMES = 187
MODELS = ("MSD_musicnn", "MTT_musicnn", "MSD_vgg", "MTT_vgg")


def synthetic_signal(seconds: float = 6.5, seed: int = 7) -> np.ndarray:
    """Tones with harmonics, a chirp, noise, clicks on a beat and 0.3 s of digital silence."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SR)) / SR
    y = np.zeros_like(t)
    for f0, amp in ((110.0, 0.25), (440.0, 0.15), (1318.5, 0.08)):
        y += sum(amp / k * np.sin(2 * np.pi * f0 * k * t) for k in range(1, 5)) * (
            0.6 + 0.4 * np.sin(2 * np.pi * 0.5 * t)
        )
    y += 0.1 * np.sin(2 * np.pi * (200 * t + 300 * t**2))  # chirp 200 Hz -> 4 kHz
    y += 0.05 * rng.standard_normal(t.size)
    click = rng.standard_normal(int(0.03 * SR)) * np.exp(-np.linspace(0, 10, int(0.03 * SR)))
    for start in range(0, t.size - click.size, int(0.5 * SR)):  # 120 bpm
        y[start : start + click.size] += 0.8 * click
    y[int(2.0 * SR) : int(2.3 * SR)] = 0.0
    return (0.9 * y / np.max(np.abs(y))).astype(np.float32)


def per_patch_outputs(model: str, batch: np.ndarray) -> dict:
    """The extractor's graph and checkpoint, fed one patch at a time, fetching every output."""
    n_tags = len(configuration.MSD_LABELS if "MSD" in model else configuration.MTT_LABELS)
    graph = tf.Graph()
    with graph.as_default():
        with tf.name_scope("model"):
            x = tf.compat.v1.placeholder(tf.float32, [None, N_FRAMES, configuration.N_MELS])
            is_training = tf.compat.v1.placeholder(tf.bool)
            outputs = models.define_model(x, is_training, model, n_tags)
            taggram = tf.nn.sigmoid(outputs[0])
        session = tf.compat.v1.Session(graph=graph)
        tf.compat.v1.train.Saver().restore(session, os.path.dirname(models.__file__) + "/" + model + "/")
    if "vgg" in model:
        fetch = {"taggram": taggram, "pool5": outputs[5]}
    else:
        fetch = {"taggram": taggram, "mean_pool": outputs[6], "max_pool": outputs[7], "penultimate": outputs[8]}
    # The extractor's exact fetch list (other fetch sets change TF's op fusion by an ulp).
    extractor_fetch = [taggram, *outputs[1:]]
    rows = {key: [] for key in fetch}
    for i in range(batch.shape[0]):
        values = session.run(extractor_fetch, feed_dict={x: batch[i : i + 1], is_training: False})
        by_tensor = dict(zip([t.name for t in extractor_fetch], values))
        for key, tensor in fetch.items():
            rows[key].append(by_tensor[tensor.name])
    session.close()
    return {key: np.concatenate(value).astype(np.float32) for key, value in rows.items()}


def main(out_path: str) -> None:
    signal = synthetic_signal()
    arrays = {"signal": signal}
    with tempfile.TemporaryDirectory() as tmp:
        wav = os.path.join(tmp, "synthetic.wav")
        soundfile.write(wav, signal, SR, subtype="FLOAT")
        loaded, _ = librosa.load(wav, sr=SR)
        assert np.array_equal(loaded, signal), "the WAV round trip changed the signal"
        batch, _spectrogram = musicnn_extractor.batch_data(wav, N_FRAMES, N_FRAMES)
        assert batch.dtype == np.float32 and batch.shape == (2, N_FRAMES, 96), batch.shape
        arrays["patches"] = batch
        mel = librosa.feature.melspectrogram(y=signal, sr=SR, hop_length=256, n_fft=512, n_mels=96)
        loud_bins = int((mel.astype(np.float16) > 6.5504).sum())
        for model in MODELS:
            taggram, _, _ = musicnn_extractor.extractor(
                wav, model=model, input_length=3, input_overlap=False, extract_features=True
            )
            outputs = per_patch_outputs(model, batch)
            assert np.array_equal(outputs["taggram"], taggram), f"{model}: per-patch graph != extractor()"
            for key, value in outputs.items():
                arrays[f"{model}__{key}"] = value
            print(
                model,
                "top tags:",
                [
                    configuration.MSD_LABELS[i] if "MSD" in model else configuration.MTT_LABELS[i]
                    for i in np.argsort(-taggram.mean(0))[:3]
                ],
            )
    versions = {
        "python": platform.python_version(),
        "machine": platform.machine(),
        "tensorflow": tf.__version__,
        "numpy": np.__version__,
        "librosa": librosa.__version__,
        "soundfile": soundfile.__version__,
        "musicnn": "0.1.0",
        "mel_bins_above_float16_6p5504": loud_bins,
    }
    arrays["versions"] = np.array(json.dumps(versions))
    np.savez_compressed(out_path, **arrays)
    print(out_path, os.path.getsize(out_path), "bytes;", versions)


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python tools/make_musicnn_fixture.py OUT.npz (in the reference venv, see the docstring)")
    main(sys.argv[1])
