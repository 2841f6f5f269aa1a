"""Accuracy of the default pipeline on real music, artist-aware: cross-validation and other artists.

Two measurements, both with the default config (``pipeline_parameters.json``) and the real
scripts (build_dataset.py, process_dataset.py, train_crnn.py):

1. **5-fold track-wise cross-validation over** ``../shared/data/gtzan_mini`` (10 genres x 10
   clips of 30 s), folds dealt **by artist** from its ``artists.csv``: a genre with several
   artists (country, disco, hip-hop, jazz, metal, pop) never has one artist in train and test.
   Four genres are one artist each in gtzan_mini (blues: John Lee Hooker, classical: Bach,
   reggae: Bob Marley, rock: Morphine); their clips are dealt one by one, so for them train
   and test share the artist. The figures are reported for both kinds of genre apart, and the
   overall figure is labelled as mixing the two. Each fold has its own split file
   (``split.custom_split_file``), config and output folder under ``--work``; fold ``k`` tests
   on group ``k`` and validates on one clip per genre of group ``k + 1``.
2. **Other artists**: train on all 100 clips (10 % validation for early stopping, no test
   split), then analyze ``../shared/data/gtzan_other_artists`` (88 clips of blues, jazz and
   classical by artists absent from gtzan_mini) with ``python -m track_analyzer``; per-genre
   recall and balanced accuracy (their mean). This is the figure of generalization. With the
   shipped config it is the very run of ``accuracy_generalization.py``'s ``crnn`` row (in its
   work folder), trained once for both scripts.

Usage::

    .venv/bin/python benchmarks/accuracy_gtzan_mini.py [--fold 1] [--epochs 5] [--no-other] [--work DIR]
"""

from __future__ import annotations

import argparse
import csv
import json
import subprocess
import sys
import time
from pathlib import Path

import accuracy_generalization as other_artists  # beside this script
import numpy as np

REPO_ROOT = Path(__file__).resolve().parent.parent
GTZAN_MINI = REPO_ROOT.parent / "shared" / "data" / "gtzan_mini"
DEFAULT_WORK = REPO_ROOT / "benchmarks" / "out" / "accuracy_gtzan_mini"
SHIPPED_CONFIG = (REPO_ROOT / "pipeline_parameters.json").resolve()
N_FOLDS = 5


def read_artists(audio_folder: Path) -> dict[str, str]:
    """``relative path -> artist`` from ``artists.csv``; every clip its own artist without one."""
    path = audio_folder / "artists.csv"
    if not path.is_file():
        return {}
    with open(path, encoding="utf-8", newline="") as f:
        return {row["path"]: row["group"] for row in csv.DictReader(f)}


def fold_splits(
    audio_folder: Path, artists: dict[str, str], n_folds: int = N_FOLDS, seed: int = 0
) -> tuple[list[dict[str, str]], dict[str, bool]]:
    """One ``{relative path: split}`` mapping per fold, and per genre whether its folds keep artists apart.

    A genre with several artists is dealt artist by artist (largest first, each to the fold
    holding fewest of the genre's clips, then fewest clips); a genre of one artist, clip by clip. Fold ``k``
    tests on group ``k``; one clip per genre from the next group that has one validates,
    unless the genre would keep fewer than two training clips.
    """
    rng = np.random.default_rng(seed)
    groups: list[list[str]] = [[] for _ in range(n_folds)]
    per_genre: list[list[list[str]]] = []
    apart: dict[str, bool] = {}
    for genre in sorted(p for p in audio_folder.iterdir() if p.is_dir()):
        clips = sorted(p.relative_to(audio_folder).as_posix() for p in genre.iterdir() if p.is_file())
        by_artist: dict[str, list[str]] = {}
        for clip in clips:
            by_artist.setdefault(artists.get(clip, clip), []).append(clip)
        apart[genre.name] = len(by_artist) > 1
        units = list(by_artist.values()) if apart[genre.name] else [[clip] for clip in clips]
        units = [units[i] for i in rng.permutation(len(units))]
        units.sort(key=len, reverse=True)  # stable: equal sizes keep the shuffled order
        dealt: list[list[str]] = [[] for _ in range(n_folds)]
        for unit in units:  # to the fold with fewest of this genre, then fewest overall
            k = min(range(n_folds), key=lambda i: (len(dealt[i]), len(groups[i]) + len(dealt[i])))
            dealt[k].extend(unit)
        for k in range(n_folds):
            groups[k].extend(dealt[k])
        per_genre.append(dealt)
    folds = []
    for k in range(n_folds):
        split = {clip: "train" for group in groups for clip in group}
        split.update(dict.fromkeys(groups[k], "test"))
        for dealt in per_genre:
            n_train = sum(len(g) for i, g in enumerate(dealt) if i != k)
            donors = [dealt[(k + j) % n_folds] for j in range(1, n_folds) if dealt[(k + j) % n_folds]]
            if donors and n_train > 2:
                split[donors[0][0]] = "val"
        folds.append(split)
    return folds, apart


