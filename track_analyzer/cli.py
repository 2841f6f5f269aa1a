"""``python -m track_analyzer``: the command line over :mod:`genrekit.inference.analyzer`.

Keras is imported only for a model without a LiteRT export (or with ``--runtime keras``), and
only once the inputs and the bundle have been checked, so ``--help`` and the one-line errors
come back at once.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from genrekit.core import cli
from genrekit.core.config import Config, load_config
from genrekit.core.errors import GenrekitError, TrackError
from genrekit.inference.analyzer import Analyzer, TrackAnalysis, choose_aggregation, slice_settings
from genrekit.inference.folder import FileOutcome, SliceLoader, analyze_loaded, find_audio_files
from genrekit.inference.results import ResultsFile, done_paths, record_of, results_settings, stat_or_none
from genrekit.inference.tagging import DEFAULT_MIN_SHARE, MODES, TagJournal, TagOptions, tag_files, undo_journal
from genrekit.models import registry
from genrekit.models.aggregate import METHODS
from genrekit.models.bundle import Bundle
from genrekit.models.registry import open_model
from genrekit.training.evaluate import classification_report, plot_confusion
from track_analyzer import output
from track_analyzer import report as pages

DESCRIPTION = """\
Rank the genres of an audio file (any length, any format the build accepts): the track is cut into
slices exactly as the model's training data was, every slice is scored, and the scores are
aggregated into one verdict. The model is the ready genre model unless --model names another: a run
trained by train_crnn.py or train_baselines.py, or a ready tagger.

The ready genre model (the default; --model gtzan-genres) ranks GTZAN's ten genres: blues, classical,
country, disco, hiphop, jazz, metal, pop, reggae, rock. It is a head trained on the frozen pretrained
musicnn-msd backbone with all 484 GTZAN clips shared beside the project (270 full clips and 214 short
excerpts, 161 artist groups). On artists it never heard (5-fold cross-validation with whole artists
held out, mean over 5 seeds) it names the genre of 80.1 % of the clips (88.1 % of the full clips,
70.0 % of the excerpts), with a balanced accuracy of 78.5 % over the ten genres; rock is its weakest
(51 % recall; country, hiphop, pop 70 to 73 %). GTZAN's caveats apply (repeated artists, mislabelled
clips, zydeco filed under blues); its weights derive from GTZAN audio: research use only. Model card:
genrekit/models/ready/gtzan-genres/MODEL_CARD.md; figures: docs/RESULTS.md.

Output on stdout
  a file      one line, the top-k labels and their shares:  metal 71.3 %  rock 20.1 %  blues 4.2 %
  a folder    one line per audio file found (recursively), in path order:
              <path relative to the folder><TAB><that line>
              unusable files are reported on stderr and skipped; --csv writes every file with its status

A library (a folder) is analyzed resumably: with --csv PATH (or --json PATH, JSON Lines for a
folder) every file's result is written, complete and synced to disk, the moment the file is done.
Interrupted (Ctrl-C, kill -9, power loss), the same command again skips the files already in the
results (unreadable ones too) and analyzes the others; at the end the file holds every file once,
sorted by path. Results made with another model or other analysis settings are refused, naming what
differs, unless --restart is given. Slices of several files share each forward pass, and files
decode in worker processes ahead of the model. --scheduler ADDRESS runs the per-file work (decode,
features, model) on the workers of a Dask cluster instead, each loading the model once; the workers
must see the files and the run folder at the same paths (docs/SCALING.md).
  --evaluate  track-level accuracy, per-label recall/precision and the confusion matrix

