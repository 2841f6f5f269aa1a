"""Beyond one process pool: the build on a Dask cluster, training under tf.distribute (docs/SCALING.md)."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from genrekit.dataset.cluster import check_storage
from genrekit.inference.analyzer import analyze
from tests.conftest import TINY_RUN, run_pipeline, tiny_config
from tests.dataset.test_build import assert_same_content
from tests.helpers import kill_busy_worker, make_corpus, run_script, start_script, wait_for_success, write_config

LABELS = {"bass": 4, "treble": 4, "hiss": 4}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    """12 generated 4 s wav tracks under audio/<label>/."""
    root = tmp_path_factory.mktemp("scaling_corpus")
    make_corpus(root / "audio", LABELS, seconds=4.0, fmt="wav")
    return root / "audio"


def config_for(folder: Path, audio: Path, **build) -> Path:
    return write_config(
        folder / "params.json",
        paths={"audio_folder": str(audio), "output_folder": str(folder / "out")},
        slicing={"slice_duration": 1.0, "overlap": 0.5},
        features={"n_mels": 32},
        split={"validation_share": 0.25, "test_share": 0.25, "seed": 3},
        analysis={"overlap": 0.5},
        build=build,
    )


@pytest.fixture(scope="module")
def local_build(corpus, tmp_path_factory) -> Path:
    """The corpus built serially with the local executor and the tiny pipeline config; returns the config."""
    root = tmp_path_factory.mktemp("scaling_local")
    config = tiny_config(root, corpus)
    result = run_script("build_dataset.py", "--config", str(config), "--quiet", "--workers", "1")
    assert result.returncode == 0, result.stderr
    return config


@pytest.mark.slow
def test_dask_build_survives_a_killed_worker(corpus, local_build, tmp_path):
    """Two single-threaded workers on 127.0.0.1; one is killed (SIGKILL) while it holds tracks. Dask runs
    them again on the other worker, and dataset.h5 equals a serial local build's, bit for bit."""
    from distributed import Client, LocalCluster

    out = tmp_path / "dask" / "out"
    config = config_for(tmp_path / "dask", corpus, executor="dask")
    with (
        LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address=None
        ) as cluster,
        Client(cluster) as client,
    ):
        log = (tmp_path / "build.log").open("w+")
        proc = start_script(
            "build_dataset.py", "--config", str(config), "--quiet", "--scheduler", cluster.scheduler_address, stderr=log
        )
        victim_pid = kill_busy_worker(client, proc, timeout=60)  # while it holds tracks, one of them running
        assert not (out / "dataset.h5").exists()
        wait_for_success(proc, log, timeout=120)
        assert victim_pid not in client.run(os.getpid).values()  # it really died (its nanny started another)
    report = json.loads((out / "build_report.json").read_text())
    assert report["tracks_used"] == 12 and report["tracks_skipped"] == 0
    assert_same_content(local_build.parent / "output" / "dataset.h5", out / "dataset.h5")


@pytest.mark.slow
def test_training_mirrored_over_two_logical_cpus(corpus, local_build, tmp_path, monkeypatch):
    """training.distribute "auto" with the CPU split in two logical devices: MirroredStrategy trains,
    the run folder is complete, records the replicas, and the analyzer uses it."""
    monkeypatch.setenv("GENREKIT_LOGICAL_CPUS", "2")
    config = tiny_config(tmp_path, corpus, training={"epochs": 1})
    shutil.copytree(
        local_build.parent / "output",
        tmp_path / "output",
        ignore=shutil.ignore_patterns(".build*", "processed.h5", "models"),
    )
    run_pipeline(config, "process_dataset.py")
    result = run_script("train_crnn.py", "--config", str(config))
    assert result.returncode == 0, result.stderr[-3000:]
    assert "MirroredStrategy over 2 devices" in result.stderr and "global batch 16 x 2 = 32" in result.stderr
    run = tmp_path / "output" / "models" / TINY_RUN
    report = json.loads((run / "report.json").read_text())
    assert report["replicas"] == 2 and report["global_batch_size"] == 32 and report["epochs_trained"] == 1
    assert json.loads((run / "run_settings.json").read_text())["training"]["replicas"] == 2
    assert {"model.keras", "bundle.json", "history.csv", "predictions.npz"} <= {p.name for p in run.iterdir()}
    assert not (run / "training").exists()  # resume state removed once complete
    verdict = analyze(next(corpus.glob("treble/*.wav")), run, overlap=0.5)  # the CLI is tested elsewhere
    assert "treble" in verdict.labels and len(verdict.scores) > 0


