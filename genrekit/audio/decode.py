"""Decode any audio file to mono float32 at a given sample rate, once.

libsndfile (through soundfile) reads WAV, FLAC, OGG/Opus and MP3 directly and is
several times faster than starting an ffmpeg process; anything else (M4A, AAC,
WMA...) goes through ffmpeg into a temporary WAV first. Either way the same
down-mix (channel mean) and the same resampler (soxr, high quality) follow, so
the result does not depend on which decoder read the file.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
import threading
from functools import lru_cache
from pathlib import Path

import numpy as np
import soundfile
import soxr

from genrekit.core import blas
from genrekit.core.errors import TrackError


@lru_cache(maxsize=1)
def ffmpeg_executable() -> str:
    """The system's ``ffmpeg`` if there is one, else the binary shipped in imageio-ffmpeg."""
    found = shutil.which("ffmpeg")
    if found:
        return found
    import imageio_ffmpeg  # only needed when the system has no ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe()


_stderr_lock = threading.Lock()
_stderr_users = 0
_saved_stderr_fd = -1


@contextlib.contextmanager
def _silenced_stderr_fd():
    """libsndfile's mp3 decoder writes notes about bad frames straight to fd 2; our errors say enough.

    Reference-counted, so decodes running in several threads restore fd 2 only when the last ends.
    """
    global _stderr_users, _saved_stderr_fd
    with _stderr_lock:
        if _stderr_users == 0:
            try:
                _saved_stderr_fd = os.dup(2)
            except OSError:  # no fd 2 (some embedded interpreters): nothing to silence
                _saved_stderr_fd = -1
            if _saved_stderr_fd >= 0:
                devnull = os.open(os.devnull, os.O_WRONLY)
                os.dup2(devnull, 2)
                os.close(devnull)
        _stderr_users += 1
    try:
        yield
    finally:
        with _stderr_lock:
            _stderr_users -= 1
            if _stderr_users == 0 and _saved_stderr_fd >= 0:
                os.dup2(_saved_stderr_fd, 2)
                os.close(_saved_stderr_fd)
                _saved_stderr_fd = -1


def _read_with_soundfile(path: Path) -> tuple[np.ndarray, int]:
    with _silenced_stderr_fd():
        data, rate = soundfile.read(str(path), dtype="float32", always_2d=True)
    return data, rate


def _read_with_ffmpeg(path: Path) -> tuple[np.ndarray, int]:
    with tempfile.TemporaryDirectory(prefix="genrekit-") as tmp:
        wav = Path(tmp) / "decoded.wav"
        cmd = [
            ffmpeg_executable(),
            "-nostdin",
            "-hide_banner",
            "-loglevel",
            "error",
            "-i",
            str(path),
            "-vn",
            "-map",
            "0:a:0",
            "-c:a",
            "pcm_f32le",
            str(wav),
        ]
        proc = subprocess.run(cmd, capture_output=True, text=True, errors="replace")
        if proc.returncode != 0 or not wav.exists():
            lines = [ln.strip() for ln in proc.stderr.splitlines() if ln.strip()]
            reason = lines[-1] if lines else f"ffmpeg exited with status {proc.returncode}"
            # ffmpeg prefixes messages with the input path; keep only what is wrong
            raise TrackError(f"cannot decode audio ({reason.replace(str(path), '').strip(': ')})")
        return _read_with_soundfile(wav)


def decode(path: os.PathLike | str, sample_rate: int) -> np.ndarray:
    """Decode an audio file to a mono float32 signal at ``sample_rate``.

    Parameters
    ----------
    path : path-like
        Any format libsndfile or ffmpeg reads.
    sample_rate : int
        Target rate in Hz; the signal is resampled once, with soxr (HQ).

    Returns
    -------
    np.ndarray, shape (n_samples,), float32

    Raises
    ------
    TrackError
        The file is empty, not audio, or holds no samples.
    """
    path = Path(path)
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise TrackError(f"cannot read file ({exc.strerror})") from None
    if size == 0:
        raise TrackError("empty file (0 bytes)")
    try:
        data, rate = _read_with_soundfile(path)
    except (soundfile.LibsndfileError, RuntimeError, TypeError, ValueError):
        data, rate = _read_with_ffmpeg(path)
    if data.shape[0] == 0:
        raise TrackError("no audio samples in file")
    channels = data.shape[1]
    # A matrix-vector product averages channels ~10x faster than a strided mean over axis 1.
    if channels > 1:
        with blas.single_threaded():  # bit-identical whatever the core count (see genrekit.core.blas)
            mono = data @ np.full(channels, 1.0 / channels, dtype=np.float32)
    else:
        mono = data[:, 0]
    if not np.all(np.isfinite(mono)):
        raise TrackError("decoded audio holds NaN or infinite samples")
    if rate != sample_rate:
        mono = soxr.resample(mono, rate, sample_rate, quality="HQ")
    return np.ascontiguousarray(mono, dtype=np.float32)


def peak_dbfs(signal: np.ndarray) -> float:
    """Peak level in dB relative to full scale (``-inf`` for digital silence)."""
    peak = float(np.max(np.abs(signal))) if signal.size else 0.0
    return 20.0 * np.log10(peak) if peak > 0 else float("-inf")
