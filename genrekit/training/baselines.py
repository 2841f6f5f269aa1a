"""Fit the classical baselines (``train_baselines.py``) on ``dataset.h5``: search each family's grid
on the validation split, evaluate on test like the CRNN, and write one run folder per family.

The models themselves (features, families, saved arrays, NumPy prediction) are
:mod:`genrekit.models.baselines`.
"""

from __future__ import annotations

import datetime
import json
import shutil
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from genrekit.core import h5layout
from genrekit.core.atomic import write_json
from genrekit.core.cli import log
from genrekit.core.config import Config, FeaturesConfig, SlicingConfig, changed_keys
from genrekit.core.errors import GenrekitError
from genrekit.dataset.normalization import NormStats
from genrekit.dataset.process import check_build_settings, open_dataset
from genrekit.models.baselines import (
    CHUNK_ROWS,
    FAMILIES,
    FAMILY_NAMES,
    FEATURE_SET,
    BaselineModel,
    export_arrays,
    feature_names,
    features_multiply_adds,
    make_estimator,
    model_multiply_adds,
    predict_scores,
    save_model,
    slice_features,
    stored_values,
)
from genrekit.models.bundle import write_bundle
from genrekit.training.evaluate import evaluate_predictions, plot_confusions, test_accuracy_text

# The hyper-parameter grids searched on the validation split, simplest model first
# (it wins ties). SVM gamma is scikit-learn's "scale": 1 / (n_features * variance of the train X).
GRIDS = {
    "logreg": [{"C": c} for c in (0.01, 0.1, 1.0, 10.0)],
    "knn": [{"n_neighbors": k} for k in (15, 9, 5, 3, 1)],
    "gnb": [{"var_smoothing": v} for v in (1e-9, 1e-3, 1e-2, 1e-1, 1.0)],
    "svm": [{"C": c} for c in (0.1, 1.0, 10.0, 100.0)],
}
SUMMARY_FILE = "baselines.json"
AGGREGATION = "sum"  # the track verdict of genrekit.training.train (not imported: it imports Keras)
PREDICTIONS_FILE = "predictions.npz"  # as genrekit.training.train writes it


@dataclass(frozen=True)
class SplitFeatures:
    X: np.ndarray  # (n, n_features) float64, not standardized
    labels: np.ndarray  # (n,) int64
    track_ids: np.ndarray  # (n,) int32
    slice_starts: np.ndarray  # (n,) float64


def read_split_features(h5, split: str, features: FeaturesConfig, progress: bool = True) -> SplitFeatures:
    """:func:`slice_features` of every slice of one split of an open ``dataset.h5``, chunk by chunk."""
    from tqdm import tqdm

    group = h5[split]
    n = len(group["labels"])
    dim = len(feature_names(features))
    X = np.zeros((n, dim))
    with tqdm(
        total=n, unit="slices", desc=f"features ({split})", file=sys.stderr, leave=False, disable=not progress
    ) as bar:
        for begin in range(0, n, CHUNK_ROWS):
            stop = min(n, begin + CHUNK_ROWS)
            X[begin:stop] = slice_features(group["specs"][begin:stop], features)
            bar.update(stop - begin)
    return SplitFeatures(X, group["labels"][()].astype(np.int64), group["track_ids"][()], group["slice_starts"][()])


def log_loss(probabilities: np.ndarray, labels: np.ndarray) -> float:
    return float(-np.mean(np.log(np.clip(probabilities[np.arange(len(labels)), labels], 1e-15, 1.0))))


def search(
    family: str,
    train: tuple[np.ndarray, np.ndarray],
    val: tuple[np.ndarray, np.ndarray] | None,
    n_labels: int,
    seed: int,
) -> tuple[dict, dict, list[dict]]:
    """Fit every grid value on train and keep the best on val (accuracy, then log-loss; the first on ties).

    Returns the chosen model's arrays and hyper-parameters, and the table of the search.
    """
    X, y = train
    grid = GRIDS[family]
    if family == "knn":  # cannot ask for more neighbours than there are training slices
        grid = [g for g in grid if g["n_neighbors"] <= len(X)] or [{"n_neighbors": len(X)}]
    if val is None:
        grid = grid[:1]
    best, table = None, []
    for params in grid:
        with warnings.catch_warnings():
            # SVC(probability=True) is deprecated from scikit-learn 1.9 (removed in 1.11); the pinned
            # 1.9.1 has it, and predict_scores reproduces its libsvm probabilities from the arrays
            warnings.filterwarnings("ignore", message="The `probability` parameter", category=FutureWarning)
            estimator = make_estimator(family, params, seed).fit(X, y)
        arrays, stored = export_arrays(family, estimator, X, y)
        row = {"params": stored}
        if val is not None:
            scores = predict_scores(family, arrays, stored, val[0], n_labels)
            row.update(val_accuracy=float(np.mean(scores.argmax(axis=1) == val[1])), val_loss=log_loss(scores, val[1]))
        table.append(row)
        key = (row.get("val_accuracy", 0.0), -row.get("val_loss", 0.0))
        if best is None or key > best[0]:
            best = (key, arrays, stored, row)
    return best[1], best[2], table