def test_storage_check_names_what_a_worker_cannot_reach(tmp_path):
    track = tmp_path / "a.wav"
    track.write_bytes(b"RIFF")
    assert check_storage(str(track), str(tmp_path)) is None
    assert list(tmp_path.iterdir()) == [track]  # the probe file is gone
    problem = check_storage(str(tmp_path / "missing.wav"), str(tmp_path))
    assert problem.startswith(f"cannot read {tmp_path / 'missing.wav'}")
    problem = check_storage(str(track), str(tmp_path / "no_such_folder"))
    assert problem.startswith(f"cannot write into {tmp_path / 'no_such_folder'}")


def test_unreachable_scheduler_is_one_line(corpus, tmp_path, monkeypatch):
    monkeypatch.setenv("DASK_DISTRIBUTED__COMM__TIMEOUTS__CONNECT", "1s")  # dask's own setting, read by the build
    result = run_script(
        "build_dataset.py", "--config", str(config_for(tmp_path, corpus)), "--quiet", "--scheduler", "tcp://127.0.0.1:9"
    )
    assert result.returncode == 1
    assert result.stderr.startswith(
        "error: build.dask_scheduler: cannot reach the Dask scheduler at tcp://127.0.0.1:9"
    ), result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_assembly_copies_whole_blocks_across_track_boundaries(tmp_path):
    """copy_shards gathers rows into blocks of whole chunks; rows of a track that straddle a block
    boundary, and the last partial block, land where a plain concatenation puts them."""
    import h5py
    import numpy as np

    from genrekit.core import h5layout
    from genrekit.dataset.build import ASSEMBLY_BLOCK_CHUNKS, copy_shards
    from genrekit.dataset.scan import TrackFile
    from genrekit.dataset.shards import write_shard

    rng = np.random.default_rng(5)
    tracks = [TrackFile(f"x/{i:02d}.wav", "x", 1, 1) for i in range(30)]
    slices = [int(rng.integers(1, 25)) for _ in tracks]
    specs = [rng.uniform(-100, 40, (n, 4, 3)).astype(np.float16) for n in slices]
    starts = [np.arange(n) * 2.0 + i for i, n in enumerate(slices)]
    for track, s, t in zip(tracks, specs, starts):
        write_shard(tmp_path, track, s, t, 30.0, False)
    # any order of track ids; the variant index (a build-time copy's mark) goes with each member's rows
    members = [(i, tmp_path / f"{t.key}.npz", i % 4, n) for i, (t, n) in enumerate(zip(tracks, slices))][::-1]
    rows = [{"label": i % 3} for i in range(len(tracks))]
    n_rows = sum(slices)
    assert n_rows > h5layout.SPEC_CHUNK_ROWS * ASSEMBLY_BLOCK_CHUNKS  # more than one block
    with h5py.File(tmp_path / "d.h5", "w") as h5:
        arrays = h5layout.create_split_arrays(h5.create_group("train"), n_rows, (4, 3), variants=True)
        done = []
        copy_shards(arrays, members, rows, done.append)
        assert len(done) == len(tracks)
        order = [i for i, *_ in members]
        np.testing.assert_array_equal(
            arrays["variants"][()], np.repeat([i % 4 for i in order], [slices[i] for i in order])
        )
        np.testing.assert_array_equal(arrays["specs"][()], np.concatenate([specs[i] for i in order]))
        np.testing.assert_array_equal(arrays["slice_starts"][()], np.concatenate([starts[i] for i in order]))
        np.testing.assert_array_equal(arrays["track_ids"][()], np.repeat(order, [slices[i] for i in order]))
        np.testing.assert_array_equal(
            arrays["labels"][()], np.repeat([i % 3 for i in order], [slices[i] for i in order])
        )
