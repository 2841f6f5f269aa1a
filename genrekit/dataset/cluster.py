"""The build's tracks on a Dask cluster (``build.executor: "dask"``), see ``docs/SCALING.md``.

The build itself does not change: :func:`genrekit.dataset.build.run_tracks` submits
:func:`genrekit.dataset.shards.process_track` to a ``concurrent.futures`` executor, here the one of a
``distributed.Client`` (``Client.get_executor``), and every worker writes its track's shard
atomically into the shard folder. So the workers must see the audio folder and the output
folder at the same paths as the machine that runs ``build_dataset.py`` (a shared file
system), and import the same ``genrekit``; :func:`open_dask_executor` checks the first on every
worker before any track is submitted.

A worker that dies in the middle of a track loses nothing: the scheduler runs the task again
on another worker (up to ``distributed.scheduler.allowed-failures`` times), and since a shard
only appears by an atomic rename, the retry writes the whole shard once, never half of one.
"""

from __future__ import annotations

import importlib
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from genrekit.audio.features import warm_up
from genrekit.core.atomic import write_bytes
from genrekit.core.cli import log
from genrekit.core.errors import GenrekitError

SHARED_STORAGE = (
    "the audio folder and the output folder must be on storage that every worker sees at the "
    "same path (a shared file system), see docs/SCALING.md"
)


def check_storage(track: str, shard_dir: str) -> str | None:
    """Run on a worker: None when it can read ``track`` and write into ``shard_dir``, else the problem."""
    try:
        with open(track, "rb") as fh:
            fh.read(1)
    except OSError as exc:
        return f"cannot read {track} ({exc.strerror})"
    probe = Path(shard_dir) / f".storage-probe-{socket.gethostname()}-{os.getpid()}"
    try:
        write_bytes(probe, b"genrekit")
        probe.unlink()
    except OSError as exc:
        return f"cannot write into {shard_dir} ({exc.strerror})"
    return None


@contextmanager
def open_client(scheduler: str | None, workers: int, setting: str) -> Iterator[object]:
    """A ``distributed.Client`` with at least one worker that imports genrekit.

    Parameters
    ----------
    scheduler : str or None
        The scheduler's address (``tcp://host:8786``); None starts a ``LocalCluster`` of
        ``workers`` single-threaded worker processes on this machine, on 127.0.0.1.
    workers : int
        Worker processes of the ``LocalCluster`` (unused with a scheduler address).
    setting : str
        Where the address came from (``build.dask_scheduler``, ``--scheduler``), for the messages.

    Raises
    ------
    GenrekitError
        The scheduler cannot be reached, it has no workers, or a worker cannot import genrekit.
    """
    import logging

    import dask.config
    from dask.utils import parse_timedelta
    from distributed import Client, LocalCluster

    timeout = parse_timedelta(dask.config.get("distributed.comm.timeouts.connect"))  # 30 s unless set

    cluster = None
    if scheduler is None:
        log(f"starting a Dask LocalCluster of {workers} worker processes on 127.0.0.1")
        cluster = LocalCluster(
            n_workers=workers,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address=None,
            silence_logs=logging.ERROR,
        )
    try:
        try:
            client = Client(cluster if cluster is not None else scheduler, timeout=timeout)
        except (OSError, TimeoutError) as exc:
            raise GenrekitError(f"{setting}: cannot reach the Dask scheduler at {scheduler} ({exc})") from None
        try:
            try:
                client.wait_for_workers(1, timeout=timeout)
            except TimeoutError:
                raise GenrekitError(
                    f"the Dask scheduler at {scheduler} has no workers "
                    f"(start some with: .venv/bin/dask worker {scheduler})"
                ) from None
            try:
                client.run(importlib.import_module, "genrekit.core.config")
            except ModuleNotFoundError as exc:
                raise GenrekitError(
                    f"a Dask worker cannot import genrekit ({exc}): start the workers with the "
                    f"Python environment the project is installed in (make venv installs it: "
                    f".venv/bin/dask worker {scheduler})"
                ) from None
            if cluster is None:
                log(
                    f"Dask scheduler {scheduler}: {len(client.nthreads())} workers, "
                    f"{sum(client.nthreads().values())} threads"
                )
            yield client
        finally:
            client.close()
    finally:
        if cluster is not None:
            cluster.close()


@contextmanager
def open_dask_executor(
    scheduler: str | None, workers: int, probe_track: Path, shard_dir: Path, features
) -> Iterator[tuple[object, int]]:
    """A ``concurrent.futures`` executor on a Dask cluster (:func:`open_client`), and how many tasks
    it runs at once.

    Parameters
    ----------
    scheduler, workers
        As for :func:`open_client`.
    probe_track, shard_dir : Path
        A track every worker must be able to read and the folder every worker must be able to
        write into; checked on every worker before the executor is handed out.
    features : FeaturesConfig
        Each worker computes one tiny spectrogram first (imports, numba caches), all at once.

    Raises
    ------
    GenrekitError
        As :func:`open_client`, or a worker cannot see the storage.
    """
    with open_client(scheduler, workers, "build.dask_scheduler") as client:
        problems = client.run(check_storage, str(probe_track), str(shard_dir))
        bad = sorted((worker, problem) for worker, problem in problems.items() if problem)
        if bad:
            worker, problem = bad[0]
            more = f" (and {len(bad) - 1} more workers)" if len(bad) > 1 else ""
            raise GenrekitError(f"Dask worker {worker}{more}: {problem}; {SHARED_STORAGE}")
        client.run(warm_up, features)
        yield client.get_executor(pure=False), sum(client.nthreads().values())
