"""How good the ready genre model is on artists it never heard: cross-validation with whole artists held out.

The ready model (``gtzan-genres``, ``tools/train_ready_model.py``) trains on all 270 clips of the
shared GTZAN sets, so its figure comes from a cross-validation of that very training over the same
clips: 5 folds dealt by artist (``StratifiedGroupKFold`` by genre, groups from the sets'
``artists.csv``, ``random_state`` 0), so that no artist is in both the training and the test clips of
a fold. Three systems, each on the same folds:

* ``ready``: the ready model's training (frozen ``musicnn-msd`` backbone, pooled features, a new
  head, dropout 0.5, 10 epochs, no validation split, seed 42) on the fold's training clips;
* ``mini``: the same, on the fold's training clips of ``gtzan_mini`` only (what a user who trains the
  backbone on about 100 clips of few artists gets);
* ``crnn``: the default config (``pipeline_parameters.json``: the CRNN from scratch, build-time
  copies, 3 runs and their ensemble, early stopping on a validation split of 10 % of the fold's
  training clips, dealt by artist), trained by the real scripts. About 30 minutes a fold on 2 cores,
  so only ``--crnn-folds`` folds (default 1: fold 0).

The heads train as the project trains them: the dataset of the 270 clips is built and processed by
the project's scripts with the ready model's config (``tools/train_ready_model.py``), the backbone's
features of its slices are computed once (:func:`genrekit.training.frozen_features.embed_split`),
and each fold's head is built and fitted by :func:`genrekit.training.train.train_model` on the
features of the fold's training slices, in the shuffled order of ``processed.h5``. A test clip's
verdict is the sum of its slices' scores (slices every 2 s, as in the build); the CRNN's test clips
are its run's test split (the mean of the 3 runs' slice scores, as their ensemble computes them).

The heads train with 5 seeds (``--seeds``), the ready model's own (42) first: with a few clips per
artist and genre in a fold, a head's seed alone (its initial weights, its batches) moves a fold's
figures by several points, so the tables give seed 42's figures (mean ± sd over the folds) and each
figure's mean, lowest and highest over the seeds. The CRNN trains with the default's seeds (42, 43,
44 for its 3 runs).

Figures per fold: accuracy, balanced accuracy (mean recall over the genres the fold tests: all ten
or nearly) and balanced accuracy over blues, classical and jazz (the genres of many artists); then
their mean and sample standard deviation over the folds; per-genre and per-artist recall over every
fold's test clips. Needs ``../shared`` (it says so and exits when it is absent); work folders under
``--work``; results in ``<work>/results.json``. About 15 minutes on 2 cores without the CRNN.

Usage::

    .venv/bin/python benchmarks/ready_model_cv.py [--crnn-folds 1] [--seeds 5] [--work DIR] [--table]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
import time
from collections import defaultdict
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT / "tools"))  # train_ready_model: the ready model's data, config and scripts
sys.path.insert(0, str(REPO_ROOT))

import h5py  # noqa: E402
import numpy as np  # noqa: E402
import train_ready_model as ready  # noqa: E402

from genrekit.core import h5layout  # noqa: E402

DEFAULT_WORK = REPO_ROOT / "benchmarks" / "out" / "ready_model_cv"
N_FOLDS = 5
FOLD_SEED = 0  # StratifiedGroupKFold's random_state
VALIDATION_SHARE = 0.1  # the CRNN's validation split, out of a fold's training clips, by artist
MANY_ARTISTS = ("blues", "classical", "jazz")
FIGURES = ("accuracy", "balanced_10", "balanced_bcj")  # per fold, then mean and sd over the folds
SYSTEMS = {
    "ready": "the ready model's training, on the fold's training clips",
    "mini": "the same, on the fold's training clips of gtzan_mini only",
    "crnn": "the default CRNN from scratch (pipeline_parameters.json)",
}


def folds(clips: list) -> list[set[str]]:
    """The test clips (tree paths) of each fold: whole artists, stratified by genre."""
    from sklearn.model_selection import StratifiedGroupKFold

    splitter = StratifiedGroupKFold(n_splits=N_FOLDS, shuffle=True, random_state=FOLD_SEED)
    genres = [clip.genre for clip in clips]
    artists = [clip.artist for clip in clips]
    tests = []
    for train, test in splitter.split(clips, genres, artists):
        assert not {artists[i] for i in train} & {artists[i] for i in test}
        tests.append({clips[i].relative for i in test})
    return tests


# --------------------------------------------------------------------------- the heads


def embed(work: Path, config: Path) -> Path:
    """``<work>/features.h5``: the backbone's features of every slice of ``processed.h5`` (all 270
    clips, one split), in row order, with their labels and clips; computed once."""
    path = work / "features.h5"
    if path.is_file():
        return path
    from genrekit.core.config import load_config
    from genrekit.models.backbone import build_embedder
    from genrekit.training.frozen_features import embed_split

    cfg = load_config(config)
    started = time.perf_counter()
    vectors = embed_split(build_embedder(cfg.model), cfg.processed_path, "train", progress="backbone features")
    with h5py.File(cfg.processed_path, "r") as h5:
        labels, track_ids = h5["train"]["labels"][()], h5["train"]["track_ids"][()]
        paths = [track["path"] for track in h5layout.read_tracks(h5)]
    tmp = path.with_name("features.tmp.h5")
    with h5py.File(tmp, "w") as h5:
        h5["vectors"], h5["labels"], h5["track_ids"] = vectors, labels, track_ids
        h5["paths"] = np.array(paths, dtype=h5py.string_dtype())
    os.replace(tmp, path)
    print(f"backbone features of {len(vectors)} slices: {time.perf_counter() - started:.0f} s", flush=True)
    return path


def train_heads(
    work: Path, config: Path, features: Path, tests: list[set[str]], clips: list, system: str, seed: int
) -> list[dict[str, str]]:
    """``{clip: predicted genre}`` of each fold's test clips for ``ready`` or ``mini``, each fold's head
    trained with ``seed`` by the project's :func:`genrekit.training.train.train_model`."""
    import dataclasses
    import shutil

    from genrekit.core.config import load_config
    from genrekit.training.data import open_processed
    from genrekit.training.device import detect_device, precision_policy
    from genrekit.training.train import RunPlan, train_model

    cfg = load_config(config)
    data = open_processed(cfg)
    device = detect_device()
    policy = precision_policy(cfg.training.mixed_precision, device)
    sets = {clip.relative: clip.set for clip in clips}
    with h5py.File(features, "r") as h5:
        vectors, labels, track_ids = h5["vectors"][()], h5["labels"][()], h5["track_ids"][()]
        paths = [p.decode() if isinstance(p, bytes) else p for p in h5["paths"][()]]
    slice_paths = np.array([paths[t] for t in track_ids])
    predictions = []
    for k, test in enumerate(tests):
        started = time.perf_counter()
        in_test = np.isin(slice_paths, sorted(test))
        in_train = ~in_test & ((system == "ready") | np.array([sets[p] == "gtzan_mini" for p in slice_paths]))
        folder = work / system / f"seed{seed}" / f"fold{k}"
        if folder.exists():
            shutil.rmtree(folder)
        fold_features = folder / "fold_features.h5"  # what train_model fits on: train rows, an empty val
        fold_features.parent.mkdir(parents=True)
        with h5py.File(fold_features, "w") as h5:
            h5["train/specs"], h5["train/labels"] = vectors[in_train], labels[in_train]
            h5["val/specs"], h5["val/labels"] = vectors[:0], labels[:0]
        fold_data = dataclasses.replace(data, rows={"train": int(in_train.sum()), "val": 0, "test": 0})
        plan = RunPlan(cfg, fold_data, f"{system}-fold{k}", cfg.training.epochs, device, policy)
        models, _ = train_model(plan, folder, seed, label=f"{system} seed {seed} fold {k} ", features=fold_features)
        scores = np.asarray(models.trained.predict(vectors[in_test], batch_size=64, verbose=0))
        predictions.append(verdicts(scores, slice_paths[in_test], data.labels))
        shutil.rmtree(folder)
        print(
            f"{system} seed {seed} fold {k}: trained on {int(in_train.sum())} slices, tested on {len(test)} clips, "
            f"{time.perf_counter() - started:.0f} s",
            flush=True,
        )
    return predictions


