"""genrekit.audio.decode: one decode for every format, resampled once."""

from __future__ import annotations

import numpy as np
import pytest

from genrekit.audio.decode import decode, decode_blocks, ffmpeg_executable, peak_dbfs
from genrekit.core.errors import TrackError
from tests.helpers import SR, tone, write_audio


def dominant_freq(y: np.ndarray, sr: int) -> float:
    spectrum = np.abs(np.fft.rfft(y * np.hanning(len(y))))
    return float(np.argmax(spectrum) * sr / len(y))


@pytest.mark.parametrize("suffix", ["mp3", "wav", "flac", "m4a", "ogg"])
def test_decode_formats_to_mono_at_target_rate(tmp_path, suffix):
    path = write_audio(tmp_path / f"t.{suffix}", tone(441, 4.0, harmonics=1), channels=2, out_rate=44100)
    y = decode(path, SR)
    assert y.dtype == np.float32 and y.ndim == 1
    assert abs(len(y) / SR - 4.0) < 0.1  # encoder padding is at most a few frames
    assert abs(dominant_freq(y[SR : 3 * SR], SR) - 441) < 2
    # the stereo mean of L and 0.8 L
    assert 0.2 < np.max(np.abs(y)) < 0.35


def test_resampling_is_to_the_requested_rate(tmp_path):
    path = write_audio(tmp_path / "t.wav", tone(1000, 2.0, harmonics=1))
    y = decode(path, 16000)
    assert len(y) == 32000 and abs(dominant_freq(y, 16000) - 1000) < 2


def test_errors_are_track_errors(tmp_path):
    empty = tmp_path / "empty.mp3"
    empty.write_bytes(b"")
    with pytest.raises(TrackError, match="empty file"):
        decode(empty, SR)
    text = tmp_path / "notes.mp3"
    text.write_text("definitely not audio\n" * 100)
    with pytest.raises(TrackError, match="cannot decode"):
        decode(text, SR)
    with pytest.raises(TrackError, match="cannot read"):
        decode(tmp_path / "missing.wav", SR)


def test_peak_dbfs_and_ffmpeg_found():
    assert peak_dbfs(np.zeros(10, dtype=np.float32)) == float("-inf")
    assert peak_dbfs(np.array([0.5], dtype=np.float32)) == pytest.approx(-6.02, abs=0.01)
    assert ffmpeg_executable()


@pytest.mark.parametrize("suffix", ["mp3", "m4a", "flac"])  # libsndfile (mp3, flac) and ffmpeg's pipe (m4a)
def test_blocks_joined_are_the_decode_bit_for_bit(tmp_path, suffix):
    """decode is decode_blocks joined, so any block size gives the same samples: the down-mix is per
    sample, and soxr's stream resampler gives its one-shot samples whatever the chunks."""
    path = write_audio(tmp_path / f"t.{suffix}", tone(330, 6.0), channels=2, out_rate=44100)
    whole = decode(path, SR)
    for block_frames in (1000, 4096, 1 << 20):
        blocks = list(decode_blocks(path, SR, block_frames=block_frames))
        assert all(block.dtype == np.float32 for block in blocks)
        np.testing.assert_array_equal(np.concatenate(blocks), whole)
    assert len(list(decode_blocks(path, SR, block_frames=4096))) > 10  # it did stream


def test_a_stream_left_early_ends_ffmpeg(tmp_path):
    path = write_audio(tmp_path / "t.m4a", tone(330, 20.0), out_rate=44100)
    blocks = decode_blocks(path, SR, block_frames=1024)
    next(blocks)
    blocks.close()  # the generator's cleanup kills and reaps ffmpeg: no process is left behind
    import psutil

    assert not [p for p in psutil.Process().children(recursive=True) if "ffmpeg" in p.name()]