def run_settings(cfg: Config, dataset_fp: str, family: str) -> dict:
    """What a finished baseline run depends on: the family, its grid, the seed, the data, the feature set."""
    return {
        "family": family,
        "grid": GRIDS[family],
        "feature_set": FEATURE_SET,
        "seed": cfg.training.seed,
        "dataset_fingerprint": dataset_fp,
    }


def train_baselines(
    cfg: Config,
    *,
    families: tuple[str, ...] = FAMILIES,
    prefix: str = "baseline-",
    restart: bool = False,
    progress: bool = True,
) -> Path:
    """Fit the baselines on ``dataset.h5``; write one run folder per family and ``models/baselines.json``.

    Parameters
    ----------
    cfg : Config
    families : tuple of str
        Which of :data:`FAMILIES` to train.
    prefix : str
        Run folders are ``<output_folder>/models/<prefix><family>``.
    restart : bool
        Refit runs that are finished (or were made from other data).

    Returns
    -------
    Path
        The summary file ``<output_folder>/models/baselines.json``.
    """

    for family in families:
        if family not in FAMILIES:
            raise GenrekitError(f"--models: unknown family {family!r} (choose from {', '.join(FAMILIES)})")
    path = cfg.dataset_path
    with open_dataset(path) as h5:
        check_build_settings(h5, path, cfg)
        labels = h5layout.labels_of(h5)
        if len(labels) < 2:
            raise GenrekitError(f"{path}: {len(labels)} label(s); a classifier needs at least two")
        features = FeaturesConfig(**dict(h5layout.json_attr(h5, "features").items()))
        if features.representation != "log_mel":
            raise GenrekitError(
                f"{path}: features.representation is {features.representation!r}; the baselines' "
                f'features come from log-mel spectrograms (build with "log_mel")'
            )
        slicing = SlicingConfig(**h5layout.json_attr(h5, "slicing"))
        dataset_fp = str(h5.attrs["dataset_fingerprint"])
        fingerprints = {"config_fingerprint": str(h5.attrs["config_fingerprint"]), "dataset_fingerprint": dataset_fp}
        threshold = float(h5.attrs["silence_threshold_db"])
        frames, n_mels = (int(n) for n in h5["train/specs"].shape[1:])
        todo = [f for f in families if restart or not _finished(cfg, prefix + f, run_settings(cfg, dataset_fp, f))]
        splits = {}
        if todo:
            splits = {split: read_split_features(h5, split, features, progress) for split in h5layout.SPLITS}
    missing = (
        [name for name, count in zip(labels, np.bincount(splits["train"].labels, minlength=len(labels))) if count == 0]
        if splits
        else []
    )
    if missing:
        raise GenrekitError(
            f"{path}: no training slices for label(s) {', '.join(missing)}; "
            f"add tracks of that label or change the split, then rebuild"
        )

    results = {}
    for family in families:
        folder = cfg.models_folder / (prefix + family)
        settings = run_settings(cfg, dataset_fp, family)
        if family not in todo:
            log(f"{folder}: complete; nothing to do (--restart fits it again)")
        else:
            if folder.exists():
                shutil.rmtree(folder)
            folder.mkdir(parents=True)
            write_json(folder / "run_settings.json", settings)
            log(f"{FAMILY_NAMES[family]}: searching {len(GRIDS[family])} settings on the validation split")
            fit_one(cfg, family, folder, splits, labels, features, slicing, threshold, fingerprints, frames, n_mels)
        report = json.loads((folder / "report.json").read_text(encoding="utf-8"))
        results[family] = report
        print(f"{folder}: {summary_line(report)}", flush=True)
    summary = {
        family: {
            "run_folder": str(cfg.models_folder / (prefix + family)),
            "model": FAMILY_NAMES[family],
            **{
                key: report[key]
                for key in (
                    "slice_accuracy",
                    "track_accuracy",
                    "hyperparameters",
                    "best_val_accuracy",
                    "training_seconds",
                    "parameters",
                    "multiply_adds_per_slice",
                )
            },
        }
        for family, report in results.items()
    }
    return write_json(cfg.models_folder / SUMMARY_FILE, summary)


