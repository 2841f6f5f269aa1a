"""How good the ready genre model is on artists it never heard: cross-validation with whole artists held out.

The ready model (``gtzan-genres``, ``tools/train_ready_model.py``) trains on all 484 clips of the four
shared GTZAN sets, so its figures come from a cross-validation of that very training over the same
clips: 5 folds dealt by artist (``StratifiedGroupKFold`` by genre, groups from the sets'
``artists.csv``, ``random_state`` 0), so that no artist is in both the training and the test clips of
a fold. Every figure is given three ways: all clips, the full clips (30 s; 15-20 s for some classical
ones) and the short excerpts of ``gtzan_excerpts`` (one slice each, peak-normalized).

Variants (``--variants``), each the ready model's recipe with one choice changed, on the same folds:

* ``ready``: the recipe itself (:data:`train_ready_model.SETTINGS`: frozen ``musicnn-msd``, pooled
  features, loop padding, every slice levelled to -20 dBFS, slices every 1.504 s, a linear head with
  dropout 0.5, 20 epochs, genres and tracks weighted, seed 42), tested at the analysis hop (3.008 s,
  ``ANALYSIS_OVERLAP``) and at the build's (1.504 s);
* ``no_weighting`` / ``genres_weighting``: every slice weighs 1 / only the genres are balanced;
* ``10_epochs``: 10 epochs instead of 20;
* ``no_level``: without the level normalization (each slice at its recording's level);
* ``before``: the recipe of the model before (silence padding, no level normalization, no weighting,
  10 epochs, slices every 2.008 s) on the four sets;
* ``mini``: the recipe on the fold's training clips of ``gtzan_mini`` only (a user's 100 clips);
* ``int8``: the recipe's heads scoring the backbone's features through its int8 LiteRT export, what
  the analyzer runs on a CPU with VNNI (issue 34);
* ``dropout_0.2`` (not run by default): dropout 0.2 before the head instead of 0.5;
* ``mtt``, ``penultimate``, ``speed_copies`` (not run by default, each a new feature pass): the
  ``musicnn-mtt`` backbone, musicnn's penultimate layer, build-time speed copies 0.9 and 1.1 of every
  training clip (the copies train, never test);
* ``ensemble``: written whenever ``ready`` and ``mtt`` are both in the results: the two heads' shares
  averaged, seed by seed (two backbones: twice the analysis).

The heads train as the project trains them: each variant's dataset is built and processed by the
project's scripts (variants with the same data share it), the backbone's features of its slices are
computed once (:func:`genrekit.training.frozen_features.embed_split`), and each fold's head is fitted
by :func:`genrekit.training.train.train_model` on the features of the fold's training slices. A test
clip's shares are the mean of its slices' scores, as the analyzer's; its verdict the top share.

Each variant trains with 5 seeds (``--seeds``), the ready model's own (42) first. Figures: accuracy and
ten-genre balanced accuracy (mean recall over the genres), pooled over the folds' test clips, as the
mean (lowest-highest) over seeds; per-genre and per-artist recall; for ``ready``, the calibration of
its shares (reliability table, expected calibration error over 10 bins, and after a temperature fitted
to the cross-validated slice scores) and the precision of its top label above share thresholds (what
``--write-tags --min-share`` filters on). Needs ``../shared`` (it says so and exits when it is
absent); work folders under ``--work``; results in ``<work>/results.json`` (a variant run again replaces its
entry, the others stay). About 35 minutes on 2 cores
for the default variants (three datasets and their feature passes, then 175 heads).

Usage::

    .venv/bin/python benchmarks/ready_model_cv.py [--variants ready,no_level,...] [--seeds 5] [--crnn-folds 0]
    .venv/bin/python benchmarks/ready_model_cv.py --table    # the tables of <work>/results.json again
"""

from __future__ import annotations

