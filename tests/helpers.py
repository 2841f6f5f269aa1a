"""Shared by the tests: generate real audio files and run the real scripts."""

from __future__ import annotations

import contextlib
import csv
import importlib.util
import io
import json
import os
import signal
import subprocess
import sys
import time
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from genrekit.audio.decode import ffmpeg_executable
from genrekit.core import cli

REPO_ROOT = Path(__file__).resolve().parent.parent
SR = 22050


def tone(freq: float, seconds: float, sr: int = SR, amp: float = 0.3, harmonics: int = 3) -> np.ndarray:
    t = np.arange(int(round(seconds * sr))) / sr
    y = sum(amp / (k + 1) * np.sin(2 * np.pi * freq * (k + 1) * t) for k in range(harmonics))
    return y.astype(np.float32)


def noise(seconds: float, sr: int = SR, amp: float = 0.2, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (amp * rng.standard_normal(int(round(seconds * sr)))).astype(np.float32)


def pulses(seconds: float, bpm: float, sr: int = SR, seed: int = 0) -> np.ndarray:
    """Decaying noise bursts on every beat: a crude drum track."""
    rng = np.random.default_rng(seed)
    n = int(round(seconds * sr))
    y = np.zeros(n, dtype=np.float32)
    hit = (rng.standard_normal(int(0.08 * sr)) * np.exp(-np.linspace(0, 8, int(0.08 * sr)))).astype(np.float32)
    for start in np.arange(0, n, int(sr * 60 / bpm)):
        end = min(n, start + len(hit))
        y[start:end] += 0.5 * hit[: end - start]
    return y


def write_audio(
    path: Path,
    signal: np.ndarray,
    sr: int = SR,
    channels: int = 1,
    out_rate: int | None = None,
    bitrate: str = "128k",
    tags: dict[str, str] | None = None,
) -> Path:
    """Write ``signal`` (mono float32) with the real ffmpeg; the suffix picks the format.

    ``channels=2`` writes a stereo file (the same signal, right channel slightly quieter);
    ``out_rate`` resamples on the way (e.g. 44100 to mimic CD-rate mp3s); ``tags`` are
    written as the format's metadata (ID3 for mp3, Vorbis comments for FLAC...).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = signal.astype(np.float32)
    if channels == 2:
        data = np.stack([data, 0.8 * data], axis=1)
    cmd = [
        ffmpeg_executable(),
        "-nostdin",
        "-y",
        "-loglevel",
        "error",
        "-f",
        "f32le",
        "-ar",
        str(sr),
        "-ac",
        str(channels),
        "-i",
        "pipe:",
    ]
    if out_rate:
        cmd += ["-ar", str(out_rate)]
    if path.suffix.lower() == ".mp3":
        cmd += ["-c:a", "libmp3lame", "-b:a", bitrate]
    for key, value in (tags or {}).items():
        cmd += ["-metadata", f"{key}={value}"]
    cmd.append(str(path))
    subprocess.run(cmd, input=data.tobytes(), check=True)
    return path


def label_signal(label_index: int, seconds: float, seed: int, sr: int = SR) -> np.ndarray:
    """An easily told apart signal per label: tones at different pitches, noise, pulses."""
    rng = np.random.default_rng(seed)
    kind = label_index % 4
    if kind == 0:
        y = tone(220 * (1 + 0.05 * rng.random()), seconds, sr)
    elif kind == 1:
        y = tone(1760 * (1 + 0.05 * rng.random()), seconds, sr)
    elif kind == 2:
        y = noise(seconds, sr, seed=seed)
    else:
        y = pulses(seconds, bpm=100 + 40 * rng.random(), sr=sr, seed=seed)
    return y + noise(seconds, sr, amp=0.01, seed=seed + 1)


def make_corpus(
    root: Path, labels: dict[str, int], seconds: float = 8.0, fmt: str = "wav", seed: int = 0
) -> list[Path]:
    """Write ``labels[name]`` tracks per label under ``root/<name>/``; return their paths."""
    paths = []
    for index, (name, count) in enumerate(labels.items()):
        for k in range(count):
            y = label_signal(index, seconds, seed=seed + 100 * index + k)
            paths.append(write_audio(root / name / f"{name}_{k:02d}.{fmt}", y))
    return paths


# Build-time copies of the train tracks make a build and every epoch longer (the default 2 speed copies:
# about 3x), and several runs a training that many times longer; the tests that are not about them switch
# them off (tests/dataset/test_build.py and tests/training/test_train.py turn them on where they test them).
NO_AUDIO_AUGMENTATION = {"pitch_shift_semitones": [], "time_stretch_rates": [], "speed_rates": []}


def write_config(path: Path, **sections: Any) -> Path:
    """Write a pipeline_parameters.json holding only the given sections, with ``audio_augmentation``
    off (:data:`NO_AUDIO_AUGMENTATION`) and ``training.runs`` 1 unless given."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    sections.setdefault("audio_augmentation", NO_AUDIO_AUGMENTATION)
    sections["training"] = {"runs": 1, **sections.get("training", {})}
    path.write_text(json.dumps(sections, indent=2), encoding="utf-8")
    return path


def script_env() -> dict[str, str]:
    env = dict(os.environ)
    env.update(PYTHONUNBUFFERED="1", TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=str(REPO_ROOT))
    return env


def run_script(script: str, *args: str, timeout: float = 600, **kwargs: Any) -> subprocess.CompletedProcess:
    """Run a top-level script (``build_dataset.py``...) or ``-m module`` as a subprocess."""
    return subprocess.run(
        script_command(script, *args),
        cwd=REPO_ROOT,
        env=script_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
        **kwargs,
    )


def train_script(*args: str) -> tuple[int, str, str]:
    """Run train_crnn.py's ``main`` in this process (no interpreter and TensorFlow start-up per call);
    return the exit status, stdout and stderr."""
    spec = importlib.util.spec_from_file_location("train_crnn", REPO_ROOT / "train_crnn.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        status = cli.run(script.main, list(args))
    return status, out.getvalue(), err.getvalue()


def analyzer_cli(*args: object) -> subprocess.CompletedProcess:
    """``python -m track_analyzer`` with ``args``."""
    return run_script("-m track_analyzer", *map(str, args))


def analyze_cli(run, *args: object, model=None) -> subprocess.CompletedProcess:
    """The analyzer on a trained run (``trained_run`` in conftest.py), with the run's config (its
    analysis overlap fits the run's 1 s slices)."""
    return analyzer_cli(*args, "--model", model or run.run_folder, "--config", run.config)


def one_error_line(proc: subprocess.CompletedProcess) -> str:
    """The single ``error: ...`` line a refused run prints; fails if there is more."""
    assert proc.returncode != 0, proc.stdout
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    return lines[0]


def script_command(script: str, *args: str) -> list[str]:
    """The command line of a top-level script (``build_dataset.py``...) or of ``-m module``."""
    return [sys.executable, *(script.split() if script.startswith("-m ") else [str(REPO_ROOT / script)]), *args]


def start_script(script: str, *args: str, env: dict | None = None, **kwargs: Any) -> subprocess.Popen:
    """Start a top-level script or ``-m module`` in a new process group (it and its workers can be killed
    together); ``env`` adds variables to :func:`script_env`."""
    kwargs.setdefault("stdout", subprocess.DEVNULL)
    kwargs.setdefault("stderr", subprocess.DEVNULL)
    return subprocess.Popen(
        script_command(script, *args),
        cwd=REPO_ROOT,
        env={**script_env(), **(env or {})},
        start_new_session=True,
        **kwargs,
    )


def kill_group_when(proc: subprocess.Popen, condition: Callable[[], bool], timeout: float = 120) -> bool:
    """``kill -9`` the script's whole process group as soon as ``condition()`` holds.

    Returns False if the script finished first (the condition came too late to be seen).
    """
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            if condition():
                return True
            if proc.poll() is not None:
                return False
            time.sleep(0.002)
        raise AssertionError(f"kill condition never met within {timeout} s")
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def read_history(path: Path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def model_weights(folder: Path) -> dict[str, np.ndarray]:
    """Every array of the weights inside ``model.keras``, by its path."""
    with zipfile.ZipFile(folder / "model.keras") as archive:
        data = archive.read("model.weights.h5")
    weights = {}
    with h5py.File(io.BytesIO(data), "r") as h5:
        h5.visititems(lambda name, item: weights.setdefault(name, item[()]) if isinstance(item, h5py.Dataset) else None)
    return weights


def after(seconds: float, condition):
    """A condition that holds ``seconds`` after ``condition()`` first held."""
    first_seen = []

    def check() -> bool:
        if not first_seen and condition():
            first_seen.append(time.monotonic())
        return bool(first_seen) and time.monotonic() - first_seen[0] >= seconds

    return check


def kill_busy_worker(client, proc: subprocess.Popen, timeout: float = 120) -> int:
    """``kill -9`` one worker of a Dask ``client``'s cluster as soon as it holds tasks of ``proc`` (a
    script using the cluster), one of them running; return its pid. Fails if ``proc`` ends first."""
    victim, victim_pid = sorted(client.run(os.getpid).items())[0]
    deadline = time.monotonic() + timeout
    while not client.processing(workers=[victim])[victim]:
        assert proc.poll() is None, "the script finished before the worker could be killed"
        assert time.monotonic() < deadline, "the worker never got a task"
        time.sleep(0.005)
    os.kill(victim_pid, signal.SIGKILL)
    return victim_pid


def wait_for_success(proc: subprocess.Popen, log, timeout: float) -> None:
    """Wait for a script started with :func:`start_script` (stderr to the file ``log``); fail with its log
    if it fails, and never leave it running."""
    try:
        assert proc.wait(timeout=timeout) == 0, log.seek(0) or log.read()
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
