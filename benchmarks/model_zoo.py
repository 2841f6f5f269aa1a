"""Every model family on one dataset: one split, one evaluation, one table.

Families (rows):

* ``logreg``, ``knn``, ``gnb``, ``svm``: ``train_baselines.py`` on per-slice feature vectors of
  the stored log-mel (``genrekit.models.baselines``);
* ``crnn``: ``train_crnn.py`` at the defaults;
* ``mobilenetv2``: ``model.architecture: "mobilenetv2"`` (alpha 1.0, from scratch) on the same
  processed log-mel;
* ``cnn1d``: ``model.architecture: "cnn1d"`` on raw waveform slices (``features.representation:
  "waveform"``, ``processing.norm_method: "per_slice"``);
* ``msd-frozen``: the pretrained musicnn-msd backbone, frozen, under a new head
  (``model.backbone: "musicnn-msd"``; its own features, fixed by the backbone).

Every row is built from ``../shared/data/gtzan_mini`` (100 clips, 10 genres) with the same
track-wise split (seed 42: 10 % validation, 20 % test, so 20 test clips; the dataset of each
representation is built separately and the script checks that the test tracks are the same),
trained with the config's defaults otherwise, and evaluated twice:

* on the gtzan_mini test split: slice and track accuracy. **Artists are shared** between train
  and test there (most genres are one or two artists), so this measures artist recognition as
  much as genre;
* on ``../shared/data/gtzan_other_artists`` (88 clips of blues, classical and jazz by artists not
  in gtzan_mini): balanced accuracy (mean recall over the three genres; the model still picks
  among all 10 genres) with the analyzer's defaults (its default overlap, scores summed).

Also per row: parameters, multiply-adds per slice (``report.json``), the training command's wall
time, and the analyzer's time per minute of audio on the 88 clips, split into decode + features
and the model (in one process, model loaded once, the first clip included).

Needs ``../shared`` (says so and exits otherwise). Work folders and ``results.json`` under
``--work``. About 1 to 1.5 hours on 2 cores for every row.

Usage::

    .venv/bin/python benchmarks/model_zoo.py [--rows crnn cnn1d ...] [--epochs N] [--work DIR] [--table]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import accuracy_generalization as other_artists  # beside this script: data paths, run, summarize
import h5py
from accuracy_generalization import EARLIER, NO_COPIES, OTHER, REPO_ROOT, TRAIN, run

sys.path.insert(0, str(REPO_ROOT))
DEFAULT_WORK = REPO_ROOT / "benchmarks" / "out" / "model_zoo"
BASELINES = ("logreg", "knn", "gnb", "svm")
SPLIT = {"validation_share": 0.1, "test_share": 0.2, "seed": 42}

# Config sections of each dataset (built once, shared by the rows that name it) and of each network row.
DATASETS = {
    "log_mel": {},
    "waveform": {"features": {"representation": "waveform"}, "processing": {"norm_method": "per_slice"}},
    "musicnn": {"model": {"backbone": "musicnn-msd"}},
}
NETWORKS = {
    "crnn": ("log_mel", {}),
    "mobilenetv2": ("log_mel", {"model": {"architecture": "mobilenetv2"}}),
    "cnn1d": ("waveform", {"model": {"architecture": "cnn1d"}}),
    "msd-frozen": ("musicnn", {"model": {"backbone": "musicnn-msd"}}),
}


def write_config(work: Path, dataset: str, name: str, sections: dict, epochs: int | None) -> Path:
    """A config for one row: the dataset's sections, the row's own, the shared split."""
    # measured before build-time copies (audio_augmentation), the 3-run ensemble, the cosine schedule and
    # the random equalization existed: one run, no copies, a constant rate, no equalization, for every family
    merged: dict = {
        "paths": {"audio_folder": str(TRAIN), "output_folder": str(work / dataset)},
        "split": SPLIT,
        "audio_augmentation": NO_COPIES,
    }
    for extra in (DATASETS[dataset], sections):
        for section, values in extra.items():
            merged[section] = {**merged.get(section, {}), **values}
    training = merged.get("training", {})
    merged["training"] = {
        **EARLIER,
        **training,
        "run_name": name,
        "runs": 1,
        "augmentation": {**EARLIER["augmentation"], **training.get("augmentation", {})},
        **({"epochs": epochs} if epochs else {}),
    }
    path = work / f"{name}.json"
    path.write_text(json.dumps(merged, indent=2))
    return path


def test_tracks(work: Path, dataset: str) -> list[str]:
    from genrekit.core.h5layout import read_tracks

    with h5py.File(work / dataset / "dataset.h5", "r") as h5:
        return sorted(track["path"] for track in read_tracks(h5) if track["split"] == "test")


def train_row(name: str, work: Path, epochs: int | None) -> tuple[Path, float]:
    """Build and process the row's dataset (once), train the row; return its run folder and training seconds."""
    dataset, sections = ("log_mel", {}) if name in BASELINES else NETWORKS[name]
    config = write_config(work, dataset, name, sections, epochs)
    for script in ("build_dataset.py", "process_dataset.py"):
        run(script, "--config", str(config), "--quiet")
    started = time.perf_counter()
    if name in BASELINES:
        run("train_baselines.py", "--config", str(config), "--models", name, "--quiet")
        folder = work / dataset / "models" / f"baseline-{name}"
    else:
        run("train_crnn.py", "--config", str(config))
        folder = work / dataset / "models" / name
    return folder, time.perf_counter() - started