import argparse
import copy
import csv
import hashlib
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
SUBSETS = ("all", "full", "excerpts")
THRESHOLDS = (0.0, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)  # of the top share, for precision and coverage
BINS = 10  # of the reliability table and the expected calibration error
BEFORE = {  # the recipe of the model before issue 33
    "slicing": {"overlap": 1.0, "pad_mode": "silence"},
    "features": {"level_normalization": "none"},
    "training": {"epochs": 10, "sample_weighting": "none"},
}
VARIANTS = {
    "ready": ("the ready model's recipe", {}),
    "no_weighting": ("every slice weighs 1", {"training": {"sample_weighting": "none"}}),
    "genres_weighting": ("genres balanced, not tracks", {"training": {"sample_weighting": "genres"}}),
    "10_epochs": ("10 epochs", {"training": {"epochs": 10}}),
    "dropout_0.2": ("dropout 0.2 before the head", {"model": {"dropout": 0.2}}),
    "no_level": ("no level normalization", {"features": {"level_normalization": "none"}}),
    "before": ("the recipe before (silence, no level, no weighting, 10 epochs, 2.008 s hop)", BEFORE),
    "mini": ("trained on gtzan_mini's clips only", {}),
    "mtt": ("the musicnn-mtt backbone", {"model": {"backbone": "musicnn-mtt"}}),
    "penultimate": ("musicnn's penultimate layer", {"model": {"backbone_output": "penultimate"}}),
    "int8": ("heads scoring the int8 export's features (the analyzer's default on VNNI CPUs)", {}),
    "speed_copies": ("build-time speed copies 0.9 and 1.1", {"audio_augmentation": {"speed_rates": [0.9, 1.1]}}),
}  # and "ensemble": the ready and mtt heads' shares averaged, written once both have run
DEFAULT_VARIANTS = ("ready", "int8", "no_level", "before", "no_weighting", "genres_weighting", "10_epochs", "mini")
DATA_SECTIONS = (
    "slicing",
    "features",
    "audio_augmentation",
    "model",
)  # what a variant's dataset and features depend on


def settings_of(variant: str) -> dict:
    """The config sections of a variant: :data:`train_ready_model.SETTINGS` with its changes."""
    sections = copy.deepcopy(ready.SETTINGS)
    for section, changes in VARIANTS[variant][1].items():
        sections[section] = {**sections.get(section, {}), **changes}
    return sections


def data_folder(work: Path, sections: dict) -> Path:
    """The work folder of a dataset: one per distinct data settings, shared by the variants that have them."""
    data = {name: dict(sections.get(name) or {}) for name in DATA_SECTIONS}
    data["model"].pop("dropout", None)  # the head's alone: the backbone's features are the same
    key = json.dumps(data, sort_keys=True)
    return work / f"data-{hashlib.sha256(key.encode()).hexdigest()[:10]}"


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


def embed(folder: Path, config: Path, precision: str = "float") -> Path:
    """``<folder>/features.h5``: the backbone's features of every slice of ``processed.h5`` (one split),
    in row order, with their labels, clips and starts; computed once. With ``precision`` ``"int8"``,
    ``features.int8.h5``: the features through the backbone's int8 LiteRT export, what the analyzer's
    int8 export computes (:func:`genrekit.models.registry.embedder_export`)."""
    path = folder / ("features.h5" if precision == "float" else f"features.{precision}.h5")
    if path.is_file():
        return path
    from genrekit.core.config import load_config
    from genrekit.models.backbone import build_embedder
    from genrekit.training.frozen_features import embed_split

    cfg = load_config(config)
    started = time.perf_counter()
    if precision == "float":
        vectors = embed_split(build_embedder(cfg.model), cfg.processed_path, "train", progress="backbone features")
    else:
        vectors = embed_export(cfg, folder, precision)
    with h5py.File(cfg.processed_path, "r") as h5:
        train = h5["train"]
        labels, track_ids, starts = train["labels"][()], train["track_ids"][()], train["slice_starts"][()]
        # 0 for a track's own slices, i for its build-time copy i (speed_copies): copies train, never test
        variants = train[h5layout.VARIANTS][()] if h5layout.VARIANTS in train else np.zeros(len(labels), np.int8)
        paths = [track["path"] for track in h5layout.read_tracks(h5)]
    tmp = path.with_name("features.tmp.h5")
    with h5py.File(tmp, "w") as h5:
        h5["vectors"], h5["labels"], h5["track_ids"], h5["starts"] = vectors, labels, track_ids, starts
        h5["variants"] = variants
        h5["paths"] = np.array(paths, dtype=h5py.string_dtype())
    os.replace(tmp, path)
    print(f"backbone features of {len(vectors)} slices: {time.perf_counter() - started:.0f} s", flush=True)
    return path


