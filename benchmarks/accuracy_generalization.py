"""Generalization to artists never heard, over many artists and seeds: every training default judged.

Trains on all 100 clips of ``../shared/data/gtzan_mini`` (10 genres; no validation or test split:
the config's epochs, the last epoch's model) and evaluates on both generalization sets together:
``gtzan_other_artists`` (88 clips, 9 artists: blues, classical, jazz) and ``gtzan_more_artists``
(82 clips, 27 further artists, all ten genres): 170 clips by 36 artists that are not in gtzan_mini.

Each row changes one thing and is trained once per seed (``--seeds``, ``training.runs: 1``). Per
row it reports, as the mean and the standard deviation over its seeds:

* the **broad figure**: balanced accuracy over the ten genres (mean recall per genre) on the 170 clips;
* balanced accuracy over blues, classical and jazz (the genres with many clips) on the 170 clips;
* the **old figure** (labelled so): balanced accuracy over blues, classical and jazz on the 88 clips of
  gtzan_other_artists alone, the set the earlier defaults were tuned on;
* recall per genre and per artist (in ``results.json``);
* its cost: the build of its dataset (× real time of the 100 training clips), the training command
  per run, and the analysis of the 170 clips.

Rows (the others change one thing from ``one-run``):

* ``default``: the default config: the ensemble of 3 runs (``training.runs``) of ``one-run``, not
  trained again: with the analyzer's ``sum`` aggregation an ensemble's clip scores are the mean of its
  runs', so its figure is computed from the clip scores of 3 ``one-run`` seeds in a row (42-44, 43-45,
  ...; its training and analysis time are the sum of theirs);
* ``one-run``: one run of the default config (``training.runs: 1``): 2 build-time copies of every
  train clip by resampling (``speed_rates`` 0.9 and 1.1: tempo and pitch together), 7 epochs, random
  equalization (``eq_db`` 20), cosine schedule;
* ``no-copies``: no build-time copies, 20 epochs (about as many steps);
* ``phase-vocoder-copies``: the copies of the default before this benchmark: 4 per train clip by
  librosa's phase vocoder (pitch ±2 semitones, stretch 0.9/1.1), 4 epochs (about as many steps);
* ``no-eq``: ``eq_db`` 0; ``constant-lr``: ``lr_schedule: "constant"``; ``4-epochs``: about half the training;
* ``msd-frozen``: a head on the frozen ``musicnn-msd`` backbone's pooled features (one run, no copies);
* ``msd-zero-shot``: no training: the MSD tagger's tags mapped to genres.

Trained rows are analyzed at an overlap of 2 s (``TRAINED_OVERLAP``), the analyzer's default when they
were measured; ``benchmarks/analysis_overlap.py`` compares overlaps on the runs of ``one-run``.

Every (row, seed) is kept in ``<work>/runs/`` once evaluated: a rerun skips it, so the benchmark can
be stopped and resumed, and rows or seeds added later. Needs ``../shared`` (it says so and exits).
About 10 minutes per CRNN row and 5 seeds on 2 cores.

Usage::

    .venv/bin/python benchmarks/accuracy_generalization.py [--rows default no-eq ...] [--seeds 42 43 44 45 46]

The published figure of the default config used 10 seeds (8 ensembles of 3 runs in a row)::

    .venv/bin/python benchmarks/accuracy_generalization.py --rows default one-run --seeds 42 43 44 45 46 47 48 49 50 51
        [--work DIR]
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
sys.path.insert(0, str(REPO_ROOT / "tools"))  # train_ready_model: the shared sets' clips and artists
sys.path.insert(0, str(REPO_ROOT))

import train_ready_model as ready  # noqa: E402

DATA = ready.DATA
TRAIN = DATA / "gtzan_mini"
EVAL_SETS = (DATA / "gtzan_other_artists", DATA / "gtzan_more_artists")
OLD_SET = "gtzan_other_artists"  # the earlier figure: these 88 clips alone
DEFAULT_WORK = REPO_ROOT / "benchmarks" / "out" / "accuracy_generalization"
GENRES = ready.GENRES
MANY_CLIPS = ("blues", "classical", "jazz")  # 61, 53 and 41 clips; the other genres 1 to 3 each
TRAIN_SECONDS = 100 * 30.0  # the audio of gtzan_mini: 100 clips of 30 s
# The analysis overlap of the trained rows: the analyzer's default when they were measured (a slice every
# second). The default is 1.5 s since; benchmarks/analysis_overlap.py shows it gives the same figures.
TRAINED_OVERLAP = 2.0

# The zero-shot mapping of MSD tags to GTZAN genres (variant B of shared/data/musicnn_reference):
# a genre's score is the highest mean probability among its tags; reggae has no MSD tag.
ZERO_SHOT_TAGS = {
    "blues": ["blues"],
    "classical": ["instrumental"],
    "country": ["country"],
    "disco": ["dance", "funk"],
    "hiphop": ["Hip-Hop"],
    "jazz": ["jazz"],
    "metal": ["metal", "heavy metal"],
    "pop": ["pop"],
    "reggae": [],
    "rock": ["rock"],
}

NO_COPIES = {"pitch_shift_semitones": [], "time_stretch_rates": [], "speed_rates": []}
PHASE_VOCODER = {"pitch_shift_semitones": [-2.0, 2.0], "time_stretch_rates": [0.9, 1.1], "speed_rates": []}
SPEED = {"pitch_shift_semitones": [], "time_stretch_rates": [], "speed_rates": [0.9, 1.1]}
# One run of the default config since this benchmark: 2 speed copies, 7 epochs (about the steps of 20
# epochs without copies), random equalization, cosine schedule (the default trains 3 such runs)
ONE_RUN = {
    "audio_augmentation": SPEED,
    "training": {"runs": 1, "epochs": 7, "lr_schedule": "cosine", "augmentation": {"eq_db": 20.0}},
}


def with_changes(base: dict, **sections: dict) -> dict:
    """``base`` with the keys of ``sections`` changed (one level of merging below each section)."""
    merged = {name: dict(keys) for name, keys in base.items()}
    for name, keys in sections.items():
        merged.setdefault(name, {}).update(keys)
    return merged


ROWS = {
    "one-run": ONE_RUN,
    # the kind of copies: none (20 epochs, as many steps), or the phase vocoder's 4 (the default before)
    "no-copies": with_changes(ONE_RUN, audio_augmentation=NO_COPIES, training={"epochs": 20}),
    "phase-vocoder-copies": with_changes(ONE_RUN, audio_augmentation=PHASE_VOCODER, training={"epochs": 4}),
    "no-eq": with_changes(ONE_RUN, training={"augmentation": {"eq_db": 0.0}}),
    "constant-lr": with_changes(ONE_RUN, training={"lr_schedule": "constant"}),
    "4-epochs": with_changes(ONE_RUN, training={"epochs": 4}),
    "msd-frozen": {"model": {"backbone": "musicnn-msd"}, "audio_augmentation": NO_COPIES, "training": {"runs": 1}},
}
# the default config trains 3 runs and keeps their ensemble: (the row of its runs, runs per ensemble)
ENSEMBLES = {"default": ("one-run", 3)}
ZERO_SHOT = "msd-zero-shot"


def run(*args: str) -> subprocess.CompletedProcess:
    result = subprocess.run([sys.executable, *args], cwd=REPO_ROOT, capture_output=True, text=True)
    if result.returncode != 0:
        sys.exit(f"failed: {' '.join(args)}\n{result.stderr[-3000:]}")
    return result


def dataset_name(sections: dict) -> str:
    """One dataset per feature set and kind of copies: rows that differ only in training share it."""
    copies = sections.get("audio_augmentation", NO_COPIES)
    kind = (
        "phase_vocoder"
        if copies["pitch_shift_semitones"] or copies["time_stretch_rates"]
        else "speed"
        if copies["speed_rates"]
        else "no_copies"
    )
    return f"{'musicnn' if sections.get('model', {}).get('backbone') else 'crnn'}_{kind}"


def write_config(row: str, seed: int, sections: dict, work: Path) -> Path:
    output = work / dataset_name(sections)
    config = {
        "paths": {"audio_folder": str(TRAIN), "output_folder": str(output)},
        # No validation split: every clip trains, for the config's epochs, and the last epoch's model
        # is kept. A validation split of gtzan_mini judges epochs by the artists the model trains on
        # (most genres are one or two artists): it would pick epochs by artist recognition.
        "split": {"validation_share": 0.0, "test_share": 0.0, "seed": 1},
        **{key: value for key, value in sections.items() if key != "training"},
        "training": {**sections.get("training", {}), "run_name": f"{row}-seed{seed}", "seed": seed},
    }
    path = work / "configs" / f"{row}-seed{seed}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(config, indent=2))
    return path


def build(config: Path, work: Path) -> float:
    """Build and process the config's dataset once; return the build's seconds (from the first time)."""
    name = json.loads(config.read_text())["paths"]["output_folder"]
    timing = work / f"{Path(name).name}.build_seconds"
    if not timing.is_file():
        started = time.perf_counter()
        run("build_dataset.py", "--config", str(config))
        timing.write_text(f"{time.perf_counter() - started:.2f}")
        run("process_dataset.py", "--config", str(config))
    return float(timing.read_text())


def artists() -> dict[str, str]:
    """``<set>/<genre>/<file>`` of every evaluation clip to its artist (the sets' ``artists.csv``)."""
    evaluated = {folder.name for folder in EVAL_SETS}
    return {
        f"{clip.set}/{clip.genre}/{clip.path.name}": clip.artist
        for clip in ready.read_clips(DATA)
        if clip.set in evaluated
    }


def evaluate(model: str, out: Path, overlap: float | None = None) -> tuple[dict[str, np.ndarray], list[str], float]:
    """Clip scores (summed slice scores, one per label) of every clip of both sets, keyed
    ``<set>/<genre>/<file>``, the labels, and the seconds of the two analyzer calls (at the analyzer's
    default overlap, or ``overlap``)."""
    scores, labels, seconds = {}, [], 0.0
    options = [] if overlap is None else ["--overlap", str(overlap)]
    for folder in EVAL_SETS:
        path = out.with_name(f"{out.name}.{folder.name}.json")
        started = time.perf_counter()
        run("-m", "track_analyzer", str(folder), "--model", model, "--json", str(path), "--restart", *options)
        seconds += time.perf_counter() - started
        # a folder's --json is JSON Lines: the settings (with the labels), then one object per file
        settings, *tracks = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
        for track in tracks:
            if track["status"] != "ok":
                continue
            ranking = {r["label"]: r["score"] for r in track["ranking"]}
            if model.startswith("musicnn"):  # zero-shot: a genre scores its best tag
                labels = list(GENRES)
                scores[f"{folder.name}/{track['path']}"] = np.array(
                    [max((ranking[t] for t in ZERO_SHOT_TAGS[g]), default=-1.0) for g in GENRES]
                )
            else:
                labels = settings["settings"]["labels"]
                scores[f"{folder.name}/{track['path']}"] = np.array([ranking[label] for label in labels])
    return scores, labels, seconds


def summarize(scores: dict[str, np.ndarray], labels: list[str], clip_artists: dict[str, str]) -> dict:
    """Recall per genre and per artist, and the balanced accuracies, of one model's clip scores."""
    hits = {clip: labels[int(np.argmax(s))] == clip.split("/")[1] for clip, s in scores.items()}

    def recall(keep) -> float:
        chosen = [hit for clip, hit in hits.items() if keep(clip)]
        return float(np.mean(chosen)) if chosen else float("nan")

    per_genre = {g: recall(lambda c, g=g: c.split("/")[1] == g) for g in GENRES}
    per_artist = {
        f"{g} / {a}": recall(lambda c, g=g, a=a: c.split("/")[1] == g and clip_artists[c] == a)
        for g, a in sorted({(c.split("/")[1], clip_artists[c]) for c in hits})
    }
    old = [recall(lambda c, g=g: c.startswith(OLD_SET + "/") and c.split("/")[1] == g) for g in MANY_CLIPS]
    return {
        "ten_genres": float(np.mean(list(per_genre.values()))),
        "three_genres": float(np.mean([per_genre[g] for g in MANY_CLIPS])),
        "old_figure": float(np.mean(old)),
        "accuracy": float(np.mean(list(hits.values()))),
        "per_genre": per_genre,
        "per_artist": per_artist,
        "clips": len(hits),
    }


def run_folder(row: str, seed: int, work: Path) -> Path:
    """Where the run of a trained (row, seed) is."""
    return work / dataset_name(ROWS[row]) / "models" / f"{row}-seed{seed}"


def train(row: str, seed: int, work: Path) -> tuple[str, float, float]:
    """Build the row's dataset (once) and train one (row, seed): its run folder, the build's and the
    training command's seconds."""
    config = write_config(row, seed, ROWS[row], work)
    build_seconds = build(config, work)
    started = time.perf_counter()
    run("train_crnn.py", "--config", str(config), "--restart")
    # the whole training command: a frozen backbone's feature pass included, not only the epochs
    return str(run_folder(row, seed, work)), build_seconds, time.perf_counter() - started


def run_one(row: str, seed: int, work: Path, clip_artists: dict[str, str]) -> dict:
    """Train and evaluate one (row, seed), or read it back from ``<work>/runs/``."""
    done = work / "runs" / f"{row}-seed{seed}.json"
    if done.is_file():
        return json.loads(done.read_text())
    if row == ZERO_SHOT:
        model, build_seconds, train_seconds = "musicnn-msd", 0.0, 0.0
    else:
        model, build_seconds, train_seconds = train(row, seed, work)
    scores, labels, analysis_seconds = evaluate(
        model, work / "evals" / f"{row}-seed{seed}", None if row == ZERO_SHOT else TRAINED_OVERLAP
    )
    result = {
        **summarize(scores, labels, clip_artists),
        "build_seconds": build_seconds,
        "training_seconds": train_seconds,
        "analysis_seconds": analysis_seconds,
        "labels": labels,
        "scores": {clip: s.tolist() for clip, s in scores.items()},
    }
    done.parent.mkdir(parents=True, exist_ok=True)
    done.write_text(json.dumps(result))
    return result


def ensemble(results: list[dict], clip_artists: dict[str, str]) -> dict:
    """The figures of the ensemble of these runs, and its clip scores (``scores``): a clip's score is the
    mean of the runs' scores."""
    clips = set.intersection(*(set(r["scores"]) for r in results))
    scores = {clip: np.mean([r["scores"][clip] for r in results], axis=0) for clip in clips}
    return {**summarize(scores, results[0]["labels"], clip_artists), "scores": scores}


def spread(values: list[float]) -> str:
    values = 100 * np.asarray(values)
    sd = f" ± {values.std(ddof=1):.1f}" if len(values) > 1 else ""
    return f"{values.mean():.1f}{sd}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--rows",
        nargs="+",
        choices=[*ENSEMBLES, *ROWS, ZERO_SHOT],
        default=[*ENSEMBLES, *ROWS, ZERO_SHOT],
        help="rows to run (default: all)",
    )
    parser.add_argument(
        "--seeds",
        nargs="+",
        type=int,
        default=[42, 43, 44, 45, 46],
        help="training seeds of every trained row (default: 42 to 46)",
    )
    parser.add_argument("--work", type=Path, default=DEFAULT_WORK)
    args = parser.parse_args()
    if not TRAIN.is_dir() or not all(folder.is_dir() for folder in EVAL_SETS):
        sys.exit(f"needs {TRAIN} and {', '.join(map(str, EVAL_SETS))} (../shared beside the repository); not found")
    args.work.mkdir(parents=True, exist_ok=True)
    clip_artists = artists()

    table: dict[str, list[dict]] = {}
    for row in args.rows:
        if row in ENSEMBLES:
            members, size = ENSEMBLES[row]
            runs = [run_one(members, seed, args.work, clip_artists) for seed in args.seeds]
            # ensembles of `size` consecutive seeds among those trained
            table[row] = [
                {
                    **ensemble(runs[i : i + size], clip_artists),
                    "training_seconds": sum(r["training_seconds"] for r in runs[i : i + size]),
                    "build_seconds": runs[0]["build_seconds"],
                    "analysis_seconds": sum(r["analysis_seconds"] for r in runs[i : i + size]),
                }
                for i in range(len(runs) - size + 1)
            ]
        else:
            seeds = args.seeds[:1] if row == ZERO_SHOT else args.seeds
            table[row] = []
            for seed in seeds:
                table[row].append(run_one(row, seed, args.work, clip_artists))
                r = table[row][-1]
                print(
                    f"{row} seed {seed}: ten genres {100 * r['ten_genres']:.1f} %, blues/classical/jazz "
                    f"{100 * r['three_genres']:.1f} %, old figure {100 * r['old_figure']:.1f} %; training "
                    f"{r['training_seconds']:.0f} s",
                    file=sys.stderr,
                    flush=True,
                )

    summary = {
        row: {
            "seeds": len(results),
            **{
                key: [r[key] for r in results]
                for key in (
                    "ten_genres",
                    "three_genres",
                    "old_figure",
                    "accuracy",
                    "build_seconds",
                    "training_seconds",
                    "analysis_seconds",
                )
            },
            "per_genre": {g: float(np.mean([r["per_genre"][g] for r in results])) for g in GENRES},
            "per_artist": {a: float(np.mean([r["per_artist"][a] for r in results])) for a in results[0]["per_artist"]},
        }
        for row, results in table.items()
    }
    (args.work / "results.json").write_text(json.dumps(summary, indent=2))

    print(
        "| row | seeds | ten genres, 170 clips | blues/classical/jazz, 170 clips | old figure: 88 clips, "
        "9 artists | build (× real time) | training per run | analysis of 170 clips |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for row, s in summary.items():
        build_speed = (
            f"{TRAIN_SECONDS / np.mean(s['build_seconds']):.0f}×" if np.mean(s["build_seconds"]) > 0 else "none"
        )
        print(
            f"| {row} | {s['seeds']} | **{spread(s['ten_genres'])} %** | {spread(s['three_genres'])} % "
            f"| {spread(s['old_figure'])} % | {build_speed} | {np.mean(s['training_seconds']):.0f} s "
            f"| {np.mean(s['analysis_seconds']):.0f} s |"
        )
    print("\nrecall per genre (mean over seeds), %:")
    print("| row | " + " | ".join(GENRES) + " |")
    print("| --- |" + " --- |" * len(GENRES))
    for row, s in summary.items():
        print(f"| {row} | " + " | ".join(f"{100 * s['per_genre'][g]:.0f}" for g in GENRES) + " |")
    print("\nrecall per artist (mean over seeds), %:")
    print("| genre / artist | clips | " + " | ".join(summary) + " |")
    print("| --- | --- |" + " --- |" * len(summary))
    clips = {}
    for clip, artist in clip_artists.items():
        clips[f"{clip.split('/')[1]} / {artist}"] = clips.get(f"{clip.split('/')[1]} / {artist}", 0) + 1
    for artist in sorted(clips):
        print(
            f"| {artist} | {clips[artist]} | "
            + " | ".join(f"{100 * s['per_artist'][artist]:.0f}" for s in summary.values())
            + " |"
        )


if __name__ == "__main__":
    main()
