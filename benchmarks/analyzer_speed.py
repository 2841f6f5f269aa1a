"""How fast does ``track_analyzer`` analyze a 4-minute 44.1 kHz stereo mp3, and a whole library?

Sections (``--sections``, default all):

* ``track`` (issue 5): after the model is loaded, one track split into decode, features and
  inference, in one process, for the CRNN, the musicnn-msd tagger and a backbone run.
* ``startup`` (issue 23): the whole CLI call (process start to exit) on the 4-minute mp3, median
  of ``--cold`` calls, with the default run folder (an ensemble of 3 CRNNs) and with one CRNN,
  through the LiteRT export and through Keras (``--runtime keras``); per-slice inference of the
  CRNN and of musicnn on both (medians of rounds in alternating order); the musicnn tagger's whole
  call and peak memory; the size of the analysis-only install (``.venv-analysis``, make
  venv-analysis) against the full one (``.venv``).
* ``library`` (issue 22): a generated library of ``--library-files`` mp3s (44.1 kHz stereo: 30 s
  clips and, one in ``--song-every``, 3-5 minute songs), analyzed with ``--csv`` by the default run
  folder, one CRNN and the musicnn-msd tagger: files per second and times real time, with the folder
  mode of before this work (the commit ``BEFORE``, run from a git worktree) beside it in the same
  run; the songs alone with the default run folder (issue 22's target is on songs), now, now at the
  earlier default overlap of 2 s, and before; one CRNN on a Dask ``LocalCluster`` of two worker
  processes (``--scheduler``).
* ``memory`` (issue 22): the peak memory of the whole process tree analyzing that library with one
  CRNN, at ``--library-files`` and 10 times as many files (hard links to the same audio).
* ``ready`` (issue 34): the ready genre model (the analyzer's default, ``--model`` not given) now and at
  the commit before issue 34 (``BEFORE_READY``, a git worktree run with this interpreter), in one run, as
  ratios: one 3.5-minute 44.1 kHz stereo mp3's whole CLI call (median of ``--cold`` calls, the two
  checkouts alternating) and a folder of ``--ready-songs`` generated 3-5 minute songs (``--csv``; the
  two alternating, ``--repeats`` times): times real time, peak memory of the process tree; now also
  with ``--precision float``, the export a CPU without int8 dot products (AVX2 alone) runs by default.
* ``long`` (issue 34): the peak memory of one CLI call with the ready model on a 2-hour 44.1 kHz stereo
  mp3 (made once with ffmpeg from a synthetic signal, 115 MB) against its first 4 minutes.

Every section prints the CPU and its instruction set (:func:`instruction_set`): speed figures depend on
it (XNNPACK's kernels, the int8 exports' default, see docs/GUIDE.md).

The model is the default-config CRNN (``genrekit.models.networks.build_crnn``) with untrained
weights (speed does not depend on them) and a bundle with the default features. Files
go to ``benchmarks/out/analyzer_speed/`` (git-ignored) and are reused on later runs.

The same track then goes, in the same run, through the ready tagger ``musicnn-msd`` and
through a run with ``model.backbone: musicnn-msd`` (its head untrained): their analysis
time and multiply-adds per slice against the CRNN's (``--models``).

    .venv/bin/python benchmarks/analyzer_speed.py [--repeats 3] [--folder-tracks 3] [--models crnn tagger backbone]

Figures are wall-clock seconds; ``load average`` is printed because other processes on
the machine slow every figure down.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

import numpy as np  # noqa: E402

from genrekit.core.config import Config  # noqa: E402

OUT = REPO_ROOT / "benchmarks" / "out" / "analyzer_speed"
LABELS = ["blues", "classical", "country", "disco", "hiphop", "jazz", "metal", "pop", "reggae", "rock"]
TRACK_SECONDS = 240.0


def make_track(path: Path) -> Path:
    """Four minutes whose character changes every 30 s (tones, noise, drums), as a 44.1 kHz stereo mp3."""
    from tests.helpers import label_signal, write_audio

    if not path.exists():
        parts = [label_signal(i, 30.0, seed=i) for i in range(int(TRACK_SECONDS // 30))]
        write_audio(path, 0.8 * np.concatenate(parts), out_rate=44100, channels=2)
    return path


def make_bundle(folder: Path, cfg: Config, runs: int = 1) -> Path:
    """A run folder with the default-size CRNN (untrained) and plausible normalization statistics; with
    ``runs`` > 1 the ensemble of that many, as ``training.runs`` makes it (the default run folder: 3)."""
    from genrekit.audio.features import slice_geometry
    from genrekit.dataset.normalization import NormStats
    from genrekit.models import registry
    from genrekit.models.bundle import write_bundle
    from genrekit.models.networks import build_crnn

    if (folder / "bundle.json").exists():
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    geometry = slice_geometry(cfg.slicing.slice_duration, cfg.slicing.overlap, cfg.features)
    members = [build_crnn((*geometry.spec_shape, 1), len(LABELS), cfg.model, name=f"crnn{i}") for i in range(runs)]
    registry.save_model(members[0] if runs == 1 else registry.ensemble(members), folder)  # model.keras + .tflite
    stats = NormStats("standard", np.full(geometry.n_mels, -50.0), np.full(geometry.n_mels, 20.0))
    write_bundle(
        folder,
        labels=LABELS,
        features=cfg.features,
        slicing=cfg.slicing,
        normalization=stats,
        silence_threshold_db=cfg.build.silence_threshold_db,
    )
    return folder


def make_backbone_bundle(folder: Path) -> Path:
    """A run folder with musicnn-msd as backbone and an untrained head, as train_crnn.py writes it."""
    from genrekit.core.config import config_from_dict
    from genrekit.dataset.normalization import NormStats
    from genrekit.models import backbone, registry
    from genrekit.models.bundle import write_bundle

    if (folder / "bundle.json").exists():
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    cfg = config_from_dict({"model": {"backbone": "musicnn-msd"}})
    embedder = backbone.build_embedder(cfg.model)
    model = backbone.build_classifier(embedder, backbone.build_head(embedder.output_shape[-1], len(LABELS), cfg.model))
    registry.save_model(model, folder)
    write_bundle(
        folder,
        labels=LABELS,
        features=cfg.features,
        slicing=cfg.slicing,
        normalization=NormStats("none"),
        silence_threshold_db=cfg.build.silence_threshold_db,
    )
    return folder


def timed(fn, *args, **kwargs):
    start = time.perf_counter()
    value = fn(*args, **kwargs)
    return value, time.perf_counter() - start


def in_process(track: Path, bundle: Path | str, cfg: Config, repeats: int) -> np.ndarray:
    """Load once, then split each analysis into decode / features / inference; return the steady
    state seconds (decode, features, inference) and print them."""
    from genrekit.audio.decode import decode
    from genrekit.audio.features import slice_signal
    from genrekit.models.networks import multiply_adds
    from track_analyzer import Analyzer

    analyzer, load_s = timed(Analyzer, bundle, batch_size=cfg.analysis.batch_size)
    keras_model = Analyzer(bundle, runtime="keras").model
    print(
        f"{bundle if isinstance(bundle, str) else Path(bundle).name}, in one process: model load "
        f"{load_s:.2f} s ({type(analyzer.model).__name__}; {keras_model.count_params():,} parameters, "
        f"{multiply_adds(keras_model) / 1e6:,.0f} M multiply-adds per slice)"
    )
    settings = analyzer.slice_settings(cfg.analysis.overlap)
    rows = []
    for run in range(repeats):
        signal, decode_s = timed(decode, track, settings.features.sample_rate)
        slices, features_s = timed(slice_signal, signal, settings.slicing, settings.features, overlap=settings.overlap)
        _, inference_s = timed(analyzer.predict, slices.specs)
        rows.append((decode_s, features_s, inference_s))
        note = "  (the first track after the model load)" if run == 0 else ""
        print(
            f"  run {run + 1}: decode {decode_s:.2f} s  features {features_s:.2f} s  "
            f"inference {inference_s:.2f} s  = {decode_s + features_s + inference_s:.2f} s "
            f"for {len(slices.starts)} slices{note}"
        )
    steady = np.median(np.array(rows[1:] or rows), axis=0)
    print(
        f"steady state (median of runs 2..): decode {steady[0]:.2f} s  features {steady[1]:.2f} s  "
        f"inference {steady[2]:.2f} s  total {steady.sum():.2f} s  "
        f"({1000 * steady[2] / len(slices.starts):.1f} ms of inference per slice)"
    )
    result, analyze_s = timed(analyzer.analyze, track, overlap=cfg.analysis.overlap)
    print(f"Analyzer.analyze (the same path in one call): {analyze_s:.2f} s -> {result.summary()}")
    return steady


BEFORE = "a096de7"  # the last commit before the library analysis and the exports (folder mode of then)
BEFORE_READY = "10fa1bf"  # the last commit before issue 34 (int8 exports, streaming decode)


def instruction_set() -> str:
    """The CPU and the widest SIMD it offers (``/proc/cpuinfo``), e.g. ``AMD EPYC: AVX-512 (with VNNI)``."""
    try:
        lines = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return "unknown CPU (no /proc/cpuinfo)"
    field = {line.split(":")[0].strip(): line.split(":", 1)[1].strip() for line in lines if ":" in line}
    flags = set(field.get("flags", "").split())
    widest = "AVX-512" if "avx512f" in flags else "AVX2" if "avx2" in flags else "no AVX2"
    vnni = " (with VNNI: int8 dot products)" if flags & {"avx512_vnni", "avx_vnni"} else " (no VNNI)"
    return f"{field.get('model name', 'unknown CPU')}: {widest}{vnni}"


def cli_call(args: list[str], root: Path = REPO_ROOT, python: str = sys.executable) -> float:
    """Wall-clock seconds of one fresh CLI process (process start to exit) of the checkout at ``root``."""
    start = time.perf_counter()
    proc = subprocess.run(
        [python, "-m", "track_analyzer", *args],
        cwd=root,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(root)},
    )
    if proc.returncode != 0:
        sys.exit(f"CLI failed:\n{proc.stderr}")
    return time.perf_counter() - start


def median_cli(args: list[str], calls: int, python: str = sys.executable) -> float:
    """Median wall-clock seconds of ``calls`` fresh CLI processes (process start to exit)."""
    return float(np.median([cli_call(args, python=python) for _ in range(calls)]))


def peak_tree_rss(cmd: list[str], cwd: Path, env: dict) -> tuple[float, float]:
    """Run ``cmd``; return its wall-clock seconds and the peak of the summed RSS of its process tree
    (the analyzer and its decoding workers), sampled every 20 ms."""
    import tempfile

    import psutil

    with tempfile.TemporaryFile("w+") as log:  # a file, not a pipe: nobody reads a pipe while it runs
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=log, text=True)
        parent, peak = psutil.Process(proc.pid), 0
        while proc.poll() is None:
            with contextlib.suppress(psutil.Error):
                peak = max(peak, sum(p.memory_info().rss for p in [parent, *parent.children(recursive=True)]))
            time.sleep(0.02)
        seconds = time.perf_counter() - start
        if proc.returncode != 0:
            log.seek(0)
            sys.exit(f"failed: {' '.join(cmd)}\n{log.read()[-3000:]}")
    return seconds, peak


def per_slice_ms(analyzer, specs: np.ndarray, repeats: int = 3) -> float:
    """Milliseconds of inference per slice (:meth:`Analyzer.predict`: batches of 64), best of ``repeats``."""
    analyzer.predict(specs[:64])  # the first call allocates
    best = np.inf
    for _ in range(repeats):
        start = time.perf_counter()
        analyzer.predict(specs)
        best = min(best, time.perf_counter() - start)
    return 1000 * best / len(specs)


def site_packages_mb(venv: Path) -> float:
    found = list(venv.glob("lib/python3*/site-packages"))
    return sum(f.stat().st_size for f in found[0].rglob("*") if f.is_file()) / 2**20 if found else float("nan")


ROUNDS = 4  # pairs of per-slice rounds in 'startup', one in each order


def startup(track: Path, cfg: Config, calls: int) -> None:
    """Issue 23: the whole CLI call, Keras against the LiteRT export; per-slice inference; install size."""
    from genrekit.inference.analyzer import Analyzer

    print(
        f"\n== startup: the whole CLI call on {track.name}, median of {calls} cold calls "
        f"(load average {os.getloadavg()[0]:.2f})"
    )
    folders = {
        "default run (ensemble of 3)": make_bundle(OUT / "crnn-3", cfg, runs=3),
        "one CRNN": make_bundle(OUT / "crnn-1", cfg),
    }
    for name, folder in folders.items():
        export = median_cli([str(track), "--model", str(folder)], calls)
        keras_s = median_cli([str(track), "--model", str(folder), "--runtime", "keras"], calls)
        print(f"  {name}: LiteRT export {export:.2f} s, Keras {keras_s:.2f} s (x{keras_s / export:.1f})")
    seconds, peak = peak_tree_rss(
        [sys.executable, "-m", "track_analyzer", str(track), "--model", "musicnn-msd"],
        REPO_ROOT,
        {**os.environ, "PYTHONPATH": str(REPO_ROOT)},
    )
    keras_seconds, keras_peak = peak_tree_rss(
        [sys.executable, "-m", "track_analyzer", str(track), "--model", "musicnn-msd", "--runtime", "keras"],
        REPO_ROOT,
        {**os.environ, "PYTHONPATH": str(REPO_ROOT)},
    )
    print(
        f"  musicnn-msd tagger, one call: LiteRT export {seconds:.2f} s, peak {peak / 2**30:.2f} GB; "
        f"Keras {keras_seconds:.2f} s, peak {keras_peak / 2**30:.2f} GB"
    )
    for name, model in (("CRNN", folders["one CRNN"]), ("musicnn-msd", "musicnn-msd")):
        analyzers = {runtime: Analyzer(model, runtime=runtime) for runtime in ("litert", "keras")}
        specs = analyzers["litert"].slice_settings().load(track).specs[:128]
        # rounds in alternating order, since a shared machine drifts by 10 % within a minute
        rounds = [
            {runtime: per_slice_ms(analyzers[runtime], specs) for runtime in order}
            for order in [("litert", "keras"), ("keras", "litert")] * ROUNDS
        ]
        times = {runtime: float(np.median([r[runtime] for r in rounds])) for runtime in analyzers}
        ratio = float(np.median([r["litert"] / r["keras"] for r in rounds]))
        print(
            f"  per-slice inference, {name}: LiteRT {times['litert']:.2f} ms, Keras {times['keras']:.2f} ms "
            f"(batches of 64; medians of {len(rounds)} rounds), LiteRT / Keras x{ratio:.2f}"
        )
    analysis, full = site_packages_mb(REPO_ROOT / ".venv-analysis"), site_packages_mb(REPO_ROOT / ".venv")
    print(
        f"  install: analysis-only (.venv-analysis, make venv-analysis) {analysis:,.0f} MB of site-packages, "
        f"full (.venv) {full:,.0f} MB (x{full / analysis:.1f})"
    )


def make_library(root: Path, files: int, song_every: int) -> tuple[Path, float, dict[Path, float]]:
    """``files`` mp3s under ``root`` (44.1 kHz stereo): 30 s clips and, one in ``song_every``, 3-5 min songs;
    returns the folder, its seconds of audio, and the songs with their seconds."""
    from tests.helpers import label_signal, write_audio

    folder = root / f"library-{files}"
    total, songs = 0.0, {}
    for i in range(files):
        seconds = 180.0 + 30.0 * (i // song_every % 5) if i % song_every == 0 else 30.0
        path = folder / f"part{i % 7}" / f"track{i:04d}.mp3"
        if not path.exists():
            parts = [label_signal((i + k) % 4, 15.0, seed=1000 * i + k) for k in range(int(seconds // 15))]
            write_audio(path, 0.8 * np.concatenate(parts), out_rate=44100, channels=2)
        total += seconds
        if i % song_every == 0:
            songs[path] = seconds
    return folder, total, songs


def hard_link(source: Path, link: Path) -> None:
    """``link`` names the same file as ``source`` (made once; kept on later runs)."""
    if not link.exists():
        link.parent.mkdir(parents=True, exist_ok=True)
        os.link(source, link)


def linked_songs(folder: Path, songs: dict[Path, float]) -> Path:
    """A folder of hard links to the library's songs alone."""
    target = folder.with_name(f"{folder.name}-songs")
    for song in songs:
        hard_link(song, target / song.relative_to(folder))
    return target