def embed_export(cfg, folder: Path, precision: str) -> np.ndarray:
    """The features of every train slice of ``processed.h5`` through the backbone's LiteRT export."""
    from tqdm import tqdm

    from genrekit.models import registry
    from genrekit.models.litert import LiteRTModel
    from genrekit.training.data import SpectrogramBatches

    export = registry.embedder_export(cfg.model.backbone, cfg.model.backbone_output, precision, folder / "exports")
    model = LiteRTModel(export, max_rows=registry.MUSICNN_ROWS)
    batches = SpectrogramBatches(cfg.processed_path, "train", 64)
    try:
        return np.concatenate(
            [
                model.predict(batches[i][0])
                for i in tqdm(range(len(batches)), desc=f"{precision} features", file=sys.stderr)
            ]
        )
    finally:
        batches.close()


def analysis_hop_rows(starts: np.ndarray, hop: float) -> np.ndarray:
    """The rows of the slices that the analyzer cuts at ``hop`` seconds: those starting at a multiple of it."""
    nearest = np.round(starts / hop) * hop
    return np.abs(starts - nearest) < 1e-3


def train_heads(
    config: Path, features: Path, tests: list[set[str]], sets: dict, variant: str, seed: int, test_features: Path
) -> dict:
    """The shares (mean slice scores) of every clip as a fold's test clip, for one variant and seed: at the
    analysis hop (``"analysis"``) and at every slice of the build (``"build"``). The heads train on
    ``features`` and score ``test_features`` (the same rows, perhaps through another export)."""
    import dataclasses
    import shutil

    from genrekit.core.config import load_config
    from genrekit.training.data import open_processed, sample_weights
    from genrekit.training.device import detect_device, precision_policy
    from genrekit.training.train import RunPlan, train_model

    cfg = load_config(config)
    data = open_processed(cfg)
    device = detect_device()
    policy = precision_policy(cfg.training.mixed_precision, device)
    with h5py.File(features, "r") as h5:
        vectors, labels, track_ids, starts = (h5[k][()] for k in ("vectors", "labels", "track_ids", "starts"))
        original = h5["variants"][()] == 0 if "variants" in h5 else np.ones(len(labels), bool)
        paths = [p.decode() if isinstance(p, bytes) else p for p in h5["paths"][()]]
    with h5py.File(test_features, "r") as h5:
        test_vectors = h5["vectors"][()]
    slice_paths = np.array([paths[t] for t in track_ids])
    if cfg.slicing.overlap == ready.SETTINGS["slicing"]["overlap"]:
        at_hop = analysis_hop_rows(starts, cfg.slicing.slice_duration - ready.ANALYSIS_OVERLAP)
    else:  # "before": its build's slices (every 2.008 s) stand in for its analysis' (every 1.504 s)
        at_hop = np.ones(len(starts), bool)
    shares = {"analysis": {}, "build": {}, "slices": {}}  # "slices": each clip's slice scores at the analysis hop
    for k, test in enumerate(tests):
        started = time.perf_counter()
        of_test_clips = np.isin(slice_paths, sorted(test))
        in_test = of_test_clips & original
        in_train = ~of_test_clips & ((variant != "mini") | np.array([sets[p] == "gtzan_mini" for p in slice_paths]))
        folder = features.parent / variant / f"seed{seed}" / f"fold{k}"
        if folder.exists():
            shutil.rmtree(folder)
        fold_features = folder / "fold_features.h5"  # what train_model fits on: train rows, an empty val
        fold_features.parent.mkdir(parents=True)
        with h5py.File(fold_features, "w") as h5:
            h5["train/specs"], h5["train/labels"] = vectors[in_train], labels[in_train]
            h5["val/specs"], h5["val/labels"] = vectors[:0], labels[:0]
        fold_data = dataclasses.replace(data, rows={"train": int(in_train.sum()), "val": 0, "test": 0})
        plan = RunPlan(cfg, fold_data, f"{variant}-fold{k}", cfg.training.epochs, device, policy)
        # train_model reads the weights of processed.h5's train rows; the fold's rows are a subset of them
        weights = sample_weights(labels[in_train], track_ids[in_train], cfg.training.sample_weighting)
        models, _ = train_model(
            plan, folder, seed, label=f"{variant} seed {seed} fold {k} ", features=fold_features, weights=weights
        )
        scores = np.asarray(models.trained.predict(test_vectors[in_test], batch_size=256, verbose=0), dtype=np.float64)
        for name, rows in (("build", np.ones(in_test.sum(), bool)), ("analysis", at_hop[in_test])):
            test_paths = slice_paths[in_test][rows]
            for path in np.unique(test_paths):
                shares[name][path] = scores[rows][test_paths == path].mean(axis=0).tolist()
                if name == "analysis":
                    shares["slices"][path] = scores[rows][test_paths == path]
        shutil.rmtree(folder)
        print(
            f"{variant} seed {seed} fold {k}: trained on {int(in_train.sum())} slices, tested on {len(test)} clips, "
            f"{time.perf_counter() - started:.0f} s",
            flush=True,
        )
    return shares


