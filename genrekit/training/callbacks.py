"""The Keras callbacks of a training run: its resumable state and history, the cosine schedule,
the progress bar."""

from __future__ import annotations

import json
import math
import sys
import time
from pathlib import Path

import keras
from tqdm import tqdm

from genrekit.core.atomic import write_json, write_text
from genrekit.core.cli import log

HISTORY_COLUMNS = ("epoch", "loss", "accuracy", "val_loss", "val_accuracy", "learning_rate")


class TrainingState(keras.callbacks.Callback):
    """History (``history.csv``) and the state ``BackupAndRestore`` does not keep.

    Early stopping, learning-rate reduction and the best-model checkpoint all
    reset their counters when ``fit`` starts; after a resume this callback puts
    back the values they had at the end of the last finished epoch, so an
    interrupted run ends exactly as an uninterrupted one would.
    """

    def __init__(
        self,
        state_path: Path,
        history_path: Path,
        early_stopping: keras.callbacks.EarlyStopping | None,
        reduce_lr: keras.callbacks.ReduceLROnPlateau | None,
        checkpoint: keras.callbacks.ModelCheckpoint,
    ):
        super().__init__()
        self.state_path = state_path
        self.history_path = history_path
        watched = {
            "early_stopping": (early_stopping, ("wait", "best", "best_epoch")),
            "reduce_lr": (reduce_lr, ("wait", "best", "cooldown_counter")),
            "checkpoint": (checkpoint, ("best",)),
        }
        self.watched = {name: entry for name, entry in watched.items() if entry[0] is not None}
        if state_path.is_file():
            self.state = json.loads(state_path.read_text(encoding="utf-8"))
        else:
            self.state = {"finished": False, "history": [], "snapshots": {}, "seconds": 0.0}
        self._first_epoch: int | None = None
        self._epoch_started = 0.0

    @property
    def finished(self) -> bool:
        return bool(self.state["finished"])

    @property
    def history(self) -> list[dict]:
        return self.state["history"]

    def _snapshot(self) -> dict:
        snapshot = {}
        for name, (callback, attributes) in self.watched.items():
            values = {attr: getattr(callback, attr, None) for attr in attributes}
            snapshot[name] = {
                k: (None if v is None else float(v) if k == "best" else int(v)) for k, v in values.items()
            }
        return snapshot

    def _restore(self, snapshot: dict) -> None:
        for name, (callback, _) in self.watched.items():
            for attr, value in snapshot[name].items():
                setattr(callback, attr, value)

    def on_train_begin(self, logs=None):
        self._first_epoch = None

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch_started = time.perf_counter()
        if self._first_epoch is not None:
            return
        # First epoch of this fit(): BackupAndRestore has already set where it starts.
        self._first_epoch = epoch
        self.state["history"] = [row for row in self.history if row["epoch"] <= epoch]
        snapshot = self.state["snapshots"].get(str(epoch - 1))
        if epoch > 0:
            log(f"resuming from the end of epoch {epoch}")
            if snapshot:
                self._restore(snapshot)

    def on_epoch_end(self, epoch, logs=None):
        row = {"epoch": epoch + 1}
        row.update({key: float(value) for key, value in (logs or {}).items()})
        self.history.append(row)
        previous = self.state["snapshots"].get(str(epoch - 1))
        # Two snapshots: a crash between this save and the weights backup leaves the older one usable.
        self.state["snapshots"] = {str(epoch): self._snapshot(), **({str(epoch - 1): previous} if previous else {})}
        self.state["seconds"] += time.perf_counter() - self._epoch_started
        write_history(self.history_path, self.history)
        write_json(self.state_path, self.state)

    def on_train_end(self, logs=None):
        self.state["finished"] = True
        write_json(self.state_path, self.state)


class CosineDecay(keras.callbacks.Callback):
    """``training.lr_schedule: "cosine"``: the learning rate from ``base`` down to 0 along half a
    cosine over ``epochs`` epochs of ``steps`` batches, set before every batch.

    It depends on the epoch and batch index alone, so a resumed run follows the same curve.
    """

    def __init__(self, base: float, epochs: int, steps: int):
        super().__init__()
        self.base, self.steps, self.total = base, steps, epochs * steps
        self.epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_begin(self, batch, logs=None):
        progress = (self.epoch * self.steps + batch) / self.total
        self.model.optimizer.learning_rate.assign(self.base * 0.5 * (1 + math.cos(math.pi * progress)))

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:  # into history.csv
            logs["learning_rate"] = float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))


class ProgressBar(keras.callbacks.Callback):
    """A tqdm bar per epoch and one summary line per epoch, on stderr."""

    def __init__(self, epochs: int, steps: int, label: str = ""):
        super().__init__()
        self.epochs = epochs
        self.steps = steps
        self.label = label
        self.bar: tqdm | None = None

    def on_epoch_begin(self, epoch, logs=None):
        self.bar = tqdm(
            total=self.steps,
            desc=f"{self.label}epoch {epoch + 1}/{self.epochs}",
            unit="batch",
            file=sys.stderr,
            leave=False,
            dynamic_ncols=True,
            mininterval=0.1 if sys.stderr.isatty() else 30,
        )  # keep captured logs short

    def on_train_batch_end(self, batch, logs=None):
        self.bar.update(1)
        if logs and "loss" in logs:
            self.bar.set_postfix(loss=f"{float(logs['loss']):.3f}", refresh=False)

    def on_epoch_end(self, epoch, logs=None):
        if self.bar is not None:
            self.bar.close()
        logs = logs or {}
        keys = [k for k in HISTORY_COLUMNS if k in logs] + sorted(set(logs) - set(HISTORY_COLUMNS))
        shown = "  ".join(f"{key} {float(logs[key]):.4g}" for key in keys)
        log(f"{self.label}epoch {epoch + 1}/{self.epochs}: {shown}")


def write_history(path: Path, rows: list[dict]) -> None:
    """``history.csv``: one row per epoch (1-based), train and validation loss and accuracy."""
    columns = list(HISTORY_COLUMNS) + sorted({k for row in rows for k in row} - set(HISTORY_COLUMNS))
    lines = [",".join(columns)]
    for row in rows:
        lines.append(",".join("" if row.get(c) is None else repr(row[c]) for c in columns))
    write_text(path, "\n".join(lines) + "\n")
