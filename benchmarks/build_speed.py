#!/usr/bin/env python3
"""Build speed and memory: build_dataset.py against the bare decode + one mel spectrogram per file.

Generates 30 s, 44.1 kHz stereo mp3s (cached under benchmarks/out/), then, for two corpus sizes:

* baseline: a process pool with the same worker count that decodes each file
  (soundfile + soxr, as the build does) and computes one log-mel spectrogram of the whole track;
* ours: ``build_dataset.py`` from scratch (slicing, features, shards, splits, dataset.h5), without
  build-time copies (``audio_augmentation`` off);
* ours with copies: the same with the default config's ``audio_augmentation``, with two speed
  copies (resampling) and with the four phase-vocoder copies of the earlier default (pitch ±2
  semitones, stretch 0.9/1.1) of every train track (80 % of the tracks): what they cost on top.

Both run as fresh processes (Python start and imports included). Prints audio seconds per
wall second (× real time), ours / baseline, and the peak memory of each process tree
(sampled from /proc), which must not grow with the number of tracks.

With ``--assembly-tracks N [N ...]`` it measures the assembly alone instead (the step that copies
the shards into ``dataset.h5``): for each N it writes N tiny audio files and, without decoding
them, N shards of synthetic 30 s tracks (14 slices of 126 × 100 float16 each, what the default
config makes of 30 s) through the build's own ``write_shard``; ``build_dataset.py`` then finds every
track done and only assembles. Prints seconds, ms per track, MB/s and the peak memory of the
process; the time per track and the memory must not grow with N.

Usage: python benchmarks/build_speed.py [--sizes 30 240] [--workers N]
       python benchmarks/build_speed.py --assembly-tracks 500 2000
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from genrekit.audio.decode import ffmpeg_executable  # noqa: E402
from genrekit.audio.variants import audio_variants  # noqa: E402
from genrekit.core.config import Config, audio_variant_count, config_from_dict, to_jsonable  # noqa: E402

OUT = ROOT / "benchmarks" / "out" / "build_speed"
SECONDS = 30.0
GENRES = ("tones", "noise", "pulses")
NO_COPIES = {"pitch_shift_semitones": [], "time_stretch_rates": [], "speed_rates": []}
COPY_KINDS = {
    "no copies": NO_COPIES,
    "speed 0.9/1.1 (resampling)": {**NO_COPIES, "speed_rates": [0.9, 1.1]},
    "pitch ±2, stretch 0.9/1.1 (phase vocoder)": {
        **NO_COPIES,
        "pitch_shift_semitones": [-2.0, 2.0],
        "time_stretch_rates": [0.9, 1.1],
    },
}

BASELINE = r"""
import sys, concurrent.futures as cf
from pathlib import Path
sys.path.insert(0, sys.argv[1])
from genrekit.audio.decode import decode
from genrekit.core.config import Config
from genrekit.audio.features import log_mel
from genrekit.dataset.build import _worker_init
FEATURES = Config().features
def one(path):
    return log_mel(decode(path, FEATURES.sample_rate), FEATURES).shape[0]
files = sorted(Path(sys.argv[2]).rglob("*.mp3"))
with cf.ProcessPoolExecutor(int(sys.argv[3]), initializer=_worker_init) as pool:
    frames = sum(pool.map(one, files, chunksize=1))
print(frames)
"""


def copy_kinds() -> dict[str, dict]:
    """The builds of every size: :data:`COPY_KINDS`, the default config's named after the kind it is."""
    default = to_jsonable(Config().audio_augmentation)
    default = {**NO_COPIES, **default}
    return {
        (f"{name} = the default config" if copies == default else name): copies for name, copies in COPY_KINDS.items()
    } | ({} if default in COPY_KINDS.values() else {"the default config": default})