Genre tags: --write-tags writes the top label into each analyzed file's genre tag (ID3 TCON of mp3,
wav and aiff; the Vorbis comment GENRE of flac, ogg and opus; ©gen of m4a; WM/Genre of wma), named as
players spell it (hiphop -> Hip-Hop, rock -> Rock; other labels with each word capitalized), only
where the top share is at least --min-share. --tag-mode fill (the default) writes only where a file
has no genre, replace replaces it, add adds the verdict beside it. Each file is rewritten atomically
(a copy beside it, edited, fsynced and renamed over it; permissions and modification time kept), so
its audio and other tags are untouched and a crash leaves it as before or as after. A file changed
since its analysis (size or modification time), read-only, or of a format without a genre field is
skipped with its reason. Every change is recorded first in the tag journal (--tag-journal; default
<results stem>.tag-journal.jsonl beside --csv or --json, for a file without them
genrekit.tag-journal.jsonl here); --undo-tags JOURNAL restores the genres it records, and can be run
again if interrupted. --dry-run prints what would change and changes nothing. For a folder,
--write-tags needs --csv or --json: the tags are written from the resumable results, after the
analysis; run the same command again after an interruption. A ready tagger (musicnn-msd/-mtt) has no
top label to write: use a genre model.

--html PATH writes a report to open in a browser, one self-contained file per page (no network
access): for a file, the verdict, the timeline of the label scores and a player whose playhead follows
on the timeline (click or use the arrow keys to seek); for a folder or --evaluate, PATH is an index of
every file (sortable, filterable; with --evaluate the confusion matrix, each cell listing its files),
and each analyzed file's page is written as the file is done, to <PATH stem>_tracks/<file>.html.
Exit status: 0 when the file (or at least one file of a folder) was analyzed; 1 when the file or the
model is refused (one line on stderr); 2 for a bad config or option.

Feature, slicing and normalization settings come from the model bundle, never from --config;
the config only gives the "analysis" defaults (overlap, aggregation, batch_size, top_k) and
build.audio_extensions (which files a folder holds). It is optional.

Ready taggers, no training needed: --model musicnn-msd (Million Song Dataset) or musicnn-mtt
(MagnaTagATune), the pretrained musicnn models (Pons & Serra 2019), rank 50 tags (genres such as
rock, jazz, blues, Hip-Hop, but also instruments and moods) with musicnn's own features and 3 s
patches. Tagging is not genre classification: tags are not exclusive, each slice gives every tag
an independent probability, and a track's score for a tag is its mean probability over the
slices (aggregation "mean", the only one for taggers), so the shares do not add up to 100 %. A tagger
cuts a track as musicnn's extractor does, a patch every 3 s, unless --overlap or analysis.overlap
says otherwise.

examples:
  python -m track_analyzer song.mp3                                 # the ready genre model
  python -m track_analyzer music/ --csv music.csv                   # a library, with the ready model
  python -m track_analyzer song.mp3 --model output/models/crnn
  python -m track_analyzer song.mp3 --model output/models/crnn --json song.json --plot song.png
  python -m track_analyzer music/ --model output/models/crnn --csv music.csv   # again: resumes
  python -m track_analyzer music/ --model output/models/crnn --csv music.csv --scheduler tcp://head:8786
  python -m track_analyzer --evaluate labelled/ --model output/models/crnn --csv eval.csv
  python -m track_analyzer song.mp3 --model musicnn-msd --top-k 5 --json song-tags.json
  python -m track_analyzer song.mp3 --model output/models/crnn --html song.html
  python -m track_analyzer music/ --model output/models/crnn --csv music.csv --html music.html
  python -m track_analyzer music/ --csv music.csv --write-tags --dry-run       # what would change
  python -m track_analyzer music/ --csv music.csv --write-tags                 # journal: music.tag-journal.jsonl
  python -m track_analyzer --undo-tags music.tag-journal.jsonl