# --------------------------------------------------------------------------- the CRNN


def crnn_fold(work: Path, k: int, test: set[str], clips: list) -> dict[str, list[float]]:
    """Train the default config on fold ``k`` with the real scripts; the shares of its test clips."""
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
    return {path: scores[slice_paths == path].mean(axis=0).tolist() for path in np.unique(slice_paths)}


# --------------------------------------------------------------------------- figures


def subset_of(path: str, subset: str) -> bool:
    excerpt = path.split("/")[1] == ready.EXCERPTS
    return subset == "all" or (subset == "excerpts") == excerpt


def scores_table(shares: dict[str, list[float]], subset: str = "all") -> tuple[list[str], np.ndarray, np.ndarray]:
    """The clips of ``subset``, their shares (n, 10) and true genres' indices."""
    paths = sorted(p for p in shares if subset_of(p, subset))
    matrix = np.array([shares[p] for p in paths]).reshape(len(paths), len(ready.GENRES))
    truth = np.array([ready.GENRES.index(p.split("/")[0]) for p in paths], dtype=int)
    return paths, matrix, truth


def figures(shares: dict[str, list[float]], artists: dict[str, str]) -> dict:
    """Accuracy and balanced accuracy of each subset, per-genre recall, per-artist hits (all clips)."""
    out = {}
    for subset in SUBSETS:
        _, matrix, truth = scores_table(shares, subset)
        predicted = matrix.argmax(axis=1)
        recalls = {
            genre: float(np.mean(predicted[truth == g] == g))
            for g, genre in enumerate(ready.GENRES)
            if (truth == g).any()
        }
        out[subset] = {
            "clips": len(truth),
            "accuracy": float(np.mean(predicted == truth)),
            "balanced": float(np.mean(list(recalls.values()))),
            "recall": recalls,
        }
    paths, matrix, truth = scores_table(shares)
    hits = defaultdict(list)
    for path, row, g in zip(paths, matrix, truth):
        hits[(ready.GENRES[g], artists[path])].append(bool(row.argmax() == g))
    out["artists"] = sorted(
        ([genre, artist, sum(h), len(h)] for (genre, artist), h in hits.items()),
        key=lambda row: (row[2] / row[3], -row[3], row[1]),
    )
    return out