def _finished(cfg: Config, run_name: str, settings: dict) -> bool:
    folder = cfg.models_folder / run_name
    if not (folder / "report.json").is_file():
        return False
    stored = json.loads((folder / "run_settings.json").read_text(encoding="utf-8"))
    changed = changed_keys(stored, settings)
    if changed:
        raise GenrekitError(
            f"{folder}: fitted with other settings or data (changed: {', '.join(changed)}); "
            f"use --restart to fit it again"
        )
    return True


def summary_line(report: dict) -> str:
    if not report["tested"]:
        return f"{report['model']} {report['hyperparameters']}; no test split, so no test accuracy"
    return f"{report['model']} {report['hyperparameters']}: {test_accuracy_text(report)}"


def fit_one(
    cfg: Config,
    family: str,
    folder: Path,
    splits: dict[str, SplitFeatures],
    labels: list[str],
    features: FeaturesConfig,
    slicing: SlicingConfig,
    threshold: float,
    fingerprints: dict,
    frames: int,
    n_mels: int,
) -> dict:
    """Standardize, search, evaluate and write one family's run folder (``report.json`` last)."""
    from sklearn.preprocessing import StandardScaler

    started = time.perf_counter()
    train, val, test = splits["train"], splits["val"], splits["test"]
    scaler = StandardScaler().fit(train.X)
    standardize = lambda X: (X - scaler.mean_) / scaler.scale_  # noqa: E731
    validated, tested = len(val.labels) > 0, len(test.labels) > 0
    arrays, params, table = search(
        family,
        (standardize(train.X), train.labels),
        (standardize(val.X), val.labels) if validated else None,
        len(labels),
        cfg.training.seed,
    )
    model = BaselineModel(family, params, arrays, scaler.mean_, scaler.scale_, features, len(labels))
    seconds = time.perf_counter() - started
    save_model(folder, model)
    write_bundle(
        folder,
        labels=labels,
        features=features,
        slicing=slicing,
        normalization=NormStats("none"),
        silence_threshold_db=threshold,
        **fingerprints,
        run_name=folder.name,
        seed=cfg.training.seed,
        baseline={"family": family, "params": params, "feature_set": FEATURE_SET},
        trained_at=datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
    )

    metrics = None
    if tested:
        scores = predict_scores(family, arrays, params, standardize(test.X), len(labels)).astype(np.float32)
        metrics = evaluate_predictions(scores, test.labels, test.track_ids, labels, AGGREGATION)
        np.savez(
            folder / PREDICTIONS_FILE,
            scores=scores,
            labels=test.labels.astype(np.int16),
            track_ids=test.track_ids.astype(np.int32),
            slice_starts=test.slice_starts,
            label_names=np.array(labels),
        )
        plot_confusions(
            {
                "test slices": np.array(metrics["slice"]["confusion_matrix"]),
                f"test tracks ({AGGREGATION} of slice scores)": np.array(metrics["track"]["confusion_matrix"]),
            },
            labels,
            folder / "confusion.png",
        )
    chosen = next(row for row in table if row["params"] == params)
    notes = []
    if not validated:
        notes.append("no validation split (split.validation_share 0): the first value of the grid was used")
    if not tested:
        notes.append("no test split (split.test_share 0): the model was not evaluated")
    n_features = len(scaler.mean_)
    report = {
        "run_name": folder.name,
        "labels": labels,
        "slice_accuracy": metrics["slice_accuracy"] if tested else None,
        "track_accuracy": metrics["track_accuracy"] if tested else None,
        "aggregation": AGGREGATION,
        "test_slices": len(test.labels),
        "test_tracks": len(np.unique(test.track_ids)) if tested else 0,
        "validated": validated,
        "tested": tested,
        "notes": notes,
        "seed": cfg.training.seed,
        "seeds": [cfg.training.seed],
        "epochs_requested": None,  # no epochs: one fit per grid value
        "epochs_trained": None,
        "stopped_early": False,
        "best_epoch": None,
        "best_val_loss": chosen.get("val_loss"),
        "best_val_accuracy": chosen.get("val_accuracy"),
        "training_seconds": round(seconds, 1),
        "parameters": stored_values(arrays) + 2 * n_features,
        "multiply_adds_per_slice": features_multiply_adds(frames, n_mels)
        + model_multiply_adds(family, arrays, n_features, len(labels)),
        "device": "CPU",
        "replicas": 1,
        "global_batch_size": None,  # no batches: scikit-learn fits on all training slices at once
        "precision": "float64",
        "keras_backend": None,
        "slice": metrics["slice"] if tested else None,
        "track": metrics["track"] if tested else None,
        # beside the CRNN's keys
        "model": FAMILY_NAMES[family],
        "family": family,
        "hyperparameters": params,
        "hyperparameter_search": table,
        "feature_set": FEATURE_SET,
        "n_features": n_features,
        "train_slices": len(train.labels),
    }
    write_json(folder / "report.json", report)
    return report
