"""Train the ready genre model, ``gtzan-genres`` (the analyzer's default), from the shared GTZAN sets.

The model: the pretrained ``musicnn-msd`` backbone, frozen, under a new head (dropout 0.5, a softmax
over GTZAN's ten genres) trained on all 484 clips of ``../shared/data`` (``gtzan_mini``,
``gtzan_other_artists``, ``gtzan_more_artists``: 270 full clips; ``gtzan_excerpts``: 214 short
excerpts; 161 artist groups) for 20 epochs, seed 42, every slice levelled, short clips looped,
genres and clips weighted, with no validation or test split, no build-time copies (:data:`SETTINGS`).
How good it is on artists it never heard comes from an artist-held-out cross-validation of the same
training: ``benchmarks/ready_model_cv.py``.

What it does, in a work folder (``--work``, default ``output/ready_model/``):

1. a folder-per-genre tree of links to the 484 clips (``audio/<genre>/<set>/<file>``) and their
   artists, ``artists.csv`` (the four sets' own files, joined: a ``split.group_file``);
2. ``ready_model.json``, the config (:data:`SETTINGS`);
3. the project's own scripts as subprocesses: ``build_dataset.py``, ``process_dataset.py``,
   ``train_crnn.py`` (the run folder ``output/models/gtzan-genres/``, with its LiteRT export);
4. what the analyzer needs, into ``genrekit/models/ready/gtzan-genres/``: ``bundle.json`` (the run's,
   without its paths' fingerprints and date, plus ``"head"``: the model settings that rebuild the
   backbone), ``head.npz`` (the trained head's two arrays, 15,070 weights: the Keras fallback rebuilds
   musicnn from its checkpoints, so the 2.2 MB ``model.keras`` is not kept), ``model.tflite`` (backbone
   and head exported together, what the analyzer runs) and ``MODEL_CARD.md``.

The training is deterministic on a CPU: two trainings give bit-identical weights. ``--check`` trains
again in a temporary folder and compares with the committed model: the head's arrays (bit-identical
expected on the CPU it was made on; at most :data:`HEAD_TOLERANCE` apart elsewhere, see there),
``bundle.json`` and ``MODEL_CARD.md`` (equal), and the two exports' scores on the same inputs (at most
:data:`SCORE_TOLERANCE` apart). It takes about 3 minutes on 2 cores (build, processing, then
training: most of it musicnn's features of the 4,607 slices, 20 epochs of the head after).

Usage::

    .venv/bin/python tools/train_ready_model.py                # train, write genrekit/models/ready/gtzan-genres/
    .venv/bin/python tools/train_ready_model.py --check        # train again, compare with the committed model
    .venv/bin/python tools/train_ready_model.py --card         # only MODEL_CARD.md again (new figures)
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))  # run from anywhere without installing

import numpy as np  # noqa: E402

from genrekit.core import cli  # noqa: E402
from genrekit.core.atomic import write_json, write_text  # noqa: E402
from genrekit.core.errors import GenrekitError  # noqa: E402
from genrekit.models import litert, registry  # noqa: E402
from genrekit.models.bundle import BUNDLE_FILE, HEAD_FILE, MODEL_FILE  # noqa: E402

NAME = "gtzan-genres"
TARGET = registry.READY[NAME]
DATA = REPO_ROOT.parent / "shared" / "data"
SETS = ("gtzan_mini", "gtzan_other_artists", "gtzan_more_artists", "gtzan_excerpts")
EXCERPTS = "gtzan_excerpts"  # short excerpts (1 to 3 s), reported apart from the full 30-s clips
GENRES = ("blues", "classical", "country", "disco", "hiphop", "jazz", "metal", "pop", "reggae", "rock")
DEFAULT_WORK = REPO_ROOT / "output" / "ready_model"
CARD_FILE = "MODEL_CARD.md"
# The run's config, beside its paths. No validation split (every clip trains; 20 epochs chosen by the
# cross-validation), no test split (the figures come from benchmarks/ready_model_cv.py), no build-time
# copies (a frozen backbone: the copies would only lengthen the feature pass).
SETTINGS = {
    "slicing": {"overlap": 1.504, "pad_mode": "loop"},
    "features": {"level_normalization": "slice_rms"},
    "split": {"validation_share": 0.0, "test_share": 0.0, "seed": 42},
    "audio_augmentation": {"pitch_shift_semitones": [], "time_stretch_rates": [], "speed_rates": []},
    "model": {"backbone": "musicnn-msd", "backbone_output": "pooled", "dropout": 0.5},
    "training": {"run_name": NAME, "epochs": 20, "runs": 1, "seed": 42, "sample_weighting": "genres_tracks"},
}
# The analyzer's default overlap for the model (bundle.json "analysis_overlap"): slices end to end, a slice
# every 3.008 s, as accurate in the cross-validation as the half-slice hop at half the slices.
ANALYSIS_OVERLAP = 0.0
# Bundle keys that depend on where the work folder was, or when the run was made: left out, so that
# the committed bundle.json is the same from any retraining.
VOLATILE = ("config_fingerprint", "dataset_fingerprint", "processing_fingerprint", "trained_at")
# The head's arrays made elsewhere may differ in the last bits: musicnn's features and the log-mel
# projection are sums that other kernels add in another order, and the epochs of Adam carry that into
# the weights. Measured: retrained under another OpenBLAS kernel and thread count
# (OPENBLAS_CORETYPE=Prescott OPENBLAS_NUM_THREADS=1, as CI's second pass) and without oneDNN
# (TF_ENABLE_ONEDNN_OPTS=0: TensorFlow's Eigen kernels), the weights moved by at most 9.5e-7 (they are
# 0.03 in size on average, 0.095 at most) and the export's scores by 1e-10. 1e-5 leaves ten times that
# for other CPUs; another seed, clip or setting gives another head altogether.
HEAD_TOLERANCE = 1e-5
SCORE_TOLERANCE = 1e-5  # the two exports' softmax scores on the same inputs (float32 kernels, same order)


@dataclass(frozen=True)
class Clip:
    """One clip of the shared sets."""

    genre: str
    set: str
    path: Path  # the file under ../shared/data
    artist: str

    @property
    def relative(self) -> str:
        """Its path in the work folder's tree, ``<genre>/<set>/<file>``."""
        return f"{self.genre}/{self.set}/{self.path.name}"


