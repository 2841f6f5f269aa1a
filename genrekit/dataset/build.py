"""Build ``dataset.h5`` from a folder-per-label audio tree, resumably and in parallel.

The build runs in three stages:

1. **Scan** the audio folder: label folders, audio files (recursively), hidden and
   non-audio files set aside. Track ids follow the sorted relative paths.
2. **Per track**, a pure function from (file, config) to stored slices:
   :func:`process_track` decodes, slices and computes features, then writes one
   small *shard* file atomically (temp file, fsync, rename) under
   ``<output>/.build/shards/<features fingerprint>/``, or a failure record for a
   track that cannot be used. A shard that exists is finished work; a rerun skips
   it. Tracks run on any ``concurrent.futures.Executor``: a local process pool
   by default (``build.executor: "local"``), or the workers of a Dask cluster
   (``"dask"``, :mod:`genrekit.dataset.cluster`) for corpora that outgrow one machine.
3. **Assemble**: split the usable tracks, then copy the shards into
   ``dataset.h5.tmp`` in whole HDF5 chunks, fsync it and rename it to ``dataset.h5``.

Killing the build at any instant therefore loses at most the tracks in flight,
and never leaves a half-written ``dataset.h5``.
"""

from __future__ import annotations

import concurrent.futures as cf
import itertools
import json
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from genrekit.audio.features import slice_geometry, warm_up
from genrekit.audio.variants import AudioVariant, audio_variants
from genrekit.core import h5layout
from genrekit.core.atomic import fsync_path, write_bytes
from genrekit.core.cli import log
from genrekit.core.config import Config, build_settings, changed_keys, fingerprint, to_jsonable
from genrekit.core.errors import GenrekitError
from genrekit.dataset.cluster import open_dask_executor
from genrekit.dataset.groups import derive_groups
from genrekit.dataset.scan import Scan, TrackFile, scan_audio_folder
from genrekit.dataset.shards import (
    TrackResult,
    process_track,
    remove_stale_temp_files,
    shard_paths,
    shard_settings,
    sort_out_finished,
)
from genrekit.dataset.splits import SPLIT_NAMES, assign_splits, read_custom_splits, read_mapping

WORK_DIR = ".build"
LOCK_FILE = ".build.lock"
REPORT_FILE = "build_report.json"


def _worker_init() -> None:
    # One BLAS thread per worker: the pool already uses every core.
    from threadpoolctl import threadpool_limits

    threadpool_limits(1)


class SerialExecutor(cf.Executor):
    """Runs tasks in the calling process (``build.workers: 1``); handy for debugging."""

    def submit(self, fn, /, *args, **kwargs):
        future: cf.Future = cf.Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except BaseException as exc:  # the caller sees it through the future, as with a pool
            future.set_exception(exc)
        return future


def default_executor(workers: int) -> cf.Executor:
    if workers == 1:
        return SerialExecutor()
    return cf.ProcessPoolExecutor(max_workers=workers, initializer=_worker_init)


@contextmanager
def open_executor(cfg: Config, workers: int, probe_track: Path, shard_dir: Path) -> Iterator[tuple[cf.Executor, int]]:
    """The executor ``build.executor`` asks for, and how many tracks it processes at once."""
    if cfg.build.executor == "dask":
        with open_dask_executor(cfg.build.dask_scheduler, workers, probe_track, shard_dir, cfg.features) as opened:
            yield opened
        return
    warm_up(cfg.features)  # before the pool forks, so every worker starts warm
    executor = default_executor(workers)
    try:
        yield executor, workers
    finally:
        executor.shutdown(wait=True, cancel_futures=True)


def run_tracks(
    todo: list[tuple[TrackFile, AudioVariant | None]],
    audio_folder: Path,
    shard_dir: Path,
    cfg: Config,
    executor: cf.Executor,
    on_done: Callable[[TrackResult], None],
    max_in_flight: int,
) -> None:
    """Process ``todo`` (tracks, or build-time copies of them) on ``executor``, keeping a bounded
    number of tasks in flight. Consecutive copies of one track are one task: one decode for all."""
    pending: set[cf.Future] = set()
    tasks = (
        (track, [variant for _, variant in pairs]) for track, pairs in itertools.groupby(todo, key=lambda pair: pair[0])
    )
    while True:
        for track, variants in tasks:
            pending.add(executor.submit(process_track, track, audio_folder, shard_dir, cfg, variants))
            if len(pending) >= max_in_flight:
                break
        if not pending:
            return
        done, pending = cf.wait(pending, return_when=cf.FIRST_COMPLETED)
        for future in done:
            for result in future.result():
                on_done(result)