"""


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def share(text: str) -> float:
    value = float(text)
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, got {text}")
    return value


def make_parser() -> argparse.ArgumentParser:
    parser = cli.make_parser(DESCRIPTION)
    parser.prog = "python -m track_analyzer"
    parser.add_argument(
        "input", nargs="?", type=Path, metavar="AUDIO", help="an audio file, or a folder analyzed recursively"
    )
    parser.add_argument(
        "--model",
        type=Path,
        default=Path(registry.DEFAULT_MODEL),
        metavar="DIR",
        help=f"run folder written by train_crnn.py or train_baselines.py (bundle.json + model), "
        f"the ready genre model ({', '.join(registry.READY)}: the default, see above), or a "
        f"ready tagger: {', '.join(registry.PRETRAINED)}",
    )
    parser.add_argument(
        "--evaluate",
        type=Path,
        metavar="FOLDER",
        help="instead of AUDIO: a folder-per-label tree (<label>/<files>); reports track-level "
        "accuracy and the confusion matrix (confusion.png next to --csv, or at --plot)",
    )
    parser.add_argument(
        "--overlap",
        type=float,
        metavar="SECONDS",
        help="overlap of analysis slices (default: analysis.overlap, else the model's own: 0 for the ready "
        "genre model, a slice every 3.008 s; half a slice for a trained run, a slice every 1.5 s at 3 s "
        "slices; 0 for a ready tagger)",
    )
    parser.add_argument(
        "--aggregation",
        choices=METHODS,
        help="how slice scores make the verdict (default: analysis.aggregation, sum; taggers: mean, their only one)",
    )
    parser.add_argument(
        "--top-k", type=positive_int, metavar="K", help="labels shown per track (default: analysis.top_k, 3)"
    )
    parser.add_argument(
        "--batch-size",
        type=positive_int,
        metavar="N",
        help="slices per forward pass (default: analysis.batch_size, 64)",
    )
    parser.add_argument(
        "--json",
        type=Path,
        metavar="PATH",
        help="a file: labels (model order), multi_label (true for a tagger), ranking (label, score, "
        "share) and slices (start in s, scores per label); a folder: JSON Lines, a first line "
        "with the analysis settings, then one line per file (path, status, duration, n_slices, "
        "ranking), resumable like --csv; --evaluate: the classification report and each file's "
        "record",
    )
    parser.add_argument(
        "--plot",
        type=Path,
        metavar="PNG",
        help="a file: timeline of label probabilities over the track; --evaluate: the confusion matrix",
    )
    parser.add_argument(
        "--csv",
        type=Path,
        metavar="PATH",
        help="folder or --evaluate: one row per file (path, status, top label and share, "
        "duration, slices, a share per label), written as each file is done; run again, "
        "it resumes (the settings it was made with are kept in PATH.settings.json)",
    )
    parser.add_argument(
        "--runtime",
        choices=registry.RUNTIMES,
        default="auto",
        help="auto (default): the model's LiteRT export, without TensorFlow (a run folder made "
        "before exports existed is exported on first use), else Keras; litert: the export "
        "or an error; keras: the Keras model",
    )
    parser.add_argument(
        "--precision",
        choices=registry.PRECISIONS,
        default="auto",
        help="which LiteRT export: auto (default): the one with int8 weights (model.int8.tflite) where "
        "the model has one and the CPU has int8 dot products (AVX-512 VNNI or AVX-VNNI), else the float "
        "one (model.tflite); float, int8: that one (int8: or an error). Results files made with one "
        "are not resumed with the other",
    )
    parser.add_argument(
        "--html",
        type=Path,
        metavar="PATH",
        help="a file: its page (verdict, timeline, player; about 85 KB for a 4-minute track); "
        "a folder or --evaluate: the index page, the files' pages in <PATH stem>_tracks/",
    )
    parser.add_argument(
        "--embed-audio",
        action="store_true",
        help="put the audio inside the --html pages instead of linking to the file by its "
        "relative path: a page then works anywhere but is about 4/3 of the audio "
        "file's size",
    )
    parser.add_argument(
        "--restart",
        action="store_true",
        help="analyze every file again into --csv/--json, even if they hold results made with other settings",
    )
    parser.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        help="folder or --evaluate: analyze on the workers of the Dask cluster at ADDRESS "
        "(tcp://host:8786), see docs/SCALING.md",
    )
    tags = parser.add_argument_group("genre tags (see above and docs/GUIDE.md#tag-your-library)")
    tags.add_argument(
        "--write-tags",
        action="store_true",
        help="write the top label into each analyzed file's genre tag (a folder: with --csv or --json)",
    )
    tags.add_argument(
        "--min-share",
        type=share,
        metavar="S",
        help=f"write only where the top label's share is at least S, 0 to 1 (default {DEFAULT_MIN_SHARE:g}: there the "
        f"ready genre model's top label was right on 86 %% of the clips by artists it never heard, 96 %% of the "
        f"full 30-s clips, and 80 %% of the clips reached it; 0.5: 84 %% right, 89 %% reach it)",
    )
    tags.add_argument(
        "--tag-mode",
        choices=MODES,
        help="fill (default): only files without a genre; replace: replace their genre; add: add the verdict beside it",
    )
    tags.add_argument(
        "--tag-journal",
        type=Path,
        metavar="PATH",
        help="where each change is recorded before it is made (default: <results stem>.tag-journal.jsonl "
        "beside --csv or --json; a file without them: genrekit.tag-journal.jsonl in the current folder)",
    )
    tags.add_argument(
        "--undo-tags",
        type=Path,
        metavar="JOURNAL",
        help="instead of AUDIO: restore the genre tags a tag journal records (resumable; no model is loaded)",
    )
    tags.add_argument(
        "--dry-run",
        action="store_true",
        help="with --write-tags or --undo-tags: print what would change, change nothing",
    )
    return parser


@dataclass(frozen=True)
class Settings:
    """The analysis settings after config defaults and command-line flags."""

    overlap: float
    aggregation: str
    top_k: int
    batch_size: int
    extensions: tuple[str, ...]
    precision: str  # the export that scores the slices: "int8", or "float" (also Keras and baselines)


def read_config(path: Path) -> Config:
    """The config file; the default one is optional for the analyzer (all its keys have defaults)."""
    if path == cli.DEFAULT_CONFIG and not path.exists():
        return Config()
    return load_config(path)


def resolve_settings(args: argparse.Namespace, bundle: Bundle) -> Settings:
    cfg = read_config(args.config)
    analysis = cfg.analysis
    # the config's aggregation is for genre models; a tagger's is always the mean
    requested = args.aggregation or (None if bundle.multi_label else analysis.aggregation)
    return Settings(
        overlap=slice_settings(bundle, analysis.overlap if args.overlap is None else args.overlap).overlap,
        aggregation=choose_aggregation(bundle, requested),
        top_k=args.top_k or analysis.top_k,
        batch_size=args.batch_size or analysis.batch_size,
        extensions=cfg.build.audio_extensions,
        precision=analysis_precision(bundle, args),
    )


def analysis_precision(bundle: Bundle, args: argparse.Namespace) -> str:
    """The precision the slices are scored in (see ``--precision``), decided here once, so that the workers
    of a cluster use it whatever their CPU; refuses ``--precision int8`` with ``--runtime keras``."""
    if registry.family(bundle) == registry.BASELINE:
        return "float"
    if args.runtime == "keras":
        if args.precision == "int8":
            raise GenrekitError("--precision int8 runs the int8 LiteRT export; --runtime keras runs float32")
        return "float"
    return registry.choose_precision(bundle, args.precision)


def import_keras() -> None:
    """Import Keras and TensorFlow quietly, and a second or two faster than a plain import.

    The import makes millions of long-lived objects and no garbage, so the cyclic garbage
    collector only costs time there (about a quarter of the import); freezing them after
    spares every later collection, and the one at exit (1.5 s), from walking them again.
    """
    gc.disable()
    try:
        with cli.quiet_native_logs():
            import keras  # noqa: F401  (the import is what prints)
    finally:
        gc.enable()
    gc.freeze()


def load_analyzer(bundle: Bundle, batch_size: int, args: argparse.Namespace) -> Analyzer:
    # An exported model (LiteRT) and a classical baseline (NumPy) load without TensorFlow.
    if registry.needs_keras(bundle, args.runtime, args.precision):
        import_keras()
    # workers compute the features
    return Analyzer(
        bundle, batch_size=batch_size, warm_up_features=False, runtime=args.runtime, precision=args.precision
    )


# --------------------------------------------------------------------------- modes


def analyze_file(path: Path, bundle: Bundle, args: argparse.Namespace, settings: Settings) -> None:
    stat = stat_or_none(path)  # before the decode: a file changed during its analysis is not tagged
    if registry.needs_keras(bundle, args.runtime, args.precision):
        # With Keras to import (5 s), the track decodes in a worker process meanwhile.
        with SliceLoader([path], slice_settings(bundle, settings.overlap), workers=1) as loader:
            analyzer = load_analyzer(bundle, settings.batch_size, args)
            ((_, slices),) = loader
        if isinstance(slices, TrackError):
            raise GenrekitError(f"{path}: {slices}")
        result = analyzer.analyze_slices(path, slices, overlap=settings.overlap, aggregation=settings.aggregation)
    else:
        # An exported model loads in milliseconds: the track is decoded a block at a time in a thread
        # while the model scores the slices before (memory flat in the track's length).
        analyzer = load_analyzer(bundle, settings.batch_size, args)
        try:
            result = analyzer.analyze(path, overlap=settings.overlap, aggregation=settings.aggregation)
        except TrackError as exc:
            raise GenrekitError(f"{path}: {exc}") from None
    print(result.summary(settings.top_k), flush=True)
    if args.json:
        output.write_json(args.json, {"model": str(args.model), **result.to_dict()})
    if args.plot:
        output.plot_timeline(result, args.plot)
    if args.html:
        write_track_page(args.html, result, args, settings)
    if args.write_tags:
        write_tags([record_of(str(path), "ok", result, stat=stat)], Path(), args)


def write_track_page(
    page: Path, result: TrackAnalysis, args: argparse.Namespace, settings: Settings, index: Path | None = None
) -> None:
    """Write the ``--html`` page of an analyzed file to ``page``, linking back to ``index`` if given."""
    pages.write_track_page(
        page,
        {"model": str(args.model), **result.to_dict()},
        result.path,
        embed=args.embed_audio,
        top_k=settings.top_k,
        index=index,
    )


def write_index_page(
    folder: Path,
    records: dict[str, dict],
    args: argparse.Namespace,
    settings: Settings,
    labels: Sequence[str] = (),
    evaluation: dict | None = None,
) -> None:
    """Write the ``--html`` index of a folder's records (with ``--evaluate``, its classification report)."""
    title = f"{folder.name or folder}: {'evaluation' if evaluation else 'library'} of {len(records)} files"
    pages.write_index_page(
        args.html,
        list(records.values()),
        title=title,
        labels=labels,
        report=evaluation,
        settings=[("Model", args.model), ("Aggregation", settings.aggregation), ("Folder", folder)],
    )


