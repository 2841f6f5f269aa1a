"""Synthesize a demo corpus: short tracks in made-up genres, written as mp3.

Nothing can be downloaded when the demo runs, so the project makes its own music.
Each genre is a small score: a tempo range, a metre, drum patterns on a step
grid, a bass line, a chord progression and the instruments that play them.
The genres differ where real genres differ (tempo, groove, bass line, timbre,
harmony); inside a genre every track varies its key, tempo, mix, tuning and
details of the patterns, all drawn from one seed, so the same seed always gives
the same audio.

Pattern strings hold one character per grid step of one bar:

- drums: ``x`` hit, ``g`` ghost (quiet) hit, ``o`` open hi-hat, ``.`` rest;
- bass: ``R`` chord root, ``T`` third, ``F`` fifth, ``O`` root an octave up,
  ``A`` a semitone below the next chord's root (a walking-bass approach note),
  ``-`` hold the previous note, ``.`` rest;
- chords: ``x`` strike the chord, ``-`` hold, ``.`` rest (arpeggio genres play
  one chord tone per ``x``, cycling up the chord).

Everything is vectorized numpy (each distinct note is synthesized once per track);
a 15 s track renders in about a tenth of a second.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import signal as sps

from genrekit.audio.decode import ffmpeg_executable
from genrekit.audio.features import stable_seed

SAMPLE_RATE = 22050

CHORDS = {
    "maj": (0, 4, 7),
    "min": (0, 3, 7),
    "sus2": (0, 2, 7),
    "power": (0, 7, 12),
    "maj7": (0, 4, 7, 11),
    "min7": (0, 3, 7, 10),
    "dom7": (0, 4, 7, 10),
    "maj9": (0, 4, 7, 11, 14),
    "min9": (0, 3, 7, 10, 14),
    "dom9": (0, 4, 7, 10, 14),
}


@dataclass(frozen=True)
class Genre:
    """The score of one made-up genre; see the module docstring for the pattern strings."""

    name: str
    tempo: tuple[float, float]  # bpm range a track's tempo is drawn from
    beats_per_bar: int
    steps_per_beat: int  # grid resolution: 4 = sixteenths, 3 = triplets (swing), 2 = eighths
    kick: str
    snare: str
    hat: str
    bass: str
    bass_wave: str  # "sine", "saw", "square", "fm", "pluck"
    chord_rhythm: str
    chord_wave: str
    progressions: tuple[tuple[tuple[int, str], ...], ...]  # (semitones above the key, chord quality) per bar
    root_range: tuple[int, int]  # MIDI note range of the key's root (the chord octave)
    chord_attack: float = 0.005  # seconds
    chord_decay: float = 0.4  # seconds for the level to fall by 1/e (sustain-free envelope)
    arpeggio: bool = False
    bass_octave: int = -2  # octaves of the bass below the chords
    cutoff: tuple[float, float] = (3000.0, 5000.0)  # chord-bus low-pass range in Hz
    drive: float = 0.0  # tanh distortion on bass and chords
    hat_kind: str = "hat"  # "hat" (short noise) or "ride" (metallic, long)
    echo: float = 0.0  # feedback of a cheap delay on the chords (space)
    levels: tuple[float, float, float] = (1.0, 0.5, 0.4)  # drums, bass, chords


GENRES: tuple[Genre, ...] = (
    # slow, drumless, long sine/FM pads with major-seventh harmony and echo
    Genre(
        name="glasswing",
        tempo=(60, 74),
        beats_per_bar=4,
        steps_per_beat=4,
        kick="................",
        snare="................",
        hat="................",
        bass="R---------------",
        bass_wave="sine",
        chord_rhythm="x---------------",
        chord_wave="pad",
        progressions=(
            ((0, "maj7"), (5, "maj9"), (9, "min7"), (7, "sus2")),
            ((0, "maj9"), (4, "min7"), (5, "maj7"), (5, "maj7")),
        ),
        root_range=(57, 66),
        chord_attack=0.9,
        chord_decay=6.0,
        cutoff=(1500, 2500),
        echo=0.45,
        levels=(0.0, 0.5, 0.6),
    ),
    # fast, four-on-the-floor plus extra kicks, distorted square bass in sixteenths, power chords
    Genre(
        name="ironclad",
        tempo=(134, 146),
        beats_per_bar=4,
        steps_per_beat=4,
        kick="x...x...x.x.x...",
        snare="....x.......x...",
        hat="xxxxxxxxxxxxxxxx",
        bass="RRORRRORRRORRROR",
        bass_wave="square",
        chord_rhythm="x--x--x---x--x--",
        chord_wave="saw",
        progressions=(
            ((0, "power"), (1, "power"), (0, "power"), (-2, "power")),
            ((0, "power"), (3, "power"), (1, "power"), (0, "power")),
        ),
        root_range=(40, 47),
        bass_octave=-1,
        chord_decay=0.35,
        cutoff=(5000, 7000),
        drive=4.0,
        levels=(1.0, 0.45, 0.45),
    ),
    # house: four-on-the-floor, open hats on the off-beats, off-beat saw bass, square minor-seventh stabs
    Genre(
        name="neonfloor",
        tempo=(118, 128),
        beats_per_bar=4,
        steps_per_beat=4,
        kick="x...x...x...x...",
        snare="....x.......x...",
        hat="x.o.x.o.x.o.x.o.",
        bass="..R...R...R...O.",
        bass_wave="saw",
        chord_rhythm="..x..x....x..x..",
        chord_wave="square",
        progressions=(
            ((0, "min7"), (8, "maj7"), (3, "maj7"), (10, "dom7")),
            ((0, "min9"), (5, "min7"), (8, "maj7"), (7, "min7")),
        ),
        root_range=(55, 62),
        chord_decay=0.18,
        cutoff=(2500, 4000),
        levels=(0.9, 0.5, 0.35),
    ),
    # waltz in 3/4: bass on one and the fifth, plucked major-triad arpeggios, brushed snare, no hats
    Genre(
        name="dustwaltz",
        tempo=(84, 104),
        beats_per_bar=3,
        steps_per_beat=2,
        kick="x.....",
        snare="..g.g.",
        hat="......",
        bass="R-..F-",
        bass_wave="pluck",
        chord_rhythm="xxxxxx",
        chord_wave="pluck",
        arpeggio=True,
        progressions=(
            ((0, "maj"), (5, "maj"), (7, "maj"), (0, "maj")),
            ((0, "maj"), (9, "min"), (5, "maj"), (7, "maj")),
        ),
        root_range=(60, 67),
        chord_decay=0.6,
        cutoff=(4000, 6000),
        levels=(0.35, 0.55, 0.6),
    ),
    # breakbeat at drum-and-bass tempo: syncopated kicks, ghost snares, deep sine sub bass, FM bell stabs
    Genre(
        name="shardstep",
        tempo=(164, 176),
        beats_per_bar=4,
        steps_per_beat=4,
        kick="x.........x.....",
        snare="....x..g.g..x..g",
        hat="x.x.x.x.x.xxx.x.",
        bass="R-------F-------",
        bass_wave="sine",
        chord_rhythm="x.......x.......",
        chord_wave="bell",
        progressions=(
            ((0, "min9"), (0, "min9"), (8, "maj7"), (10, "dom9")),
            ((0, "min7"), (3, "maj7"), (5, "min9"), (5, "min9")),
        ),
        root_range=(62, 69),
        bass_octave=-3,
        chord_decay=0.5,
        cutoff=(5000, 8000),
        echo=0.25,
        levels=(1.0, 0.6, 0.3),
    ),
    # swing on a triplet grid: ride cymbal, feathered kick, walking bass, electric-piano ii-V-I comping
    Genre(
        name="velvetswing",
        tempo=(104, 132),
        beats_per_bar=4,
        steps_per_beat=3,
        kick="g..g..g..g..",
        snare="........g...",
        hat="x..x.xx..x.x",
        bass="R--T--F--A--",
        bass_wave="pluck",
        chord_rhythm="..x--...x...",
        chord_wave="epiano",
        progressions=(
            ((2, "min7"), (7, "dom9"), (0, "maj7"), (9, "dom7")),
            ((0, "maj9"), (9, "min7"), (2, "min9"), (7, "dom7")),
        ),
        root_range=(55, 62),
        chord_decay=0.7,
        cutoff=(3000, 4500),
        hat_kind="ride",
        levels=(0.6, 0.6, 0.45),
    ),
)

GENRE_NAMES: tuple[str, ...] = tuple(g.name for g in GENRES)


def genre_by_name(name: str) -> Genre:
    """The :class:`Genre` called ``name``; ``KeyError`` naming the known ones otherwise."""
    for genre in GENRES:
        if genre.name == name:
            return genre
    raise KeyError(f"unknown genre {name!r} (known: {', '.join(GENRE_NAMES)})")


# --------------------------------------------------------------------------- instruments


def midi_to_hz(note: float) -> float:
    return 440.0 * 2.0 ** ((note - 69) / 12)


def envelope(n: int, sr: int, attack: float, decay: float, release: float = 0.02) -> np.ndarray:
    """A linear attack, an exponential decay and a short linear release at the end (no clicks)."""
    t = np.arange(n) / sr
    env = np.exp(-np.maximum(t - attack, 0.0) / max(decay, 1e-4))
    n_attack = min(n, max(1, int(attack * sr)))
    env[:n_attack] *= np.linspace(0.0, 1.0, n_attack)
    n_release = min(n, max(1, int(release * sr)))
    env[n - n_release :] *= np.linspace(1.0, 0.0, n_release)
    return env


def oscillator(wave: str, freq: float, n: int, sr: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` samples of one note's raw waveform (before its envelope).

    ``sine``, ``saw``, ``square`` are the classic waves; ``fm`` and ``bell`` are
    two-operator FM (harmonic and inharmonic); ``epiano`` is a soft FM tine with
    tremolo; ``pluck`` is a string whose upper harmonics die out first; ``pad``
    is three detuned sines with a slow FM shimmer.
    """
    t = np.arange(n) / sr
    phase = 2 * np.pi * freq * t + rng.uniform(0, 2 * np.pi)
    if wave == "sine":
        return np.sin(phase)
    if wave == "saw":
        cycles = freq * t + rng.random()
        return 2.0 * (cycles - np.floor(cycles)) - 1.0
    if wave == "square":
        return np.sign(np.sin(phase)) * 0.7
    if wave == "fm":
        return np.sin(phase + 2.0 * np.exp(-3 * t) * np.sin(phase))
    if wave == "bell":
        return np.sin(phase + 3.0 * np.exp(-4 * t) * np.sin(3.5 * phase))
    if wave == "epiano":
        tine = np.sin(phase + 1.2 * np.exp(-6 * t) * np.sin(phase * 14.0))
        return tine * (1 + 0.15 * np.sin(2 * np.pi * 5.0 * t))
    if wave == "pluck":
        k = np.arange(1, 9)[:, None]
        partials = np.sin(k * phase[None, :]) / k * np.exp(-t[None, :] * 2.5 * k)
        return partials.sum(axis=0)
    if wave == "pad":
        detune = 2.0 ** (np.array([-8, 0, 7]) / 1200)[:, None]
        voices = np.sin(2 * np.pi * freq * detune * t[None, :] + 0.3 * np.sin(2 * np.pi * 0.5 * t))
        return voices.mean(axis=0)
    raise ValueError(f"unknown waveform {wave!r}")