def read_clips(data: Path = DATA) -> list[Clip]:
    """Every clip of :data:`SETS` with its artist (each set's ``artists.csv``), in tree order."""
    clips = []
    for name in SETS:
        table = data / name / "artists.csv"
        if not table.is_file():
            raise GenrekitError(
                f"{table}: not found; the ready model is trained from {data} "
                f"({', '.join(SETS)}: the shared GTZAN sets, see ../shared/README.md)"
            )
        with open(table, newline="", encoding="utf-8") as f:
            for row in csv.DictReader(f):
                path = data / name / row["path"]
                if not path.is_file():
                    raise GenrekitError(f"{path}: listed in {table} but missing")
                clips.append(Clip(row["path"].split("/")[0], name, path, row["group"]))
    return sorted(clips, key=lambda clip: clip.relative)


def make_tree(work: Path, clips: list[Clip]) -> Path:
    """The folder-per-genre tree of links to the clips, ``<work>/audio/``, with ``artists.csv``
    (``path,group``) beside it; made again from scratch every time."""
    audio = work / "audio"
    if audio.exists():
        shutil.rmtree(audio)
    for clip in clips:
        link = audio / clip.relative
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(clip.path.resolve())
    with open(work / "artists.csv", "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["path", "group"])
        writer.writerows((clip.relative, clip.artist) for clip in clips)
    return audio


def write_config(work: Path, sections: dict = SETTINGS) -> Path:
    """``<work>/ready_model.json``: :data:`SETTINGS` (or ``sections``) with the work folder's paths."""
    config = {
        "paths": {"audio_folder": "audio", "output_folder": "output"},
        **sections,
        "split": {**sections["split"], "group_file": "artists.csv"},
    }
    path = work / "ready_model.json"
    write_json(path, config)
    return path


def run_script(script: str, config: Path, *args: str) -> None:
    """Run one of the project's scripts with ``config``; raise :class:`GenrekitError` if it fails."""
    result = subprocess.run(
        [sys.executable, str(REPO_ROOT / script), "--config", str(config), *args], cwd=REPO_ROOT, stdout=sys.stderr
    )
    if result.returncode != 0:
        raise GenrekitError(f"{script} --config {config} failed (exit status {result.returncode})")


def prepare(work: Path, sections: dict = SETTINGS) -> tuple[list[Clip], Path]:
    """The tree, ``artists.csv`` and the config (:data:`SETTINGS`, or ``sections``) in ``work``, then
    ``dataset.h5`` and ``processed.h5`` built by the project's scripts; return the clips and the config."""
    work.mkdir(parents=True, exist_ok=True)
    clips = read_clips()
    make_tree(work, clips)
    config = write_config(work, sections)
    for script in ("build_dataset.py", "process_dataset.py"):
        run_script(script, config)
    return clips, config


def train(work: Path) -> tuple[list[Clip], Path]:
    """Build, process and train in ``work`` (from scratch: ``--restart``); return the clips and the run folder."""
    clips, config = prepare(work)
    run_script("train_crnn.py", config, "--restart")
    return clips, work / "output" / "models" / NAME


def package(run: Path, target: Path, clips: list[Clip]) -> None:
    """Write what the analyzer needs from the run folder ``run`` into ``target`` (see the module's docstring)."""
    with cli.quiet_native_logs():  # TensorFlow's start-up chatter
        import keras  # only now: the subprocesses did the training

    bundle = json.loads((run / BUNDLE_FILE).read_text(encoding="utf-8"))
    bundle = {key: value for key, value in bundle.items() if key not in VOLATILE}
    bundle["head"] = dict(SETTINGS["model"])
    # int8 weights in musicnn's front end keep the float export's verdicts: the analyzer's default where
    # the CPU runs int8 fast (benchmarks/quantization.py, docs/RESULTS.md)
    bundle["precision"] = "int8"
    bundle["analysis_overlap"] = ANALYSIS_OVERLAP
    target.mkdir(parents=True, exist_ok=True)
    head = keras.saving.load_model(run / MODEL_FILE, compile=False).get_layer("head")
    registry.write_head(head, target)
    for name in (litert.EXPORT_FILE, litert.QUANTIZED_FILE):  # the float export and the int8 one
        shutil.copyfile(run / name, target / name)
    write_json(target / BUNDLE_FILE, bundle)  # last: a folder with bundle.json is complete
    write_text(target / CARD_FILE, model_card(clips, int(head.count_params())))


# --------------------------------------------------------------------------- the model card

# Printed by benchmarks/ready_model_cv.py (5 folds, whole artists held out; see docs/RESULTS.md): each
# figure over all folds' test clips, its mean (lowest-highest) over the heads' seeds 42 to 46.
CV = {
    "all": ("80.1 (79.3-80.8)", "78.5 (77.7-79.1)"),
    "full": ("88.1 (87.4-88.9)", "85.6 (84.1-86.8)"),
    "excerpts": ("70.0 (68.7-70.6)", "67.9 (67.1-68.3)"),
    "before": ("74.0 (72.3-75.6)", "71.0 (69.2-72.9)", "82.1", "63.6"),
    "mini": ("66.4 (64.7-68.0)", "65.5 (64.0-67.1)", "69.0", "63.2"),
    "recall": {
        "blues": 82,
        "classical": 95,
        "country": 70,
        "disco": 76,
        "hiphop": 73,
        "jazz": 94,
        "metal": 95,
        "pop": 73,
        "reggae": 76,
        "rock": 51,
    },
    "worst": "Ani DiFranco (rock) 0/6, Queen (rock) 4/11, Beastie Boys (hiphop) 10/19, Bob Marley (reggae) 20/28, "
    "and 20 artists of one excerpt each, 0/1",
    "ece": ("4.3", "1.35", "4.4"),  # error, the fitted temperature, the error after it
    # (top share at least, clips covered %, precision % on all clips, on full clips, on excerpts), seeds pooled
    "precision": [
        ("0 (every clip)", "100", "80.1", "88.1", "70.0"),
        ("0.5", "88.7", "83.8", "92.5", "73.0"),
        ("0.6", "80.1", "86.5", "95.9", "75.0"),
        ("0.7", "71.3", "88.8", "97.4", "78.4"),
        ("0.8", "61.2", "91.2", "97.9", "83.1"),
        ("0.9", "50.0", "94.6", "100.0", "88.4"),
    ],
}


def data_table(clips: list[Clip]) -> str:
    """Clips per genre and set, and the artists of each genre with their clip counts."""
    counts = Counter((clip.genre, clip.set) for clip in clips)
    artists: dict[str, Counter] = defaultdict(Counter)
    for clip in clips:
        artists[clip.genre][clip.artist] += 1
    lines = [f"| genre | {' | '.join(SETS)} | clips | artists |", "| --- " * (len(SETS) + 3) + "|"]
    for genre in GENRES:
        names = ", ".join(f"{artist} {n}" for artist, n in sorted(artists[genre].items(), key=lambda a: (-a[1], a[0])))
        lines.append(
            f"| {genre} | {' | '.join(str(counts[genre, name]) for name in SETS)} | "
            f"{sum(artists[genre].values())} | {len(artists[genre])}: {names} |"
        )
    totals = " | ".join(str(sum(counts[genre, name] for genre in GENRES)) for name in SETS)
    lines.append(f"| **all** | {totals} | {len(clips)} | {len({clip.artist for clip in clips})} |")
    return "\n".join(lines)


def model_card(clips: list[Clip], head_weights: int) -> str:
    """``MODEL_CARD.md``: the data, the settings, the figures, the caveats and the licence."""
    n_artists = len({clip.artist for clip in clips})
    n_excerpts = sum(clip.set == EXCERPTS for clip in clips)
    recall = ", ".join(f"{genre} {CV['recall'][genre]} %" for genre in GENRES)
    model, training = SETTINGS["model"], SETTINGS["training"]
    settings = "\n".join(f"- `{section}`: `{json.dumps(values)}`" for section, values in SETTINGS.items())
    precision = "\n".join(f"| {row[0]} | {' % | '.join(row[1:])} % |" for row in CV["precision"])
    before, mini = CV["before"], CV["mini"]
    return f"""# Model card: `gtzan-genres`, the ready genre model

The analyzer's default model (`python -m track_analyzer song.mp3`, or `--model {NAME}`): it ranks the
ten GTZAN genres (blues, classical, country, disco, hiphop, jazz, metal, pop, reggae, rock) of any
audio file. Written by `tools/train_ready_model.py` (do not edit: run it again); `--check` retrains
and compares with these files.

## Model

The pretrained musicnn MSD tagger (Pons & Serra, 2019; `MSD_musicnn` of the `musicnn==0.1.0` wheel,
rebuilt in Keras by `genrekit/models/musicnn.py`), frozen, up to its pooled features (1,506 values per
3 s patch, `model.backbone_output: "{model["backbone_output"]}"`), under a new head: dropout
{model["dropout"]} and a dense softmax over the ten genres ({head_weights:,} weights, `head.npz`). A track is cut
into 3.008 s slices of musicnn's log-mel features (16 kHz, 96 bands), each slice's audio first brought to
-20 dBFS RMS (`features.level_normalization: "slice_rms"`, raised by 40 dB at most), a track shorter
than a slice looped to fill it; every slice is scored, and the mean of the slice scores gives the
shares, the top share the verdict. The analyzer cuts a slice every 3.008 s (`bundle.json`
`"analysis_overlap": {ANALYSIS_OVERLAP}`): as accurate in the cross-validation as a slice every 1.504 s,
at half the work.

| file | what |
| --- | --- |
| `model.tflite` | backbone and head exported together to LiteRT: what the analyzer runs, without TensorFlow |
| `model.int8.tflite` | the same with int8 weights in musicnn's front end: what the analyzer runs on a CPU with int8 dot products (AVX-512 VNNI, AVX-VNNI); `--precision float` runs `model.tflite` there too |
| `head.npz` | the head's arrays (`scores.kernel`, `scores.bias`; `numpy.load(..., allow_pickle=False)`): `--runtime keras` rebuilds musicnn from its checkpoints under them |
| `bundle.json` | labels, features, slicing, normalization (none: musicnn's own log scale), `head` (the settings that rebuild the model), `precision` and `analysis_overlap` |

## Data

All {len(clips)} clips of the four GTZAN sets shared beside the project (`../shared/data`), {n_artists} artist
groups (from Sturm's public GTZAN index; a blank artist counts as its own), ten genres:
{len(clips) - n_excerpts} full clips (30 s; the classical ones of `gtzan_other_artists` and
`gtzan_more_artists` 15 s) and the {n_excerpts} short excerpts of `{EXCERPTS}` (1 to 3 s, one slice each,
peak-normalized: mostly country, disco, hiphop, metal, pop, reggae and rock, the genres of few
artists in the other sets).

{data_table(clips)}

## Training

`build_dataset.py`, `process_dataset.py`, `train_crnn.py` with these settings beside the defaults:

{settings}

That is: slices every 1.504 s (`slicing.overlap` 1.504), a short clip looped to one slice, every slice
at -20 dBFS RMS; no validation split (every clip trains, for all {training["epochs"]} epochs; the last epoch's
weights are kept), no test split, no build-time copies; each slice weighted by 1/sqrt(its clip's
slices), then each genre's slices as much in total (`training.sample_weighting: "genres_tracks"`:
blues has 73 clips, disco 40, and a 30 s clip 19 slices against an excerpt's one); batches of 32, Adam at
3e-4 along a cosine schedule, seed {training["seed"]}. Deterministic on a CPU: two trainings give bit-identical
weights.

## How good it is

Measured by cross-validation of this very training over the {len(clips)} clips, 5 folds dealt by artist (no
artist in both the training and the test clips of a fold; `benchmarks/ready_model_cv.py`, details in
`docs/RESULTS.md`): the figures of a model on artists it never heard, over all folds' test clips, mean
(lowest-highest) over the head's seeds 42 to 46, slices every 3.008 s as the analyzer cuts them.

| clips | accuracy | balanced accuracy, 10 genres |
| --- | --- | --- |
| **all {len(clips)}** | **{CV["all"][0]} %** | **{CV["all"][1]} %** |
| the {len(clips) - n_excerpts} full clips | {CV["full"][0]} % | {CV["full"][1]} % |
| the {n_excerpts} excerpts | {CV["excerpts"][0]} % | {CV["excerpts"][1]} % |
| the recipe before (silence-padded, no level normalization or weighting, 10 epochs), all four sets, same folds | {before[0]} % (full {before[2]} %, excerpts {before[3]} %) | {before[1]} % |
| this training on each fold's `gtzan_mini` clips only | {mini[0]} % (full {mini[2]} %, excerpts {mini[3]} %) | {mini[1]} % |

Recall per genre, all clips (mean over seeds): {recall}. Worst artists (seed {training["seed"]}): {CV["worst"]}.
Rock is the weakest genre: 27 of its 34 clips are three artists (Queen's 11 and Ani DiFranco's 6
excerpts, Morphine's 10 full clips), so with one of them held out the model has few other rock examples
(held out, Ani DiFranco's excerpts are heard as blues, pop, reggae or hiphop, half of Queen's as metal or country).
Classical, jazz and metal verdicts are the most reliable; a single excerpt (1 to 3 s) is far less sure
than a full clip.

**Shares.** The top share is a fair confidence: expected calibration error {CV["ece"][0]} points (all
clips, every seed pooled; a temperature fitted to the cross-validation, {CV["ece"][1]}, leaves
{CV["ece"][2]}, so none is applied). Precision of the top label where the top share is at least S (what
`--write-tags --min-share S` writes; the default 0.6):

| S | clips covered | top label right, all clips | full clips | excerpts |
| --- | --- | --- | --- | --- |
{precision}

## Caveats

- GTZAN repeats artists (most genres here are a handful of artists, some one), so a model trained on
  it learns artists as much as genres; the cross-validation above holds whole artists out for that
  reason: a figure on clips of artists heard in training would be far higher and measure
  artist recognition.
- GTZAN holds mislabelled, repeated and distorted clips (Sturm, 2013, "The GTZAN dataset: its
  contents, its faults, their effects on evaluation, and future use"); the model learnt from them as
  they are.
- Zydeco is filed under blues (Clifton Chenier, 12 of the blues clips): the model calls zydeco blues.
- Ten genres, chosen by GTZAN in 2002: any other genre gets one of these ten names. {len(clips)} clips of
  about {n_artists} artist groups are few; expect errors on music unlike these clips.

## Licence

The head's weights are derived from GTZAN audio, which carries no licence for redistribution: the
model is for research use. The musicnn weights inside `model.tflite` come from the `musicnn==0.1.0`
checkpoints, under the ISC licence (Copyright (c) Music Technology Group, Universitat Pompeu Fabra
2019; the full notice is in `genrekit/models/exports/README.md`).
"""


# --------------------------------------------------------------------------- --check


def compare(made: Path, committed: Path) -> list[str]:
    """What differs between two ready-model folders beyond the tolerances; print the differences."""
    problems = []
    with np.load(made / HEAD_FILE, allow_pickle=False) as a, np.load(committed / HEAD_FILE, allow_pickle=False) as b:
        if sorted(a.files) != sorted(b.files):
            return [f"head arrays {sorted(a.files)} against {sorted(b.files)}"]
        difference = max(float(np.max(np.abs(a[key] - b[key]))) for key in a.files)
        identical = all(np.array_equal(a[key], b[key]) for key in a.files)
    print(f"head.npz: max abs difference {difference:.3g}{' (bit-identical)' if identical else ''}")
    if not difference <= HEAD_TOLERANCE:
        problems.append(f"head weights {difference:.3g} apart (more than {HEAD_TOLERANCE:g})")
    for name in (BUNDLE_FILE, CARD_FILE):
        same = (made / name).read_bytes() == (committed / name).read_bytes()
        print(f"{name}: {'equal' if same else 'DIFFERENT'}")
        if not same:
            problems.append(f"{name} differs")
    batch = np.random.default_rng(0).normal(size=(4, 187, 96, 1)).astype(np.float32)
    for name in (litert.EXPORT_FILE, litert.QUANTIZED_FILE):
        scores = [litert.LiteRTModel(folder / name).predict(batch) for folder in (made, committed)]
        difference = float(np.max(np.abs(scores[0] - scores[1])))
        print(f"{name}: scores max abs difference {difference:.3g} on 4 random inputs")
        if not difference <= SCORE_TOLERANCE:
            problems.append(f"the {name} exports' scores {difference:.3g} apart (more than {SCORE_TOLERANCE:g})")
    return problems


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--work",
        type=Path,
        metavar="DIR",
        help=f"work folder (default: {DEFAULT_WORK.relative_to(REPO_ROOT)}/; with --check a "
        f"temporary folder, removed after)",
    )
    parser.add_argument(
        "--check",
        action="store_true",
        help=f"train again and compare with the committed {TARGET.relative_to(REPO_ROOT)}/",
    )
    parser.add_argument(
        "--card",
        action="store_true",
        help=f"only write {CARD_FILE} of the committed model again (after new figures), no training",
    )
    args = parser.parse_args(argv)
    if args.card:
        with np.load(TARGET / HEAD_FILE, allow_pickle=False) as head:
            weights = sum(head[name].size for name in head.files)
        print(write_text(TARGET / CARD_FILE, model_card(read_clips(), weights)))
        return 0
    if not args.check:
        work = (args.work or DEFAULT_WORK).resolve()
        clips, run = train(work)
        package(run, TARGET, clips)
        print(f"{TARGET}: written from {run}")
        return 0
    if not (TARGET / BUNDLE_FILE).is_file():
        raise GenrekitError(f"{TARGET}: no committed model to check")
    with tempfile.TemporaryDirectory(prefix="ready_model_") as temporary:
        work = (args.work or Path(temporary)).resolve()
        clips, run = train(work)
        made = work / "package"
        package(run, made, clips)
        problems = compare(made, TARGET)
    if problems:
        raise GenrekitError(f"the retrained model differs from {TARGET}: {'; '.join(problems)}")
    print(f"{TARGET}: the retrained model agrees")
    return 0


if __name__ == "__main__":
    sys.exit(cli.run(main))