def linked_copies(folder: Path, times: int) -> Path:
    """A library of ``times`` hard links to every file of ``folder`` (distinct paths, the same audio)."""
    target = folder.with_name(f"{folder.name}-x{times}")
    for source in sorted(folder.rglob("*.mp3")):
        for k in range(times):
            hard_link(source, target / f"copy{k}" / source.relative_to(folder))
    return target


def before_checkout(commit: str = BEFORE) -> Path | None:
    """A git worktree of ``commit`` (default :data:`BEFORE`, the folder mode of then), or None without git."""
    path = OUT / f"before-{commit}"
    if not (path / "track_analyzer").is_dir():
        done = subprocess.run(
            ["git", "worktree", "add", "--detach", str(path), commit], cwd=REPO_ROOT, capture_output=True, text=True
        )
        if done.returncode != 0:
            print(f"  (no folder mode of before: git worktree failed: {done.stderr.strip()})")
            return None
    return path


def timed_folder(root: Path, folder: Path, model, results: Path, *options: str) -> tuple[float, float]:
    """Seconds and peak memory of the folder analysis of ``folder`` into a fresh ``results`` CSV, run with
    the checkout at ``root``."""
    for stale in (results, results.with_name(results.name + ".settings.json")):
        stale.unlink(missing_ok=True)
    return peak_tree_rss(
        [sys.executable, "-m", "track_analyzer", str(folder), "--model", str(model), "--csv", str(results), *options],
        root,
        {**os.environ, "PYTHONPATH": str(root)},
    )


