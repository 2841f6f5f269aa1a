#!/usr/bin/env python3
"""The whole pipeline on a built-in default: `make demo`.

1. synthesize a corpus of made-up genres and one genre-changing song (demo/make_corpus.py),
2. build_dataset.py, 3. process_dataset.py, 4. train_crnn.py (all with demo/pipeline_parameters.json),
5. python -m track_analyzer on the song, writing demo_output/timeline.png and demo_output/analysis.json;
then print the test report and the verdict. Every step skips work that is already
done, so running the demo again is quick; `make clean` starts over.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))  # run from anywhere without installing

from genrekit.core import cli  # noqa: E402
from genrekit.core.config import Config  # noqa: E402
from genrekit.core.errors import GenrekitError  # noqa: E402

DEMO_CONFIG = REPO_ROOT / "demo" / "pipeline_parameters.json"
DEMO_OUTPUT = REPO_ROOT / "demo_output"


# A demo made by an older version is refused where a new default changed its dataset or run.
STALE_HINT = (
    "; if it says the settings changed (a new version changed a default), run the demo again with "
    "--restart (.venv/bin/python demo/run_demo.py --restart) or start over with make clean"
)


def run_step(number: int, title: str, command: list[str], hint: str = "") -> float:
    """Run one step with its output passed through; raise if it fails, with ``hint`` at the end of the
    message. Returns its seconds."""
    cli.log(f"\n=== step {number}/5: {title}\n$ {' '.join(command)}")
    start = time.perf_counter()
    status = subprocess.run(command, cwd=REPO_ROOT).returncode
    seconds = time.perf_counter() - start
    if status != 0:
        raise GenrekitError(f"step {number} ({title}) failed with exit status {status}; see the messages above{hint}")
    cli.log(f"--- step {number} done in {seconds:.0f} s")
    return seconds


def relative(path: Path) -> str:
    """A path for commands and messages: absolute and normalized (the config's ``../`` folded),
    then relative to the repository (the steps' working folder) when inside it."""
    path = Path(os.path.abspath(path))
    try:
        return str(path.relative_to(REPO_ROOT))
    except ValueError:
        return str(path)


def format_report(report: dict) -> str:
    """The test split's figures against chance."""
    labels = report["labels"]
    chance = 1.0 / len(labels)
    lines = [
        f"test split: {report['test_tracks']} tracks, {report['test_slices']} slices, "
        f"{len(labels)} genres (chance {chance:.1%})",
        f"  slice accuracy {report['slice_accuracy']:.1%}",
        f"  track accuracy {report['track_accuracy']:.1%} ({report['aggregation']} of slice scores)",
    ]
    per_label = report.get("track", {}).get("per_label", {})
    if per_label:
        lines.append(
            "  track recall per genre: "
            + ", ".join(f"{name} {per_label[name]['recall']:.0%}" for name in labels if name in per_label)
        )
    lines.append(
        f"  {report['epochs_trained']} epochs, {report['parameters']:,} parameters, "
        f"{report['training_seconds']:.0f} s of training on {report['device']}"
    )
    return "\n".join(lines)


def format_sections(analysis: dict, song: dict) -> list[str]:
    """For each genre section the song was made of, the label the slices inside it add up to."""
    labels = analysis.get("labels")
    slices = analysis.get("slices")
    if not labels or not slices:
        return []
    lines = []
    for section in song["sections"]:
        inside = [s["scores"] for s in slices if section["start"] <= s["start"] < section["end"]]
        if not inside:
            continue
        totals = [sum(scores[i] for scores in inside) for i in range(len(labels))]
        best = max(range(len(labels)), key=totals.__getitem__)
        share = totals[best] / sum(totals) if sum(totals) > 0 else 0.0
        mark = "right" if labels[best] == section["genre"] else "WRONG"
        lines.append(
            f"  {section['start']:5.0f}-{section['end']:.0f} s, made as {section['genre']}: "
            f"the slices say {labels[best]} ({share:.0%}) [{mark}]"
        )
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = cli.make_parser(__doc__)
    parser.set_defaults(config=DEMO_CONFIG)
    parser.add_argument(
        "--out",
        type=Path,
        default=DEMO_OUTPUT,
        metavar="DIR",
        help="where the song, timeline.png and analysis.json go (default: %(default)s); "
        "the corpus and the pipeline's files go where the config's paths say",
    )
    parser.add_argument(
        "--restart", action="store_true", help="rebuild the dataset and retrain the model although the settings changed"
    )
    corpus = parser.add_argument_group("the synthesized corpus (see demo/make_corpus.py)")
    corpus.add_argument("--tracks-per-genre", type=int, default=20, metavar="N", help="default: %(default)s")
    corpus.add_argument("--seconds", type=float, default=15.0, help="track length (default: %(default)s)")
    corpus.add_argument("--genres", help="comma-separated (default: all six)")
    corpus.add_argument("--song-genres", default="dustwaltz,ironclad", help="default: %(default)s")
    corpus.add_argument("--song-seconds", type=float, default=210.0, help="default: %(default)s")
    corpus.add_argument("--seed", type=int, default=7, help="default: %(default)s")
    args = parser.parse_args(argv)
    cfg: Config = cli.config_from_args(args)
    config = relative(args.config)
    python = sys.executable
    song = args.out / "demo_song.mp3"
    run_folder = cfg.models_folder / cfg.training.run_name
    timeline, analysis_path = args.out / "timeline.png", args.out / "analysis.json"
    started = time.perf_counter()

    manifest = cfg.paths.audio_folder / ".corpus.json"
    before = manifest.stat().st_mtime_ns if manifest.exists() else None
    run_step(
        1,
        "synthesize the demo corpus",
        [
            python,
            "demo/make_corpus.py",
            relative(cfg.paths.audio_folder),
            "--song",
            relative(song),
            "--tracks-per-genre",
            str(args.tracks_per_genre),
            "--seconds",
            str(args.seconds),
            *(["--genres", args.genres] if args.genres else []),
            "--seed",
            str(args.seed),
            "--song-seconds",
            str(args.song_seconds),
            "--song-genres",
            args.song_genres,
        ],
    )
    # A new corpus means new data: the previous model no longer belongs to it.
    new_corpus = before is None or manifest.stat().st_mtime_ns != before
    restart = ["--restart"] if args.restart else []
    run_step(2, "build_dataset.py", [python, "build_dataset.py", "--config", config, *restart], STALE_HINT)
    run_step(3, "process_dataset.py", [python, "process_dataset.py", "--config", config], STALE_HINT)
    run_step(
        4,
        "train_crnn.py",
        [python, "train_crnn.py", "--config", config, *(["--restart"] if args.restart or new_corpus else [])],
        STALE_HINT,
    )
    run_step(
        5,
        "track_analyzer on the genre-changing song",
        [
            python,
            "-m",
            "track_analyzer",
            relative(song),
            "--model",
            relative(run_folder),
            "--config",
            config,
            "--plot",
            relative(timeline),
            "--json",
            relative(analysis_path),
        ],
    )

    report_path = run_folder / "report.json"
    try:
        report = json.loads(report_path.read_text(encoding="utf-8"))
        analysis = json.loads(analysis_path.read_text(encoding="utf-8"))
        song_sections = json.loads(song.with_suffix(".json").read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise GenrekitError(f"cannot read the demo's results: {exc}") from None

    print(f"\n=== demo finished in {time.perf_counter() - started:.0f} s")
    print(format_report(report))
    ranking = analysis.get("ranking") or []
    names = " then ".join(s["genre"] for s in song_sections["sections"])
    print(f"verdict for {relative(song)} ({song_sections['duration']:.0f} s, made as {names}):")
    for entry in ranking[: cfg.analysis.top_k]:
        print(f"  {entry['label']:<12} {entry['share']:6.1%}")
    for line in format_sections(analysis, song_sections):
        print(line)
    print(f"timeline plot: {relative(timeline)}")
    print(f"run folder (model, report, curves, confusion matrices): {relative(run_folder)}")
    chance = 1.0 / len(report["labels"])
    if report["track_accuracy"] < 2 * chance:
        cli.log("warning: the demo model is not clearly better than chance; see the curves in the run folder")
    return 0


if __name__ == "__main__":
    sys.exit(cli.run(main))
