#!/usr/bin/env python3
"""Synthesize the demo corpus: short mp3 tracks in made-up genres, one folder per genre,
plus one full-length mp3 whose genre changes midway.

The genres (see demo/synth.py) differ in tempo, drum pattern, bass line,
timbre and harmony; tracks vary inside a genre (key, tempo, tuning, mix,
pattern details). The output is the same for the same --seed. When the folder
already holds a corpus made with the same parameters, nothing is rewritten
(--force rewrites it).

Writes CORPUS/<genre>/<genre>_NNN.mp3, CORPUS/.corpus.json (the parameters, a
hidden file the build ignores), SONG and SONG with a .json suffix (where each
genre section of the song starts and ends).
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from anywhere without installing

from tqdm import tqdm

from demo import synth

MANIFEST = ".corpus.json"
SYNTH_VERSION = 1  # bump when demo/synth.py changes its sound, so old corpora are rewritten


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("corpus", type=Path, help="folder to write the label folders into")
    parser.add_argument("--song", type=Path, help="also write the full-length genre-changing mp3 here")
    parser.add_argument("--tracks-per-genre", type=int, default=20, metavar="N", help="default: %(default)s")
    parser.add_argument("--seconds", type=float, default=15.0, help="length of each track (default: %(default)s)")
    parser.add_argument(
        "--genres", default=",".join(synth.GENRE_NAMES), help="comma-separated genres (default: all: %(default)s)"
    )
    parser.add_argument(
        "--song-genres", default="dustwaltz,ironclad", help="the song's genres in order (default: %(default)s)"
    )
    parser.add_argument("--song-seconds", type=float, default=210.0, help="length of the song (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=7, help="default: %(default)s")
    parser.add_argument(
        "--workers",
        type=int,
        default=len(os.sched_getaffinity(0)),
        metavar="N",
        help="processes (default: all cores, %(default)s)",
    )
    parser.add_argument("--force", action="store_true", help="rewrite even when an identical corpus is there")
    args = parser.parse_args(argv)
    args.genres = [g.strip() for g in args.genres.split(",") if g.strip()]
    args.song_genres = [g.strip() for g in args.song_genres.split(",") if g.strip()]
    for name in args.genres + args.song_genres:
        if name not in synth.GENRE_NAMES:
            parser.error(f"unknown genre {name!r} (known: {', '.join(synth.GENRE_NAMES)})")
    if args.tracks_per_genre < 1 or args.seconds <= 0 or args.workers < 1:
        parser.error("--tracks-per-genre, --seconds and --workers must be positive")
    if args.corpus.exists() and not args.corpus.is_dir():
        parser.error(f"{args.corpus}: not a folder")
    if len(args.song_genres) < 1 or args.song_seconds <= 0:
        parser.error("--song-genres needs at least one genre and --song-seconds must be positive")
    return args


def manifest_for(args: argparse.Namespace) -> dict:
    return {
        "synth_version": SYNTH_VERSION,
        "seed": args.seed,
        "tracks_per_genre": args.tracks_per_genre,
        "seconds": args.seconds,
        "genres": args.genres,
        "sample_rate": synth.SAMPLE_RATE,
        "song": str(args.song.resolve()) if args.song else None,
        "song_genres": args.song_genres,
        "song_seconds": args.song_seconds,
    }


def read_manifest(corpus: Path) -> dict | None:
    try:
        return json.loads((corpus / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None


def up_to_date(args: argparse.Namespace, manifest: dict) -> bool:
    """An identical corpus (same parameters, every file present) is already there."""
    if read_manifest(args.corpus) != manifest:
        return False
    files = [args.corpus / rel for _, _, rel in synth.corpus_plan(args.tracks_per_genre, args.genres)]
    if args.song:
        files += [args.song, args.song.with_suffix(".json")]
    return all(f.is_file() for f in files)


def remove_stale_tracks(corpus: Path, keep: set[str]) -> None:
    """Delete the tracks an earlier run of this script wrote that the new plan does not hold.

    Only files listed by the previous manifest's plan are touched, never anything else in the folder.
    """
    old = read_manifest(corpus)
    if not old:
        return
    try:
        previous = synth.corpus_plan(int(old["tracks_per_genre"]), list(old["genres"]))
    except (KeyError, TypeError, ValueError):
        return
    for _, _, rel in previous:
        if rel not in keep:
            (corpus / rel).unlink(missing_ok=True)


def write_song(args: argparse.Namespace) -> Path:
    crossfade = 2.0
    section = (args.song_seconds + crossfade * (len(args.song_genres) - 1)) / len(args.song_genres)
    signal, sections = synth.render_medley(args.song_genres, section, args.seed, crossfade=crossfade)
    synth.write_mp3(args.song, signal)
    description = {"path": args.song.name, "duration": round(len(signal) / synth.SAMPLE_RATE, 3), "sections": sections}
    args.song.with_suffix(".json").write_text(json.dumps(description, indent=2) + "\n", encoding="utf-8")
    return args.song


def main(argv=None) -> int:
    args = parse_args(argv)
    manifest = manifest_for(args)
    if not args.force and up_to_date(args, manifest):
        print(f"demo corpus up to date in {args.corpus} (seed {args.seed}); --force rewrites it", file=sys.stderr)
        return 0
    plan = synth.corpus_plan(args.tracks_per_genre, args.genres)
    remove_stale_tracks(args.corpus, {rel for _, _, rel in plan})
    (args.corpus / MANIFEST).unlink(missing_ok=True)  # an interrupted run must not look finished
    with cf.ProcessPoolExecutor(max_workers=args.workers) as pool:
        jobs = [pool.submit(write_song, args)] if args.song else []  # the longest job first
        jobs += [
            pool.submit(synth.write_corpus_track, args.corpus, genre, index, rel, args.seconds, args.seed)
            for genre, index, rel in plan
        ]
        with tqdm(total=len(jobs), desc="synthesizing", unit="file", file=sys.stderr) as bar:
            for job in cf.as_completed(jobs):
                job.result()  # re-raise a worker's error here
                bar.update(1)
    args.corpus.mkdir(parents=True, exist_ok=True)
    (args.corpus / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    print(
        f"wrote {len(plan)} tracks ({len(args.genres)} genres x {args.tracks_per_genre} x {args.seconds:g} s) "
        f"to {args.corpus}" + (f" and the song {args.song}" if args.song else ""),
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