def note(
    wave: str,
    pitch: float,
    seconds: float,
    sr: int,
    rng: np.random.Generator,
    attack: float = 0.005,
    decay: float = 0.4,
) -> np.ndarray:
    """One enveloped note of MIDI ``pitch`` lasting ``seconds``."""
    n = max(1, int(seconds * sr))
    return oscillator(wave, midi_to_hz(pitch), n, sr, rng) * envelope(n, sr, attack, decay)


def kick_drum(sr: int, rng: np.random.Generator) -> np.ndarray:
    """A sine whose pitch falls from ~120 Hz to ~45 Hz, with a click of noise."""
    n = int(0.35 * sr)
    t = np.arange(n) / sr
    top, bottom = rng.uniform(100, 140), rng.uniform(40, 55)
    freq = bottom + (top - bottom) * np.exp(-t * 25)
    body = np.sin(2 * np.pi * np.cumsum(freq) / sr) * np.exp(-t * rng.uniform(7, 11))
    click = rng.standard_normal(n) * np.exp(-t * 300) * 0.3
    return body + click


def snare_drum(sr: int, rng: np.random.Generator) -> np.ndarray:
    """Band-passed noise over a short 180 Hz tone."""
    n = int(0.25 * sr)
    t = np.arange(n) / sr
    sos = sps.butter(2, [1200, 7000], btype="bandpass", fs=sr, output="sos")
    rattle = sps.sosfilt(sos, rng.standard_normal(n)) * np.exp(-t * rng.uniform(14, 22))
    tone = np.sin(2 * np.pi * rng.uniform(170, 200) * t) * np.exp(-t * 30)
    return 1.2 * rattle + 0.5 * tone