def library(cfg: Config, files: int, song_every: int, models: list[str]) -> None:
    """Issue 22: library throughput, now and before, and memory at ``files`` and 10x ``files``."""
    folder, audio_seconds, songs = make_library(OUT, files, song_every)
    print(f"\n== library: {files} files, {audio_seconds / 3600:.1f} h of audio (load average {os.getloadavg()[0]:.2f})")
    # the default run folder is an ensemble of 3 runs (training.runs; kept by issue 26), one run the cheap choice
    choices = {
        "ensemble": ("ensemble of 3 CRNNs", make_bundle(OUT / "crnn-3", cfg, runs=3)),
        "one": ("one CRNN", make_bundle(OUT / "crnn-1", cfg)),
        "tagger": ("musicnn-msd tagger", "musicnn-msd"),
    }
    before = before_checkout()
    measured: dict[str, dict[str, float]] = {}
    for key in models:
        name, model = choices[key]
        rows = {}
        for when, root in (("now", REPO_ROOT), ("before", before)):
            if root is None:
                continue
            seconds, peak = timed_folder(root, folder, model, OUT / f"library-{when}.csv")
            rows[when] = seconds
            print(
                f"  {name}, {when}: {seconds:.1f} s, {files / seconds:.1f} files/s, "
                f"x{audio_seconds / seconds:.0f} real time, peak {peak / 2**30:.2f} GB"
            )
        if len(rows) == 2:
            print(f"  {name}: now x{rows['before'] / rows['now']:.2f} the throughput of before")
        measured[key] = rows
    default = "one" if cfg.training.runs == 1 else "ensemble" if cfg.training.runs == 3 else None
    if default in measured and "before" in measured.get("ensemble", {}):
        # issue 22's target: the default run folder now, against the folder mode of before with the
        # default run folder of then (an ensemble of 3)
        print(
            f"  the default run folder now ({choices[default][0]}) in this folder mode against the default of "
            f"before (an ensemble of 3) in the folder mode of before: "
            f"x{measured['ensemble']['before'] / measured[default]['now']:.2f} the throughput"
        )
    if default in measured:
        # issue 22's target is on songs (>= 320x real time): the songs alone, with the default run folder
        # at its analysis overlap, at the earlier default overlap (2 s), and in the folder mode of before
        song_folder, song_seconds = linked_songs(folder, songs), sum(songs.values())
        name, model = choices[default]
        print(f"  songs alone ({len(songs)} songs of 3-5 min, {song_seconds / 3600:.1f} h), {name}:")
        rows = {}
        for when, root, options in (
            ("now", REPO_ROOT, ()),
            ("now at overlap 2.0", REPO_ROOT, ("--overlap", "2.0")),
            ("before", before, ()),
        ):
            if root is not None:
                rows[when], peak = timed_folder(root, song_folder, model, OUT / "library-songs.csv", *options)
                print(
                    f"    {when}{' (the default overlap)' if when == 'now' else ''}: "
                    f"{rows[when]:.1f} s, x{song_seconds / rows[when]:.0f} real time, peak {peak / 2**30:.2f} GB"
                )
        if "before" in rows:
            print(
                f"    now x{rows['before'] / rows['now']:.2f} the throughput of before "
                f"(x{rows['before'] / rows['now at overlap 2.0']:.2f} at the earlier overlap)"
            )
    from distributed import LocalCluster

    with LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address=None
    ) as cluster:
        seconds, _ = timed_folder(
            REPO_ROOT, folder, choices["one"][1], OUT / "library-dask.csv", "--scheduler", cluster.scheduler_address
        )
        print(
            f"  one CRNN on a Dask LocalCluster of 2 single-threaded workers (--scheduler): {seconds:.1f} s, "
            f"{files / seconds:.1f} files/s, x{audio_seconds / seconds:.0f} real time"
        )