def write_fold(folder: Path, base_config: dict, audio_folder: Path, split: dict[str, str]) -> Path:
    """The fold's split file and config (the base config with paths and split file replaced)."""
    folder.mkdir(parents=True, exist_ok=True)
    split_file = folder / "split.csv"
    split_file.write_text("path,split\n" + "".join(f"{p},{s}\n" for p, s in sorted(split.items())), encoding="utf-8")
    config = json.loads(json.dumps(base_config))
    config["paths"] = {"audio_folder": str(audio_folder), "output_folder": str(folder / "output")}
    config.setdefault("split", {})["custom_split_file"] = str(split_file)
    config["split"]["group_file"] = None
    # one model per fold (its report.json holds the fold's test figures), not training.runs' ensemble
    config.setdefault("training", {})["runs"] = 1
    path = folder / "pipeline_parameters.json"
    path.write_text(json.dumps(config, indent=2), encoding="utf-8")
    return path


def run_step(script: str, config: Path, log_file: Path, *args: str) -> None:
    cmd = [sys.executable, str(REPO_ROOT / script), "--config", str(config), *args]
    with open(log_file, "a", encoding="utf-8") as log:
        log.write(f"$ {' '.join(cmd)}\n")
        log.flush()
        result = subprocess.run(cmd, cwd=REPO_ROOT, stdout=log, stderr=log)
    if result.returncode != 0:
        raise SystemExit(f"{script} failed (exit {result.returncode}); see {log_file}")


def genre_recall(confusion: np.ndarray, labels: list[str], genres: list[str]) -> float:
    """Track accuracy over the test tracks of ``genres`` (rows of the summed confusion matrix)."""
    rows = [labels.index(g) for g in genres]
    return float(sum(confusion[r, r] for r in rows) / max(1, sum(confusion[r].sum() for r in rows)))