def hi_hat(sr: int, rng: np.random.Generator, open_: bool = False) -> np.ndarray:
    """High-passed noise; short when closed, long when open."""
    n = int((0.3 if open_ else 0.06) * sr)
    t = np.arange(n) / sr
    sos = sps.butter(2, 7000, btype="highpass", fs=sr, output="sos")
    return sps.sosfilt(sos, rng.standard_normal(n)) * np.exp(-t * (9 if open_ else 60)) * 0.6


def ride_cymbal(sr: int, rng: np.random.Generator) -> np.ndarray:
    """A bell-like inharmonic FM ping over a long high-passed noise wash."""
    n = int(0.8 * sr)
    t = np.arange(n) / sr
    f = rng.uniform(400, 500)
    ping = np.sin(2 * np.pi * f * t + 4 * np.sin(2 * np.pi * f * 3.73 * t)) * np.exp(-t * 8)
    sos = sps.butter(2, 5000, btype="highpass", fs=sr, output="sos")
    wash = sps.sosfilt(sos, rng.standard_normal(n)) * np.exp(-t * 4)
    return 0.25 * ping + 0.35 * wash


# --------------------------------------------------------------------------- rendering


def _place(bus: np.ndarray, start: int, sound: np.ndarray, gain: float = 1.0) -> None:
    """Add ``sound`` into ``bus`` from sample ``start``, cut at the bus end."""
    end = min(len(bus), start + len(sound))
    if end > start >= 0:
        bus[start:end] += gain * sound[: end - start]