def outcomes_of(
    bundle: Bundle, paths: list[Path], args: argparse.Namespace, settings: Settings
) -> Iterator[FileOutcome]:
    """Analyze ``paths``: here (decoding in worker processes ahead of batches filled across files,
    outcomes in path order), or on a Dask cluster with ``--scheduler`` (outcomes as they finish)."""
    if args.scheduler:
        from genrekit.inference.cluster import analyze_on_cluster  # imports Dask

        yield from analyze_on_cluster(
            args.scheduler,
            args.model,
            paths,
            overlap=settings.overlap,
            aggregation=settings.aggregation,
            batch_size=settings.batch_size,
            runtime=args.runtime,
            precision=settings.precision,
        )
        return
    with SliceLoader(paths, slice_settings(bundle, settings.overlap)) as loader:
        analyzer = load_analyzer(bundle, settings.batch_size, args)  # while the first tracks decode
        yield from analyze_loaded(analyzer, loader, overlap=settings.overlap, aggregation=settings.aggregation)


def run_files(
    bundle: Bundle,
    paths: list[Path],
    root: Path,
    args: argparse.Namespace,
    settings: Settings,
    truth: dict[Path, str] | None = None,
) -> dict[str, dict]:
    """Analyze the ``paths`` that the results files do not hold yet, with one model load; print a line per
    file; write each file's record to ``--csv`` (and a folder's ``--json``) as it is done; return the
    records of all ``paths`` by relative path, in path order."""
    from tqdm import tqdm

    evaluate = truth is not None
    names = {path: path.relative_to(root).as_posix() for path in paths}
    stored = results_settings(
        bundle,
        overlap=settings.overlap,
        aggregation=settings.aggregation,
        evaluate=evaluate,
        precision=settings.precision,
    )
    targets = [path for path in (args.csv, None if evaluate else args.json) if path]
    records: dict[str, dict] = {}
    with contextlib.ExitStack() as stack:
        files = [stack.enter_context(ResultsFile(path, stored, restart=args.restart)) for path in targets]
        for results in files:
            if args.write_tags and results.lacks_file_stats:
                raise GenrekitError(
                    f"{results.path}: made by an older genrekit, without each file's size and modification "
                    f"time, which --write-tags needs to tell a file changed since its analysis; give --restart "
                    f"to analyze again into it, or choose another file"
                )
        done = done_paths(files)
        todo = [path for path in paths if names[path] not in done]
        # before the analysis: a file changed while it is analyzed is not tagged as if it were not
        stats = {path: stat_or_none(path) for path in todo}
        if len(todo) < len(paths):
            cli.log(
                f"{len(paths) - len(todo)} of {len(paths)} files are in the results already; analyzing "
                f"the other {len(todo)}"
            )
        with tqdm(total=len(todo), unit="track", desc="analyzing", file=sys.stderr) as bar:
            for outcome in outcomes_of(bundle, todo, args, settings):
                name = outcome.path.relative_to(root).as_posix()
                if outcome.result is None:
                    bar.write(f"{name}: {outcome.status}", file=sys.stderr)
                elif not evaluate:
                    bar.write(f"{name}\t{outcome.result.summary(settings.top_k)}", file=sys.stdout)
                record = record_of(
                    name,
                    outcome.status,
                    outcome.result,
                    None if truth is None else truth[outcome.path],
                    stats[outcome.path],
                )
                if args.html and outcome.result is not None:  # before the record: a file done has its page
                    write_track_page(
                        pages.track_page_path(args.html, name), outcome.result, args, settings, index=args.html
                    )
                for results in files:
                    results.add(record)
                records[name] = record
                bar.update()
        for results in files:
            records = {**{record["path"]: record for record in results.finish()}, **records}
    return {names[path]: records[names[path]] for path in paths}


