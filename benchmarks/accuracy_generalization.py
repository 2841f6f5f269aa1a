"""Generalization to artists never heard: the CRNN from scratch against the pretrained musicnn backbones.

Trains on all 100 clips of ``../shared/data/gtzan_mini`` (10 genres; no validation or test
split: the config's epochs, the last epoch's model) and evaluates on ``../shared/data/gtzan_other_artists``:
88 clips of blues, jazz and classical by artists that are NOT in gtzan_mini. Rows:

* ``crnn``: the default config, trained from scratch (with its build-time pitch-shifted and
  time-stretched copies of the train tracks, ``audio_augmentation``);
* ``crnn-seed45``, ``crnn-seed48``, ... ``crnn-seed57``: the default with other seeds (45, 46, 47
  instead of 42, 43, 44, and so on): the spread of the default's figure over its seed;
* ``crnn-8epochs``: one run of 8 epochs on the same dataset (what one run's figure is);
* ``crnn-no-copies``: one run without those copies, 20 epochs (the default before them);
* ``crnn-before``: the CRNN defaults before augmentation and per-slice normalization;
* ``msd-frozen`` / ``mtt-frozen``: ``model.backbone: musicnn-msd`` / ``musicnn-mtt``, frozen,
  a new head on its pooled features (``model.backbone_output: pooled``);
* ``msd-frozen-penultimate``: the same on its 200-d penultimate features;
* ``msd-finetuned``: musicnn-msd fine-tuned (``backbone_trainable: true``). On a 2-core CPU an
  epoch over all slices costs about 15 minutes, so this row trains on 4 random slices per clip
  (``slicing.max_slices``) for ``--finetune-epochs`` epochs (default 12), the head at a learning
  rate of 1e-3 and the backbone at 1e-4 (few steps: the default 1e-4 barely moves a new head);
* ``msd-zero-shot``: no training at all, the MSD tagger's tags mapped to genres (reference).

Per row: per-genre recall on the other artists, their balanced accuracy (mean recall over
the three genres), the accuracy over the 88 clips, and the training time; with ``--each-run``,
also the figure of every run of an ensemble alone. At the end, the default's figure over its seed
sets, and, from the runs of those rows evaluated alone, the figure of ``training.runs`` 1, 3 and 5
for every first seed (an ensemble's clip scores are the mean of its runs' under the ``sum``
aggregation, so no training is needed for those). The model still
chooses among all 10 genres. Caveat: the training genres are few artists each (blues is all
John Lee Hooker, classical all Bach), so the from-scratch model learns those artists.

Needs ``../shared`` (it says so and exits when it is absent). Runs the real scripts; work
folders under ``--work``; results in ``<work>/results.json``. About 2 hours on 2 cores for all rows.

Usage::

    .venv/bin/python benchmarks/accuracy_generalization.py [--rows crnn msd-frozen ...] [--work DIR] [--each-run]
        [--training '{"lr_schedule": "constant"}']
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parent.parent
DATA = REPO_ROOT.parent / "shared" / "data"
TRAIN = DATA / "gtzan_mini"
OTHER = DATA / "gtzan_other_artists"
DEFAULT_WORK = REPO_ROOT / "benchmarks" / "out" / "accuracy_generalization"
GENRES = ("blues", "classical", "jazz")  # the genres gtzan_other_artists holds

# The zero-shot mapping of MSD tags to GTZAN genres (variant B of shared/data/musicnn_reference):
# a genre's score is the highest mean probability among its tags; reggae has no MSD tag.
ZERO_SHOT_TAGS = {
    "blues": ["blues"], "classical": ["instrumental"], "country": ["country"], "disco": ["dance", "funk"],
    "hiphop": ["Hip-Hop"], "jazz": ["jazz"], "metal": ["metal", "heavy metal"], "pop": ["pop"],
    "reggae": [], "rock": ["rock"],
}


NO_COPIES = {"pitch_shift_semitones": [], "time_stretch_rates": []}
ONE_RUN = {"runs": 1}
# the training of the rows measured before the cosine schedule and the random equalization existed
EARLIER = {**ONE_RUN, "lr_schedule": "constant", "augmentation": {"eq_db": 0}}
SEED_SETS = (45, 48, 51, 54, 57)  # first seeds of the default's other seed sets (3 runs each)


def rows(finetune_epochs: int) -> dict[str, dict]:
    """Config sections of every trained row (beside paths and split). The CRNN rows but ``crnn`` and
    its seed sets were measured before the cosine schedule and ``eq_db`` existed, and keep them off;
    those but ``crnn-8epochs`` also before ``audio_augmentation`` and the 3-run ensemble."""
    return {
        "crnn": {},
        # the default with other seeds: crnn-seed45 trains runs 45, 46, 47, and so on
        **{f"crnn-seed{seed}": {"training": {"seed": seed}} for seed in SEED_SETS},
        # one run of 8 epochs with copies: how much one run's figure depends on its seed
        "crnn-8epochs": {"training": {**EARLIER, "epochs": 8}},
        "crnn-no-copies": {"audio_augmentation": NO_COPIES, "training": {**EARLIER, "epochs": 20}},
        # the defaults before issue 11: per-band standardization, no augmentation
        "crnn-before": {"processing": {"norm_method": "standard"}, "audio_augmentation": NO_COPIES,
                        "training": {**EARLIER, "epochs": 60,
                                     "augmentation": {"gain_db": 0, "eq_db": 0, "time_shift_frames": 0,
                                                      "time_masks": 0, "frequency_masks": 0, "mixup_alpha": 0}}},
        "msd-frozen": {"model": {"backbone": "musicnn-msd"}, "audio_augmentation": NO_COPIES, "training": ONE_RUN},
        "mtt-frozen": {"model": {"backbone": "musicnn-mtt"}, "audio_augmentation": NO_COPIES, "training": ONE_RUN},
        "msd-frozen-penultimate": {"model": {"backbone": "musicnn-msd", "backbone_output": "penultimate"},
                                   "audio_augmentation": NO_COPIES, "training": ONE_RUN},
        "msd-finetuned": {"model": {"backbone": "musicnn-msd", "backbone_trainable": True},
                          "slicing": {"max_slices": 4, "random_slice_selection": True},
                          "audio_augmentation": NO_COPIES,
                          "training": {**ONE_RUN, "epochs": finetune_epochs, "learning_rate": 1e-3}},
    }


def run(*args: str) -> subprocess.CompletedProcess:
    result = subprocess.run([sys.executable, *args], cwd=REPO_ROOT, capture_output=True, text=True)
    if result.returncode != 0:
        sys.exit(f"failed: {' '.join(args)}\n{result.stderr[-3000:]}")
    return result


def train_row(name: str, sections: dict, work: Path) -> tuple[Path, float]:
    """Build, process and train one row; return its run folder and the seconds of train_crnn.py."""
    backbone = sections.get("model", {}).get("backbone")
    # one dataset per feature set, with or without build-time copies, and one for a row with its own
    # slicing or processing
    own = "slicing" in sections or "processing" in sections
    copies = sections.get("audio_augmentation") != NO_COPIES
    output = work / (("musicnn_dataset" if backbone else "crnn_dataset") + ("_copies" if copies else "")
                     + (f"_{name}" if own else ""))
    config = {
        "paths": {"audio_folder": str(TRAIN), "output_folder": str(output)},
        # No validation split: every clip trains, for the config's epochs, and the last epoch's model
        # is kept. A validation split of gtzan_mini judges epochs by the artists the model trains on
        # (most genres are one or two artists), and one by other artists is a handful of clips:
        # either picks epochs by noise or by artist recognition.
        "split": {"validation_share": 0.0, "test_share": 0.0, "seed": 1},
        **{key: value for key, value in sections.items() if key != "training"},
        "training": {"run_name": name, **sections.get("training", {})},
    }
    path = work / f"{name}.json"
    path.write_text(json.dumps(config, indent=2))
    for script in ("build_dataset.py", "process_dataset.py"):
        run(script, "--config", str(path))
    started = time.perf_counter()
    run("train_crnn.py", "--config", str(path))
    # the whole training command: a frozen backbone's feature pass included, not only the epochs
    return output / "models" / name, time.perf_counter() - started


def evaluate(model: str, out: Path) -> list[tuple[str, str]]:
    """``(true genre, predicted label)`` of every clip of gtzan_other_artists."""
    run("-m", "track_analyzer", str(OTHER), "--model", model, "--json", str(out))
    tracks = json.loads(out.read_text())["tracks"]
    pairs = []
    for track in tracks:
        if track["status"] != "ok":
            continue
        truth = track["path"].split("/")[0]
        if model.startswith("musicnn"):  # zero-shot: tags to genres
            tag_scores = {r["label"]: r["score"] for r in track["ranking"]}
            genre_scores = {g: max((tag_scores[t] for t in tags), default=-1.0) for g, tags in ZERO_SHOT_TAGS.items()}
            predicted = max(genre_scores, key=genre_scores.get)
        else:
            predicted = track["ranking"][0]["label"]
        pairs.append((truth, predicted))
    return pairs


def default_runs_by_seed(work: Path) -> dict[int, dict[str, np.ndarray]]:
    """The clip scores (summed slice scores, every label) of each run of the default's seed-set rows
    evaluated alone (``--each-run``), by the run's seed: ``crnn`` holds seeds 42, 43, 44,
    ``crnn-seed45`` seeds 45, 46, 47, and so on."""
    first_seeds = {"crnn": 42, **{f"crnn-seed{seed}": seed for seed in SEED_SETS}}
    runs = {}
    for name, first_seed in first_seeds.items():
        for path in sorted(work.glob(f"{name}.run-*.eval.json")):
            analysis = json.loads(path.read_text())
            seed = first_seed + int(path.name.split(".")[1].removeprefix("run-")) - 1
            runs[seed] = {track["path"]: np.array([{r["label"]: r["score"] for r in track["ranking"]}[label]
                                                   for label in analysis["labels"]])
                          for track in analysis["tracks"] if track["status"] == "ok"}
            runs[seed]["labels"] = analysis["labels"]
    return runs


def ensemble_balanced_accuracy(runs: dict[int, dict[str, np.ndarray]], seeds: list[int]) -> float:
    """The balanced accuracy of the ensemble of the runs of ``seeds``. With the analyzer's ``sum``
    aggregation a track's ensemble score is the mean of the runs' track scores, so this is what
    ``training.runs: len(seeds)`` with ``training.seed: seeds[0]`` scores, without training it."""
    labels = runs[seeds[0]]["labels"]
    pairs = [(path.split("/")[0], labels[int(np.argmax(np.mean([runs[seed][path] for seed in seeds], axis=0)))])
             for path in runs[seeds[0]] if path != "labels"]
    return summarize(pairs)["balanced_accuracy"]


def summarize(pairs: list[tuple[str, str]]) -> dict:
    recall = {g: float(np.mean([p == g for t, p in pairs if t == g])) for g in GENRES}
    return {"recall": recall, "balanced_accuracy": float(np.mean(list(recall.values()))),
            "accuracy": float(np.mean([t == p for t, p in pairs])), "clips": len(pairs)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", nargs="+", default=None, help="rows to run (default: all, and zero-shot)")
    parser.add_argument("--finetune-epochs", type=int, default=12)
    parser.add_argument("--work", type=Path, default=DEFAULT_WORK)
    parser.add_argument("--each-run", action="store_true",
                        help="also evaluate every run of a several-run row alone (a trained row is not trained again)")
    parser.add_argument("--training", type=json.loads, default={},
                        help="JSON keys of the training section to set in every trained row, e.g. "
                             "'{\"lr_schedule\": \"constant\"}' for the previous default (use another --work)")
    args = parser.parse_args()
    if not TRAIN.is_dir() or not OTHER.is_dir():
        sys.exit(f"needs {TRAIN} and {OTHER} (../shared beside the repository); not found")
    args.work.mkdir(parents=True, exist_ok=True)
    results_path = args.work / "results.json"
    results: dict = {}
    trained = {name: {**sections, "training": {**sections.get("training", {}), **args.training}}
               for name, sections in rows(args.finetune_epochs).items()}
    wanted = args.rows or [*trained, "msd-zero-shot"]
    for name in wanted:
        started = time.perf_counter()
        if name == "msd-zero-shot":
            model, seconds = "musicnn-msd", 0.0
        else:
            folder, seconds = train_row(name, trained[name], args.work)
            model = str(folder)
        summary = summarize(evaluate(model, args.work / f"{name}.eval.json"))
        if args.each_run and name != "msd-zero-shot":
            # an ensemble's runs alone: how far its figure lies from its members'
            summary["runs"] = {run_folder.name: summarize(evaluate(str(run_folder),
                                                                   args.work / f"{name}.{run_folder.name}.eval.json"))
                               for run_folder in sorted(folder.glob("run-*"))}
        # read again: another run of this script may have added its rows meanwhile
        results = json.loads(results_path.read_text()) if results_path.is_file() else {}
        results[name] = {**summary, "training_seconds": seconds,
                         "wall_seconds": round(time.perf_counter() - started, 1)}
        results_path.write_text(json.dumps(results, indent=2))
        print(f"{name}: balanced accuracy {summary['balanced_accuracy']:.3f}, "
              + ", ".join(f"{g} {r:.2f}" for g, r in summary["recall"].items())
              + f"; training {seconds:.0f} s", flush=True)
        for run_name, run_summary in summary.get("runs", {}).items():
            print(f"  {run_name} alone: balanced accuracy {run_summary['balanced_accuracy']:.3f}", flush=True)

    results = json.loads(results_path.read_text()) if results_path.is_file() else {}
    print("\n| model | blues | classical | jazz | balanced accuracy | accuracy (88 clips) | training |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for name, r in results.items():
        print(f"| {name} | " + " | ".join(f"{100 * r['recall'][g]:.0f} %" for g in GENRES)
              + f" | **{100 * r['balanced_accuracy']:.1f} %** | {100 * r['accuracy']:.1f} % "
              f"| {r['training_seconds']:.0f} s |")
    # the default's figure over its seed sets: one ensemble's figure still depends on its seeds
    default_rows = [name for name in ("crnn", *(f"crnn-seed{seed}" for seed in SEED_SETS)) if name in results]
    if len(default_rows) > 1:
        figures = 100 * np.array([results[name]["balanced_accuracy"] for name in default_rows])
        print(f"\nthe default over {len(figures)} seed sets ({', '.join(default_rows)}): balanced accuracy "
              f"mean {figures.mean():.1f} %, standard deviation {figures.std(ddof=1):.1f}, "
              f"range {figures.min():.1f} to {figures.max():.1f} %")
    # ensembles of k consecutive runs, from the runs evaluated alone: every seed, not only 42, 45, ...
    runs = default_runs_by_seed(args.work)
    for k in (1, 3, 5):
        starts = [seed for seed in sorted(runs) if all(seed + i in runs for i in range(k))]
        if len(starts) > 1:
            figures = 100 * np.array([ensemble_balanced_accuracy(runs, [s + i for i in range(k)]) for s in starts])
            print(f"{k} run{'s' if k > 1 else ''} (training.runs {k}), seeds {starts[0]} to {starts[-1]} as the first: "
                  f"balanced accuracy mean {figures.mean():.1f} %, standard deviation {figures.std(ddof=1):.1f}, "
                  f"range {figures.min():.1f} to {figures.max():.1f} % over {len(figures)} seeds")


if __name__ == "__main__":
    main()