def verdicts(scores: np.ndarray, slice_paths: np.ndarray, labels: list[str]) -> dict[str, str]:
    """``{clip: label}``: the label of the highest sum of the clip's slice scores."""
    return {path: labels[int(np.argmax(scores[slice_paths == path].sum(axis=0)))] for path in np.unique(slice_paths)}


# --------------------------------------------------------------------------- the CRNN


def crnn_fold(work: Path, k: int, test: set[str], clips: list) -> dict[str, str]:
    """Train the default config on fold ``k`` with the real scripts; ``{clip: predicted genre}`` of its test clips."""
    from genrekit.dataset.splits import assign_splits

    folder = (work / "crnn" / f"fold{k}").resolve()
    folder.mkdir(parents=True, exist_ok=True)
    training = [clip for clip in clips if clip.relative not in test]
    split = assign_splits(
        [(clip.relative, clip.genre) for clip in training],
        VALIDATION_SHARE,
        0.0,
        42,
        groups={clip.relative: clip.artist for clip in training},
    )
    split.update(dict.fromkeys(test, "test"))
    with open(folder / "split.csv", "w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows([("path", "split"), *sorted(split.items())])
    config = folder / "config.json"
    config.write_text(
        json.dumps(
            {
                "paths": {"audio_folder": str((work / "audio").resolve()), "output_folder": "output"},
                "split": {"custom_split_file": "split.csv", "group_file": str((work / "artists.csv").resolve())},
                "training": {"run_name": "crnn"},
            },
            indent=2,
        )
    )
    started = time.perf_counter()
    for script in ("build_dataset.py", "process_dataset.py", "train_crnn.py"):
        ready.run_script(script, config)
    run = folder / "output" / "models" / "crnn"
    runs = sorted(run.glob("run-*/predictions.npz")) or [run / "predictions.npz"]
    arrays = [np.load(path) for path in runs]
    with h5py.File(folder / "output" / "dataset.h5", "r") as h5:
        paths = [track["path"] for track in h5layout.read_tracks(h5)]
    scores = np.mean([a["scores"] for a in arrays], axis=0)  # the ensemble: the mean of the runs' scores
    slice_paths = np.array([paths[t] for t in arrays[0]["track_ids"]])
    print(f"crnn fold {k}: {len(runs)} runs, {time.perf_counter() - started:.0f} s", flush=True)
    return verdicts(scores, slice_paths, [str(name) for name in arrays[0]["label_names"]])


# --------------------------------------------------------------------------- figures


def recall(pairs: list[tuple[str, str]], genres) -> float:
    """Mean recall over the ``genres`` that ``pairs`` (true, predicted) hold."""
    present = [g for g in genres if any(t == g for t, _ in pairs)]
    return float(np.mean([np.mean([p == t for t, p in pairs if t == g]) for g in present]))


def summarize(predictions: list[dict[str, str]], artists: dict[str, str]) -> dict:
    """Per-fold figures, their mean and sd, and per-genre and per-artist recall over all folds' test clips."""
    from genrekit.training.evaluate import mean_std

    per_fold = defaultdict(list)
    for fold in predictions:
        pairs = [(path.split("/")[0], label) for path, label in fold.items()]
        per_fold["accuracy"].append(float(np.mean([t == p for t, p in pairs])))
        per_fold["balanced_10"].append(recall(pairs, ready.GENRES))
        per_fold["balanced_bcj"].append(recall(pairs, MANY_ARTISTS))
    every = {path: label for fold in predictions for path, label in fold.items()}
    pairs = [(path.split("/")[0], label) for path, label in every.items()]
    hits = defaultdict(list)
    for path, label in every.items():
        hits[(path.split("/")[0], artists[path])].append(label == path.split("/")[0])
    return {
        **{key: mean_std(values) for key, values in per_fold.items()},
        "folds": len(predictions),
        "clips": len(every),
        "genre_recall": {
            g: float(np.mean([p == t for t, p in pairs if t == g]))
            for g in ready.GENRES
            if any(t == g for t, _ in pairs)
        },
        "artists": sorted(
            ([genre, artist, int(sum(h)), len(h)] for (genre, artist), h in hits.items()),
            key=lambda row: (row[2] / row[3], -row[3], row[1]),
        ),
    }


def over_seeds(summaries: list[dict]) -> dict:
    """Each figure's mean over folds, then its mean, lowest and highest over the seeds; the mean recall per genre."""
    figures = {key: [summary[key]["mean"] for summary in summaries] for key in FIGURES}
    return {
        **{key: {"mean": float(np.mean(v)), "min": min(v), "max": max(v), "values": v} for key, v in figures.items()},
        "genre_recall": {
            g: float(np.mean([summary["genre_recall"][g] for summary in summaries]))
            for g in summaries[0]["genre_recall"]
        },
    }


def percent(figure: dict) -> str:
    """``80.3 ± 11.5`` (mean ± sd over folds), or the mean alone for one fold."""
    return (
        f"{100 * figure['mean']:.1f} ± {100 * figure['std']:.1f}"
        if len(figure["values"]) > 1
        else f"{100 * figure['mean']:.1f}"
    )


def spread(figure: dict) -> str:
    """``80.9 (78.0-82.5)``: mean, lowest and highest over seeds."""
    return f"{100 * figure['mean']:.1f} ({100 * figure['min']:.1f}-{100 * figure['max']:.1f})"


def print_tables(results: dict) -> None:
    """The tables of a ``results.json``."""
    print("\nartist-held-out cross-validation over the 270 clips, % (mean ± sd over the folds)")
    print(
        f"{'system':8s} {'seed':>6s} {'folds':>5s} {'clips':>5s} {'accuracy':>19s} {'balanced 10':>19s} "
        f"{'balanced BCJ':>19s}   per fold accuracy"
    )
    for name, system in results["systems"].items():
        first, summary = next(iter(system["seeds"].items()))
        print(
            f"{name:8s} {first:>6s} {summary['folds']:5d} {summary['clips']:5d} "
            + " ".join(f"{percent(summary[key]):>19s}" for key in FIGURES)
            + "   "
            + " ".join(f"{100 * v:.1f}" for v in summary["accuracy"]["values"])
        )
        if len(system["seeds"]) > 1:
            seeds = list(system["seeds"])
            print(
                f"{'':8s} {seeds[0] + '-' + seeds[-1]:>6s} {'':5s} {'':5s} "
                + " ".join(f"{spread(system['over_seeds'][key]):>19s}" for key in FIGURES)
                + f"   mean (lowest-highest) over {len(seeds)} seeds"
            )
    crnn = results["systems"].get("crnn")
    if crnn is not None:
        folds_of_crnn = next(iter(crnn["seeds"].values()))["folds"]
        print(f"\non the CRNN's {folds_of_crnn} fold(s) only (first seed), %")
        for name, system in results["systems"].items():
            summary = system.get("crnn_folds") or next(iter(system["seeds"].values()))
            print(
                f"{name:8s} {summary['clips']:5d} clips "
                + " ".join(f"{percent(summary[key]):>19s}" for key in FIGURES)
                + "   recall "
                + " ".join(f"{g} {100 * r:.0f}" for g, r in summary["genre_recall"].items())
            )
    print("\nrecall per genre (%), all folds' test clips")
    print(f"{'system':16s} " + " ".join(f"{g[:9]:>9s}" for g in ready.GENRES))
    for name, system in results["systems"].items():
        first, summary = next(iter(system["seeds"].items()))
        rows = [(f"{name} {first}", summary["genre_recall"])]
        if len(system["seeds"]) > 1:
            rows.append((f"{name} mean", system["over_seeds"]["genre_recall"]))
        for title, recall_of in rows:
            print(
                f"{title:16s} "
                + " ".join(f"{100 * recall_of[g]:9.0f}" if g in recall_of else f"{'-':>9s}" for g in ready.GENRES)
            )
    for name, system in results["systems"].items():
        first, summary = next(iter(system["seeds"].items()))
        worst = [f"{artist} ({genre}) {hits}/{n}" for genre, artist, hits, n in summary["artists"] if hits < n]
        print(f"\n{name}, seed {first}: artists below 100 % recall, worst first: " + "; ".join(worst))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", type=Path, default=DEFAULT_WORK, help=f"work folder (default {DEFAULT_WORK})")
    parser.add_argument(
        "--seeds",
        type=int,
        default=5,
        metavar="N",
        help="train the heads with N seeds, the ready model's (42) first (default 5: 42 to 46)",
    )
    parser.add_argument(
        "--crnn-folds",
        type=int,
        default=1,
        metavar="N",
        help="folds of the CRNN row, about 30 minutes each on 2 cores (default 1: fold 0; 0: none)",
    )
    parser.add_argument("--table", action="store_true", help="print the tables of <work>/results.json again")
    args = parser.parse_args(argv)
    work = args.work.resolve()
    if args.table:
        print_tables(json.loads((work / "results.json").read_text()))
        return 0
    if not ready.DATA.is_dir():
        print(f"{ready.DATA}: not found; this benchmark needs the shared GTZAN sets (../shared)", file=sys.stderr)
        return 1
    started = time.perf_counter()
    clips, config = ready.prepare(work)
    artists = {clip.relative: clip.artist for clip in clips}
    tests = folds(clips)
    features = embed(work, config)
    first = ready.SETTINGS["training"]["seed"]
    predictions = {
        system: {
            str(seed): train_heads(work, config, features, tests, clips, system, seed)
            for seed in range(first, first + args.seeds)
        }
        for system in ("ready", "mini")
    }
    if args.crnn_folds > 0:  # the default config's seeds: 42, 43, 44 for its 3 runs
        predictions["crnn"] = {
            "42": [crnn_fold(work, k, tests[k], clips) for k in range(min(args.crnn_folds, N_FOLDS))]
        }
    systems = {}
    for name, by_seed in predictions.items():
        summaries = {seed: summarize(p, artists) for seed, p in by_seed.items()}
        systems[name] = {
            "seeds": summaries,
            **({"over_seeds": over_seeds(list(summaries.values()))} if len(summaries) > 1 else {}),
        }
    if "crnn" in predictions:  # the heads on the folds the CRNN trained on, for a like-for-like row
        n = len(predictions["crnn"]["42"])
        for name in ("ready", "mini"):
            systems[name]["crnn_folds"] = summarize(predictions[name][str(first)][:n], artists)
    results = {
        "systems": systems,
        "descriptions": {name: SYSTEMS[name] for name in predictions},
        "folds": [sorted(test) for test in tests],
        "predictions": predictions,
        "seconds": round(time.perf_counter() - started),
    }
    (work / "results.json").write_text(json.dumps(results, indent=1))
    print_tables(results)
    print(f"\n{results['seconds']} s; results in {work / 'results.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