def analyze_folder(folder: Path, bundle: Bundle, args: argparse.Namespace, settings: Settings) -> None:
    if args.plot:
        raise GenrekitError("--plot draws one track's timeline: give a file, not a folder")
    slice_settings(bundle, settings.overlap)  # refuse a bad overlap before any work
    paths = find_audio_files(folder, settings.extensions)
    if not paths:
        raise GenrekitError(f"{folder}: no audio files found ({' '.join(settings.extensions)})")
    records = run_files(bundle, paths, folder, args, settings)
    if not any("ranking" in record for record in records.values()):
        raise GenrekitError(f"{folder}: none of the {len(records)} audio files could be analyzed")
    if args.html:
        write_index_page(folder, records, args, settings)
    if args.write_tags:
        write_tags(list(records.values()), folder, args)


# --------------------------------------------------------------------------- genre tags

TAG_COUNTS = {  # how the summary line names each outcome, in its order
    "written": "written",
    "dry run": "to write (dry run: nothing written)",
    "restored": "restored",
    "already": "already tagged",
    "nothing to undo": "with nothing to undo",
    "kept": "kept (they have a genre: --tag-mode replace or add changes it)",
    "below min-share": "below --min-share",
    "skipped": "skipped",
    None: "not analyzed",
}


def journal_path(args: argparse.Namespace) -> Path:
    """``--tag-journal``, or ``<results stem>.tag-journal.jsonl`` beside ``--csv`` or ``--json``, or
    ``genrekit.tag-journal.jsonl`` in the current folder."""
    if args.tag_journal:
        return args.tag_journal
    results = args.csv or args.json
    return results.with_name(f"{results.stem}.tag-journal.jsonl") if results else Path("genrekit.tag-journal.jsonl")


