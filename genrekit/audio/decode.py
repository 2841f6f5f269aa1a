"""Decode any audio file to mono float32 at a given sample rate, once.

libsndfile (through soundfile) reads WAV, FLAC, OGG/Opus and MP3 directly and is
several times faster than starting an ffmpeg process; anything else (M4A, AAC,
WMA...) goes through ffmpeg, streamed from a pipe. Either way the same down-mix
(channel mean) and the same resampler (soxr, high quality) follow, so the result
does not depend on which decoder read the file. A file is decoded a block at a
time (:func:`decode_blocks`), so memory does not grow with its length.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import struct
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from functools import lru_cache
from pathlib import Path
from typing import BinaryIO

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


# Frames read at a time (1.5 s at 44.1 kHz): a file is decoded, down-mixed and resampled a block at a
# time, so its decode holds a few blocks, not the file (a 2-hour 44.1 kHz stereo file is 2.5 GB in float32).
BLOCK_FRAMES = 1 << 16


def _soundfile_blocks(path: Path, block_frames: int) -> tuple[int, int, Iterator[np.ndarray]]:
    """``(rate, channels, blocks)`` of a file libsndfile reads; raises what soundfile raises if it cannot open it."""
    with _silenced_stderr_fd():
        sound = soundfile.SoundFile(str(path))

    def blocks() -> Iterator[np.ndarray]:
        with sound:
            while True:
                with _silenced_stderr_fd():
                    block = sound.read(block_frames, dtype="float32", always_2d=True)
                if not len(block):
                    return
                yield block

    return sound.samplerate, sound.channels, blocks()


def _wav_header(stream: BinaryIO) -> tuple[int, int]:
    """``(rate, channels)`` from the header of the float32 WAV that ffmpeg writes to a pipe, read up to its
    ``data`` chunk (whose size a pipe leaves unset)."""
    riff = stream.read(12)
    if len(riff) < 12 or riff[:4] != b"RIFF" or riff[8:] != b"WAVE":
        raise TrackError("cannot decode audio (ffmpeg wrote no audio)")
    rate = channels = None
    while True:
        head = stream.read(8)
        if len(head) < 8:
            raise TrackError("cannot decode audio (ffmpeg wrote no audio)")
        kind, size = head[:4], struct.unpack("<I", head[4:])[0]
        if kind == b"data":
            if rate is None:
                raise TrackError("cannot decode audio (ffmpeg wrote no format)")
            return rate, channels
        body = stream.read(size + size % 2)
        if kind == b"fmt ":
            channels, rate = struct.unpack("<HI", body[2:8])


@contextlib.contextmanager
def _ffmpeg_blocks(path: Path, block_frames: int) -> Iterator[tuple[int, int, Iterator[np.ndarray]]]:
    """``(rate, channels, blocks)`` of any file ffmpeg reads, streamed from its stdout as float32 WAV
    (never the whole file in memory or on disk); ffmpeg is ended when the context closes."""
    cmd = [ffmpeg_executable(), "-nostdin", "-hide_banner", "-loglevel", "error", "-i", str(path), "-vn"]
    cmd += ["-map", "0:a:0", "-map_metadata", "-1", "-c:a", "pcm_f32le", "-f", "wav", "pipe:1"]
    with tempfile.TemporaryFile() as errors:  # a file: nobody reads a stderr pipe while stdout streams
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=errors)

        def failure() -> TrackError:
            proc.wait()
            errors.seek(0)
            lines = [ln.strip() for ln in errors.read().decode("utf-8", "replace").splitlines() if ln.strip()]
            reason = lines[-1] if lines else f"ffmpeg exited with status {proc.returncode}"
            # ffmpeg prefixes messages with the input path; keep only what is wrong
            return TrackError(f"cannot decode audio ({reason.replace(str(path), '').strip(': ')})")

        def blocks() -> Iterator[np.ndarray]:
            size = block_frames * channels * 4
            while chunk := proc.stdout.read(size):
                usable = len(chunk) // (4 * channels) * 4 * channels
                yield np.frombuffer(chunk[:usable], dtype="<f4").reshape(-1, channels)
            if proc.wait() != 0:
                raise failure()

        try:
            try:
                rate, channels = _wav_header(proc.stdout)
            except TrackError:
                raise failure() from None
            yield rate, channels, blocks()
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.stdout.close()
            proc.wait()


def _mono(block: np.ndarray) -> np.ndarray:
    """The channel mean of a ``(frames, channels)`` block, float32; refuses NaN and infinite samples."""
    channels = block.shape[1]
    # A matrix-vector product averages channels ~10x faster than a strided mean over axis 1.
    if channels > 1:
        with blas.single_threaded():  # bit-identical whatever the core count (see genrekit.core.blas)
            mono = block @ np.full(channels, 1.0 / channels, dtype=np.float32)
    else:
        mono = block[:, 0]
    if not np.all(np.isfinite(mono)):
        raise TrackError("decoded audio holds NaN or infinite samples")
    return np.ascontiguousarray(mono, dtype=np.float32)


def _with_last(blocks: Iterator[np.ndarray]) -> Iterator[tuple[np.ndarray, bool]]:
    """Each block and whether it is the last."""
    current = next(blocks, None)
    while current is not None:
        following = next(blocks, None)
        yield current, following is None
        current = following


def decode_blocks(path: os.PathLike | str, sample_rate: int, block_frames: int = BLOCK_FRAMES) -> Iterator[np.ndarray]:
    """Decode an audio file to mono float32 at ``sample_rate``, a block at a time.

    The blocks, joined, are :func:`decode`'s signal, bit for bit: the down-mix is per sample, and soxr's
    stream resampler gives the samples of its one-shot resampling whatever the block sizes. A decode
    holds a few blocks of ``block_frames`` frames of the file, whatever its length.

    Parameters
    ----------
    path : path-like
        Any format libsndfile or ffmpeg reads: libsndfile (WAV, FLAC, OGG, MP3) where it opens the
        file, else ffmpeg (M4A, AAC, WMA...), streamed through a pipe.
    sample_rate : int
        Target rate in Hz; resampled with soxr (HQ).
    block_frames : int
        Frames of the file read at a time.

    Yields
    ------
    np.ndarray, shape (n,), float32
        Consecutive pieces of the signal (some may be empty).

    Raises
    ------
    TrackError
        The file is empty, not audio, or holds NaN samples (possibly after some blocks were yielded).
    """
    path = Path(path)
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise TrackError(f"cannot read file ({exc.strerror})") from None
    if size == 0:
        raise TrackError("empty file (0 bytes)")
    with contextlib.ExitStack() as stack:
        try:
            rate, _, blocks = _soundfile_blocks(path, block_frames)
        except (soundfile.LibsndfileError, RuntimeError, TypeError, ValueError):
            rate, _, blocks = stack.enter_context(_ffmpeg_blocks(path, block_frames))
        resampler = None if rate == sample_rate else soxr.ResampleStream(rate, sample_rate, 1, "float32", "HQ")
        for block, last in _with_last(blocks):
            mono = _mono(block)
            yield mono if resampler is None else resampler.resample_chunk(mono, last=last)


def decode(path: os.PathLike | str, sample_rate: int) -> np.ndarray:
    """Decode an audio file to a mono float32 signal at ``sample_rate``: :func:`decode_blocks`, joined.

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
    signal = np.concatenate([np.zeros(0, dtype=np.float32), *decode_blocks(path, sample_rate)])
    if not len(signal):
        raise TrackError("no audio samples in file")
    return signal


def peak_dbfs(signal: np.ndarray) -> float:
    """Peak level in dB relative to full scale (``-inf`` for digital silence)."""
    peak = float(np.max(np.abs(signal))) if signal.size else 0.0
    return 20.0 * np.log10(peak) if peak > 0 else float("-inf")
