"""Throughput and peak memory of process_dataset.py against a plain chunked h5py copy.

Synthesizes a ``dataset.h5`` several times larger than a memory bound
(``processing.memory_limit_mb``), then runs, each in a fresh child process,
interleaved ``--repeat`` times so that a busy moment on a shared machine hits
every job alike:

* ``copy``: a plain chunked h5py copy of the same arrays into the same layout
  with the same chunk size, then fsync (processing fsyncs its output too);
* ``process (shuffle)``: ``genrekit.dataset.process.process_dataset`` with the bound;
* ``process (no shuffle)``: the same with ``processing.shuffle`` false;
* ``imports``: the interpreter with the same modules imported and nothing done,
  the floor under any peak RSS.

Prints, best of the repeats: seconds of work (startup excluded), MB/s of
dataset.h5, the ratio to the copy's speed, CPU seconds (all threads) and
their ratio, and the peak RSS of each process (VmHWM). Goal: speed ratio
>= 0.5, peak RSS above the import floor within the bound.

Usage::

    .venv/bin/python benchmarks/process_speed.py [--memory-mb 64] [--dataset-mb 320] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

DEFAULT_OUT = REPO_ROOT / "benchmarks" / "out" / "process_speed"


def plain_copy(src_path: Path, dst_path: Path, chunk_rows: int) -> None:
    """Copy every split chunk by chunk into a new file with the same layout; fsync it."""
    import h5py

    from genrekit.core import h5layout

    with h5py.File(src_path, "r") as src, h5py.File(dst_path, "w") as dst:
        for key, value in src.attrs.items():
            dst.attrs[key] = value
        src.copy(src["tracks"], dst, name="tracks")
        for split in h5layout.SPLITS:
            group = src[split]
            out = h5layout.create_split_arrays(dst.create_group(split), len(group["specs"]), group["specs"].shape[1:])
            for start in range(0, len(group["specs"]), chunk_rows):
                stop = start + chunk_rows
                for name in h5layout.ARRAYS:
                    out[name][start:stop] = group[name][start:stop]
    fd = os.open(dst_path, os.O_RDONLY)
    os.fsync(fd)
    os.close(fd)


def child(args: argparse.Namespace) -> None:
    """Runs in the measured child process: do one job, print its figures as JSON."""
    import filelock  # noqa: F401  (imported by process_dataset: part of the floor)
    import h5py
    import tqdm  # noqa: F401

    from genrekit.core.config import load_config
    from genrekit.dataset.process import process_dataset, rows_per_chunk

    cfg = load_config(args.config)
    with h5py.File(cfg.dataset_path, "r") as h5:
        row_bytes = h5["train/specs"][0].nbytes
    usage = resource.getrusage(resource.RUSAGE_SELF)
    cpu_start = usage.ru_utime + usage.ru_stime
    start = time.perf_counter()
    if args.child == "copy":
        plain_copy(
            cfg.dataset_path,
            cfg.paths.output_folder / "copy.h5",
            rows_per_chunk(cfg.processing.memory_limit_mb, row_bytes),
        )
    elif args.child == "process":
        process_dataset(cfg, force=True, progress=False, log=lambda message: None)
    seconds = time.perf_counter() - start
    usage = resource.getrusage(resource.RUSAGE_SELF)
    cpu_seconds = usage.ru_utime + usage.ru_stime - cpu_start
    # VmHWM: this process's peak RSS. (ru_maxrss from wait4 would also count the
    # parent's RSS at fork time, which a child keeps across exec.)
    status = Path("/proc/self/status").read_text()
    peak_kb = int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmHWM:")))
    print(json.dumps({"seconds": seconds, "cpu_seconds": cpu_seconds, "peak_mb": peak_kb / 1024}))


def measure(job: str, config: Path) -> dict:
    """Run one job in a fresh child process; return its seconds, CPU seconds and peak RSS (MB)."""
    cmd = [sys.executable, __file__, "--child", job, "--config", str(config)]
    done = subprocess.run(cmd, stdout=subprocess.PIPE, cwd=REPO_ROOT, check=True)
    return json.loads(done.stdout)


def write_config(folder: Path, memory_mb: int, shuffle: bool) -> Path:
    path = folder / f"config_shuffle_{shuffle}.json"
    path.write_text(
        json.dumps({"paths": {"output_folder": "."}, "processing": {"memory_limit_mb": memory_mb, "shuffle": shuffle}})
    )
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--memory-mb", type=int, default=64, help="processing.memory_limit_mb (default 64)")
    parser.add_argument("--dataset-mb", type=int, default=320, help="size of the synthetic dataset.h5 (default 320)")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each job; the best is kept (default 3)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="scratch folder (removed at the end)")
    parser.add_argument("--child", choices=["copy", "process", "imports"], help=argparse.SUPPRESS)
    parser.add_argument("--config", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return

    from genrekit.audio.features import slice_geometry
    from genrekit.core.config import load_config
    from tests.h5fixtures import write_dataset

    folder = args.out
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    try:
        configs = {shuffle: write_config(folder, args.memory_mb, shuffle) for shuffle in (True, False)}
        cfg = load_config(configs[True])
        spec_shape = slice_geometry(cfg.slicing.slice_duration, cfg.slicing.overlap, cfg.features).spec_shape
        rows = args.dataset_mb * 2**20 // (spec_shape[0] * spec_shape[1] * 2)
        split_rows = {"train": rows * 8 // 10, "val": rows // 10, "test": rows - rows * 8 // 10 - rows // 10}
        print(
            f"writing a {args.dataset_mb} MB dataset.h5 ({rows} slices of {spec_shape[0]}x{spec_shape[1]})...",
            file=sys.stderr,
        )
        write_dataset(cfg.dataset_path, cfg, split_rows, spec_shape=spec_shape, slices_per_track=14)
        dataset_mb = cfg.dataset_path.stat().st_size / 2**20

        results: dict[str, list[dict]] = {}
        jobs = {
            "copy": ("copy", configs[True]),
            "process (shuffle)": ("process", configs[True]),
            "process (no shuffle)": ("process", configs[False]),
        }
        load_before = os.getloadavg()[0]
        for repeat in range(args.repeat):  # interleaved, so that a busy moment hits every job alike
            for name, (job, config) in jobs.items():
                print(f"{name}, run {repeat + 1} of {args.repeat}...", file=sys.stderr)
                results.setdefault(name, []).append(measure(job, config))
                for leftover in ("copy.h5", "processed.h5"):
                    (folder / leftover).unlink(missing_ok=True)
        floor_mb = measure("imports", configs[True])["peak_mb"]

        print(
            f"dataset.h5: {dataset_mb:.0f} MB ({rows} slices of {spec_shape[0]}x{spec_shape[1]}), memory bound "
            f"(processing.memory_limit_mb): {args.memory_mb} MB ({dataset_mb / args.memory_mb:.1f}x); "
            f"{os.cpu_count()} CPUs, load average {load_before:.1f} before, {os.getloadavg()[0]:.1f} after"
        )
        print(f"interpreter + imports alone: peak RSS {floor_mb:.0f} MB")
        print(f"best of {args.repeat}:{'':14s}  wall s     MB/s  ratio   CPU s  CPU ratio  peak RSS MB (above imports)")
        best = {
            name: (
                min(r["seconds"] for r in runs),
                min(r["cpu_seconds"] for r in runs),
                max(r["peak_mb"] for r in runs),
            )
            for name, runs in results.items()
        }
        copy_seconds, copy_cpu, _ = best["copy"]
        for name, (seconds, cpu, peak) in best.items():
            print(
                f"{name:28s} {seconds:6.2f} {dataset_mb / seconds:8.1f} {copy_seconds / seconds:6.2f} "
                f"{cpu:7.2f} {copy_cpu / cpu:10.2f} {peak:9.0f} ({peak - floor_mb:+.0f})"
            )
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