def genres_text(values: Sequence[str]) -> str:
    return "; ".join(values) if values else "(none)"


def report_tags(outcomes: Iterator[tuple[str, object]], total: int, verbose: bool, what: str, journal: Path) -> None:
    """Print a line per changed file (stdout) and per skipped one (stderr; with ``verbose`` every file
    not changed), then a summary on stderr."""
    from tqdm import tqdm

    counts: dict = {}
    with tqdm(total=total, unit="file", desc=what, file=sys.stderr) as bar:
        for name, outcome in outcomes:
            status = outcome.status if outcome else None
            counts[status] = counts.get(status, 0) + 1
            if status in ("written", "restored", "dry run"):
                change = f"genre: {genres_text(outcome.before)} -> {genres_text(outcome.after)}"
                bar.write(f"{name}\t{change}{' (dry run)' if status == 'dry run' else ''}", file=sys.stdout)
            elif status == "skipped" or (verbose and outcome):
                detail = outcome.reason or f"{status} ({genres_text(outcome.before)})"
                bar.write(
                    f"{name}: genre not {'restored' if what == 'undoing' else 'written'}: {detail}", file=sys.stderr
                )
            bar.update()
    summary = ", ".join(f"{counts[key]} {text}" for key, text in TAG_COUNTS.items() if counts.get(key))
    cli.log(f"genre tags: {summary or 'no files'}; journal: {journal}")


