"""process_dataset.py / genrekit.dataset.process: train-only statistics, seeded out-of-core shuffle,
atomic and resumable output, one-line errors. Datasets are written in the documented layout
by tests/h5fixtures.py (and, in the end-to-end test, by the real build_dataset.py)."""

from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path

import h5py
import numpy as np
import pytest
from filelock import FileLock

from genrekit.core import h5layout
from genrekit.core.config import fingerprint, load_config, processing_settings
from genrekit.dataset.normalization import NormStats, apply
from genrekit.dataset.process import LOCK_NAME, process_dataset, rows_per_chunk
from genrekit.dataset.statistics import STATS_GROUP_ROWS, StatsAccumulator
from tests.h5fixtures import read_split, write_dataset
from tests.helpers import kill_group_when, make_corpus, run_script, start_script, write_config

ROWS = {"train": 203, "val": 40, "test": 31}  # 203: chunks and shuffle blocks do not divide it


def setup(tmp_path: Path, rows: dict = ROWS, spec_shape=(12, 8), seed: int = 0, **processing) -> Path:
    """A config (output folder ``out``) and a dataset.h5 in the documented layout; returns the config path."""
    config = write_config(tmp_path / "pipeline_parameters.json", paths={"output_folder": "out"}, processing=processing)
    write_dataset(load_config(config).dataset_path, load_config(config), rows, spec_shape=spec_shape, seed=seed)
    return config


def run_quietly(config: Path, **kwargs):
    return process_dataset(load_config(config), progress=False, log=lambda message: None, **kwargs)


def float16_close(actual: np.ndarray, expected: np.ndarray) -> None:
    """Equal up to float16 rounding of the expected float32/64 values."""
    np.testing.assert_allclose(actual.astype(np.float64), expected, rtol=2**-10, atol=2**-14)


def array_digest(path: Path) -> str:
    """A hash of every split array and the normalization: equal files give equal digests."""
    digest = hashlib.sha256()
    with h5py.File(path, "r") as h5:
        digest.update(str(h5.attrs["normalization"]).encode())
        for split in h5layout.SPLITS:
            for name in h5layout.ARRAYS:
                digest.update(h5[split][name][()].tobytes())
    return digest.hexdigest()


# --------------------------------------------------------------------------- statistics and transform


def test_standard_uses_train_statistics_for_every_split(tmp_path):
    config = setup(tmp_path, shuffle=False)
    cfg = load_config(config)
    with h5py.File(cfg.dataset_path, "r+") as h5:  # val far from train: its own statistics would differ
        h5["val/specs"][...] = h5["val/specs"][()] + np.float16(12)
    run_quietly(config, chunk_rows=32)

    raw = {split: read_split(cfg.dataset_path, split) for split in h5layout.SPLITS}
    out = {split: read_split(cfg.processed_path, split) for split in h5layout.SPLITS}
    train = raw["train"]["specs"].astype(np.float64).reshape(-1, 8)
    mean, std = train.mean(axis=0), train.std(axis=0)
    with h5py.File(cfg.processed_path, "r") as h5:
        stats = NormStats.from_dict(h5layout.json_attr(h5, "normalization"))
    assert stats.method == "standard"
    np.testing.assert_allclose(stats.mean, mean, rtol=1e-12)
    np.testing.assert_allclose(stats.std, std, rtol=1e-12)

    normalized = out["train"]["specs"].astype(np.float64).reshape(-1, 8)
    np.testing.assert_allclose(normalized.mean(axis=0), 0, atol=2e-3)
    np.testing.assert_allclose(normalized.std(axis=0), 1, atol=2e-3)
    for split in ("val", "test"):
        float16_close(out[split]["specs"], (raw[split]["specs"].astype(np.float64) - mean) / std)
        assert out[split]["specs"].dtype == np.float16
    assert out["val"]["specs"].astype(np.float64).mean() > 1  # shifted val stays shifted: no val statistics