def _mutate(pattern: str, rng: np.random.Generator, p_drop: float = 0.08, p_ghost: float = 0.05) -> str:
    """A bar's variation of a drum pattern: a few hits dropped, a few ghost hits added."""
    out = []
    for ch in pattern:
        roll = rng.random()
        if ch in "xgo" and roll < p_drop:
            out.append(".")
        elif ch == "." and roll < p_ghost:
            out.append("g")
        else:
            out.append(ch)
    return "".join(out)


def _echo(x: np.ndarray, sr: int, seconds: float, feedback: float, taps: int = 4) -> np.ndarray:
    """A cheap feedback delay: a few decaying delayed copies added to the signal."""
    out = x.copy()
    shift = int(seconds * sr)
    for k in range(1, taps + 1):
        if k * shift >= len(x):
            break
        out[k * shift :] += feedback**k * x[: len(x) - k * shift]
    return out


def _lowpass(x: np.ndarray, cutoff: float, sr: int) -> np.ndarray:
    sos = sps.butter(2, min(cutoff, 0.45 * sr), btype="lowpass", fs=sr, output="sos")
    return sps.sosfilt(sos, x)


def _drive(x: np.ndarray, amount: float) -> np.ndarray:
    return np.tanh(amount * x) / np.tanh(amount) if amount > 0 else x