def cross_validation(args: argparse.Namespace, base_config: dict) -> dict:
    folds, apart = fold_splits(args.audio, read_artists(args.audio))
    chosen = args.fold or list(range(1, N_FOLDS + 1))
    train_args = ["--run-name", args.run_name] + (["--epochs", str(args.epochs)] if args.epochs else [])
    if args.restart:
        train_args.append("--restart")
    results, confusion, labels = [], None, None
    for k in chosen:
        folder = args.work / f"fold-{k}"
        config = write_fold(folder, base_config, args.audio.resolve(), folds[k - 1])
        log_file = folder / "log.txt"
        started = time.perf_counter()
        for script, extra in (
            ("build_dataset.py", ["--quiet"]),
            ("process_dataset.py", []),
            ("train_crnn.py", train_args),
        ):
            print(f"fold {k}: {script} ...", file=sys.stderr, flush=True)
            run_step(script, config, log_file, *extra)
        report = json.loads((folder / "output" / "models" / args.run_name / "report.json").read_text())
        labels = report["labels"]
        matrix = np.array(report["track"]["confusion_matrix"])
        confusion = matrix if confusion is None else confusion + matrix
        seconds = time.perf_counter() - started
        results.append(
            {
                "fold": k,
                "slice_accuracy": report["slice_accuracy"],
                "track_accuracy": report["track_accuracy"],
                "epochs_trained": report["epochs_trained"],
                "best_epoch": report["best_epoch"],
                "test_tracks": report["test_tracks"],
                "seconds": round(seconds, 1),
            }
        )
        print(
            f"fold {k}: slice accuracy {report['slice_accuracy']:.3f}, track accuracy "
            f"{report['track_accuracy']:.3f} ({report['test_tracks']} tracks), {report['epochs_trained']} "
            f"epochs (best {report['best_epoch']}), {seconds:.0f} s",
            flush=True,
        )
    summary: dict = {"folds": results}
    for key in ("slice_accuracy", "track_accuracy"):
        values = np.array([r[key] for r in results])
        std = float(values.std(ddof=1)) if len(values) > 1 else 0.0
        summary[key] = {"mean": float(values.mean()), "std": std}
    disjoint = [g for g in labels if apart.get(g)]
    shared = [g for g in labels if not apart.get(g)]
    summary["track_accuracy_artists_apart"] = {
        "genres": disjoint,
        "accuracy": genre_recall(confusion, labels, disjoint),
    }
    summary["track_accuracy_artist_shared"] = {"genres": shared, "accuracy": genre_recall(confusion, labels, shared)}
    summary["per_genre_track_recall"] = {g: genre_recall(confusion, labels, [g]) for g in labels}
    return summary


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--audio", type=Path, default=GTZAN_MINI, help="GTZAN folder with artists.csv (default: %(default)s)"
    )
    parser.add_argument(
        "--config", type=Path, default=REPO_ROOT / "pipeline_parameters.json", help="base config (default: %(default)s)"
    )
    parser.add_argument("--work", type=Path, default=DEFAULT_WORK, help="output folder (default: %(default)s)")
    parser.add_argument(
        "--fold", type=int, action="append", metavar="K", help=f"run only fold K (1..{N_FOLDS}); repeatable"
    )
    parser.add_argument("--epochs", type=int, metavar="N", help="override training.epochs (quick checks)")
    parser.add_argument("--run-name", default="bench", help="run folder name (default: %(default)s)")
    parser.add_argument("--restart", action="store_true", help="retrain runs that already finished")
    parser.add_argument("--no-cv", action="store_true", help="skip the cross-validation")
    parser.add_argument("--no-other", action="store_true", help="skip the other-artists evaluation")
    args = parser.parse_args()
    if not args.audio.is_dir():
        print(f"{args.audio}: not found; nothing to measure", file=sys.stderr)
        return 0
    base_config = json.loads(args.config.read_text(encoding="utf-8"))
    args.work.mkdir(parents=True, exist_ok=True)
    results_path = args.work / "results.json"
    results = json.loads(results_path.read_text()) if results_path.is_file() else {}
    started = time.perf_counter()

    if not args.no_cv:
        cv = cross_validation(args, base_config)
        results["cross_validation"] = cv
        results_path.write_text(json.dumps(results, indent=2), encoding="utf-8")
    if not args.no_other and other_artists.OTHER.is_dir():
        sections = {k: v for k, v in base_config.items() if k not in ("paths", "split") and not k.startswith("_")}
        if args.epochs:
            sections.setdefault("training", {})["epochs"] = args.epochs
        if args.config.resolve() == SHIPPED_CONFIG and not args.epochs:
            # the defaults: the very run of accuracy_generalization.py's crnn row, trained once for both
            sections, work, name = {}, other_artists.DEFAULT_WORK, "crnn"
        else:
            work, name = args.work / "other_artists", args.run_name
        folder, _ = other_artists.train_row(name, sections, work)
        summary = other_artists.summarize(other_artists.evaluate(str(folder), args.work / "other_artists.eval.json"))
        reports = [
            json.loads(path.read_text())
            for path in sorted(folder.glob("report.json")) or sorted(folder.glob("run-*/report.json"))
        ]  # one run, or training.runs of them
        results["other_artists"] = {
            **summary,
            "run": str(folder),
            "training_seconds": sum(r["training_seconds"] for r in reports),
            "epochs_trained": sum(r["epochs_trained"] for r in reports),
        }
        results_path.write_text(json.dumps(results, indent=2), encoding="utf-8")

    if "cross_validation" in results:
        cv = results["cross_validation"]
        apart, shared = cv["track_accuracy_artists_apart"], cv["track_accuracy_artist_shared"]
        print(
            f"cross-validation, {len(cv['folds'])} fold(s): slice {100 * cv['slice_accuracy']['mean']:.1f} ± "
            f"{100 * cv['slice_accuracy']['std']:.1f} %, track {100 * cv['track_accuracy']['mean']:.1f} ± "
            f"{100 * cv['track_accuracy']['std']:.1f} % (artists apart and shared mixed)"
        )
        print(f"  track accuracy, artists apart ({', '.join(apart['genres'])}): {100 * apart['accuracy']:.1f} %")
        print(f"  track accuracy, artist shared ({', '.join(shared['genres'])}): {100 * shared['accuracy']:.1f} %")
    if "other_artists" in results:
        o = results["other_artists"]
        print(
            f"other artists (trained on all of gtzan_mini): balanced accuracy {100 * o['balanced_accuracy']:.1f} %"
            f" ("
            + ", ".join(f"{g} {100 * r:.0f} %" for g, r in o["recall"].items())
            + f"), {o['clips']} clips; training {o['training_seconds']:.0f} s, {o['epochs_trained']} epochs"
        )
    print(f"wall time: {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