# --------------------------------------------------------------------------- assembly


@dataclass
class Assembly:
    """Everything decided before writing: labels, splits, table rows."""

    labels: list[str]
    rows: list[dict]  # one per scanned track, in track-id order
    split_of: dict[str, str]
    unknown_custom: list[str] = field(default_factory=list)
    groups: int = 0  # groups that split.group_file or split.group_by gave
    ungrouped: list[str] = field(default_factory=list)  # tracks split.group_by found no group for
    variants: list[AudioVariant] = field(default_factory=list)  # audio_augmentation's copies of train tracks
    copies: dict[tuple[str, str], TrackResult] = field(default_factory=dict)  # (path, variant name): result

    def train_copies(self, tracks: list[TrackFile]) -> list[tuple[TrackFile, AudioVariant]]:
        """The copies the train split gets: every variant of every train track, in track order."""
        return [(t, v) for t in tracks if self.split_of.get(t.path) == "train" for v in self.variants]


def plan_assembly(
    tracks: list[TrackFile], results: dict[str, TrackResult], cfg: Config, progress: bool = False
) -> Assembly:
    usable = [t for t in tracks if results[t.path].ok]
    labels = sorted({t.label for t in usable})
    custom = read_custom_splits(cfg.split.custom_split_file) if cfg.split.custom_split_file else {}
    groups, ungrouped = {}, []
    if cfg.split.group_file:
        groups = read_mapping(cfg.split.group_file, "group", "split.group_file")
    elif cfg.split.group_by:
        groups, ungrouped = derive_groups(
            cfg.paths.audio_folder, (t.path for t in usable), cfg.split.group_by, progress=progress
        )
    split_of = assign_splits(
        ((t.path, t.label) for t in usable),
        cfg.split.validation_share,
        cfg.split.test_share,
        cfg.split.seed,
        custom,
        groups,
    )
    label_index = {name: i for i, name in enumerate(labels)}
    rows = []
    for track in tracks:
        result = results[track.path]
        status = ("padded" if result.padded else "ok") if result.ok else f"skipped: {result.reason}"
        rows.append(
            {
                "path": track.path,
                "label": label_index.get(track.label, -1),
                "split": split_of.get(track.path, ""),
                "duration": result.duration,
                "n_slices": result.n_slices,
                "status": status,
            }
        )
    known = {t.path for t in tracks}
    return Assembly(
        labels,
        rows,
        split_of,
        sorted(p for p in custom if p not in known),
        len(set(groups.values())),
        ungrouped,
        audio_variants(cfg.audio_augmentation),
    )


def source_fingerprint(config_fp: str, tracks: list[TrackFile]) -> str:
    """What a build was made from: the settings and every file's path, size and mtime."""
    return fingerprint({"config": config_fp, "files": [[t.path, t.size, t.mtime_ns] for t in tracks]})


def dataset_fingerprint(
    config_fp: str, rows: list[dict], tracks: list[TrackFile], copies: dict[tuple[str, str], TrackResult]
) -> str:
    content = {
        "config": config_fp,
        "tracks": [[t.path, t.size, t.mtime_ns, r["status"], r["n_slices"]] for t, r in zip(tracks, rows)],
    }
    if copies:  # absent without copies, so the fingerprints of datasets built before them stay the same
        content["copies"] = sorted([path, name, r.n_slices] for (path, name), r in copies.items() if r.ok)
    return fingerprint(content)


