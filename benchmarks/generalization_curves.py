"""How a CRNN config does on artists it never heard, epoch by epoch: the curves the defaults were chosen by.

Builds (once) ``../shared/data/gtzan_mini`` with the given split, processes it with the given
``processing.norm_method``, then trains a CRNN in this process with the real loader
(``genrekit.training.data.SpectrogramBatches``, augmentation included) for a fixed number of epochs,
without early stopping, and every ``--every`` epochs analyzes the 88 clips of
``../shared/data/gtzan_other_artists`` the analyzer's way (the same slicing and features,
``--analysis-overlap`` s overlap, the train normalization, scores summed per clip). Prints one
JSON line per epoch: training and validation loss and accuracy and, when evaluated, the
balanced accuracy on other artists (``other``) and the recall of blues, classical and jazz.

Not the published figure: ``accuracy_generalization.py`` runs the real scripts end to end.
This is the quick way to compare variants (one training, the whole curve). Needs ``../shared``.

Usage::

    .venv/bin/python benchmarks/generalization_curves.py --name aug --epochs 30 \\
        [--norm standard] [--augmentation '{"mixup_alpha": 0.4}' | --augmentation off] \\
        [--model '{"conv_dropout": 0.1}'] [--learning-rate 1e-4] [--split random|artists] [--swa-from 12]

With ``--swa-from E`` the weights of every epoch from ``E`` on are also averaged (stochastic
weight averaging; batch-norm statistics recomputed on the unaugmented train slices), and every
evaluation from then on scores the average too (``other_swa``): a paired comparison within one
training.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
from accuracy_generalization import EARLIER, GENRES, NO_COPIES, OTHER, TRAIN  # noqa: E402  (beside this script)

from genrekit.audio.features import load_track_slices  # noqa: E402
from genrekit.core.config import AugmentationConfig, ModelConfig, config_from_dict  # noqa: E402
from genrekit.dataset.build import build_dataset  # noqa: E402
from genrekit.dataset.normalization import NormStats, apply  # noqa: E402
from genrekit.dataset.process import process_dataset  # noqa: E402
from genrekit.models.aggregate import aggregate  # noqa: E402

DEFAULT_WORK = REPO_ROOT / "benchmarks" / "out" / "generalization_curves"


def other_artist_slices(cfg, overlap: float, cache: Path) -> dict[str, np.ndarray]:
    """Every slice of gtzan_other_artists in dB, with its clip index and the clips' genres (cached)."""
    if cache.is_file():
        return dict(np.load(cache))
    specs, clip_of, genres = [], [], []
    files = sorted(p for p in OTHER.rglob("*") if p.is_file() and p.suffix != ".csv")
    for i, path in enumerate(files):
        track = load_track_slices(
            path, cfg.slicing, cfg.features, silence_threshold_db=cfg.build.silence_threshold_db, overlap=overlap
        )
        specs.append(track.specs)
        clip_of += [i] * len(track.specs)
        genres.append(path.parent.name)
    arrays = {"specs": np.concatenate(specs), "clip_of": np.array(clip_of), "genres": np.array(genres)}
    np.savez(cache, **arrays)
    return arrays


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--name", required=True, help="name of the variant (its results file)")
    parser.add_argument("--norm", default="standard", help="processing.norm_method")
    parser.add_argument(
        "--augmentation",
        default="{}",
        help="JSON of training.augmentation keys (the rest default, but eq_db 0), or 'off'",
    )
    parser.add_argument("--model", default="{}", help="JSON of model keys (the rest default)")
    parser.add_argument("--learning-rate", type=float, default=1e-4)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--every", type=int, default=3, help="evaluate on other artists every N epochs")
    parser.add_argument(
        "--split",
        choices=("random", "artists"),
        default="random",
        help="validation clips drawn at random, or by artist with artists.csv",
    )
    parser.add_argument("--analysis-overlap", type=float, default=2.0)
    parser.add_argument("--swa-from", type=int, default=None, help="average the weights of the epochs from this one on")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--work", type=Path, default=DEFAULT_WORK)
    args = parser.parse_args()
    if not TRAIN.is_dir() or not OTHER.is_dir():
        sys.exit(f"needs {TRAIN} and {OTHER} (../shared beside the repository); not found")

    import keras

    from genrekit.models.networks import build_crnn, compile_crnn
    from genrekit.training.augment import gain_per_db
    from genrekit.training.data import EpochSync, SpectrogramBatches

    split = {"validation_share": 0.1, "test_share": 0.0, "seed": 1}
    if args.split == "artists":
        split["group_file"] = str(TRAIN / "artists.csv")
    output = args.work / f"{args.split}_{args.norm}"
    cfg = config_from_dict(
        {
            "paths": {"audio_folder": str(TRAIN), "output_folder": str(output)},
            "split": split,
            "audio_augmentation": NO_COPIES,  # the curves were measured without build-time copies
            "processing": {"norm_method": args.norm},
        },
        REPO_ROOT,
    )
    build_dataset(cfg, show_progress=False)
    process_dataset(cfg, progress=False)
    import h5py

    with h5py.File(cfg.processed_path, "r") as h5:
        stats = NormStats.from_dict(json.loads(h5.attrs["normalization"]))
        labels = json.loads(h5.attrs["labels"])
        spec_shape = h5["train/specs"].shape[1:]
    other = other_artist_slices(cfg, args.analysis_overlap, args.work / "other_artists_slices.npz")
    other_specs = apply(other["specs"], stats)[..., None]

    def other_artists(model) -> dict:
        scores = model.predict(other_specs, batch_size=128, verbose=0)
        clips = np.stack([aggregate(scores[other["clip_of"] == i], "sum") for i in range(len(other["genres"]))])
        predicted = np.array(labels)[clips.argmax(axis=1)]
        recall = {g: float(np.mean(predicted[other["genres"] == g] == g)) for g in GENRES}
        return {"other": round(float(np.mean(list(recall.values()))), 4), **{g: round(r, 3) for g, r in recall.items()}}

    keras.utils.set_random_seed(args.seed)
    # the curves were measured before the random equalization existed: off unless asked for
    augmentation = (
        None
        if args.augmentation == "off"
        else AugmentationConfig(**{**EARLIER["augmentation"], **json.loads(args.augmentation)})
    )
    model_config = ModelConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in json.loads(args.model).items()})
    model = compile_crnn(build_crnn((*spec_shape, 1), len(labels), model_config), args.learning_rate)
    train = SpectrogramBatches(
        cfg.processed_path,
        "train",
        32,
        shuffle=True,
        seed=args.seed,
        n_labels=len(labels),
        augmentation=augmentation,
        gain_per_db=gain_per_db(stats, spec_shape[-1]),
    )
    val = SpectrogramBatches(cfg.processed_path, "val", 32, n_labels=len(labels))
    rows = []
    average = {"weights": None, "epochs": 0, "model": None}

    def add_to_average(model) -> None:
        n = average["epochs"]
        current = model.get_weights()
        average["weights"] = current if n == 0 else [(a * n + w) / (n + 1) for a, w in zip(average["weights"], current)]
        average["epochs"] = n + 1

    def other_artists_swa(model) -> dict:
        """The running average of the weights, batch-norm statistics recomputed, evaluated the same way."""
        if average["model"] is None:
            average["model"] = keras.models.clone_model(model)
        swa = average["model"]
        swa.set_weights(average["weights"])
        plain = SpectrogramBatches(cfg.processed_path, "train", 32, n_labels=len(labels))
        for _ in range(3):  # momentum 0.9: three passes forget the averaged statistics
            for i in range(len(plain)):
                swa(plain[i][0], training=True)
        plain.close()
        return {f"{k}_swa": v for k, v in other_artists(swa).items()}

    class Evaluate(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            row = {"epoch": epoch + 1, **{k: round(float(v), 4) for k, v in (logs or {}).items()}}
            evaluate = (epoch + 1) % args.every == 0 or epoch + 1 == args.epochs
            if args.swa_from is not None and epoch + 1 >= args.swa_from:
                add_to_average(self.model)  # every epoch joins the average
                if evaluate:
                    row.update(other_artists_swa(self.model))
            if evaluate:
                row.update(other_artists(self.model))
            rows.append(row)
            print(json.dumps(row), flush=True)

    started = time.perf_counter()
    model.fit(
        train,
        validation_data=val,
        epochs=args.epochs,
        callbacks=[EpochSync(train, args.seed), Evaluate()],
        shuffle=False,
        verbose=0,
    )
    args.work.mkdir(parents=True, exist_ok=True)
    (args.work / f"{args.name}.json").write_text(
        json.dumps(
            {
                "args": {k: str(v) for k, v in vars(args).items()},
                "seconds": round(time.perf_counter() - started),
                "epochs": rows,
            },
            indent=1,
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