def synth(kind: str, seed: int, sr: int = 44100) -> np.ndarray:
    """30 s of stereo test audio with some variety (not music, but a realistic mp3 bitstream)."""
    rng = np.random.default_rng(seed)
    n = int(SECONDS * sr)
    t = np.arange(n) / sr
    if kind == "tones":
        f = rng.uniform(110, 880)
        y = sum(np.sin(2 * np.pi * f * k * t) / k for k in range(1, 5)) * 0.2
    elif kind == "noise":
        y = rng.standard_normal(n) * 0.1
    else:
        y = np.zeros(n)
        beat = int(sr * 60 / rng.uniform(80, 160))
        hit = rng.standard_normal(4000) * np.exp(-np.linspace(0, 8, 4000))
        for s in range(0, n - 4000, beat):
            y[s : s + 4000] += 0.4 * hit
    y = y + rng.standard_normal(n) * 0.01
    return np.stack([y, 0.9 * y], axis=1).astype(np.float32)


def make_corpus(n_tracks: int) -> Path:
    folder = OUT / f"corpus_{n_tracks}"
    done = folder / ".complete"
    if done.exists():
        return folder
    shutil.rmtree(folder, ignore_errors=True)
    print(f"generating {n_tracks} mp3s of {SECONDS:g} s, 44.1 kHz stereo...", file=sys.stderr)
    for i in range(n_tracks):
        kind = GENRES[i % len(GENRES)]
        path = folder / kind / f"{kind}_{i:04d}.mp3"
        path.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [
                ffmpeg_executable(),
                "-nostdin",
                "-y",
                "-loglevel",
                "error",
                "-f",
                "f32le",
                "-ar",
                "44100",
                "-ac",
                "2",
                "-i",
                "pipe:",
                "-c:a",
                "libmp3lame",
                "-b:a",
                "192k",
                str(path),
            ],
            input=synth(kind, i).tobytes(),
            check=True,
        )
    done.touch()
    return folder


def tree_rss_kib(root_pid: int) -> int:
    """Resident memory of a process and all its descendants, in KiB."""
    children: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/status") as fh:
                fields = dict(line.split(":", 1) for line in fh if ":" in line)
        except OSError:
            continue
        pid = int(entry)
        children.setdefault(int(fields["PPid"]), []).append(pid)
        rss[pid] = int(fields.get("VmRSS", "0 kB").split()[0])
    total, stack = 0, [root_pid]
    while stack:
        pid = stack.pop()
        total += rss.get(pid, 0)
        stack.extend(children.get(pid, []))
    return total


