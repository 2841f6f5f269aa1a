"""A library analysis on a Dask cluster (``python -m track_analyzer FOLDER --scheduler ADDRESS``).

Each worker loads the model once (:class:`AnalyzerPlugin`, registered with the client, so a
worker that joins or restarts later loads it too) and runs the whole per-file work on it:
decode, features, model, aggregation (:func:`analyze_on_worker`). The client keeps a bounded
number of files in flight and hands each outcome over as it arrives; the caller writes it to
the results file. A worker killed in the middle of a file loses nothing: the scheduler runs
that file again on another worker, and the results file keeps one record per file.

Like the build's cluster mode (:mod:`genrekit.dataset.cluster`), the workers must see the
audio files and the run folder at the same paths as the client (a shared file system), and
run the Python environment the project is installed in.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
from collections.abc import Iterable, Iterator
from pathlib import Path

from distributed import WorkerPlugin, as_completed, get_worker

from genrekit.core.errors import TrackError
from genrekit.dataset.cluster import open_client
from genrekit.inference.analyzer import Analyzer
from genrekit.inference.folder import FileOutcome

PLUGIN_NAME = "genrekit-analyzer"
FILES_PER_THREAD = 2  # files in flight per worker thread: one running, one queued


class AnalyzerPlugin(WorkerPlugin):
    """Loads the model once on each worker, and again on a worker that joins or restarts."""

    name = PLUGIN_NAME

    def __init__(self, model: str, batch_size: int, runtime: str = "auto", precision: str = "auto"):
        self.model = model
        self.batch_size = batch_size
        self.runtime = runtime
        self.precision = precision
        self.analyzer: Analyzer | None = None

    def setup(self, worker) -> None:
        self.analyzer = Analyzer(self.model, batch_size=self.batch_size, runtime=self.runtime, precision=self.precision)

    def teardown(self, worker) -> None:
        self.analyzer = None


def analyze_on_worker(path: str, overlap: float, aggregation: str) -> FileOutcome:
    """Run on a worker: decode, slice, score and aggregate one file with the worker's model."""
    analyzer = get_worker().plugins[PLUGIN_NAME].analyzer
    try:
        slices = analyzer.slice_settings(overlap).load(path)
    except TrackError as exc:
        return FileOutcome(Path(path), None, f"skipped: {exc}")
    result = analyzer.analyze_slices(path, slices, overlap=overlap, aggregation=aggregation)
    return FileOutcome(Path(path), result, "padded" if slices.padded else "ok")


def _key(path: Path) -> str:
    # one task per file: a file submitted again (a resumed client) is the same task
    return f"genrekit-analyze-{hashlib.sha1(str(path).encode('utf-8')).hexdigest()[:20]}"


def analyze_on_cluster(
    scheduler: str,
    model: os.PathLike | str,
    paths: Iterable[Path],
    *,
    overlap: float,
    aggregation: str,
    batch_size: int,
    runtime: str = "auto",
    precision: str = "auto",
) -> Iterator[FileOutcome]:
    """Analyze files on the Dask cluster at ``scheduler``; outcomes come as they finish (any order).

    ``model`` is a run folder (given to the workers as an absolute path) or a ready tagger's name.
    """
    model = str(Path(model).resolve()) if Path(model).is_dir() else str(model)
    with open_client(scheduler, 0, "--scheduler") as client:
        client.register_plugin(AnalyzerPlugin(model, batch_size, runtime, precision), name=PLUGIN_NAME)
        limit = FILES_PER_THREAD * max(1, sum(client.nthreads().values()))
        pending = iter(paths)
        running = as_completed()
        given: dict[str, Path] = {}  # the path a worker opens (absolute: its folder is not ours) -> as given

        def submit_next() -> None:
            path = next(pending, None)
            if path is not None:
                absolute = str(Path(path).resolve())
                given[absolute] = Path(path)
                running.add(client.submit(analyze_on_worker, absolute, overlap, aggregation, key=_key(path), retries=0))

        for _ in range(limit):
            submit_next()
        for future in running:
            outcome = future.result()
            future.release()
            submit_next()
            yield dataclasses.replace(outcome, path=given.pop(str(outcome.path)))