def write_dataset(
    path: Path,
    plan: Assembly,
    tracks: list[TrackFile],
    shard_dir: Path,
    cfg: Config,
    settings: dict,
    progress: Callable[[int], None],
) -> None:
    """Copy the shards into ``path`` (a temp file; the caller renames it)."""
    import h5py

    geometry = slice_geometry(cfg.slicing.slice_duration, cfg.slicing.overlap, cfg.features)
    config_fp = fingerprint(settings)
    with h5py.File(path, "w") as h5:
        h5.attrs["format_version"] = h5layout.FORMAT_VERSION
        h5layout.set_json_attr(h5, "labels", plan.labels)
        h5layout.set_json_attr(h5, "features", to_jsonable(cfg.features))
        h5layout.set_json_attr(h5, "slicing", to_jsonable(cfg.slicing))
        h5layout.set_json_attr(h5, "split", to_jsonable(cfg.split))
        h5layout.set_json_attr(h5, "build_settings", settings)
        h5.attrs["config_fingerprint"] = config_fp
        h5.attrs["dataset_fingerprint"] = dataset_fingerprint(config_fp, plan.rows, tracks, plan.copies)
        h5.attrs["source_fingerprint"] = source_fingerprint(config_fp, tracks)
        h5.attrs["silence_threshold_db"] = cfg.build.silence_threshold_db
        h5.attrs["spec_shape"] = list(geometry.spec_shape)
        if plan.variants:
            h5layout.set_json_attr(h5, "audio_variants", ["original"] + [v.name for v in plan.variants])

        table = np.zeros(len(plan.rows), dtype=h5layout.TRACKS_DTYPE)
        for i, row in enumerate(plan.rows):
            table[i] = tuple(row[name] for name in h5layout.TRACKS_DTYPE.names)
        h5.create_dataset("tracks", data=table)

        track_id = {t.path: i for i, t in enumerate(tracks)}
        variant_index = {v.name: i + 1 for i, v in enumerate(plan.variants)}
        for split in SPLIT_NAMES:
            # (track id, shard, variant index, slices): the tracks in track-id order, then (train only)
            # their copies, variant after variant
            members = [
                (i, shard_paths(shard_dir, t)[0], 0, r["n_slices"])
                for i, (t, r) in enumerate(zip(tracks, plan.rows))
                if r["split"] == split
            ]
            if split == "train":
                members += [
                    (
                        track_id[t.path],
                        shard_paths(shard_dir, t, v)[0],
                        variant_index[v.name],
                        plan.copies[t.path, v.name].n_slices,
                    )
                    for t, v in plan.train_copies(tracks)
                    if plan.copies[t.path, v.name].ok
                ]
            marked = split == "train" and bool(plan.variants)
            arrays = h5layout.create_split_arrays(
                h5.create_group(split), sum(m[3] for m in members), geometry.spec_shape, variants=marked
            )
            copy_shards(arrays, members, plan.rows, progress)
        h5.flush()
    fsync_path(path)


ASSEMBLY_BLOCK_CHUNKS = 8  # rows gathered per HDF5 write, in chunks (8 x 32 rows: 6.4 MB at 126 x 100)


def copy_shards(
    arrays: dict, members: list[tuple[int, Path, int, int]], rows: list[dict], progress: Callable[[int], None]
) -> None:
    """Copy the shards of ``members`` (track id, shard, variant index, slices; in order) into one
    split's arrays, in whole chunks.

    Rows are gathered in a buffer of :data:`ASSEMBLY_BLOCK_CHUNKS` chunks and written block by
    block, so every write covers whole chunks (HDF5 never reads a chunk back to fill it) and the
    number of writes follows the rows, not the tracks: time O(shards + rows), memory one block
    and one shard, whatever the size of the corpus.
    """
    specs_out = arrays["specs"]
    block = (specs_out.chunks[0] if specs_out.chunks else 1) * ASSEMBLY_BLOCK_CHUNKS
    buffers = {name: np.empty((block, *array.shape[1:]), dtype=array.dtype) for name, array in arrays.items()}
    written = filled = 0

    def flush() -> None:
        nonlocal written, filled
        for name, array in arrays.items():
            array[written : written + filled] = buffers[name][:filled]
        written, filled = written + filled, 0

    for track_id, shard, variant, _ in members:
        with np.load(shard) as data:
            track_rows = {"specs": data["specs"], "slice_starts": data["starts"]}
        n = len(track_rows["slice_starts"])
        taken = 0
        while taken < n:
            step = min(block - filled, n - taken)
            end = filled + step
            buffers["specs"][filled:end] = track_rows["specs"][taken : taken + step]
            buffers["slice_starts"][filled:end] = track_rows["slice_starts"][taken : taken + step]
            buffers["labels"][filled:end] = rows[track_id]["label"]
            buffers["track_ids"][filled:end] = track_id
            if "variants" in buffers:
                buffers["variants"][filled:end] = variant
            filled, taken = end, taken + step
            if filled == block:
                flush()
        progress(1)
    if filled:
        flush()