def timed(cmd: list[str]) -> tuple[float, int, str]:
    """Run ``cmd``; return wall seconds, peak tree RSS (KiB) and stdout."""
    start = time.perf_counter()
    proc = subprocess.Popen(
        cmd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    peak = [0]

    def sample() -> None:
        while proc.poll() is None:
            peak[0] = max(peak[0], tree_rss_kib(proc.pid))
            time.sleep(0.05)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    out, err = proc.communicate()
    wall = time.perf_counter() - start
    sampler.join()
    if proc.returncode != 0:
        raise SystemExit(f"command failed ({proc.returncode}): {' '.join(cmd)}\n{err}")
    return wall, peak[0], out


ASSEMBLY_SLICES = 14  # a 30 s track with the default 3 s slices every 2 s


def make_assembly_corpus(n_tracks: int) -> Path:
    """N tiny audio files and their finished shards (synthetic spectrograms), cached."""
    folder = OUT / f"assembly_{n_tracks}"
    done = folder / ".complete"
    if done.exists():
        return folder
    import soundfile

    from genrekit.audio.features import slice_geometry
    from genrekit.core.config import fingerprint, load_config
    from genrekit.dataset.build import WORK_DIR
    from genrekit.dataset.scan import scan_audio_folder
    from genrekit.dataset.shards import shard_settings, write_shard

    shutil.rmtree(folder, ignore_errors=True)
    audio = folder / "audio"
    print(f"writing {n_tracks} tiny files and synthetic shards of {ASSEMBLY_SLICES} slices...", file=sys.stderr)
    for i in range(n_tracks):
        path = audio / GENRES[i % len(GENRES)] / f"track_{i:06d}.wav"
        path.parent.mkdir(parents=True, exist_ok=True)
        soundfile.write(path, np.zeros(2205, dtype=np.float32), 22050)
    config = folder / "params.json"
    config.write_text(json.dumps({"paths": {"audio_folder": "audio", "output_folder": "output"}}))
    cfg = load_config(config)
    geometry = slice_geometry(cfg.slicing.slice_duration, cfg.slicing.overlap, cfg.features)
    shard_dir = folder / "output" / WORK_DIR / "shards" / fingerprint(shard_settings(cfg))
    shard_dir.mkdir(parents=True)
    rng = np.random.default_rng(0)
    starts = np.arange(ASSEMBLY_SLICES) * (cfg.slicing.slice_duration - cfg.slicing.overlap)
    for track in scan_audio_folder(audio, cfg.build.audio_extensions).tracks:
        specs = rng.uniform(-100, 40, (ASSEMBLY_SLICES, *geometry.spec_shape)).astype(np.float16)
        write_shard(shard_dir, track, specs, starts, 30.0, False)
    done.touch()
    return folder


def disk_floor(folder: Path, n_bytes: int) -> float:
    """Seconds to write ``n_bytes`` sequentially in 8 MiB blocks and fsync them: what any assembly
    that writes the dataset once must pay on this disk."""
    block = np.random.default_rng(1).integers(0, 255, 8 << 20, dtype=np.uint8).tobytes()
    path = folder / "floor.bin"
    start = time.perf_counter()
    with open(path, "wb") as fh:
        for _ in range(0, n_bytes, len(block)):
            fh.write(block)
        fh.flush()
        os.fsync(fh.fileno())
    wall = time.perf_counter() - start
    path.unlink()
    return wall


def assembly(sizes: list[int]) -> int:
    import resource

    rows = []
    for n in sizes:
        folder = make_assembly_corpus(n)
        (folder / "output" / "dataset.h5").unlink(missing_ok=True)
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        wall, rss, _ = timed(
            [sys.executable, str(ROOT / "build_dataset.py"), "--config", str(folder / "params.json"), "--quiet"]
        )
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        size = (folder / "output" / "dataset.h5").stat().st_size
        rows.append((n, wall, cpu, rss, size, disk_floor(folder, size)))
    print(
        f"assembly only: {ASSEMBLY_SLICES} slices of 126 x 100 per track, {os.cpu_count()} cores "
        f"(the whole build_dataset.py call: start-up, scan, reading every shard, writing and fsync)"
    )
    print("floor: writing the same bytes sequentially and fsync, measured right after (the disk's cost)")
    print(
        f"{'tracks':>7} {'dataset MB':>10} {'wall s':>7} {'floor s':>7} {'wall/floor':>10} {'CPU s':>6} "
        f"{'CPU ms/track':>12} {'peak MiB':>9}"
    )
    for n, wall, cpu, rss, size, floor in rows:
        print(
            f"{n:>7} {size / 1e6:>10.0f} {wall:>7.2f} {floor:>7.2f} {wall / floor:>10.2f} {cpu:>6.2f} "
            f"{1000 * cpu / n:>12.2f} {rss / 1024:>9.0f}"
        )
    if len(rows) > 1:
        (n0, _, c0, r0, *_), (n1, _, c1, r1, *_) = rows[0], rows[-1]
        print(
            f"{n1 - n0} extra tracks: {1000 * (c1 - c0) / (n1 - n0):.2f} ms of CPU per track; "
            f"peak memory ×{r1 / r0:.2f} for ×{n1 / n0:.0f} tracks"
        )
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[30, 240], help="corpus sizes in tracks")
    parser.add_argument("--workers", type=int, default=len(os.sched_getaffinity(0)))
    parser.add_argument(
        "--assembly-tracks",
        type=int,
        nargs="+",
        metavar="N",
        help="measure the assembly alone on synthetic shards of N tracks (e.g. 500 2000)",
    )
    args = parser.parse_args()
    if args.assembly_tracks:
        return assembly(args.assembly_tracks)

    kinds = copy_kinds()
    plain = next(iter(kinds))  # no copies: the first of COPY_KINDS
    rows = []
    for n in args.sizes:
        corpus = make_corpus(n)
        audio_seconds = n * SECONDS
        base_wall, base_rss, _ = timed([sys.executable, "-c", BASELINE, str(ROOT), str(corpus), str(args.workers)])
        out = OUT / f"build_{n}"
        shutil.rmtree(out, ignore_errors=True)
        out.mkdir(parents=True)
        builds = {}
        for index, (name, copies) in enumerate(kinds.items()):
            config = out / f"copies-{index}.json"
            config.write_text(
                json.dumps(
                    {
                        "paths": {"audio_folder": str(corpus), "output_folder": str(out / f"output_{index}")},
                        "build": {"workers": args.workers},
                        **({} if copies is None else {"audio_augmentation": copies}),
                    }
                )
            )
            builds[name] = timed([sys.executable, str(ROOT / "build_dataset.py"), "--config", str(config), "--quiet"])[
                :2
            ]
        rows.append((n, audio_seconds, base_wall, base_rss, builds))

    print(f"build speed: 30 s 44.1 kHz stereo mp3s, {args.workers} workers, {os.cpu_count()} cores")
    print(
        f"{'tracks':>6} {'baseline s':>10} {'ours s':>8} {'ours/base':>9} {'ours ×RT':>9} "
        f"{'base ×RT':>9} {'peak MiB base':>13} {'peak MiB ours':>13}"
    )
    for n, audio, base, base_rss, builds in rows:
        ours, ours_rss = builds[plain]
        print(
            f"{n:>6} {base:>10.2f} {ours:>8.2f} {ours / base:>9.2f} {audio / ours:>9.0f} {audio / base:>9.0f} "
            f"{base_rss / 1024:>13.0f} {ours_rss / 1024:>13.0f}"
        )
    default = Config().audio_augmentation
    names = ", ".join(v.name for v in audio_variants(default)) or "none"
    print(
        f"\nwith build-time copies of the train tracks (80 % of the tracks); the default config makes "
        f"{audio_variant_count(default)} per train track ({names}):"
    )
    print(
        f"{'tracks':>6} {'copies':<52} {'s':>8} {'×RT':>6} {'/ no copies':>11} {'CPU s per copy':>14} {'peak MiB':>8}"
    )
    for n, audio, _, _, builds in rows:
        ours = builds[plain][0]
        for name, (wall, rss) in builds.items():
            count = audio_variant_count(config_from_dict({"audio_augmentation": kinds[name]}).audio_augmentation)
            per_copy = f"{(wall - ours) * args.workers / (count * round(0.8 * n)):.3f}" if count else ""
            print(
                f"{n:>6} {name:<52} {wall:>8.2f} {audio / wall:>6.0f} {wall / ours:>11.2f} {per_copy:>14} "
                f"{rss / 1024:>8.0f}"
            )
    if len(rows) > 1:
        growth = rows[-1][4][plain][1] / rows[0][4][plain][1]
        print(f"peak memory, ours, {rows[-1][0]} vs {rows[0][0]} tracks: ×{growth:.2f}")
        # The difference between two sizes removes the fixed start-up (interpreter, imports, pool).
        (n0, a0, b0, _, builds0), (n1, a1, b1, _, builds1) = rows[0], rows[-1]
        o0, o1 = builds0[plain][0], builds1[plain][0]
        print(
            f"steady state ({n1 - n0} extra tracks): ours ×{(a1 - a0) / (o1 - o0):.0f} real time, "
            f"baseline ×{(a1 - a0) / (b1 - b0):.0f}; fixed start-up ours {o0 - a0 * (o1 - o0) / (a1 - a0):.1f} s"
        )
    print("targets: the default config (and no copies) ×RT >= 250 (issue 26)")
    print("         no copies: ×RT >= 500, ours/base <= 1.5, peak memory flat in the number of tracks")
    return 0


if __name__ == "__main__":
    sys.exit(main())