def calibration(matrix: np.ndarray, truth: np.ndarray) -> dict:
    """Reliability of the top share: per bin of it, the clips, their mean top share and accuracy; the
    expected calibration error (the clip-weighted mean gap); precision and coverage above :data:`THRESHOLDS`."""
    top, correct = matrix.max(axis=1), matrix.argmax(axis=1) == truth
    edges = np.linspace(0, 1, BINS + 1)
    which = np.clip(np.digitize(top, edges[1:-1]), 0, BINS - 1)
    table = [
        [
            float(edges[b]),
            float(edges[b + 1]),
            int((which == b).sum()),
            float(top[which == b].mean()),
            float(correct[which == b].mean()),
        ]
        for b in range(BINS)
        if (which == b).any()
    ]
    ece = float(sum(n * abs(confidence - accuracy) for _, _, n, confidence, accuracy in table) / len(top))
    above = [
        [t, float(np.mean(top >= t)), float(correct[top >= t].mean()) if (top >= t).any() else float("nan")]
        for t in THRESHOLDS
    ]
    return {"reliability": table, "ece": ece, "above": above}


def with_temperature(slice_log_scores: list[np.ndarray], temperature: float) -> np.ndarray:
    """Each clip's shares after dividing its slices' log scores by ``temperature`` (a softmax again, then the mean)."""
    rows = []
    for logs in slice_log_scores:
        z = logs / temperature
        p = np.exp(z - z.max(axis=1, keepdims=True))
        rows.append((p / p.sum(axis=1, keepdims=True)).mean(axis=0))
    return np.array(rows)


def percent(values: list[float]) -> str:
    """``80.9 (78.0-82.5)``: mean, lowest and highest over seeds, or the one value."""
    v = 100 * np.asarray(values)
    return f"{v.mean():.1f} ({v.min():.1f}-{v.max():.1f})" if len(v) > 1 else f"{v[0]:.1f}"


