"""The analysis overlap of a trained run judged on artists never heard: verdicts and cost per overlap.

The runs of a row of ``accuracy_generalization.py`` (``--row``: ``one-run``, the default config
with ``training.runs: 1``, or ``msd-frozen``, a head on the musicnn backbone as the ready genre
model is; one run per seed, trained there if missing) analyze the 170 clips by 36
artists of ``gtzan_other_artists`` and ``gtzan_more_artists`` at each ``--overlaps`` (seconds
shared by consecutive 3 s slices: 2.0 is a slice every second, 1.5 every 1.5 s, 0 every 3 s).
Per overlap: slices per 30 s clip, the figures of ``accuracy_generalization.py`` (balanced
accuracy over the ten genres, over blues, classical and jazz, and the old figure on the 88 clips of
nine artists) for one run and for the ensembles of 3 seeds in a row (the default run folder), the
share of clips whose verdict is the one at the first overlap, and the analysis time of the 170
clips (two CLI calls per run, mean over runs).

Needs ``../shared`` (it says so and exits). About 9 minutes for the 10 runs of ``one-run`` and 4 overlaps
on 2 cores; 14 minutes for 5 runs of ``msd-frozen`` and 2 overlaps.

Usage::

    .venv/bin/python benchmarks/analysis_overlap.py [--overlaps 2.0 1.5 1.0 0.0] [--seeds 42 ... 51]
    .venv/bin/python benchmarks/analysis_overlap.py --row msd-frozen --seeds 42 43 44 45 46 --overlaps 2.0 1.504
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import accuracy_generalization as generalization


def verdicts(scores: dict[str, np.ndarray]) -> dict[str, int]:
    return {clip: int(np.argmax(s)) for clip, s in scores.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--overlaps",
        nargs="+",
        type=float,
        default=[2.0, 1.5, 1.0, 0.0],
        help="analysis overlaps in seconds; the first is the reference of the verdicts",
    )
    parser.add_argument(
        "--row",
        choices=["one-run", "msd-frozen"],
        default="one-run",
        help="the runs of this row of accuracy_generalization.py (default: one-run)",
    )
    parser.add_argument(
        "--seeds",
        nargs="+",
        type=int,
        default=list(range(42, 52)),
        help="training seeds of the row (default: 42 to 51, as the published default)",
    )
    parser.add_argument("--work", type=Path, default=generalization.DEFAULT_WORK)
    args = parser.parse_args()
    if not all(folder.is_dir() for folder in (generalization.TRAIN, *generalization.EVAL_SETS)):
        sys.exit(f"needs {generalization.TRAIN} and the generalization sets (../shared beside the repository)")
    clip_artists = generalization.artists()
    folders = []
    for seed in args.seeds:
        folder = generalization.run_folder(args.row, seed, args.work)
        if not (folder / "bundle.json").is_file():
            generalization.train(args.row, seed, args.work)
        folders.append(folder)

    print(
        "| overlap | slices per 30 s clip | one run: ten genres | blues/classical/jazz | old figure "
        "| ensemble of 3: ten genres | blues/classical/jazz | old figure | same verdict as "
        f"{args.overlaps[0]:g} s: one run / ensemble | analysis of 170 clips per run |"
    )
    print("| --- |" + " --- |" * 9)
    reference = None
    for overlap in args.overlaps:
        runs, seconds = [], []
        for folder in folders:
            scores, labels, spent = generalization.evaluate(
                str(folder), args.work / "evals" / f"{folder.name}-overlap{overlap:g}", overlap
            )
            runs.append({"scores": scores, "labels": labels, **generalization.summarize(scores, labels, clip_artists)})
            seconds.append(spent)
        ensembles = [generalization.ensemble(runs[i : i + 3], clip_artists) for i in range(len(runs) - 2)]
        choices = ([verdicts(r["scores"]) for r in runs], [verdicts(e["scores"]) for e in ensembles])
        reference = reference or choices
        same = [
            np.mean([now[c] == then[c] for now, then in zip(kind, first) for c in then])
            for kind, first in zip(choices, reference)
        ]
        slices = 1 + int((30.0 - 3.0) // (3.0 - overlap))
        figures = [
            generalization.spread([r[key] for r in rows])
            for rows in (runs, ensembles)
            for key in ("ten_genres", "three_genres", "old_figure")
        ]
        print(
            f"| {overlap:g} s | {slices} | "
            + " | ".join(f"{f} %" for f in figures)
            + f" | {100 * same[0]:.1f} % / {100 * same[1]:.1f} % | {np.mean(seconds):.1f} s |",
            flush=True,
        )


if __name__ == "__main__":
    main()
