"""Does the HDF5 loader keep the CPU busy? Loader batches/s against training steps/s.

Writes a synthetic ``processed.h5`` at the default geometry (126 frames x 100 mels,
float16, chunks of 32 rows, as ``genrekit.core.h5layout`` lays it out), then measures in
one run:

* loader: ``genrekit.training.data.SpectrogramBatches`` over the train split, shuffled, batch
  32, every batch of two epochs (fresh random offset and order each epoch), once plain and
  once with the config's ``training.augmentation`` (what training uses);
* training: ``train_on_batch`` of the default CRNN (``pipeline_parameters.json``
  model section) on the CPU, after warm-up;
* inference, for the analyzer's budget: one ``predict`` of 240 slices (a 4-minute
  track at the default slicing), plus parameters and multiply-adds per slice.

Goal: the loader delivers >= 20x the batches per second that training consumes.
The file was just written, so it is read from the page cache; a cold disk is slower.

Usage::

    .venv/bin/python benchmarks/loader_speed.py [--rows 3200] [--steps 10]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import h5py  # noqa: E402
import numpy as np  # noqa: E402

from genrekit.audio.features import slice_geometry  # noqa: E402
from genrekit.core import h5layout  # noqa: E402
from genrekit.core.config import load_config  # noqa: E402


def write_split(path: Path, rows: int, spec_shape: tuple[int, int], n_labels: int, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    with h5py.File(path, "w") as h5:
        arrays = h5layout.create_split_arrays(h5.create_group("train"), rows, spec_shape)
        for start in range(0, rows, 1024):
            stop = min(rows, start + 1024)
            arrays["specs"][start:stop] = rng.standard_normal((stop - start, *spec_shape)).astype(np.float16)
        arrays["labels"][...] = rng.integers(0, n_labels, rows)
        arrays["track_ids"][...] = np.arange(rows) // 14


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", type=Path, default=REPO_ROOT / "pipeline_parameters.json")
    parser.add_argument("--rows", type=int, default=3200, help="train rows of the synthetic file")
    parser.add_argument("--steps", type=int, default=10, help="timed training steps")
    parser.add_argument("--labels", type=int, default=10)
    args = parser.parse_args()

    cfg = load_config(args.config)
    geometry = slice_geometry(cfg.slicing.slice_duration, cfg.slicing.overlap, cfg.features)
    batch_size = cfg.training.batch_size

    import keras

    from genrekit.models.networks import build_crnn, compile_crnn, multiply_adds
    from genrekit.training.data import SpectrogramBatches

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "processed.h5"
        write_split(path, args.rows, geometry.spec_shape, args.labels)
        size_mb = path.stat().st_size / 1e6

        def measure(loader: SpectrogramBatches) -> tuple[float, float]:
            """Batches per second and CPU seconds per batch over two epochs."""
            started, cpu_started = time.perf_counter(), time.process_time()
            batches = 0
            for _ in range(2):
                for i in range(len(loader)):
                    loader[i]
                    batches += 1
                loader.on_epoch_end()
            return batches / (time.perf_counter() - started), (time.process_time() - cpu_started) / batches

        plain_rate, plain_cpu = measure(SpectrogramBatches(path, "train", batch_size, shuffle=True, seed=0))
        loader = SpectrogramBatches(
            path,
            "train",
            batch_size,
            shuffle=True,
            seed=0,
            n_labels=args.labels,
            augmentation=cfg.training.augmentation,
            gain_per_db=np.full(geometry.n_mels, 0.1, dtype=np.float32),
        )
        loader_rate, loader_cpu = measure(loader)

        keras.utils.set_random_seed(0)
        model = compile_crnn(build_crnn((*geometry.spec_shape, 1), args.labels, cfg.model), cfg.training.learning_rate)
        loader.set_epoch(0)
        for i in range(3):  # warm-up: tracing and first allocations
            model.train_on_batch(*loader[i])
        started, cpu_started = time.perf_counter(), time.process_time()
        for i in range(args.steps):
            model.train_on_batch(*loader[(3 + i) % len(loader)])
        step_rate = args.steps / (time.perf_counter() - started)
        step_cpu = (time.process_time() - cpu_started) / args.steps
        loader.close()

    track = np.random.default_rng(1).standard_normal((240, *geometry.spec_shape, 1)).astype(np.float32)
    model.predict(track, batch_size=cfg.analysis.batch_size, verbose=0)  # warm-up: traces each batch shape
    started, cpu_started = time.perf_counter(), time.process_time()
    model.predict(track, batch_size=cfg.analysis.batch_size, verbose=0)
    predict_seconds, predict_cpu = time.perf_counter() - started, time.process_time() - cpu_started

    print(
        f"file: {args.rows} rows of {geometry.n_frames}x{geometry.n_mels} float16 ({size_mb:.0f} MB), "
        f"batch {batch_size}, {os.cpu_count()} CPU cores"
    )
    # CPU seconds beside wall seconds: on a shared machine the wall clock also counts others' work.
    print(f"loader:   {plain_rate:8.1f} batches/s ({1000 * plain_cpu:.1f} CPU ms per batch) without augmentation")
    print(
        f"loader:   {loader_rate:8.1f} batches/s ({1000 * loader_cpu:.1f} CPU ms per batch) with the config's "
        f"augmentation (what training uses)"
    )
    print(
        f"training: {step_rate:8.2f} steps/s ({1000 / step_rate:.0f} ms per step, "
        f"{1000 * step_cpu:.0f} CPU ms, on up to {os.cpu_count()} cores)"
    )
    print(f"ratio:    {loader_rate / step_rate:8.1f}x with augmentation (goal >= 20x)")
    print(f"model: {model.count_params():,} parameters, {multiply_adds(model) / 1e6:.1f} M multiply-adds per slice")
    print(
        f"predict 240 slices (a 4-minute track): {predict_seconds:.2f} s wall, {predict_cpu:.2f} CPU s "
        f"(batch {cfg.analysis.batch_size})"
    )
    print(f"load average during the run: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    return 0


if __name__ == "__main__":
    sys.exit(main())