def print_tables(results: dict) -> None:
    """The tables of a ``results.json``."""
    n = results["clips"]
    print(
        f"\nartist-held-out cross-validation, {N_FOLDS} folds over {n['all']} clips ({n['full']} full, "
        f"{n['excerpts']} excerpts), %: mean (lowest-highest) over the heads' seeds"
    )
    print(
        f"{'variant':26s} {'hop':>4s} "
        + " ".join(f"{s + ' acc':>17s} {s + ' bal':>17s}" for s in SUBSETS)
        + "  lowest recall"
    )
    for name, variant in results["variants"].items():
        for hop, by_seed in variant["figures"].items():
            seeds = list(by_seed.values())
            cells = []
            for subset in SUBSETS:
                cells += [
                    percent([s[subset]["accuracy"] for s in seeds]),
                    percent([s[subset]["balanced"] for s in seeds]),
                ]
            lowest = min(np.mean([s["all"]["recall"][g] for s in seeds]) for g in seeds[0]["all"]["recall"])
            print(f"{name:26s} {hop[:4]:>4s} " + " ".join(f"{c:>17s}" for c in cells) + f"  {100 * lowest:.0f}")
    print("\nrecall per genre (%), all clips, mean over seeds" + "".join(f" {g[:7]:>7s}" for g in ready.GENRES))
    for name, variant in results["variants"].items():
        seeds = list(next(iter(variant["figures"].values())).values())
        for subset in SUBSETS:
            recall = {g: np.mean([s[subset]["recall"][g] for s in seeds]) for g in seeds[0][subset]["recall"]}
            print(
                f"{name + ' ' + subset:47s}"
                + "".join(f" {100 * recall[g]:7.0f}" if g in recall else f" {'-':>7s}" for g in ready.GENRES)
            )
    ready_variant = results["variants"].get("ready")
    if ready_variant is None:
        return
    first = next(iter(ready_variant["figures"]["analysis"]))
    worst = [
        f"{artist} ({genre}) {hits}/{n}"
        for genre, artist, hits, n in ready_variant["figures"]["analysis"][first]["artists"]
        if hits < n
    ]
    print(f"\nready, seed {first}: artists below 100 % recall, worst first: " + "; ".join(worst))
    if "build_shares" in ready_variant:
        same = [
            np.mean([np.argmax(shares[p]) == np.argmax(ready_variant["build_shares"][seed][p]) for p in shares])
            for seed, shares in ready_variant["shares"].items()
        ]
        print(f"\nready: the same verdict at a slice every 3.008 s as every 1.504 s on {percent(same)} % of the clips")
    cal = ready_variant["calibration"]
    print(
        f"\ncalibration of the ready recipe's top share (all seeds' clips pooled), expected calibration error "
        f"{100 * cal['ece']:.1f} points; after a temperature of {cal['temperature']:.2f}: {100 * cal['ece_after']:.1f}"
    )
    print(f"{'top share':>12s} {'clips':>6s} {'mean share':>11s} {'accuracy':>9s}")
    for low, high, count, confidence, accuracy in cal["reliability"]:
        print(f"{low:5.1f}-{high:<6.1f} {count:6d} {100 * confidence:10.1f}% {100 * accuracy:8.1f}%")
    print("\nprecision of the top label at top share >= S (all seeds' clips pooled)")
    print(f"{'S':>5s} " + " ".join(f"{s + ' cover':>15s} {s + ' precision':>19s}" for s in SUBSETS))
    for i, threshold in enumerate(THRESHOLDS):
        cells = []
        for subset in SUBSETS:
            _, coverage, precision = cal["above"][subset][i]
            cells += [f"{100 * coverage:14.1f}%", f"{100 * precision:18.1f}%"]
        print(f"{threshold:5.1f} " + " ".join(cells))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", type=Path, default=DEFAULT_WORK, help=f"work folder (default {DEFAULT_WORK})")
    parser.add_argument(
        "--variants",
        default=",".join(DEFAULT_VARIANTS),
        help=f"comma-separated, of: {', '.join(VARIANTS)} (default: {','.join(DEFAULT_VARIANTS)})",
    )
    parser.add_argument(
        "--seeds", type=int, default=5, metavar="N", help="train the heads with N seeds, 42 first (default 5: 42 to 46)"
    )
    parser.add_argument(
        "--crnn-folds",
        type=int,
        default=0,
        metavar="N",
        help="also the default CRNN from scratch on N folds, about 45 minutes each on 2 cores (default 0)",
    )
    parser.add_argument("--table", action="store_true", help="print the tables of <work>/results.json again")
    args = parser.parse_args(argv)
    work = args.work.resolve()
    if args.table:
        print_tables(json.loads((work / "results.json").read_text()))
        return 0
    variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    unknown = [v for v in variants if v not in VARIANTS]
    if unknown:
        parser.error(f"--variants: unknown {', '.join(unknown)} (choose from {', '.join(VARIANTS)})")
    if not ready.DATA.is_dir():
        print(f"{ready.DATA}: not found; this benchmark needs the shared GTZAN sets (../shared)", file=sys.stderr)
        return 1
    started = time.perf_counter()
    clips = ready.read_clips()
    artists = {clip.relative: clip.artist for clip in clips}
    sets = {clip.relative: clip.set for clip in clips}
    tests = folds(clips)
    first = ready.SETTINGS["training"]["seed"]
    # Variants run now replace their entries in an earlier results.json of the same folds; others stay.
    earlier = work / "results.json"
    results = json.loads(earlier.read_text()) if earlier.is_file() else {}
    if results.get("folds") != [sorted(test) for test in tests]:
        results = {"variants": {}, "folds": [sorted(test) for test in tests]}
    results["clips"] = {subset: sum(subset_of(c.relative, subset) for c in clips) for subset in SUBSETS}
    for name in variants:
        sections = settings_of(name)
        folder = data_folder(work, sections)
        _, config = ready.prepare(folder, sections)
        features = embed(folder, config)
        # int8: heads trained on the float features, as the ready model's, scoring the int8 export's
        test_features = embed(folder, config, "int8") if name == "int8" else features
        seeds = {
            str(seed): train_heads(config, features, tests, sets, name, seed, test_features)
            for seed in range(first, first + args.seeds)
        }
        hops = ("analysis", "build") if name == "ready" else ("analysis",)
        results["variants"][name] = {
            "description": VARIANTS[name][0],
            "settings": sections,
            "figures": {hop: {seed: figures(s[hop], artists) for seed, s in seeds.items()} for hop in hops},
            "shares": {seed: s["analysis"] for seed, s in seeds.items()},
            **({"build_shares": {seed: s["build"] for seed, s in seeds.items()}} if name == "ready" else {}),
        }
        if name == "ready":
            results["variants"][name]["calibration"] = ready_calibration(seeds)
        write_results(work, results, started)  # after each variant: an interrupted run keeps what it did
    if {"ready", "mtt"} <= results["variants"].keys():
        results["variants"]["ensemble"] = ensemble(results["variants"]["ready"], results["variants"]["mtt"], artists)
    if args.crnn_folds > 0:
        tree = work / "crnn-tree"
        ready.make_tree(tree, clips)
        shares = {}
        for k in range(min(args.crnn_folds, N_FOLDS)):
            shares.update(crnn_fold(tree, k, tests[k], clips))
        results["variants"]["crnn"] = {
            "description": f"the default CRNN from scratch (pipeline_parameters.json), {args.crnn_folds} fold(s)",
            "figures": {"analysis": {"42": figures(shares, artists)}},
        }
    write_results(work, results, started)
    print_tables(results)
    print(f"\n{results['seconds']} s; results in {work / 'results.json'}")
    return 0


