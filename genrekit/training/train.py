"""Training runs of ``train_crnn.py``: checks, callbacks, resume, evaluation, run folder.

A run folder ``<output_folder>/models/<run_name>/`` is complete once
``report.json`` exists (it is written last). While a run trains, its state
lives in ``<run>/training/``: Keras' ``BackupAndRestore`` backup (weights,
optimizer, epoch), the best weights so far, and ``state.json`` (history and
the counters of early stopping, learning-rate reduction and checkpointing,
which ``BackupAndRestore`` does not keep). Running the same command again
continues from the last finished epoch; the folder is removed once the final
artifacts are written.

With ``training.runs: N > 1`` every run gets a sub-folder ``run-01`` ... with
its own seed (``training.seed + i``); the parent folder gets ``summary.json``
(mean and standard deviation of the test accuracies) and a copy of the model
and bundle of the run with the lowest validation loss, so it works as a model
folder too.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np

from genrekit.core.atomic import write_bytes, write_json
from genrekit.core.cli import log
from genrekit.core.config import AugmentationConfig, Config, changed_keys, to_jsonable
from genrekit.core.errors import GenrekitError
from genrekit.models import backbone, litert, registry
from genrekit.models.bundle import BUNDLE_FILE, MODEL_FILE, write_bundle
from genrekit.models.networks import build_model, compile_crnn, multiply_adds
from genrekit.training.augment import gain_per_db
from genrekit.training.callbacks import CosineDecay, ProgressBar, TrainingState
from genrekit.training.data import EpochSync, ProcessedData, SpectrogramBatches, open_processed, train_weights
from genrekit.training.device import Device, detect_device, distribution_strategy, precision_policy
from genrekit.training.evaluate import evaluate_predictions, mean_std, plot_confusions, plot_curves, test_accuracy_text
from genrekit.training.frozen_features import write_backbone_features
from genrekit.training.optimizers import TwoRateAdam

REPORT_FILE = "report.json"
SUMMARY_FILE = "summary.json"
SETTINGS_FILE = "run_settings.json"
HISTORY_FILE = "history.csv"
PREDICTIONS_FILE = "predictions.npz"
WORK_FOLDER = "training"  # in-progress state, removed when the run is complete
BACKBONE_FEATURES_FILE = "backbone_features.h5"
HISTORY_COLUMNS = ("epoch", "loss", "accuracy", "val_loss", "val_accuracy", "learning_rate")
AGGREGATION = "sum"  # the article's track verdict: highest sum of slice scores


# --------------------------------------------------------------------------- one run


@dataclass(frozen=True)
class RunPlan:
    """What every run of one ``train_crnn.py`` call shares."""

    cfg: Config
    data: ProcessedData
    run_name: str
    epochs: int
    device: Device
    policy: str
    strategy: object | None = None  # tf.distribute strategy over several devices, or None
    replicas: int = 1  # devices the strategy mirrors over; each training step takes batch_size slices on each

    @property
    def global_batch(self) -> int:
        return self.cfg.training.batch_size * self.replicas


@dataclass(frozen=True)
class Models:
    """What one run trains, on which data, and how it becomes the saved model."""

    trained: keras.Model  # compiled; fit on data_path
    data_path: Path  # processed.h5, or a frozen backbone's features of its slices
    add_channel: bool  # spectrograms get a channel axis; feature vectors do not
    export: Callable[[], keras.Model]  # the float32 model taking a processed spectrogram


def applied_augmentation(cfg: Config) -> AugmentationConfig | None:
    """The ``training.augmentation`` that training batches get: none under a backbone (a frozen one
    trains on cached features), and on waveform slices no gain, equalization or frequency masks (dB
    offsets and mel-band stripes mean nothing on samples; time masks, shifts and mixup do)."""
    if cfg.model.backbone is not None:
        return None
    if cfg.features.representation == "waveform":
        return dataclasses.replace(cfg.training.augmentation, gain_db=0.0, eq_db=0.0, frequency_masks=0)
    return cfg.training.augmentation


def build_models(plan: RunPlan, features: Path) -> Models:
    """The network of ``model.architecture``, or a pretrained backbone with a new head (``model.backbone``).

    ``features``: where a frozen backbone's features of the slices are kept (computed there once).
    """
    cfg, data = plan.cfg, plan.data
    n_labels, learning_rate = len(data.labels), cfg.training.learning_rate
    if cfg.model.backbone is None:
        input_shape = (*data.spec_shape, 1)
        try:
            network = compile_crnn(build_model(input_shape, n_labels, cfg.model, dtype=plan.policy), learning_rate)
        except ValueError as exc:  # pretrained weights that do not fit
            raise GenrekitError(str(exc)) from None

        def export() -> keras.Model:
            # float32 whatever the training precision: the analyzer runs on CPUs. The weights come
            # from the trained network, not again from model.pretrained_weights.
            copy = build_model(input_shape, n_labels, dataclasses.replace(cfg.model, pretrained_weights=None))
            copy.set_weights(network.get_weights())
            return copy

        return Models(network, data.path, True, export)

    embedder = backbone.build_embedder(cfg.model)
    head = backbone.build_head(embedder.output_shape[-1], n_labels, cfg.model)
    classifier = backbone.build_classifier(embedder, head)
    if cfg.model.backbone_trainable:
        optimizer = TwoRateAdam(
            [v.path for v in embedder.trainable_variables], cfg.model.backbone_lr_factor, learning_rate=learning_rate
        )
        return Models(compile_crnn(classifier, learning_rate, optimizer), data.path, True, lambda: classifier)
    if not features.is_file():
        write_backbone_features(embedder, data, features)
    return Models(compile_crnn(head, learning_rate), features, False, lambda: classifier)


def train_single(plan: RunPlan, folder: Path, seed: int, label: str = "", features: Path | None = None) -> dict:
    """Train (or resume) one model in ``folder`` and write its artifacts; return its report.

    A folder that already holds ``report.json`` is complete: its report is returned as is.
    ``features``: where a frozen backbone's slice features are kept, when not in the run's own
    work folder (several runs share them).
    """
    if (folder / REPORT_FILE).is_file():
        return json.loads((folder / REPORT_FILE).read_text(encoding="utf-8"))
    models, state = train_model(plan, folder, seed, label, features)
    report = finish_run(plan, folder, models.export(), state, seed)
    shutil.rmtree(folder / WORK_FOLDER, ignore_errors=True)
    return report


def train_model(
    plan: RunPlan,
    folder: Path,
    seed: int,
    label: str = "",
    features: Path | None = None,
    weights: np.ndarray | None = None,
) -> tuple[Models, TrainingState]:
    """Build and fit (or resume) one run's model in ``folder``, without evaluating or saving it.

    Parameters
    ----------
    plan : RunPlan
        What the runs share; ``plan.data.rows`` says which splits there are.
    folder : Path
        The run folder: its ``training/`` work folder holds the resumable state, ``history.csv``
        the epochs.
    seed : int
        Seeds the initial weights, the batches and the dropout.
    label : str
        Printed before the progress bar (``"run 2/3 "``).
    features : Path, optional
        A frozen backbone's slice features (default ``<folder>/training/backbone_features.h5``);
        computed there unless the file exists (``benchmarks/ready_model_cv.py`` passes its own).
    weights : (n_train,) float32 array, optional
        The training rows' weights in the loss, for ``features`` of other rows than ``processed.h5``'s
        train split; by default :func:`genrekit.training.data.train_weights` (``training.sample_weighting``).

    Returns
    -------
    tuple of (Models, TrainingState)
        The models, the trained one holding the kept weights (the best epoch's with a validation
        split, else the last one's), and the training state with its history.
    """
    data, training = plan.data, plan.cfg.training
    work = folder / WORK_FOLDER
    work.mkdir(parents=True, exist_ok=True)

    keras.backend.clear_session()
    keras.utils.set_random_seed(seed)
    with plan.strategy.scope() if plan.strategy is not None else contextlib.nullcontext():
        # variables created in the scope are mirrored on every device
        models = build_models(plan, features or work / BACKBONE_FEATURES_FILE)
    model = models.trained
    n_labels = len(data.labels)
    augmentation = applied_augmentation(plan.cfg)
    train_data = SpectrogramBatches(
        models.data_path,
        "train",
        plan.global_batch,
        shuffle=True,
        seed=seed,
        add_channel=models.add_channel,
        n_labels=n_labels,
        augmentation=augmentation,
        gain_per_db=gain_per_db(data.normalization, data.spec_shape[-1]),
        multiple_of=plan.replicas,
        weights=weights if weights is not None else train_weights(data, training.sample_weighting),
    )
    best_path = work / "best.weights.h5"
    schedule = (
        CosineDecay(training.learning_rate, plan.epochs, len(train_data)) if training.lr_schedule == "cosine" else None
    )
    if data.rows["val"]:
        val_data = SpectrogramBatches(
            models.data_path,
            "val",
            plan.global_batch,
            add_channel=models.add_channel,
            n_labels=n_labels,
            multiple_of=plan.replicas,
        )
        early_stopping = keras.callbacks.EarlyStopping(monitor="val_loss", patience=training.early_stopping_patience)
        reduce_lr = (
            None
            if schedule is not None
            else keras.callbacks.ReduceLROnPlateau(
                monitor="val_loss", factor=training.reduce_lr_factor, patience=training.reduce_lr_patience
            )
        )
        checkpoint = keras.callbacks.ModelCheckpoint(
            str(best_path), monitor="val_loss", save_best_only=True, save_weights_only=True
        )
    else:  # nothing to judge epochs by: train them all and keep the last
        val_data = early_stopping = reduce_lr = None
        checkpoint = keras.callbacks.ModelCheckpoint(str(best_path), save_weights_only=True)
    state = TrainingState(work / "state.json", folder / HISTORY_FILE, early_stopping, reduce_lr, checkpoint)
    callbacks = [EpochSync(train_data, seed), *filter(None, [schedule, early_stopping, reduce_lr]), checkpoint]
    if _tensorboard_available():
        callbacks.append(keras.callbacks.TensorBoard(log_dir=str(folder / "logs"), write_graph=False))
    else:
        log("no TensorBoard logs: the tensorflow and tensorboard packages are needed for them")
    callbacks += [
        state,  # after the callbacks whose counters it saves
        keras.callbacks.BackupAndRestore(str(work / "backup"), double_checkpoint=True),
        ProgressBar(plan.epochs, len(train_data), label),
    ]  # its line means "epoch saved"

    if not state.finished:
        model.fit(
            train_data, validation_data=val_data, epochs=plan.epochs, callbacks=callbacks, shuffle=False, verbose=0
        )  # SpectrogramBatches shuffles itself
    train_data.close()
    if val_data is not None:
        val_data.close()
    if not best_path.is_file():
        raise GenrekitError(f"{folder}: no checkpoint was saved; run with --restart")
    if not model.optimizer.built:  # a finished run resumed for its artifacts: the file holds optimizer state
        model.optimizer.build(model.trainable_variables)
    model.load_weights(best_path)
    return models, state


def predict_test_split(model: keras.Model, data: ProcessedData, batch_size: int) -> dict[str, np.ndarray]:
    """The model's scores on every test slice, with the slices' labels, track ids and starts."""
    test_data = SpectrogramBatches(data.path, "test", batch_size)
    n_test = data.rows["test"]
    arrays = {
        "scores": model.predict(test_data, verbose=0).astype(np.float32),
        "labels": test_data.read_rows(0, n_test, "labels").astype(np.int16),
        "track_ids": test_data.read_rows(0, n_test, "track_ids").astype(np.int32),
        "slice_starts": test_data.read_rows(0, n_test, "slice_starts"),
    }
    test_data.close()
    return arrays


def finish_run(plan: RunPlan, folder: Path, model: keras.Model, state: TrainingState, seed: int) -> dict:
    """Evaluate on the test split and write the run folder's artifacts (``report.json`` last).

    Without a test split (``split.test_share: 0``) the model is saved but not evaluated: the
    report's accuracies are ``null`` and there are no predictions or confusion matrices.
    """
    cfg, data = plan.cfg, plan.data
    tested = data.rows["test"] > 0
    if tested:
        test = predict_test_split(model, data, cfg.training.batch_size)
        metrics = evaluate_predictions(test["scores"], test["labels"], test["track_ids"], data.labels, AGGREGATION)

    registry.save_model(model, folder)
    write_bundle(
        folder,
        labels=data.labels,
        features=cfg.features,
        slicing=cfg.slicing,
        normalization=data.normalization,
        silence_threshold_db=data.silence_threshold_db,
        **data.fingerprints,
        run_name=plan.run_name,
        seed=seed,
        trained_at=datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
    )

    history = state.history
    columns = {key: [row.get(key, float("nan")) for row in history] for key in HISTORY_COLUMNS}
    plot_curves(columns, folder / "curves.png")
    if tested:
        np.savez(folder / PREDICTIONS_FILE, **test, label_names=np.array(data.labels))
        plot_confusions(
            {
                "test slices": np.array(metrics["slice"]["confusion_matrix"]),
                f"test tracks ({AGGREGATION} of slice scores)": np.array(metrics["track"]["confusion_matrix"]),
            },
            data.labels,
            folder / "confusion.png",
        )

    validated = data.rows["val"] > 0
    notes = []
    if not validated:
        notes.append(
            "no validation split (split.validation_share 0): trained every epoch without early "
            "stopping or learning-rate reduction on a plateau; the model is the last epoch's"
        )
    if not tested:
        notes.append("no test split (split.test_share 0): the model was not evaluated")
    val_losses = [row.get("val_loss", float("inf")) for row in history]
    best = int(np.argmin(val_losses)) if history and validated else None
    report = {
        "run_name": plan.run_name,
        "labels": data.labels,
        "slice_accuracy": metrics["slice_accuracy"] if tested else None,
        "track_accuracy": metrics["track_accuracy"] if tested else None,
        "aggregation": AGGREGATION,
        "test_slices": int(data.rows["test"]),
        "test_tracks": len(np.unique(test["track_ids"])) if tested else 0,
        "validated": validated,
        "tested": tested,
        "notes": notes,
        "seed": seed,
        "seeds": [seed],
        "epochs_requested": plan.epochs,
        "epochs_trained": len(history),
        "stopped_early": len(history) < plan.epochs,
        "best_epoch": None if best is None else history[best]["epoch"],
        "best_val_loss": None if best is None else history[best].get("val_loss"),
        "best_val_accuracy": None if best is None else history[best].get("val_accuracy"),
        "training_seconds": round(state.state["seconds"], 1),
        "parameters": int(model.count_params()),
        "multiply_adds_per_slice": multiply_adds(model),
        "device": plan.device.name,
        "replicas": plan.replicas,
        "global_batch_size": plan.global_batch,
        "precision": plan.policy,
        "keras_backend": keras.backend.backend(),
        "slice": metrics["slice"] if tested else None,
        "track": metrics["track"] if tested else None,
    }
    write_json(folder / REPORT_FILE, report)
    return report


def _tensorboard_available() -> bool:
    """Keras' TensorBoard callback writes with ``tf.summary``, whatever the backend."""
    import importlib.util

    return all(importlib.util.find_spec(name) is not None for name in ("tensorflow", "tensorboard"))


# --------------------------------------------------------------------------- the command


def run_settings(cfg: Config, data: ProcessedData, replicas: int = 1) -> dict:
    """What a run cannot change halfway: the model, the training settings (but ``epochs``), the data,
    and the number of devices it trains on when several (it sets the global batch)."""
    training = to_jsonable(cfg.training)
    for key in ("run_name", "epochs"):
        training.pop(key)
    if replicas > 1:  # absent for one device, so runs made before training.distribute stay current
        training["replicas"] = replicas
    return {"model": to_jsonable(cfg.model), "training": training, "data": data.fingerprints}


def check_run_name(name: str) -> str:
    if not name or "/" in name or "\\" in name or name in (".", ".."):
        raise GenrekitError(f"--run-name: must be a plain folder name, got {name!r}")
    return name


def train(cfg: Config, *, run_name: str | None = None, epochs: int | None = None, restart: bool = False) -> Path:
    """Train ``training.runs`` models on ``processed.h5``; return the run folder.

    Parameters
    ----------
    cfg : Config
    run_name : str, optional
        Overrides ``training.run_name``.
    epochs : int, optional
        Overrides ``training.epochs``.
    restart : bool
        Discard an existing run folder of that name first. Without it, an
        unfinished run resumes and a finished one is left as it is.
    """
    training = cfg.training
    run_name = check_run_name(run_name or training.run_name)
    epochs = training.epochs if epochs is None else epochs
    if epochs < 1:
        raise GenrekitError(f"--epochs: must be >= 1, got {epochs}")
    data = open_processed(cfg)
    folder = cfg.models_folder / run_name
    if restart and folder.exists():
        log(f"{folder}: discarding the previous run (--restart)")
        shutil.rmtree(folder)

    device = detect_device()  # first: it sets GPU memory growth, which must precede device initialization
    strategy = distribution_strategy(training.distribute)
    replicas = strategy.num_replicas_in_sync if strategy is not None else 1
    settings = run_settings(cfg, data, replicas)
    settings_path = folder / SETTINGS_FILE
    if settings_path.is_file():
        changed = changed_keys(json.loads(settings_path.read_text(encoding="utf-8")), settings)
        if changed:
            raise GenrekitError(
                f"{folder}: this run was started with other settings or data "
                f"(changed: {', '.join(changed)}); use --restart to discard it, "
                f"or choose another --run-name"
            )
    if (folder / (REPORT_FILE if training.runs == 1 else SUMMARY_FILE)).is_file():
        log(f"{folder}: this run is complete; nothing to do (--restart trains it again)")
        return folder

    policy = precision_policy(training.mixed_precision, device)
    log(
        f"device: {device.name}{'' if device.gpu else ' (no GPU found)'}; precision: {policy}; "
        f"keras backend: {keras.backend.backend()}"
    )
    if strategy is not None:
        log(
            f"distributed: MirroredStrategy over {replicas} devices "
            f"({', '.join(strategy.extended.worker_devices)}); global batch {training.batch_size} x {replicas} = "
            f"{training.batch_size * replicas} slices per step"
        )
    if policy == "mixed_float16" and not device.gpu:
        log("warning: mixed precision on the CPU is slow (training.mixed_precision is 'on')")
    copies = f" ({data.train_copies} of them build-time copies)" if data.train_copies else ""
    log(
        f"training on {data.rows['train']} slices{copies}, validating on {data.rows['val']}, "
        f"testing on {data.rows['test']} ({len(data.labels)} labels)"
    )
    if not data.rows["val"]:
        log(
            f"no validation split (split.validation_share is 0): training all {epochs} epochs, without early "
            f"stopping or learning-rate reduction on a plateau; the model is the last epoch's"
        )
    if not data.rows["test"]:
        log("no test split (split.test_share is 0): the model will not be evaluated")
    applied = applied_augmentation(cfg)
    if applied is None and training.augmentation != AugmentationConfig():
        log("training.augmentation is not applied with model.backbone")
    elif applied is not None and applied != training.augmentation:
        log(
            "waveform slices: training.augmentation.gain_db, eq_db and frequency_masks do not apply (time "
            "masks, time shifts and mixup do)"
        )
    folder.mkdir(parents=True, exist_ok=True)
    write_json(settings_path, settings)
    plan = RunPlan(cfg, data, run_name, epochs, device, policy, strategy, replicas)

    if training.runs == 1:
        report = train_single(plan, folder, training.seed)
        print(f"{folder}: {result_line(report)}")
        return folder

    reports = []
    for i in range(training.runs):
        seed = training.seed + i
        sub = folder / f"run-{i + 1:02d}"
        log(f"run {i + 1}/{training.runs} (seed {seed}): {sub}")
        # a frozen backbone's features do not depend on the seed: one pass serves every run
        report = train_single(
            plan,
            sub,
            seed,
            label=f"run {i + 1}/{training.runs} ",
            features=folder / WORK_FOLDER / BACKBONE_FEATURES_FILE,
        )
        reports.append(report)
        print(f"{sub}: {result_line(report)}")
    names = [f"run-{i + 1:02d}" for i in range(training.runs)]
    summary = summarize_runs(reports, names)
    # the parent folder works as a model folder too: the runs' ensemble, or the best run
    if training.ensemble:
        members = [keras.models.load_model(folder / name / MODEL_FILE) for name in names]
        frozen_backbone = cfg.model.backbone is not None and not cfg.model.backbone_trainable
        ensemble = registry.ensemble(members, shared_backbone=frozen_backbone)
        registry.save_model(ensemble, folder)
        summary["model"] = "ensemble"
        if data.rows["test"]:
            test = predict_test_split(ensemble, data, training.batch_size)
            metrics = evaluate_predictions(test["scores"], test["labels"], test["track_ids"], data.labels, AGGREGATION)
            summary["ensemble"] = {key: metrics[key] for key in ("slice_accuracy", "track_accuracy")}
    else:
        for name in (MODEL_FILE, litert.EXPORT_FILE):
            write_bytes(folder / name, (folder / summary["best_run"] / name).read_bytes())
        summary["model"] = summary["best_run"]
    write_bytes(folder / BUNDLE_FILE, (folder / names[0] / BUNDLE_FILE).read_bytes())
    write_json(folder / SUMMARY_FILE, summary)
    shutil.rmtree(folder / WORK_FOLDER, ignore_errors=True)
    for key in ("slice_accuracy", "track_accuracy"):
        if summary[key] is not None:
            print(
                f"{folder}: {key.replace('_', ' ')} {summary[key]['mean']:.4f} ± {summary[key]['std']:.4f} "
                f"over {training.runs} runs"
                + (f"; their ensemble {summary['ensemble'][key]:.4f}" if "ensemble" in summary else "")
            )
    return folder


def result_line(report: dict) -> str:
    """What a finished run prints on stdout."""
    if not report["tested"]:
        return f"trained {report['epochs_trained']} epochs; no test split, so no test accuracy"
    return test_accuracy_text(report)


def summarize_runs(reports: list[dict], names: list[str]) -> dict:
    """Mean and sample standard deviation of the runs' test metrics (``None`` without a test split)
    and validation losses (``None`` without a validation split); the best run by validation loss
    (the first one without a validation split)."""
    val_losses = [r["best_val_loss"] for r in reports]
    validated = all(loss is not None for loss in val_losses)
    best = int(np.argmin(val_losses)) if validated else 0
    tested = all(r["tested"] for r in reports)
    return {
        "runs": len(reports),
        "seeds": [r["seed"] for r in reports],
        "slice_accuracy": mean_std([r["slice_accuracy"] for r in reports]) if tested else None,
        "track_accuracy": mean_std([r["track_accuracy"] for r in reports]) if tested else None,
        "best_val_loss": mean_std(val_losses) if validated else None,
        "epochs_trained": [r["epochs_trained"] for r in reports],
        "best_run": names[best],
        "run_folders": names,
    }