def build_report(plan: Assembly, scan: Scan, results: dict[str, TrackResult], dataset: Path) -> dict:
    rows = plan.rows
    labels_report = {}
    for label in scan.label_folders:
        mine = [r for t, r in zip(scan.tracks, rows) if t.label == label]
        labels_report[label] = {
            "tracks": {s: sum(r["split"] == s for r in mine) for s in SPLIT_NAMES},
            "slices": {s: sum(r["n_slices"] for r in mine if r["split"] == s) for s in SPLIT_NAMES},
            "skipped": sum(r["status"].startswith("skipped") for r in mine),
        }
    return {
        "dataset": str(dataset),
        "labels": plan.labels,
        "tracks_found": len(scan.tracks),
        "tracks_used": sum(r.ok for r in results.values()),
        "tracks_skipped": sum(not r.ok for r in results.values()),
        "tracks_padded": sum(r.padded for r in results.values()),
        "splits": {
            s: {
                "tracks": sum(r["split"] == s for r in rows),
                "slices": sum(r["n_slices"] for r in rows if r["split"] == s),
            }
            for s in SPLIT_NAMES
        },
        "per_label": labels_report,
        "empty_labels": [lb for lb in scan.label_folders if lb not in plan.labels],
        "skipped": [
            {"path": r["path"], "reason": r["status"].removeprefix("skipped: ")}
            for r in rows
            if r["status"].startswith("skipped")
        ],
        "padded": [r["path"] for r in rows if r["status"] == "padded"],
        "ignored": scan.ignored,
        "custom_split_paths_not_found": plan.unknown_custom,
        "groups": plan.groups,
        "tracks_without_group": plan.ungrouped,
        # build-time copies of the train tracks (audio_augmentation): in /train, marked by /train/variants
        "audio_augmentation": {
            "variants": [v.name for v in plan.variants],
            "copies": sum(r.ok for r in plan.copies.values()),
            "slices": sum(r.n_slices for r in plan.copies.values() if r.ok),
            "skipped": [
                {"path": path, "variant": name, "reason": r.reason}
                for (path, name), r in plan.copies.items()
                if not r.ok
            ],
        },
    }


# --------------------------------------------------------------------------- the build


@dataclass
class BuildOutcome:
    dataset: Path
    report: dict | None  # None when the build was already up to date
    processed_now: int = 0


def _stored_settings(dataset: Path, state_file: Path) -> dict | None:
    """The settings of the existing (or interrupted) build, if any."""
    if dataset.exists():
        import h5py

        try:
            with h5py.File(dataset, "r") as h5:
                return h5layout.json_attr(h5, "build_settings")
        except (OSError, KeyError, ValueError):
            # Never overwrite a file this tool did not write.
            raise GenrekitError(
                f"{dataset}: exists but was not written by build_dataset.py; "
                f"move it away or choose another paths.output_folder"
            ) from None
    if state_file.exists():
        try:
            return json.loads(state_file.read_text(encoding="utf-8"))["build_settings"]
        except (OSError, ValueError, KeyError):
            return None
    return None


def build_dataset(
    cfg: Config, *, restart: bool = False, executor: cf.Executor | None = None, show_progress: bool = True
) -> BuildOutcome:
    """Build (or resume, or confirm) ``<output_folder>/dataset.h5``. See the module docstring."""
    from filelock import FileLock, Timeout
    from tqdm import tqdm

    output = cfg.paths.output_folder
    output.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(output / LOCK_FILE), timeout=0)
    try:
        lock.acquire()
    except Timeout:
        raise GenrekitError(
            f"{output}: another build is running on this output folder (lock file {output / LOCK_FILE})"
        ) from None
    try:
        return _build_locked(cfg, restart, executor, show_progress, tqdm)
    finally:
        lock.release()