def memory(cfg: Config, files: int, song_every: int) -> None:
    """Issue 22: the peak memory of a library analysis at ``files`` and 10x ``files`` (hard links)."""
    folder, audio_seconds, _ = make_library(OUT, files, song_every)
    print(f"\n== memory: one CRNN, {files} and {10 * files} files (load average {os.getloadavg()[0]:.2f})")
    one_crnn = make_bundle(OUT / "crnn-1", cfg)
    bigger = linked_copies(folder, 10)
    for count, path in ((files, folder), (10 * files, bigger)):
        seconds, peak = peak_tree_rss(
            [
                sys.executable,
                "-m",
                "track_analyzer",
                str(path),
                "--model",
                str(one_crnn),
                "--csv",
                str(OUT / f"memory-{count}.csv"),
                "--restart",
            ],
            REPO_ROOT,
            {**os.environ, "PYTHONPATH": str(REPO_ROOT)},
        )
        print(
            f"  memory, one CRNN, {count} files: peak {peak / 2**30:.2f} GB of the process tree "
            f"({seconds:.0f} s, x{audio_seconds * count / files / seconds:.0f} real time)"
        )


def ready(calls: int, songs: int, repeats: int) -> None:
    """Issue 34: the ready model (the default), now against :data:`BEFORE_READY`, on one song and a folder of
    songs; now also with ``--precision float``, the export a CPU without int8 dot products (AVX2 alone) runs."""
    from tests.helpers import label_signal, write_audio

    print(f"\n== ready model, now against {BEFORE_READY} (load average {os.getloadavg()[0]:.2f}; {instruction_set()})")
    before = before_checkout(BEFORE_READY)
    if before is None:
        return
    arms = {"now": (REPO_ROOT, []), "now, float": (REPO_ROOT, ["--precision", "float"]), "before": (before, [])}
    song = OUT / "song_3.5min_44k_stereo.mp3"
    if not song.exists():
        parts = [label_signal(i % 4, 30.0, seed=300 + i) for i in range(7)]
        write_audio(song, 0.8 * np.concatenate(parts), out_rate=44100, channels=2)
    for root, options in arms.values():
        cli_call([str(song), *options], root)  # warm the page cache and the bytecode
    times = {arm: [] for arm in arms}
    for call in range(calls):  # alternating, so that a drift of the machine touches every arm
        for arm in list(arms)[:: 1 if call % 2 == 0 else -1]:
            root, options = arms[arm]
            times[arm].append(cli_call([str(song), *options], root))
    for arm in ("now", "now, float"):
        ratios = np.array(times[arm]) / np.array(times["before"])
        print(
            f"  one 3.5-minute song, the whole CLI call, median of {calls}: {arm} {np.median(times[arm]):.2f} s, "
            f"before {np.median(times['before']):.2f} s; {arm} / before x{np.median(ratios):.2f} (median of the pairs)"
        )
    folder, _, found = make_library(OUT, songs, song_every=1)
    seconds = sum(found.values())
    runs = {arm: [] for arm in arms}
    for repeat in range(repeats):
        for arm in list(arms)[:: 1 if repeat % 2 == 0 else -1]:
            root, options = arms[arm]
            name = arm.replace(", ", "-")
            elapsed, peak = timed_folder(root, folder, "gtzan-genres", OUT / f"ready-{name}.csv", *options)
            runs[arm].append(elapsed)
            print(f"    {arm}: {elapsed:.1f} s, x{seconds / elapsed:.0f} real time, peak {peak / 2**30:.2f} GB")
    then = np.median(runs["before"])
    for arm in ("now", "now, float"):
        now = np.median(runs[arm])
        print(
            f"  a folder of {songs} songs ({seconds / 3600:.2f} h), median of {repeats}: {arm} x{seconds / now:.0f} "
            f"real time, before x{seconds / then:.0f}; {arm} x{then / now:.2f} the throughput of before"
        )