@pytest.mark.parametrize("method, low", [("min_max", 0.0), ("non_zero_min_max", 0.001)])
def test_min_max_methods_scale_train_to_unit_range(tmp_path, method, low):
    config = setup(tmp_path, norm_method=method, shuffle=False)
    cfg = load_config(config)
    run_quietly(config, chunk_rows=32)
    raw = {split: read_split(cfg.dataset_path, split)["specs"].astype(np.float64) for split in h5layout.SPLITS}
    out = {split: read_split(cfg.processed_path, split)["specs"].astype(np.float64) for split in h5layout.SPLITS}
    with h5py.File(cfg.processed_path, "r") as h5:
        stats = h5layout.json_attr(h5, "normalization")
    assert (stats["method"], stats["min"], stats["max"]) == (method, raw["train"].min(), raw["train"].max())
    assert out["train"].min() == pytest.approx(low, abs=1e-3)
    assert out["train"].max() == pytest.approx(1 + low, abs=1e-3)
    scale = raw["train"].max() - raw["train"].min()
    for split in ("val", "test"):
        float16_close(out[split], (raw[split] - raw["train"].min()) / scale + low)


def test_per_slice_standardizes_each_slice_and_drops_its_level(tmp_path):
    config = setup(tmp_path, norm_method="per_slice", shuffle=False)
    cfg = load_config(config)
    run_quietly(config, chunk_rows=32)
    with h5py.File(cfg.processed_path, "r") as h5:
        assert h5layout.json_attr(h5, "normalization")["method"] == "per_slice"
    for split in h5layout.SPLITS:
        raw = read_split(cfg.dataset_path, split)["specs"].astype(np.float64)
        out = read_split(cfg.processed_path, split)["specs"].astype(np.float64)
        expected = (raw - raw.mean(axis=(1, 2), keepdims=True)) / raw.std(axis=(1, 2), keepdims=True)
        float16_close(out, expected)
        # the level of a slice is gone: 10 dB louder gives the same values
        # (float32 rounding of dB values below 128 is under 1e-5 dB, over a spread of several dB)
        louder = apply(raw.astype(np.float32) + 10, NormStats("per_slice"))
        np.testing.assert_allclose(louder, apply(raw.astype(np.float32), NormStats("per_slice")), atol=1e-4)


def test_statistics_are_stable_and_independent_of_chunking():
    rng = np.random.default_rng(1)
    # A huge offset against a small spread: a naive sum of squares would lose every digit.
    values = 1e8 + rng.standard_normal((150, 5, 3))
    results = []
    for chunk in (STATS_GROUP_ROWS, 2 * STATS_GROUP_ROWS, 150):
        acc = StatsAccumulator("standard", 3)
        for start in range(0, len(values), chunk):
            acc.update(values[start : start + chunk])
        results.append(acc.result())
    flat = values.reshape(-1, 3)
    np.testing.assert_allclose(results[0].mean, flat.mean(axis=0), rtol=1e-15)
    np.testing.assert_allclose(results[0].std, flat.std(axis=0), rtol=1e-7)
    for other in results[1:]:
        assert np.array_equal(other.mean, results[0].mean) and np.array_equal(other.std, results[0].std)


def test_chunk_rows_follow_the_memory_limit():
    row_bytes = 126 * 100 * 2
    assert rows_per_chunk(64, row_bytes) < rows_per_chunk(512, row_bytes)
    for limit in (16, 64, 512):
        rows = rows_per_chunk(limit, row_bytes)
        assert rows % 32 == 0 and rows >= 32
        assert rows == 32 or rows * row_bytes * 16 <= limit * 2**20


# --------------------------------------------------------------------------- shuffle


