"""Turn ``dataset.h5`` into ``processed.h5``: normalize with train statistics, shuffle train.

The normalization statistics come from the train split only and are applied
unchanged to val and test, so no test information leaks into the inputs. They
are stored in ``processed.h5`` (root attribute ``normalization``) for the
trainer's bundle and the analyzer, which apply the same
:func:`genrekit.dataset.normalization.apply`.

Everything runs out of core, in chunks of ``rows_per_chunk(memory_limit_mb, ...)``
rows, so a dataset larger than memory works:

* statistics: per group of :data:`STATS_GROUP_ROWS` rows, a float64 mean and sum
  of squared deviations (two passes over the group), merged group by group with
  Chan et al.'s formula: numerically stable, one pass over the data, and
  independent of the chunk size;
* shuffle: the exact seeded permutation ``numpy.random.default_rng(seed)
  .permutation(n)``, done in two passes through a scratch file in the output
  folder. Pass 1 reads the train split sequentially (computing the statistics
  on the way) and writes each row into the region of the output block it will
  end up in, so the rows of one block lie together in the scratch file; pass 2
  reads one block at a time, each row straight into its place, normalizes it
  and writes it. Labels, track ids and slice starts follow the same permutation
  in memory (about 50 bytes a row, against tens of kilobytes for a spectrogram).

Reading and writing (HDF5, the scratch file) happen in the calling thread while
worker threads compute statistics and normalize (numpy releases the GIL), with
:data:`SLOTS` chunks in flight, each with its own reused buffers.

The output is written to ``processed.h5.tmp``, synced and renamed, so an
interrupted run never leaves a half-written ``processed.h5``; the next run
removes the leftovers. A run whose ``processed.h5`` matches the current config
and ``dataset.h5`` does nothing.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from genrekit.core import cli, h5layout
from genrekit.core.atomic import fsync_path
from genrekit.core.config import Config, build_settings, changed_keys, fingerprint, processing_settings
from genrekit.core.errors import GenrekitError
from genrekit.dataset.normalization import NormStats, apply
from genrekit.dataset.shuffle import gather_from_scratch, scatter_to_scratch, shuffle_plan
from genrekit.dataset.statistics import ChunkBuffers, StatsAccumulator

LOCK_NAME = ".process.lock"
TMP_SUFFIX = ".tmp"  # processed.h5.tmp: the file being written
SCRATCH_SUFFIX = ".scratch"  # processed.h5.scratch: raw train rows grouped by output block
SLOTS = 3  # chunks in flight: read, computed (by up to SLOTS worker threads) and written in turn
# Bytes of buffers per byte of a float16 chunk: SLOTS x (raw 1 + float32 work 2 + float16 out 1),
# and 4 to spare for the statistics groups, HDF5's chunk caches and the shuffle's index arrays.
WORKING_COPIES = 16
FLOAT16_MAX = float(np.finfo(np.float16).max)

Log = Callable[[str], None]


# --------------------------------------------------------------------------- chunking


def iter_chunks(n_rows: int, chunk_rows: int) -> Iterator[tuple[int, int]]:
    """``(start, stop)`` row ranges covering ``n_rows`` in chunks of ``chunk_rows``."""
    for start in range(0, n_rows, chunk_rows):
        yield start, min(n_rows, start + chunk_rows)


def rows_per_chunk(memory_limit_mb: int, row_bytes: int) -> int:
    """Rows per chunk so that the buffers of all chunks in flight stay within ``memory_limit_mb``.

    A multiple of ``h5layout.SPEC_CHUNK_ROWS`` (whole HDF5 chunks, and whole
    statistics groups), at least one of them.
    """
    rows = memory_limit_mb * 2**20 // (WORKING_COPIES * row_bytes)
    step = h5layout.SPEC_CHUNK_ROWS
    return max(step, rows // step * step)


def normalize_into(specs: np.ndarray, stats: NormStats, work: np.ndarray, out: np.ndarray) -> np.ndarray:
    """:func:`genrekit.dataset.normalization.apply` into ``work`` (float32), clipped to the float16
    range (no infinities stored), cast into ``out`` (float16); returns ``out``."""
    apply(specs, stats, out=work)
    np.clip(work, -FLOAT16_MAX, FLOAT16_MAX, out=work)
    np.copyto(out, work)
    return out


def pipeline(
    ranges: Iterable[tuple[int, int]],
    read: Callable[[int, int, ChunkBuffers], None] | None,
    compute: Callable[[int, int, ChunkBuffers], Any],
    write: Callable[[int, int, ChunkBuffers, Any], None],
    slots: list[ChunkBuffers],
    pool: Executor | None,
) -> None:
    """For every ``(start, stop)`` in order: ``read`` rows into a slot's buffers,
    ``compute`` on them, ``write`` the result; each called as ``f(start, stop, buffers, ...)``.

    ``read`` and ``write`` run in this thread, in row order (HDF5 is
    single-threaded); ``compute`` runs in ``pool`` (numpy and ``os.preadv``/
    ``os.pwritev`` release the GIL), with up to ``len(slots)`` chunks in flight,
    so that I/O and computing overlap. A slot is reused only once its previous
    chunk has been written. Without a pool everything runs here, in turn.
    """
    pending: deque = deque()

    def finish_oldest() -> None:
        start, stop, buffers, future = pending.popleft()
        write(start, stop, buffers, future.result())

    try:
        for index, (start, stop) in enumerate(ranges):
            if len(pending) == len(slots):  # the oldest chunk holds the buffers needed next
                finish_oldest()
            buffers = slots[index % len(slots)]
            if read is not None:
                read(start, stop, buffers)
            if pool is None:
                future: Future = Future()
                future.set_result(compute(start, stop, buffers))
            else:
                future = pool.submit(compute, start, stop, buffers)
            pending.append((start, stop, buffers, future))
        while pending:
            finish_oldest()
    finally:
        for *_, future in pending:  # after an error: nothing may run on with these buffers
            future.cancel()
        for *_, future in pending:
            with contextlib.suppress(BaseException):
                future.result()


def _read_h5(specs: h5py.Dataset) -> Callable[[int, int, ChunkBuffers], None]:
    def read(start: int, stop: int, buffers: ChunkBuffers) -> None:
        specs.read_direct(buffers.raw, np.s_[start:stop], np.s_[0 : stop - start])

    return read


# --------------------------------------------------------------------------- the passes


def _create_split(dst: h5py.File, src_group: h5py.Group, spec_shape: tuple[int, int]) -> dict[str, h5py.Dataset]:
    group = dst.create_group(src_group.name.lstrip("/"))
    for key, value in src_group.attrs.items():
        group.attrs[key] = value
    return h5layout.create_split_arrays(
        group, len(src_group["specs"]), spec_shape, variants=h5layout.VARIANTS in src_group
    )


def train_statistics(
    specs: h5py.Dataset, method: str, slots: list[ChunkBuffers], pool: Executor | None = None, bar=None
) -> NormStats:
    """Normalization statistics of a specs array, read in chunks of the slots' size."""
    acc = StatsAccumulator(method, specs.shape[-1])

    def summarize(start: int, stop: int, buffers: ChunkBuffers) -> Any:
        return acc.summarize(buffers.raw[: stop - start], buffers)

    def merge(start: int, stop: int, buffers: ChunkBuffers, summary: Any) -> None:
        acc.merge(summary)
        _advance(bar, stop - start)

    pipeline(iter_chunks(len(specs), len(slots[0].raw)), _read_h5(specs), summarize, merge, slots, pool)
    return acc.result()


