"""How fast does ``track_analyzer`` analyze a 4-minute 44.1 kHz stereo mp3?

Targets (issue 5): after the model is loaded, one track in <= 1.5 s on the 2-core CPU;
the whole CLI call (Python start, imports, model load) in <= 8 s; in a folder, one model
load and decoding that overlaps inference.

The model is the default-config CRNN (``genrekit.models.networks.build_crnn``) with untrained
weights (speed does not depend on them) and a bundle with the default features. Files
go to ``benchmarks/out/analyzer_speed/`` (git-ignored) and are reused on later runs.

The same track then goes, in the same run, through the ready tagger ``musicnn-msd`` and
through a run with ``model.backbone: musicnn-msd`` (its head untrained): their analysis
time and multiply-adds per slice against the CRNN's (``--models``).

    .venv/bin/python benchmarks/analyzer_speed.py [--repeats 3] [--folder-tracks 3] [--models crnn tagger backbone]

Figures are wall-clock seconds; ``load average`` is printed because other processes on
the machine slow every figure down.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

import numpy as np  # noqa: E402

from genrekit.core.config import Config  # noqa: E402

OUT = REPO_ROOT / "benchmarks" / "out" / "analyzer_speed"
LABELS = ["blues", "classical", "country", "disco", "hiphop", "jazz", "metal", "pop", "reggae", "rock"]
TRACK_SECONDS = 240.0


def make_track(path: Path) -> Path:
    """Four minutes whose character changes every 30 s (tones, noise, drums), as a 44.1 kHz stereo mp3."""
    from tests.helpers import label_signal, write_audio

    if not path.exists():
        parts = [label_signal(i, 30.0, seed=i) for i in range(int(TRACK_SECONDS // 30))]
        write_audio(path, 0.8 * np.concatenate(parts), out_rate=44100, channels=2)
    return path


def make_bundle(folder: Path, cfg: Config, runs: int = 1) -> Path:
    """A run folder with the default-size CRNN (untrained) and plausible normalization statistics; with
    ``runs`` > 1 the ensemble of that many, as ``training.runs`` makes it (the default run folder: 3)."""
    from genrekit.audio.features import slice_geometry
    from genrekit.dataset.normalization import NormStats
    from genrekit.models import registry
    from genrekit.models.bundle import write_bundle
    from genrekit.models.networks import build_crnn

    if (folder / "bundle.json").exists():
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    geometry = slice_geometry(cfg.slicing.slice_duration, cfg.slicing.overlap, cfg.features)
    members = [build_crnn((*geometry.spec_shape, 1), len(LABELS), cfg.model, name=f"crnn{i}") for i in range(runs)]
    registry.save_model(members[0] if runs == 1 else registry.ensemble(members), folder)  # model.keras + .tflite
    stats = NormStats("standard", np.full(geometry.n_mels, -50.0), np.full(geometry.n_mels, 20.0))
    write_bundle(folder, labels=LABELS, features=cfg.features, slicing=cfg.slicing, normalization=stats,
                 silence_threshold_db=cfg.build.silence_threshold_db)
    return folder


def make_backbone_bundle(folder: Path) -> Path:
    """A run folder with musicnn-msd as backbone and an untrained head, as train_crnn.py writes it."""
    from genrekit.core.config import config_from_dict
    from genrekit.dataset.normalization import NormStats
    from genrekit.models import backbone, registry
    from genrekit.models.bundle import write_bundle

    if (folder / "bundle.json").exists():
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    cfg = config_from_dict({"model": {"backbone": "musicnn-msd"}})
    embedder = backbone.build_embedder(cfg.model)
    model = backbone.build_classifier(embedder, backbone.build_head(embedder.output_shape[-1], len(LABELS),
                                                                    cfg.model))
    registry.save_model(model, folder)
    write_bundle(folder, labels=LABELS, features=cfg.features, slicing=cfg.slicing, normalization=NormStats("none"),
                 silence_threshold_db=cfg.build.silence_threshold_db)
    return folder


def timed(fn, *args, **kwargs):
    start = time.perf_counter()
    value = fn(*args, **kwargs)
    return value, time.perf_counter() - start


def in_process(track: Path, bundle: Path | str, cfg: Config, repeats: int) -> np.ndarray:
    """Load once, then split each analysis into decode / features / inference; return the steady
    state seconds (decode, features, inference) and print them."""
    from genrekit.audio.decode import decode
    from genrekit.audio.features import slice_signal
    from genrekit.models.networks import multiply_adds
    from track_analyzer import Analyzer

    analyzer, load_s = timed(Analyzer, bundle, batch_size=cfg.analysis.batch_size)
    print(f"{bundle if isinstance(bundle, str) else Path(bundle).name}, in one process: model load + trace "
          f"{load_s:.2f} s ({analyzer.model.count_params():,} parameters, "
          f"{multiply_adds(analyzer.model) / 1e6:,.0f} M multiply-adds per slice)")
    settings = analyzer.slice_settings(cfg.analysis.overlap)
    rows = []
    for run in range(repeats):
        signal, decode_s = timed(decode, track, settings.features.sample_rate)
        slices, features_s = timed(slice_signal, signal, settings.slicing, settings.features,
                                   overlap=settings.overlap)
        _, inference_s = timed(analyzer.predict, slices.specs)
        rows.append((decode_s, features_s, inference_s))
        note = "  (the first track after the model load)" if run == 0 else ""
        print(f"  run {run + 1}: decode {decode_s:.2f} s  features {features_s:.2f} s  "
              f"inference {inference_s:.2f} s  = {decode_s + features_s + inference_s:.2f} s "
              f"for {len(slices.starts)} slices{note}")
    steady = np.median(np.array(rows[1:] or rows), axis=0)
    print(f"steady state (median of runs 2..): decode {steady[0]:.2f} s  features {steady[1]:.2f} s  "
          f"inference {steady[2]:.2f} s  total {steady.sum():.2f} s  "
          f"({1000 * steady[2] / len(slices.starts):.1f} ms of inference per slice)")
    result, analyze_s = timed(analyzer.analyze, track, overlap=cfg.analysis.overlap)
    print(f"Analyzer.analyze (the same path in one call): {analyze_s:.2f} s -> {result.summary()}")
    return steady


def cli(args: list[str]) -> tuple[float, float]:
    """Wall-clock and CPU seconds (user + system, the decoding worker included) of one CLI call."""
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "track_analyzer", *args], cwd=REPO_ROOT, env=env,
                          capture_output=True, text=True)
    seconds = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        sys.exit(f"CLI failed:\n{proc.stderr}")
    return seconds, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3, help="in-process analyses and CLI calls (default 3)")
    parser.add_argument("--folder-tracks", type=int, default=3,
                        help="copies of the track in the folder benchmark (0 skips it; default 3)")
    parser.add_argument("--models", nargs="+", default=["crnn", "tagger", "backbone"],
                        choices=["crnn", "tagger", "backbone"],
                        help="models timed in one process: the CRNN (its CLI timings too), the musicnn-msd "
                             "tagger, a musicnn-msd backbone run (default: all)")
    args = parser.parse_args()

    cfg = Config()
    track = make_track(OUT / "track_4min_44k_stereo.mp3")
    print(f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs; "
          f"track {track.name} ({track.stat().st_size / 1e6:.1f} MB); analysis overlap {cfg.analysis.overlap} s")

    bundle_folder = make_bundle(OUT / "model", cfg)
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import keras"], check=True, capture_output=True)
    print(f"python -c 'import keras' (TensorFlow backend): {time.perf_counter() - start:.2f} s")
    calls = [cli([str(track), "--model", str(bundle_folder)]) for _ in range(args.repeats)]
    cli_times = [wall for wall, _ in calls]
    print(f"CLI, one file, fresh process: {', '.join(f'{t:.2f}' for t in cli_times)} s "
          f"(best {min(cli_times):.2f} s, target <= 8 s); CPU time "
          f"{', '.join(f'{cpu:.2f}' for _, cpu in calls)} s")

    if args.folder_tracks > 0:
        folder = OUT / "folder"
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        for i in range(args.folder_tracks):
            os.link(track, folder / f"track{i}.mp3")
        folder_s, _ = cli([str(folder), "--model", str(bundle_folder)])
        print(f"CLI, folder of {args.folder_tracks} such tracks: {folder_s:.2f} s "
              f"({(folder_s - min(cli_times)) / max(1, args.folder_tracks - 1):.2f} s per extra track)")

    models = {"crnn": lambda: bundle_folder, "tagger": lambda: "musicnn-msd",
              "backbone": lambda: make_backbone_bundle(OUT / "backbone_model")}
    steady = {}
    for name in args.models:
        print()
        steady[name] = in_process(track, models[name](), cfg, args.repeats)
    if "crnn" in steady:
        for name in set(steady) - {"crnn"}:
            ratio = steady[name] / steady["crnn"]
            print(f"{name} / crnn, same run: features x{ratio[1]:.2f}, inference x{ratio[2]:.1f}, "
                  f"total x{steady[name].sum() / steady['crnn'].sum():.1f}")


if __name__ == "__main__":
    main()