def long_file(minutes: float = 120.0) -> None:
    """Issue 34: the peak memory of the ready model's CLI call on a 2-hour mp3 against its first 4 minutes."""
    from genrekit.audio.decode import ffmpeg_executable

    long = OUT / f"long_{minutes:.0f}min_44k_stereo.mp3"
    first = OUT / "long_first_4min_44k_stereo.mp3"
    if not long.exists():  # tones, noise and pulses changing every 30 s, from ffmpeg's own sources
        print(f"  making {long.name} (a few minutes, once)")
        source = (
            "sine=frequency=220:sample_rate=44100,volume=0.3[a];anoisesrc=color=pink:amplitude=0.1:sample_rate=44100[b];"
            "sine=frequency=1760:sample_rate=44100:beep_factor=4,volume=0.2[c];[a][b][c]amix=inputs=3,"
            "volume='if(lt(mod(t,60),30),1,0.3)':eval=frame,aformat=channel_layouts=stereo"
        )
        subprocess.run(
            [ffmpeg_executable(), "-nostdin", "-y", "-loglevel", "error", "-filter_complex", source, "-t",
             str(60 * minutes), "-c:a", "libmp3lame", "-b:a", "128k", str(long)],
            check=True,
        )  # fmt: skip
    if not first.exists():
        subprocess.run(
            [ffmpeg_executable(), "-nostdin", "-y", "-loglevel", "error", "-i", str(long), "-t", "240", "-c", "copy",
             str(first)],
            check=True,
        )  # fmt: skip
    print(f"\n== long file, ready model, whole CLI call (load average {os.getloadavg()[0]:.2f}; {instruction_set()})")
    peaks = {}
    for path in (first, long):
        seconds, peaks[path] = peak_tree_rss(
            [sys.executable, "-m", "track_analyzer", str(path)], REPO_ROOT, {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
        )
        print(
            f"  {path.name} ({path.stat().st_size / 1e6:.0f} MB): {seconds:.1f} s, peak {peaks[path] / 2**20:.0f} MiB"
        )
    print(f"  peak of the 2-hour file / peak of its first 4 minutes: x{peaks[long] / peaks[first]:.2f} (target <= 1.2)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--sections",
        nargs="+",
        default=["track", "startup", "library", "memory", "ready", "long"],
        choices=["track", "startup", "library", "memory", "ready", "long"],
        help="what to measure (default: all)",
    )
    parser.add_argument("--ready-songs", type=int, default=20, help="'ready': songs in the folder (default 20)")
    parser.add_argument("--repeats", type=int, default=3, help="in-process analyses and CLI calls (default 3)")
    parser.add_argument("--cold", type=int, default=5, help="cold CLI calls per median in 'startup' (default 5)")
    parser.add_argument(
        "--models",
        nargs="+",
        default=["crnn", "tagger", "backbone"],
        choices=["crnn", "tagger", "backbone"],
        help="'track': models timed in one process: the CRNN, the musicnn-msd tagger, a "
        "musicnn-msd backbone run (default: all)",
    )
    parser.add_argument("--library-files", type=int, default=200, help="'library': files (default 200)")
    parser.add_argument(
        "--song-every",
        type=int,
        default=7,
        help="'library': one file in this many is a 3-5 minute song, the others 30 s clips",
    )
    parser.add_argument(
        "--library-models",
        nargs="+",
        default=["ensemble", "one", "tagger"],
        choices=["ensemble", "one", "tagger"],
        help="'library': which models: the ensemble of 3 CRNNs, one CRNN, the musicnn-msd tagger (default: all three)",
    )
    args = parser.parse_args()

    cfg = Config()
    track = make_track(OUT / "track_4min_44k_stereo.mp3")
    print(
        f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs, {instruction_set()}; "
        f"track {track.name} ({track.stat().st_size / 1e6:.1f} MB)"
    )
    if "track" in args.sections:
        models = {
            "crnn": lambda: make_bundle(OUT / "crnn-1", cfg),
            "tagger": lambda: "musicnn-msd",
            "backbone": lambda: make_backbone_bundle(OUT / "backbone_model"),
        }
        steady = {}
        for name in args.models:
            print()
            steady[name] = in_process(track, models[name](), cfg, args.repeats)
        if "crnn" in steady:
            for name in set(steady) - {"crnn"}:
                ratio = steady[name] / steady["crnn"]
                print(
                    f"{name} / crnn, same run: features x{ratio[1]:.2f}, inference x{ratio[2]:.1f}, "
                    f"total x{steady[name].sum() / steady['crnn'].sum():.1f}"
                )
    if "startup" in args.sections:
        startup(track, cfg, args.cold)
    if "library" in args.sections:
        library(cfg, args.library_files, args.song_every, args.library_models)
    if "memory" in args.sections:
        memory(cfg, args.library_files, args.song_every)
    if "ready" in args.sections:
        ready(args.cold, args.ready_songs, args.repeats)
    if "long" in args.sections:
        long_file()


if __name__ == "__main__":
    main()
