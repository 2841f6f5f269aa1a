"""A library analysis on a Dask cluster (--scheduler): a worker killed mid-run loses and duplicates nothing
(issue 22)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.helpers import REPO_ROOT, kill_busy_worker, start_script, wait_for_success
from tests.inference.conftest import analyze_args, assert_same_results, read_results


@pytest.mark.slow
def test_analysis_on_two_workers_survives_a_killed_worker(trained_run, library, uninterrupted, tmp_path):
    """Two single-threaded worker processes on 127.0.0.1, each loading the model once; one is killed (SIGKILL)
    while it holds files. The scheduler runs them again on the other, and the results file equals the
    local run's: every file once, the same values."""
    from distributed import Client, LocalCluster

    with (
        LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address=None
        ) as cluster,
        Client(cluster) as client,
    ):
        log = (tmp_path / "analysis.log").open("w+")
        relative = Path(os.path.relpath(library, REPO_ROOT))  # the workers' folder is not the client's
        proc = start_script(
            "-m track_analyzer",
            *analyze_args(trained_run, relative, tmp_path, "--scheduler", cluster.scheduler_address),
            stderr=log,
        )
        victim_pid = kill_busy_worker(client, proc)  # while it holds files, one of them running
        wait_for_success(proc, log, timeout=180)
        assert victim_pid not in client.run(os.getpid).values()  # it really died (its nanny started another)
    table, records = read_results(tmp_path)
    assert len(table) == len(records) == 15
    assert_same_results(tmp_path, uninterrupted)