def test_shuffle_is_the_seeded_permutation_and_keeps_rows_together(tmp_path):
    config = setup(tmp_path, seed=3)
    cfg = load_config(config)
    outcome = run_quietly(config, chunk_rows=32)
    raw, out = read_split(cfg.dataset_path, "train"), read_split(cfg.processed_path, "train")
    order = np.random.default_rng(cfg.processing.seed).permutation(ROWS["train"])
    assert not np.array_equal(order, np.arange(ROWS["train"]))
    for name in ("labels", "track_ids", "slice_starts"):
        assert np.array_equal(out[name], raw[name][order]), name
    expected = apply(raw["specs"][order], outcome.stats).astype(np.float16)
    assert np.array_equal(out["specs"], expected)
    # every (track, start) pair once: a permutation, nothing lost or duplicated
    pairs = set(zip(out["track_ids"].tolist(), out["slice_starts"].tolist()))
    assert pairs == set(zip(raw["track_ids"].tolist(), raw["slice_starts"].tolist()))
    assert len(pairs) == ROWS["train"]
    for split in ("val", "test"):  # val and test keep their order
        assert np.array_equal(
            read_split(cfg.processed_path, split)["track_ids"], read_split(cfg.dataset_path, split)["track_ids"]
        )


def test_shuffle_is_deterministic_for_a_seed_whatever_the_chunk_size(tmp_path):
    config = setup(tmp_path)
    cfg = load_config(config)
    digests = []
    for chunk_rows in (32, 64, None):
        run_quietly(config, chunk_rows=chunk_rows, force=True)
        digests.append(array_digest(cfg.processed_path))
    assert digests[0] == digests[1] == digests[2]
    write_config(config, paths={"output_folder": "out"}, processing={"seed": 7})
    run_quietly(config)
    assert array_digest(cfg.processed_path) != digests[0]


def test_without_shuffle_train_keeps_its_order(tmp_path):
    config = setup(tmp_path, shuffle=False)
    cfg = load_config(config)
    run_quietly(config, chunk_rows=32)
    raw, out = read_split(cfg.dataset_path, "train"), read_split(cfg.processed_path, "train")
    for name in ("labels", "track_ids", "slice_starts"):
        assert np.array_equal(out[name], raw[name])


def test_processed_file_carries_the_dataset_attributes_and_tracks(tmp_path):
    config = setup(tmp_path)
    cfg = load_config(config)
    run_quietly(config)
    with h5py.File(cfg.dataset_path, "r") as src, h5py.File(cfg.processed_path, "r") as out:
        for key, value in src.attrs.items():
            assert np.array_equal(out.attrs[key], value), key
        assert np.array_equal(out["tracks"][()], src["tracks"][()])
        assert h5layout.json_attr(out, "processing_settings") == processing_settings(cfg)
        assert out.attrs["processing_fingerprint"] == fingerprint(processing_settings(cfg))
        assert out.attrs["source_dataset_fingerprint"] == src.attrs["dataset_fingerprint"]
        NormStats.from_dict(h5layout.json_attr(out, "normalization")).check(n_mels=8)
        for split in h5layout.SPLITS:
            assert out[split]["specs"].dtype == np.float16
            assert len(out[split]["labels"]) == ROWS[split]


# --------------------------------------------------------------------------- the script: reruns


def process(config: Path, *args: str) -> subprocess.CompletedProcess:
    return run_script("process_dataset.py", "--config", str(config), "--quiet", *args, timeout=120)


def test_rerun_is_a_noop_until_config_or_dataset_change(tmp_path):
    config = setup(tmp_path)
    processed = load_config(config).processed_path
    first = process(config)
    assert first.returncode == 0, first.stderr
    stamp = processed.stat().st_mtime_ns

    again = process(config)
    assert again.returncode == 0
    assert "processed.h5 is up to date; nothing to do" in again.stderr
    assert processed.stat().st_mtime_ns == stamp
    memory_only = write_config(config, paths={"output_folder": "out"}, processing={"memory_limit_mb": 32})
    assert "up to date" in process(memory_only).stderr  # memory_limit_mb does not change the output

    write_config(config, paths={"output_folder": "out"}, processing={"seed": 5})
    changed = process(config)
    assert changed.returncode == 0 and "processing.seed" in changed.stderr
    assert processed.stat().st_mtime_ns != stamp

    write_dataset(load_config(config).dataset_path, load_config(config), ROWS, seed=9)  # "rebuilt"
    rebuilt = process(config)
    assert rebuilt.returncode == 0 and "dataset.h5 was rebuilt" in rebuilt.stderr

    forced = process(config, "--force")
    assert forced.returncode == 0 and "--force" in forced.stderr
    assert "up to date" not in forced.stderr