def _normalizer(stats: NormStats) -> Callable[[int, int, ChunkBuffers], np.ndarray]:
    def normalize(start: int, stop: int, buffers: ChunkBuffers) -> np.ndarray:
        n = stop - start
        return normalize_into(buffers.raw[:n], stats, buffers.work[:n], buffers.out[:n])

    return normalize


def copy_normalized(
    src_group: h5py.Group,
    out: dict[str, h5py.Dataset],
    stats: NormStats,
    slots: list[ChunkBuffers],
    pool: Executor | None = None,
    bar=None,
) -> None:
    """Normalize a split chunk by chunk into ``out``, keeping its row order."""

    def write(start: int, stop: int, buffers: ChunkBuffers, normalized: np.ndarray) -> None:
        out["specs"][start:stop] = normalized
        for name in h5layout.row_arrays(src_group)[1:]:
            out[name][start:stop] = src_group[name][start:stop]
        _advance(bar, stop - start)

    pipeline(
        iter_chunks(len(src_group["specs"]), len(slots[0].raw)),
        _read_h5(src_group["specs"]),
        _normalizer(stats),
        write,
        slots,
        pool,
    )


def shuffle_normalized(
    src_group: h5py.Group,
    out: dict[str, h5py.Dataset],
    method: str,
    seed: int,
    scratch_path: Path,
    slots: list[ChunkBuffers],
    pool: Executor | None = None,
    progress: bool = False,
) -> NormStats:
    """Write a split normalized with its own statistics and shuffled; return the statistics.

    Pass 1 reads the split in order; workers summarize each chunk for the
    statistics and scatter its rows into ``scratch_path``. Pass 2: workers gather
    each output block (blocks of the slots' size) and normalize it; this thread
    writes it.
    """
    specs = src_group["specs"]
    n_rows, chunk_rows = len(specs), len(slots[0].raw)
    plan = shuffle_plan(n_rows, seed, chunk_rows)
    acc = StatsAccumulator(method, specs.shape[-1])
    fd = os.open(scratch_path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        with _bar(n_rows, "train: statistics + scatter", progress) as bar:

            def summarize_and_scatter(start: int, stop: int, buffers: ChunkBuffers) -> Any:
                rows = buffers.raw[: stop - start]
                scatter_to_scratch(fd, plan, start, rows)
                return acc.summarize(rows, buffers)

            def merge(start: int, stop: int, buffers: ChunkBuffers, summary: Any) -> None:
                acc.merge(summary)
                _advance(bar, stop - start)

            pipeline(iter_chunks(n_rows, chunk_rows), _read_h5(specs), summarize_and_scatter, merge, slots, pool)

        stats = acc.result()
        normalize = _normalizer(stats)
        with _bar(n_rows, "train: shuffle + normalize", progress) as bar:

            def gather_and_normalize(start: int, stop: int, buffers: ChunkBuffers) -> np.ndarray:
                gather_from_scratch(fd, plan, start, stop, buffers.raw)
                return normalize(start, stop, buffers)

            def write(start: int, stop: int, buffers: ChunkBuffers, normalized: np.ndarray) -> None:
                out["specs"][start:stop] = normalized
                _advance(bar, stop - start)

            pipeline(iter_chunks(n_rows, chunk_rows), None, gather_and_normalize, write, slots, pool)
    finally:
        os.close(fd)
        scratch_path.unlink(missing_ok=True)
    for name in h5layout.row_arrays(src_group)[1:]:  # small: 14 (15) bytes a row
        out[name][...] = src_group[name][()][plan.order]
    return stats


def _bar(total: int, desc: str, progress: bool):
    from tqdm import tqdm

    return tqdm(total=total, unit="rows", desc=desc, file=sys.stderr, disable=not progress)


def _advance(bar, rows: int) -> None:
    if bar is not None:
        bar.update(rows)


# --------------------------------------------------------------------------- checks


def open_dataset(path: Path) -> h5py.File:
    """Open ``dataset.h5`` and check the layout this module relies on."""
    if not path.is_file():
        raise GenrekitError(f"{path}: not found; run build_dataset.py first")
    try:
        h5 = h5py.File(path, "r")
    except OSError as exc:
        raise GenrekitError(f"{path}: cannot read as HDF5 ({exc}); run build_dataset.py again") from None
    try:
        if "dataset_fingerprint" not in h5.attrs:
            raise GenrekitError(f"{path}: no dataset_fingerprint attribute; run build_dataset.py again")
        shapes = set()
        for split in h5layout.SPLITS:
            for name in h5layout.ARRAYS:
                if f"{split}/{name}" not in h5:
                    raise GenrekitError(f"{path}: {split}/{name} missing; run build_dataset.py again")
            group = h5[split]
            rows = {len(group[name]) for name in h5layout.row_arrays(group)}  # the copies' marks too
            if len(rows) != 1:
                raise GenrekitError(f"{path}: {split} arrays have different row counts; run build_dataset.py again")
            shapes.add(group["specs"].shape[1:])
        if len(shapes) != 1 or len(shapes.pop()) != 2:
            raise GenrekitError(f"{path}: specs must be (rows, frames, n_mels) with one shape in every split")
        if len(h5["train/specs"]) == 0:
            raise GenrekitError(
                f"{path}: the train split is empty; nothing to compute the normalization "
                f"from (add tracks or lower split.validation_share/test_share, then "
                f"run build_dataset.py)"
            )
    except BaseException:
        h5.close()
        raise
    return h5


def check_build_settings(src: h5py.File, path: Path, cfg: Config) -> None:
    """``dataset.h5`` must have been built with this config's build settings."""
    if "build_settings" not in src.attrs:
        return
    changed = changed_keys(h5layout.json_attr(src, "build_settings"), build_settings(cfg))
    if changed:
        raise GenrekitError(
            f"{path}: built with other settings than the config "
            f"({', '.join(changed)} changed); run build_dataset.py first"
        )


def stale_reason(processed: Path, settings: dict, dataset_fp: str) -> str | None:
    """Why ``processed.h5`` must be (re)written, or None when it is up to date.

    Parameters
    ----------
    processed : Path
        The existing (or not) ``processed.h5``.
    settings : dict
        ``genrekit.core.config.processing_settings`` of the current config.
    dataset_fp : str
        The ``dataset_fingerprint`` of the current ``dataset.h5``.
    """
    if not processed.exists():
        return "no processed.h5 yet"
    try:
        with h5py.File(processed, "r") as h5:
            old_fp = str(h5.attrs["processing_fingerprint"])
            old_source = str(h5.attrs["source_dataset_fingerprint"])
            old_settings = h5layout.json_attr(h5, "processing_settings")
    except (OSError, KeyError, ValueError):
        return "the existing processed.h5 is unreadable or incomplete"
    reasons = []
    if old_source != dataset_fp:
        reasons.append("dataset.h5 was rebuilt")
    if old_fp != fingerprint(settings):
        keys = changed_keys(old_settings, settings)
        reasons.append(f"config changed: {', '.join(keys) if keys else 'processing settings'}")
    return "; ".join(reasons) or None


def _check_free_space(src: h5py.File, cfg: Config) -> None:
    """Fail early when the output folder cannot hold ``processed.h5.tmp`` and the scratch file."""

    def nbytes(dataset: h5py.Dataset) -> int:
        return int(np.prod(dataset.shape)) * dataset.dtype.itemsize

    needed = sum(nbytes(src[split][name]) for split in h5layout.SPLITS for name in h5layout.row_arrays(src[split]))
    if cfg.processing.shuffle:
        needed += nbytes(src["train/specs"])
    free = shutil.disk_usage(cfg.paths.output_folder).free
    if free < needed:
        raise GenrekitError(
            f"{cfg.paths.output_folder}: {needed / 2**30:.2f} GiB of free space needed "
            f"(processed.h5 and the shuffle's scratch file), {free / 2**30:.2f} GiB free"
        )


def _remove_leftovers(processed: Path, log: Log) -> None:
    for suffix in (TMP_SUFFIX, SCRATCH_SUFFIX):
        leftover = processed.with_name(processed.name + suffix)
        if leftover.exists():
            leftover.unlink()
            log(f"removed {leftover.name} left by an interrupted run")


# --------------------------------------------------------------------------- the run


@dataclass(frozen=True)
class ProcessOutcome:
    """What a run did: ``written`` False when ``processed.h5`` was already up to date."""

    path: Path
    written: bool
    reason: str | None = None
    rows: dict[str, int] | None = None
    stats: NormStats | None = None


def write_processed(
    src: h5py.File,
    tmp: Path,
    cfg: Config,
    chunk_rows: int | None = None,
    progress: bool = True,
    workers: int | None = None,
) -> tuple[NormStats, dict[str, int]]:
    """Write the processed form of the open ``dataset.h5`` to ``tmp``; return the statistics and row counts.

    ``workers`` threads compute (statistics, normalization) while this thread
    reads and writes; by default as many as there are cores, up to
    :data:`SLOTS`; 0 computes here.
    """
    p = cfg.processing
    train = src["train"]
    spec_shape = tuple(train["specs"].shape[1:])
    rows = {split: len(src[split]["specs"]) for split in h5layout.SPLITS}
    if chunk_rows is None:
        row_bytes = int(np.prod(spec_shape)) * np.dtype(h5layout.ARRAY_DTYPES["specs"]).itemsize
        chunk_rows = rows_per_chunk(p.memory_limit_mb, row_bytes)
    if workers is None:
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
        workers = min(SLOTS, cores or 1)
    # np.empty touches no memory: buffers larger than a small dataset cost nothing
    slots = [ChunkBuffers.allocate(chunk_rows, spec_shape) for _ in range(SLOTS)]
    settings = processing_settings(cfg)
    with contextlib.ExitStack() as stack:
        pool = stack.enter_context(ThreadPoolExecutor(workers)) if workers else None
        dst = stack.enter_context(h5py.File(tmp, "w"))
        for key, value in src.attrs.items():
            dst.attrs[key] = value
        for name in src:  # the tracks table and anything else beside the splits
            if name not in h5layout.SPLITS:
                src.copy(src[name], dst, name=name)
        out = _create_split(dst, train, spec_shape)
        if p.shuffle:
            scratch = tmp.with_name(tmp.name.removesuffix(TMP_SUFFIX) + SCRATCH_SUFFIX)
            stats = shuffle_normalized(train, out, p.norm_method, p.seed, scratch, slots, pool, progress)
        else:
            with _bar(rows["train"], "train: statistics", progress) as bar:
                stats = train_statistics(train["specs"], p.norm_method, slots, pool, bar)
            with _bar(rows["train"], "train: normalize", progress) as bar:
                copy_normalized(train, out, stats, slots, pool, bar)
        for split in ("val", "test"):
            out = _create_split(dst, src[split], spec_shape)
            with _bar(rows[split], f"{split}: normalize", progress) as bar:
                copy_normalized(src[split], out, stats, slots, pool, bar)
        h5layout.set_json_attr(dst, "normalization", stats.to_dict())
        h5layout.set_json_attr(dst, "processing_settings", settings)
        dst.attrs["processing_fingerprint"] = fingerprint(settings)
        dst.attrs["source_dataset_fingerprint"] = src.attrs["dataset_fingerprint"]
    return stats, rows


def process_dataset(
    cfg: Config, *, force: bool = False, chunk_rows: int | None = None, progress: bool = True, log: Log = cli.log
) -> ProcessOutcome:
    """Write ``<output_folder>/processed.h5`` from ``dataset.h5`` unless it is up to date.

    Parameters
    ----------
    cfg : Config
        The pipeline config (``processing`` section, paths, and the build
        settings that ``dataset.h5`` must have been built with).
    force : bool
        Rewrite even when ``processed.h5`` is up to date.
    chunk_rows : int, optional
        Rows per chunk; by default from ``processing.memory_limit_mb``.
    progress : bool
        Show tqdm progress bars on stderr.
    log : callable
        Receives one-line messages.

    Raises
    ------
    GenrekitError
        No or unreadable ``dataset.h5``, an empty train split, a dataset built
        with other settings, or another run holding the output folder's lock.
    """
    from filelock import FileLock, Timeout

    dataset, processed = cfg.dataset_path, cfg.processed_path
    if not dataset.is_file():
        raise GenrekitError(f"{dataset}: not found; run build_dataset.py first")
    lock_path = cfg.paths.output_folder / LOCK_NAME
    lock = FileLock(str(lock_path), timeout=0)
    try:
        lock.acquire()
    except Timeout:
        raise GenrekitError(
            f"{cfg.paths.output_folder}: another process_dataset.py is running (lock file {lock_path})"
        ) from None
    try:
        _remove_leftovers(processed, log)
        with open_dataset(dataset) as src:
            check_build_settings(src, dataset, cfg)
            reason = stale_reason(processed, processing_settings(cfg), str(src.attrs["dataset_fingerprint"]))
            if reason is None and not force:
                log("processed.h5 is up to date; nothing to do")
                return ProcessOutcome(processed, written=False)
            reason = reason or "--force"
            log(f"writing {processed} ({reason})")
            _check_free_space(src, cfg)
            tmp = processed.with_name(processed.name + TMP_SUFFIX)
            try:
                stats, rows = write_processed(src, tmp, cfg, chunk_rows, progress)
                fsync_path(tmp)
                os.replace(tmp, processed)
                fsync_path(processed.parent)
            except OSError as exc:  # disk full, permissions, HDF5 errors: one line, not a traceback
                raise GenrekitError(f"{processed}: cannot write ({exc})") from None
            finally:
                tmp.unlink(missing_ok=True)
        order = "shuffled" if cfg.processing.shuffle else "in order"
        log(
            f"wrote {processed}: train {rows['train']} rows ({order}), val {rows['val']}, "
            f"test {rows['test']}; {stats.method} normalization from train"
        )
        return ProcessOutcome(processed, written=True, reason=reason, rows=rows, stats=stats)
    finally:
        lock.release()
