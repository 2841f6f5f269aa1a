"""Do the int8 exports give the float exports' verdicts, and how much faster do they score a slice? (issue 34)

Every model with both exports (``model.tflite`` and ``model.int8.tflite``, see docs/GUIDE.md) analyzes the
same files through each, with the real analyzer (``Analyzer(..., precision=...)``):

* **verdicts**: on the 170 clips by 36 artists of ``gtzan_other_artists`` and ``gtzan_more_artists``
  (``--audio``), on full songs (``--songs``: the generated 3-5 minute songs of
  ``benchmarks/analyzer_speed.py``'s library, which are not music) and on full-length real music
  (``--joined``: 3.5-minute songs joined from consecutive clips of one genre folder), the share of files
  whose top label is the same, and how far the shares move (largest and mean absolute difference, in
  points); for a tagger also whether the top five tags are the same ones;
* **speed**: milliseconds of inference per slice of each export on real slices, one and two interpreter
  threads, in rounds of alternating order (a shared machine drifts), with the median of the per-round
  ratios; the default-config CRNN (untrained: speed does not depend on the weights) too.

Models (``--models``): the ready genre model (``gtzan-genres``), the taggers (``musicnn-msd``,
``musicnn-mtt``), and any run folders given (``--runs``, e.g. a trained default-config CRNN: the int8
export of a CRNN quantizes its 2D convolutions). The CPU's instruction set is printed with the figures.

    .venv/bin/python benchmarks/quantization.py [--songs 8] [--rounds 4] [--runs output/models/crnn]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

import numpy as np  # noqa: E402
from analyzer_speed import OUT, instruction_set, make_bundle, make_library  # noqa: E402

from genrekit.core.config import Config  # noqa: E402

DEV_CLIPS = [REPO_ROOT.parent / "shared" / "data" / name for name in ("gtzan_other_artists", "gtzan_more_artists")]
PRECISIONS = ("float", "int8")


def audio_files(folders: list[Path]) -> list[Path]:
    from genrekit.inference.folder import find_audio_files

    return [path for folder in folders for path in find_audio_files(folder, (".flac", ".wav", ".mp3"))]


def joined_songs(clips: list[Path], count: int, seconds: float = 210.0) -> list[Path]:
    """Full-length files of real music: consecutive clips of one folder (one genre of one set) joined into
    songs of at least ``seconds`` (44.1 kHz stereo mp3), taking the folders in turn; made once under
    ``OUT/joined/``. The generated songs are not music (the ready model's top two shares there are a point
    or two apart), so the verdicts of full-length real audio come from these."""
    from collections import defaultdict

    from genrekit.audio.decode import decode
    from tests.helpers import write_audio

    rate = 44100
    folders = defaultdict(list)
    for clip in clips:
        folders[clip.parent].append(clip)
    queues = [(folder.name, sorted(group)) for folder, group in sorted(folders.items())]
    songs, turn = [], 0
    while len(songs) < count and any(queue for _, queue in queues):
        genre, queue = queues[turn % len(queues)]
        turn += 1
        parts, total = [], 0.0
        while queue and total < seconds:
            parts.append(decode(queue.pop(0), rate))
            total += len(parts[-1]) / rate
        if total < seconds:  # the folder's last clips: too few for a song
            continue
        path = OUT / "joined" / f"{len(songs):02d}_{genre}.mp3"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            write_audio(path, np.concatenate(parts), out_rate=rate, channels=2)
        songs.append(path)
    return songs


def compare(model, files: list[Path], what: str) -> None:
    """Analyze ``files`` through both exports of ``model``; print the verdict agreement and the share moves."""
    from tqdm import tqdm

    from genrekit.inference.analyzer import Analyzer

    analyzers = {precision: Analyzer(model, precision=precision) for precision in PRECISIONS}
    tagger = analyzers["float"].bundle.multi_label
    same_top, same_five, moves = 0, 0, []
    for path in tqdm(files, desc=f"{model}: {what}", unit="file", file=sys.stderr, leave=False):
        float_result, int8_result = (analyzers[precision].analyze(path) for precision in PRECISIONS)
        same_top += float_result.top_label == int8_result.top_label
        five = [{r.label for r in result.ranking[:5]} for result in (float_result, int8_result)]
        same_five += five[0] == five[1]
        moves.append(np.abs(float_result.shares - int8_result.shares))
    moves = 100 * np.array(moves)
    five = f", the same top five tags on {100 * same_five / len(files):.1f} %" if tagger else ""
    print(
        f"  {model}, {what}: the same {'top tag' if tagger else 'verdict'} on {same_top} of {len(files)} "
        f"({100 * same_top / len(files):.1f} %){five}; shares move by {moves.max():.2f} points at most, "
        f"{moves.mean():.3f} on average ({np.percentile(moves.max(axis=1), 99):.2f} at the 99th percentile of files)"
    )


def per_slice(model, specs: np.ndarray, rounds: int) -> None:
    """Milliseconds per slice of each export, with 1 and 2 interpreter threads, in rounds of alternating order."""
    from genrekit.models import litert, registry

    bundle = registry.open_model(model)
    rows = registry.MUSICNN_ROWS if bundle.features.log_scale == "musicnn" else None
    batch = specs[..., np.newaxis].astype(np.float32)
    for threads in (1, 2):
        exports = {
            precision: litert.LiteRTModel(registry.export_path(bundle, precision), threads=threads, max_rows=rows)
            for precision in PRECISIONS
        }
        for export in exports.values():
            export.predict(batch[:2])  # the first call allocates
        times = {precision: [] for precision in PRECISIONS}
        for order in [PRECISIONS, PRECISIONS[::-1]] * rounds:
            for precision in order:
                start = time.perf_counter()
                exports[precision].predict(batch)
                times[precision].append(1000 * (time.perf_counter() - start) / len(batch))
        ratio = float(np.median(np.array(times["int8"]) / np.array(times["float"])))
        print(
            f"  {model}, {threads} thread{'s' if threads > 1 else ''}: float {np.median(times['float']):.2f} ms, "
            f"int8 {np.median(times['int8']):.2f} ms a slice (medians of {2 * rounds} rounds of {len(batch)} "
            f"slices); int8 / float x{ratio:.2f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--audio", nargs="+", type=Path, default=DEV_CLIPS, help="folders of clips (default: the 170)")
    parser.add_argument("--songs", type=int, default=8, help="generated 3-5 minute songs (default 8; 0: none)")
    parser.add_argument(
        "--joined", type=int, default=12, help="songs of 3.5 minutes joined from the clips (default 12; 0: none)"
    )
    parser.add_argument(
        "--models", nargs="+", default=["gtzan-genres", "musicnn-msd", "musicnn-mtt"], help="ready models"
    )
    parser.add_argument("--runs", nargs="*", type=Path, default=[], help="run folders with both exports")
    parser.add_argument("--rounds", type=int, default=4, help="pairs of speed rounds (default 4)")
    parser.add_argument("--skip-verdicts", action="store_true", help="speed only")
    args = parser.parse_args()

    from genrekit.inference.analyzer import slice_settings
    from genrekit.models import registry
    from genrekit.models.registry import open_model

    print(f"CPU: {instruction_set()}; {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f}")
    clips = audio_files(args.audio)
    songs = []
    if args.songs:
        _, _, found = make_library(OUT, args.songs, song_every=1)
        songs = sorted(found)
    joined = joined_songs(clips, args.joined) if args.joined else []
    models = [*args.models, *map(str, args.runs)]
    if not args.skip_verdicts:
        print(
            f"\n== verdicts, float against int8 export: {len(clips)} clips, {len(songs)} generated songs, "
            f"{len(joined)} songs joined from the clips"
        )
        for model in models:
            compare(model, clips, f"{len(clips)} clips")
            if songs:
                compare(model, songs, f"{len(songs)} songs")
            if joined:
                compare(model, joined, f"{len(joined)} joined songs")
    print(f"\n== inference per slice (load average {os.getloadavg()[0]:.2f})")
    for model in models:
        settings = slice_settings(open_model(model))
        specs = np.concatenate([settings.load(path).specs for path in clips[::17]])[:48]
        per_slice(model, specs, args.rounds)
    crnn = make_bundle(OUT / "crnn-1", Config())
    if registry.export_path(open_model(crnn), "int8") is None:  # a folder made before int8 exports
        registry.export_run(open_model(crnn))
    specs = slice_settings(open_model(crnn)).load(clips[0]).specs[:48]
    per_slice(crnn, specs, args.rounds)


if __name__ == "__main__":
    main()