# --------------------------------------------------------------------------- the script: errors


def one_line_error(result: subprocess.CompletedProcess, status: int) -> str:
    assert result.returncode == status, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    return lines[0]


def test_missing_dataset_says_to_run_the_build_first(tmp_path):
    config = write_config(tmp_path / "pipeline_parameters.json", paths={"output_folder": "out"})
    line = one_line_error(process(config), 1)
    assert "dataset.h5: not found" in line and "build_dataset.py" in line


def test_empty_train_split_is_an_error(tmp_path):
    config = setup(tmp_path, rows={"train": 0, "val": 10, "test": 10})
    line = one_line_error(process(config), 1)
    assert "train split is empty" in line
    assert not load_config(config).processed_path.exists()


def test_variants_of_another_length_than_the_slices_is_an_error(tmp_path):
    """train/variants (the marks of build-time copies) must have a row per slice, like the other arrays."""
    config = setup(tmp_path)
    with h5py.File(load_config(config).dataset_path, "a") as h5:
        h5["train"].create_dataset(h5layout.VARIANTS, data=np.zeros(ROWS["train"] - 1, np.int8))
    line = one_line_error(process(config), 1)
    assert "train arrays have different row counts" in line and "build_dataset.py" in line
    assert not load_config(config).processed_path.exists()


def test_unknown_norm_method_names_the_key(tmp_path):
    config = write_config(tmp_path / "pipeline_parameters.json", processing={"norm_method": "z_score"})
    line = one_line_error(process(config), 2)
    assert "processing.norm_method" in line


def test_dataset_built_with_other_settings_is_an_error(tmp_path):
    config = setup(tmp_path)
    write_config(config, paths={"output_folder": "out"}, features={"n_mels": 64})
    line = one_line_error(process(config), 1)
    assert "features.n_mels" in line and "build_dataset.py" in line


def test_a_second_run_on_the_same_folder_is_refused(tmp_path):
    config = setup(tmp_path)
    with FileLock(str(load_config(config).paths.output_folder / LOCK_NAME)):
        line = one_line_error(process(config), 1)
    assert "another process_dataset.py is running" in line
    assert process(config).returncode == 0  # released: runs


# --------------------------------------------------------------------------- interruption


def kill_processing_when(config: Path, condition) -> None:
    """Start process_dataset.py and ``kill -9`` its process group as soon as ``condition()`` holds."""
    proc = start_script("process_dataset.py", "--config", str(config), "--quiet")
    assert kill_group_when(proc, condition, timeout=60), "process_dataset.py finished before it could be killed"