def _build_locked(cfg: Config, restart: bool, executor: cf.Executor | None, show_progress: bool, tqdm) -> BuildOutcome:
    output = cfg.paths.output_folder
    dataset = cfg.dataset_path
    work = output / WORK_DIR
    state_file = work / "state.json"
    settings = build_settings(cfg)
    config_fp = fingerprint(settings)

    previous = _stored_settings(dataset, state_file)
    if previous is not None and previous != settings and not restart:
        keys = ", ".join(changed_keys(previous, settings)) or "unknown keys"
        raise GenrekitError(
            f"{cfg.source or 'config'}: settings changed since the last build ({keys}); "
            f"run build_dataset.py --restart to rebuild {dataset}"
        )

    shard_root = work / "shards"
    shard_dir = shard_root / fingerprint(shard_settings(cfg))
    if restart and shard_root.is_dir():  # shards made with other feature settings are of no further use
        import shutil

        for other in shard_root.iterdir():
            if other != shard_dir:
                shutil.rmtree(other, ignore_errors=True)
    shard_dir.mkdir(parents=True, exist_ok=True)
    remove_stale_temp_files(work)
    output.joinpath(dataset.name + ".tmp").unlink(missing_ok=True)
    write_bytes(state_file, json.dumps({"build_settings": settings}, indent=1).encode("utf-8"))

    scan = scan_audio_folder(cfg.paths.audio_folder, cfg.build.audio_extensions)
    if not scan.tracks:
        raise GenrekitError(
            f"{cfg.paths.audio_folder}: no audio files found in label folders "
            f"(expected <audio_folder>/<label>/<track>.mp3)"
        )

    if dataset.exists() and previous == settings:
        # Decided from the files alone, so it holds even after .build/ was deleted to free disk.
        import h5py

        with h5py.File(dataset, "r") as h5:
            if h5.attrs.get("source_fingerprint") == source_fingerprint(config_fp, scan.tracks):
                log(f"{dataset} is up to date ({len(scan.tracks)} tracks); nothing to do")
                return BuildOutcome(dataset, None)

    workers = cfg.build.workers or len(os.sched_getaffinity(0))
    with ExitStack() as stack:
        opened: list[tuple[cf.Executor, int]] = [] if executor is None else [(executor, workers)]

        def process(todo: list[tuple[TrackFile, AudioVariant | None]], finished: int, desc: str) -> list[TrackResult]:
            """Run ``todo`` (the executor is opened for the first that needs it) under one progress bar."""
            done: list[TrackResult] = []
            bar = tqdm(
                total=len(todo) + finished,
                initial=finished,
                unit="track",
                desc=desc,
                disable=not show_progress,
                file=sys.stderr,
                dynamic_ncols=True,
            )

            def on_done(result: TrackResult) -> None:
                done.append(result)
                if not result.ok:
                    what = result.path if result.variant is None else f"{result.path} ({result.variant.name})"
                    bar.write(f"skipped {what}: {result.reason}", file=sys.stderr)
                bar.update(1)

            try:
                if todo and not opened:
                    opened.append(
                        stack.enter_context(
                            open_executor(
                                cfg, min(workers, len(todo)), cfg.paths.audio_folder / todo[0][0].path, shard_dir
                            )
                        )
                    )
                if todo:
                    run_tracks(todo, cfg.paths.audio_folder, shard_dir, cfg, opened[0][0], on_done, 4 * opened[0][1])
            finally:
                bar.close()
            fsync_path(shard_dir)
            return done

        todo, finished = sort_out_finished(shard_dir, ((track, None) for track in scan.tracks))
        if finished:
            log(f"resuming: {len(finished)} of {len(scan.tracks)} tracks already done")
        results = {r.path: r for r in finished + process(todo, len(finished), "tracks")}

        plan = plan_assembly(scan.tracks, results, cfg, progress=show_progress)
        if plan.ungrouped:
            log(
                f"split.group_by {cfg.split.group_by}: no group for {len(plan.ungrouped)} track(s), each split on "
                f"its own (listed in {REPORT_FILE})"
            )
        if not plan.labels:
            raise GenrekitError(
                f"{cfg.paths.audio_folder}: none of the {len(scan.tracks)} audio files could be "
                f"used (see the skipped files above)"
            )
        # Build-time copies of the train tracks only, once the split is known (audio_augmentation)
        copies_todo, finished = sort_out_finished(shard_dir, plan.train_copies(scan.tracks))
        if plan.variants:
            done = process(copies_todo, len(finished), "copies of train tracks")
            plan.copies.update(((r.path, r.variant.name), r) for r in finished + done)
        processed_now = len(todo) + len(copies_todo)

    tmp = output / (dataset.name + ".tmp")
    n_used = sum(r.ok for r in results.values()) + sum(r.ok for r in plan.copies.values())
    with tqdm(
        total=n_used,
        unit="track",
        desc="writing dataset.h5",
        disable=not show_progress,
        file=sys.stderr,
        dynamic_ncols=True,
    ) as write_bar:
        write_dataset(tmp, plan, scan.tracks, shard_dir, cfg, settings, write_bar.update)
    os.replace(tmp, dataset)
    fsync_path(output)

    report = build_report(plan, scan, results, dataset)
    write_bytes(output / REPORT_FILE, json.dumps(report, indent=2, ensure_ascii=False).encode("utf-8"))
    return BuildOutcome(dataset, report, processed_now=processed_now)


def summary_line(report: dict) -> str:
    splits = report["splits"]
    line = (
        f"built {report['dataset']}: {len(report['labels'])} labels, {report['tracks_used']} tracks "
        f"({splits['train']['tracks']}/{splits['val']['tracks']}/{splits['test']['tracks']} train/val/test), "
        f"{sum(s['slices'] for s in splits.values())} slices"
    )
    copies = report["audio_augmentation"]
    if copies["copies"]:
        line += f", and {copies['slices']} slices of {copies['copies']} build-time copies of the train tracks"
    if report["tracks_skipped"]:
        line += f"; skipped {report['tracks_skipped']} tracks (reasons in {REPORT_FILE})"
    if report["empty_labels"]:
        line += f"; labels with no usable track: {', '.join(report['empty_labels'])}"
    return line