def render_track(genre: Genre | str, seconds: float, seed: int, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Synthesize ``seconds`` of one track of ``genre``.

    Parameters
    ----------
    genre : Genre or str
        The genre, or its name (see :data:`GENRE_NAMES`).
    seconds : float
        Length of the result.
    seed : int
        Everything random (key, tempo, tuning, mix, pattern variations, the start
        point inside the first bar) follows from it.
    sample_rate : int

    Returns
    -------
    np.ndarray, shape (round(seconds * sample_rate),), float32, peak below 1
    """
    genre = genre_by_name(genre) if isinstance(genre, str) else genre
    sr = sample_rate
    rng = np.random.default_rng(seed)
    bpm = rng.uniform(*genre.tempo)
    steps_per_bar = genre.beats_per_bar * genre.steps_per_beat
    step = 60.0 / bpm / genre.steps_per_beat
    bar = step * steps_per_bar
    key = int(rng.integers(genre.root_range[0], genre.root_range[1] + 1))
    progression = genre.progressions[int(rng.integers(len(genre.progressions)))]
    tuning = rng.uniform(-0.25, 0.25)  # semitones: instruments drift a little between tracks
    cutoff = rng.uniform(*genre.cutoff)
    drum_gain, bass_gain, chord_gain = (level * 10 ** (rng.uniform(-3, 3) / 20) for level in genre.levels)

    offset = rng.uniform(0, bar)  # start somewhere inside the first bar
    n_bars = int(np.ceil((seconds + offset) / bar)) + 1
    n = int(round((seconds + offset + bar) * sr)) + sr
    drums, bass, chords = np.zeros(n), np.zeros(n), np.zeros(n)

    kit = {
        "kick": kick_drum(sr, rng),
        "snare": snare_drum(sr, rng),
        "hat": ride_cymbal(sr, rng) if genre.hat_kind == "ride" else hi_hat(sr, rng),
        "open": hi_hat(sr, rng, open_=True),
    }
    cache: dict[tuple, np.ndarray] = {}  # the same note recurs bar after bar; synthesize it once

    def cached_note(wave: str, pitch: float, length: float, attack: float, decay: float) -> np.ndarray:
        key_ = (wave, round(pitch, 3), round(length, 4), attack, decay)
        if key_ not in cache:
            cache[key_] = note(wave, pitch, length, sr, rng, attack, decay)
        return cache[key_]

    def at(bar_index: int, step_index: int) -> int:
        jitter = rng.normal(0, 0.003)  # a human-ish 3 ms timing spread
        return max(0, int((bar_index * bar + step_index * step + jitter) * sr))

    for b in range(n_bars):
        root_offset, quality = progression[b % len(progression)]
        next_root = key + progression[(b + 1) % len(progression)][0] + tuning
        root = key + root_offset + tuning
        tones = [root + i for i in CHORDS[quality]]

        # drums
        for name, pattern in (("kick", genre.kick), ("snare", genre.snare), ("hat", genre.hat)):
            for i, ch in enumerate(_mutate(pattern, rng) if pattern.strip(".") else pattern):
                if ch == ".":
                    continue
                sound = kit["open"] if ch == "o" else kit[name]
                velocity = (0.3 if ch == "g" else 1.0) * rng.uniform(0.8, 1.0)
                _place(drums, at(b, i), sound, velocity)

        # bass, ``bass_octave`` octaves below the chords
        for i, ch in enumerate(genre.bass):
            if ch in ".-":
                continue
            length = 1 + len(genre.bass[i + 1 :]) - len(genre.bass[i + 1 :].lstrip("-"))
            degree = {"R": root, "T": tones[1], "F": root + 7, "O": root + 12, "A": next_root - 1}[ch]
            pitch = degree + 12 * genre.bass_octave
            sound = cached_note(genre.bass_wave, pitch, length * step * 0.95, 0.005, max(0.15, length * step))
            _place(bass, at(b, i), sound, rng.uniform(0.85, 1.0))

        # chords or arpeggios
        strike = 0
        for i, ch in enumerate(genre.chord_rhythm):
            if ch != "x":
                continue
            length = 1 + len(genre.chord_rhythm[i + 1 :]) - len(genre.chord_rhythm[i + 1 :].lstrip("-"))
            seconds_on = length * step * (2.5 if genre.arpeggio else 1.0)  # plucked strings ring on
            voices = [tones[strike % len(tones)] + 12 * (strike // len(tones) % 2)] if genre.arpeggio else tones
            strike += 1
            for pitch in voices:
                sound = cached_note(genre.chord_wave, pitch, seconds_on, genre.chord_attack, genre.chord_decay)
                _place(chords, at(b, i), sound, rng.uniform(0.8, 1.0) / np.sqrt(len(voices)))

    chords = _drive(_lowpass(chords, cutoff, sr), genre.drive)
    bass = _drive(_lowpass(bass, 1200, sr), genre.drive)
    if genre.echo > 0:
        chords = _echo(chords, sr, seconds=1.5 * bar / genre.beats_per_bar, feedback=genre.echo)  # dotted quarter

    def unit(x: np.ndarray) -> np.ndarray:
        peak = np.max(np.abs(x))
        return x / peak if peak > 0 else x

    mix = drum_gain * unit(drums) + bass_gain * unit(bass) + chord_gain * unit(chords)
    start = int(offset * sr)
    mix = mix[start : start + int(round(seconds * sr))]
    mix += rng.standard_normal(len(mix)) * 1e-3  # a faint noise floor, like any recording
    mix *= 10 ** (rng.uniform(-6, -1) / 20) / max(np.max(np.abs(mix)), 1e-9)
    return mix.astype(np.float32)


def render_medley(
    genres: Sequence[Genre | str],
    section_seconds: float,
    seed: int,
    sample_rate: int = SAMPLE_RATE,
    crossfade: float = 2.0,
) -> tuple[np.ndarray, list[dict]]:
    """One long track that plays the given genres one after the other.

    Consecutive sections overlap by ``crossfade`` seconds (equal-power fades), so
    the result lasts ``len(genres) * section_seconds - (len(genres) - 1) * crossfade``.

    Returns
    -------
    signal : np.ndarray, float32
    sections : list of dict
        ``{"genre", "start", "end"}`` per section, in seconds; a boundary sits in
        the middle of its crossfade.
    """
    sr = sample_rate
    fade = int(crossfade * sr)
    parts, sections, position = [], [], 0.0
    for index, genre in enumerate(genres):
        name = genre if isinstance(genre, str) else genre.name
        part = render_track(genre, section_seconds, stable_seed(seed, "medley", index, name), sr).astype(np.float64)
        if fade:
            ramp = np.sin(np.linspace(0, np.pi / 2, fade)) ** 2
            if index > 0:
                part[:fade] *= ramp
            if index < len(genres) - 1:
                part[-fade:] *= ramp[::-1]
        parts.append(part)
        start = 0.0 if index == 0 else position + crossfade / 2
        position += section_seconds - (crossfade if index < len(genres) - 1 else 0.0)
        end = position + crossfade / 2 if index < len(genres) - 1 else position
        sections.append({"genre": name, "start": round(start, 3), "end": round(end, 3)})
    total = int(round(position * sr))
    out = np.zeros(total)
    cursor = 0
    for part in parts:
        end = min(total, cursor + len(part))
        out[cursor:end] += part[: end - cursor]
        cursor += len(part) - fade
    return out.astype(np.float32), sections


# --------------------------------------------------------------------------- files


def write_mp3(path: Path, signal: np.ndarray, sample_rate: int = SAMPLE_RATE, bitrate: str = "96k") -> Path:
    """Encode a mono float32 signal as mp3 with ffmpeg (``bitexact``: same input, same bytes)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    cmd = [
        ffmpeg_executable(),
        "-nostdin",
        "-y",
        "-hide_banner",
        "-loglevel",
        "error",
        "-f",
        "f32le",
        "-ar",
        str(sample_rate),
        "-ac",
        "1",
        "-i",
        "pipe:",
        "-map_metadata",
        "-1",
        "-fflags",
        "+bitexact",
        "-flags:a",
        "+bitexact",
        "-c:a",
        "libmp3lame",
        "-b:a",
        bitrate,
        str(path),
    ]
    proc = subprocess.run(cmd, input=np.ascontiguousarray(signal, dtype=np.float32).tobytes(), capture_output=True)
    if proc.returncode != 0:
        raise RuntimeError(f"ffmpeg could not write {path}: {proc.stderr.decode(errors='replace').strip()}")
    return path


def track_seed(seed: int, genre: str, index: int) -> int:
    """The seed of track ``index`` of ``genre`` in a corpus made with ``seed``."""
    return stable_seed(seed, "corpus", genre, index) % 2**32


def corpus_plan(tracks_per_genre: int, genres: Sequence[str] = GENRE_NAMES) -> list[tuple[str, int, str]]:
    """``(genre, index, relative path)`` of every track of a corpus, in writing order."""
    return [(g, i, f"{g}/{g}_{i:03d}.mp3") for g in genres for i in range(tracks_per_genre)]


def write_corpus_track(
    folder: Path, genre: str, index: int, relative: str, seconds: float, seed: int, sample_rate: int = SAMPLE_RATE
) -> Path:
    """Render and write one corpus track (a picklable unit of work for a process pool)."""
    signal = render_track(genre, seconds, track_seed(seed, genre, index), sample_rate)
    return write_mp3(Path(folder) / relative, signal, sample_rate)


def write_corpus(
    folder: Path,
    tracks_per_genre: int,
    seconds: float,
    seed: int,
    genres: Sequence[str] = GENRE_NAMES,
    sample_rate: int = SAMPLE_RATE,
    progress: Callable[[int], object] | None = None,
) -> list[Path]:
    """Write ``tracks_per_genre`` mp3 tracks per genre under ``folder/<genre>/`` (folder-per-label).

    ``progress`` (optional) is called once per written file, e.g. a tqdm bar's ``update``.
    """
    paths = []
    for genre, index, relative in corpus_plan(tracks_per_genre, genres):
        paths.append(write_corpus_track(folder, genre, index, relative, seconds, seed, sample_rate))
        if progress is not None:
            progress(1)
    return paths