def ensemble(first: dict, second: dict, artists: dict[str, str]) -> dict:
    """Two variants' heads together: each clip's shares the mean of theirs, seed by seed (both backbones'
    features computed, so twice the analysis)."""
    shares = {
        seed: {path: list((np.asarray(a) + np.asarray(second["shares"][seed][path])) / 2) for path, a in s.items()}
        for seed, s in first["shares"].items()
    }
    return {
        "description": "the ready recipe's and musicnn-mtt's heads, shares averaged (two backbones)",
        "figures": {"analysis": {seed: figures(s, artists) for seed, s in shares.items()}},
        "shares": shares,
    }


def write_results(work: Path, results: dict, started: float) -> None:
    results["seconds"] = round(time.perf_counter() - started)
    tmp = work / "results.tmp.json"
    tmp.write_text(json.dumps(results, indent=1))
    os.replace(tmp, work / "results.json")


def ready_calibration(seeds: dict) -> dict:
    """:func:`calibration` of the ready recipe's shares at the analysis hop, every seed's clips pooled,
    per subset; and of all clips after the temperature that fits the pooled clips best (least log loss)."""
    pooled = {subset: [] for subset in SUBSETS}
    for shares in seeds.values():
        for subset in SUBSETS:
            pooled[subset].append(scores_table(shares["analysis"], subset)[1:])
    stacked = {s: (np.concatenate([m for m, _ in v]), np.concatenate([t for _, t in v])) for s, v in pooled.items()}
    result = {"above": {}}
    for subset, (matrix, truth) in stacked.items():
        cal = calibration(matrix, truth)
        result["above"][subset] = cal["above"]
        if subset == "all":
            result["reliability"], result["ece"] = cal["reliability"], cal["ece"]
    matrix, truth = stacked["all"]
    # The temperature divides the slices' log scores (a softmax's logits up to a constant) before the
    # clip's mean, as the analyzer would apply it; fitted on the pooled clips, so an upper bound of its gain.
    logs = [
        np.log(np.maximum(shares["slices"][path], 1e-12))
        for shares in seeds.values()
        for path in scores_table(shares["analysis"])[0]
    ]
    grid = np.round(np.arange(0.3, 3.01, 0.05), 2)
    losses = [
        -np.mean(np.log(np.maximum(with_temperature(logs, t)[np.arange(len(truth)), truth], 1e-12))) for t in grid
    ]
    best = float(grid[int(np.argmin(losses))])
    result["temperature"] = best
    result["ece_after"] = calibration(with_temperature(logs, best), truth)["ece"]
    return result


if __name__ == "__main__":
    sys.exit(main())