@pytest.mark.slow
def test_killed_at_any_instant_leaves_no_partial_output_and_rerun_matches(tmp_path):
    # ~25 MB of real-sized slices: long enough to be caught mid-run, small enough to stay quick.
    config = setup(tmp_path, rows={"train": 800, "val": 100, "test": 100}, spec_shape=(126, 100), memory_limit_mb=16)
    cfg = load_config(config)
    output = cfg.paths.output_folder
    tmp = output / "processed.h5.tmp"
    scratch = output / "processed.h5.scratch"
    assert process(config).returncode == 0
    uninterrupted = array_digest(cfg.processed_path)
    cfg.processed_path.unlink()

    instants = {
        "as the output file is created": tmp.exists,
        "while the shuffle's scratch file is written": lambda: scratch.exists() and scratch.stat().st_size > 0,
        "while the shuffled rows are written out": lambda: tmp.exists() and tmp.stat().st_size > 8 * 2**20,
    }
    for instant, condition in instants.items():
        kill_processing_when(config, condition)
        assert not cfg.processed_path.exists(), instant
        rerun = process(config)
        assert rerun.returncode == 0, rerun.stderr
        assert "left by an interrupted run" in rerun.stderr, instant
        assert array_digest(cfg.processed_path) == uninterrupted, instant
        assert sorted(p.name for p in output.iterdir()) == sorted([LOCK_NAME, "dataset.h5", "processed.h5"])
        if instant != list(instants)[-1]:
            cfg.processed_path.unlink()

    # An interrupted rewrite leaves the previous processed.h5 whole and unchanged.
    write_config(config, paths={"output_folder": "out"}, processing={"memory_limit_mb": 16, "seed": 8})
    kill_processing_when(config, instants["while the shuffle's scratch file is written"])
    assert array_digest(cfg.processed_path) == uninterrupted


# --------------------------------------------------------------------------- with the real build


def test_build_then_process_end_to_end(tmp_path):
    make_corpus(tmp_path / "audio", {"low": 3, "high": 3, "noise": 3}, seconds=4.0)
    config = write_config(
        tmp_path / "pipeline_parameters.json",
        paths={"audio_folder": "audio", "output_folder": "out"},
        slicing={"slice_duration": 1.0, "overlap": 0.5},
        features={"n_mels": 16},
        split={"validation_share": 0.34, "test_share": 0.34, "seed": 1},
        build={"workers": 1},
        analysis={"overlap": 0.5},
    )
    build = run_script("build_dataset.py", "--config", str(config), "--quiet", timeout=300)
    assert build.returncode == 0, build.stderr
    result = process(config)
    assert result.returncode == 0, result.stderr

    cfg = load_config(config)
    with h5py.File(cfg.dataset_path, "r") as src, h5py.File(cfg.processed_path, "r") as out:
        assert out.attrs["source_dataset_fingerprint"] == src.attrs["dataset_fingerprint"]
        assert json.loads(out.attrs["labels"]) == ["high", "low", "noise"]
        for split in h5layout.SPLITS:
            assert len(out[split]["specs"]) == len(src[split]["specs"]) > 0
            assert out[split]["specs"].shape[1:] == src[split]["specs"].shape[1:]
        train = src["train/specs"][()].astype(np.float64).reshape(-1, 16)
        stats = NormStats.from_dict(h5layout.json_attr(out, "normalization"))
        np.testing.assert_allclose(stats.mean, train.mean(axis=0), rtol=1e-9)
        np.testing.assert_allclose(stats.std, train.std(axis=0), rtol=1e-9)
        normalized = out["train/specs"][()].astype(np.float64).reshape(-1, 16)
        np.testing.assert_allclose(normalized.mean(axis=0), 0, atol=5e-3)
        float16_close(
            out["test/specs"][()], (src["test/specs"][()].astype(np.float64) - stats.mean) / np.maximum(stats.std, 1e-6)
        )
    assert "up to date" in process(config).stderr


def test_none_keeps_the_values_for_a_pretrained_backbone(tmp_path):
    """norm_method "none" (what a backbone needs): the stored values, as float16, in every split."""
    config = setup(tmp_path, norm_method="none")
    raw = {split: read_split(load_config(config).dataset_path, split)["specs"] for split in ("val", "test")}
    assert process(config).returncode == 0
    out = {split: read_split(load_config(config).processed_path, split)["specs"] for split in ("val", "test")}
    for split in ("val", "test"):
        np.testing.assert_array_equal(out[split], raw[split])
    assert NormStats.from_dict({"method": "none"}).method == "none"
    x = np.arange(6, dtype=np.float16).reshape(1, 2, 3)
    np.testing.assert_array_equal(apply(x, NormStats("none")), x.astype(np.float32))