def evaluate_other_artists(folder: Path) -> dict:
    """Verdicts on gtzan_other_artists in this process, timing decode + features and the model apart."""
    from genrekit.inference.analyzer import Analyzer

    analyzer = Analyzer(folder)
    settings = analyzer.slice_settings()
    clips = sorted(p for p in OTHER.glob("*/*") if p.suffix.lower() in (".flac", ".wav", ".mp3"))
    pairs, audio_seconds, feature_seconds, model_seconds = [], 0.0, 0.0, 0.0
    for clip in clips:
        started = time.perf_counter()
        slices = settings.load(clip)
        loaded = time.perf_counter()
        verdict = analyzer.analyze_slices(clip, slices)
        feature_seconds += loaded - started
        model_seconds += time.perf_counter() - loaded
        audio_seconds += slices.duration
        pairs.append((clip.parent.name, verdict.top_label))
    minutes = audio_seconds / 60
    return {
        **other_artists.summarize(pairs),
        "features_seconds_per_audio_minute": feature_seconds / minutes,
        "model_seconds_per_audio_minute": model_seconds / minutes,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", nargs="+", choices=[*BASELINES, *NETWORKS], default=[*BASELINES, *NETWORKS])
    parser.add_argument("--epochs", type=int, default=None, help="override training.epochs (default: the config's)")
    parser.add_argument("--work", type=Path, default=DEFAULT_WORK)
    parser.add_argument("--table", action="store_true", help="only print the table of the rows measured so far")
    args = parser.parse_args()
    if not TRAIN.is_dir() or not OTHER.is_dir():
        sys.exit(f"needs {TRAIN} and {OTHER} (../shared beside the repository); not found")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    args.work.mkdir(parents=True, exist_ok=True)
    results_path = args.work / "results.json"
    for name in [] if args.table else args.rows:
        folder, seconds = train_row(name, args.work, args.epochs)
        report = json.loads((folder / "report.json").read_text())
        other = evaluate_other_artists(folder)
        # read again: another run of this script may have added its rows meanwhile
        results = json.loads(results_path.read_text()) if results_path.is_file() else {}
        results[name] = {
            "slice_accuracy": report["slice_accuracy"],
            "track_accuracy": report["track_accuracy"],
            "test_slices": report["test_slices"],
            "test_tracks": report["test_tracks"],
            "parameters": report["parameters"],
            "multiply_adds_per_slice": report["multiply_adds_per_slice"],
            "training_seconds": round(seconds, 1),
            "epochs_trained": report.get("epochs_trained"),
            **other,
        }
        results_path.write_text(json.dumps(results, indent=2))
        print(
            f"{name}: track accuracy {report['track_accuracy']:.3f} (artists shared), other artists balanced "
            f"{other['balanced_accuracy']:.3f}; training {seconds:.0f} s",
            flush=True,
        )

    datasets = {d for d in DATASETS if (args.work / d / "dataset.h5").is_file()}
    same = len({tuple(test_tracks(args.work, d)) for d in datasets}) <= 1
    print(f"\ntest tracks identical across the datasets ({', '.join(sorted(datasets))}): {same}")
    results = json.loads(results_path.read_text())
    print(
        "\n| model | slice acc. | track acc. (artists shared) | other artists, balanced | parameters "
        "| multiply-adds / slice | training | analysis / audio min (model + features) |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for name, r in results.items():
        print(
            f"| {name} | {100 * r['slice_accuracy']:.1f} % | {100 * r['track_accuracy']:.0f} % "
            f"| **{100 * r['balanced_accuracy']:.1f} %** | {r['parameters']:,} "
            f"| {r['multiply_adds_per_slice'] / 1e6:.1f} M | {r['training_seconds']:.0f} s "
            f"| {r['model_seconds_per_audio_minute']:.2f} + {r['features_seconds_per_audio_minute']:.2f} s |"
        )


if __name__ == "__main__":
    main()