def write_tags(records: list[dict], root: Path, args: argparse.Namespace) -> None:
    """Write the verdicts of ``records`` (paths relative to ``root``) into the files' genre tags."""
    options = TagOptions(
        args.tag_mode or "fill", DEFAULT_MIN_SHARE if args.min_share is None else args.min_share, args.dry_run
    )
    path = journal_path(args)
    with TagJournal(path, write=not args.dry_run) as journal:
        report_tags(tag_files(records, root, journal, options), len(records), len(records) == 1, "tagging", path)


def undo_tags(args: argparse.Namespace) -> None:
    if not args.undo_tags.is_file():
        raise GenrekitError(f"{args.undo_tags}: no such tag journal")
    with TagJournal(args.undo_tags, write=False) as journal:
        outcomes = ((str(outcome.path), outcome) for outcome in undo_journal(journal, args.dry_run))
        report_tags(outcomes, len({entry["path"] for entry in journal.entries}), False, "undoing", args.undo_tags)


def check_tag_options(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Refuse tag options without the mode they belong to."""
    given = [
        flag
        for flag in ("--min-share", "--tag-mode", "--tag-journal")
        if getattr(args, flag[2:].replace("-", "_")) is not None
    ]
    if given and not args.write_tags:
        parser.error(f"{', '.join(given)}: only with --write-tags")
    if args.dry_run and not (args.write_tags or args.undo_tags):
        parser.error("--dry-run: only with --write-tags or --undo-tags")
    if args.undo_tags and (args.write_tags or args.input is not None or args.evaluate is not None):
        parser.error("--undo-tags JOURNAL is a mode of its own: give no AUDIO, --evaluate or --write-tags")
    if args.write_tags and args.evaluate is not None:
        parser.error("--write-tags is for an AUDIO file or folder, not --evaluate")


def labelled_files(folder: Path, labels: Sequence[str], extensions: Sequence[str]) -> dict[Path, str]:
    """``{file: label}`` for the files of a folder-per-label tree whose label the model knows."""
    from genrekit.dataset.scan import scan_audio_folder  # the build's own reading of a label tree

    scan = scan_audio_folder(folder, extensions)
    unknown = sorted(set(scan.label_folders) - set(labels))
    for name in unknown:
        count = sum(t.label == name for t in scan.tracks)
        print(f"{folder / name}: not a label of the model; its {count} file(s) are skipped", file=sys.stderr)
    suffixes = {e.lower() for e in extensions}
    loose = [
        item["path"]
        for item in scan.ignored
        if item["reason"] == "not inside a label folder" and Path(item["path"]).suffix.lower() in suffixes
    ]
    if loose:
        print(f"{folder}: {len(loose)} audio file(s) outside label folders are skipped", file=sys.stderr)
    return {folder / t.path: t.label for t in scan.tracks if t.label in labels}


def evaluate_folder(folder: Path, bundle: Bundle, args: argparse.Namespace, settings: Settings) -> None:
    slice_settings(bundle, settings.overlap)
    truth = labelled_files(folder, bundle.labels, settings.extensions)
    if not truth:
        raise GenrekitError(
            f"{folder}: no audio files in folders named after the model's labels ({', '.join(bundle.labels)})"
        )
    records = run_files(bundle, sorted(truth), folder, args, settings, truth=truth)
    scored = [record for record in records.values() if "ranking" in record]
    if not scored:
        raise GenrekitError(f"{folder}: none of the {len(records)} audio files could be analyzed")
    index = {name: i for i, name in enumerate(bundle.labels)}
    true = np.array([index[record["true_label"]] for record in scored])
    pred = np.array([index[record["ranking"][0]["label"]] for record in scored])
    report = classification_report(true, pred, bundle.labels)
    print(output.evaluation_summary(report, bundle.labels, settings.aggregation), flush=True)
    confusion = args.plot or (args.csv.parent / "confusion.png" if args.csv else None)
    if confusion:
        confusion.parent.mkdir(parents=True, exist_ok=True)
        plot_confusion(
            np.asarray(report["confusion_matrix"]),
            bundle.labels,
            confusion,
            title=f"{folder.name}: track accuracy {100 * report['accuracy']:.1f} %",
        )
    if args.html:
        write_index_page(folder, records, args, settings, bundle.labels, report)
    if args.json:
        output.write_json(
            args.json,
            {
                "model": str(args.model),
                "labels": bundle.labels,
                "aggregation": settings.aggregation,
                "skipped": len(records) - len(scored),
                "report": report,
                "tracks": list(records.values()),
            },
        )


def main(argv: Sequence[str] | None = None) -> int:
    parser = make_parser()
    args = parser.parse_args(argv)
    check_tag_options(parser, args)
    if args.undo_tags:
        undo_tags(args)
        return 0
    if (args.input is None) == (args.evaluate is None):
        parser.error("give either an AUDIO file or folder, or --evaluate FOLDER")
    if args.embed_audio and not args.html:
        raise GenrekitError("--embed-audio puts the audio inside the --html pages: give --html PATH too")
    bundle = open_model(args.model)
    if args.write_tags and bundle.multi_label:
        raise GenrekitError(
            f"--write-tags writes a genre model's top label; {bundle.pretrained} is a tagger (independent tag "
            f"probabilities, no top label's share): use the ready genre model or a run folder"
        )
    if args.write_tags and args.input.is_dir() and not (args.csv or args.json):
        raise GenrekitError("--write-tags on a folder needs --csv or --json: the tags are written from those results")
    settings = resolve_settings(args, bundle)
    if args.evaluate is not None:
        if not args.evaluate.is_dir():
            raise GenrekitError(f"{args.evaluate}: no such folder")
        evaluate_folder(args.evaluate, bundle, args, settings)
    elif args.input.is_dir():
        analyze_folder(args.input, bundle, args, settings)
    elif args.input.exists():
        if args.csv or args.scheduler:
            raise GenrekitError(
                f"{'--csv' if args.csv else '--scheduler'} is for a folder or --evaluate"
                + ("; for a file use --json" if args.csv else "")
            )
        analyze_file(args.input, bundle, args, settings)
    else:
        raise GenrekitError(f"{args.input}: no such file or folder")
    return 0
