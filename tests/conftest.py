import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


# --------------------------------------------------------------------------- a tiny trained model

from typing import NamedTuple

import pytest

from tests.helpers import make_corpus, run_script, write_config

TINY_LABELS = {"bass": 4, "treble": 4, "hiss": 4}
TINY_RUN = "tiny"


class TrainedRun(NamedTuple):
    config: Path  # the pipeline_parameters.json it was made with
    run_folder: Path  # <output_folder>/models/tiny


def tiny_config(root: Path, audio: Path, **overrides) -> Path:
    """A config for seconds-long pipelines: 1 s slices, 32 mels, a two-block CRNN, 2 epochs."""
    sections = {
        "paths": {"audio_folder": str(audio), "output_folder": str(root / "output")},
        "slicing": {"slice_duration": 1.0, "overlap": 0.5},
        "features": {"n_mels": 32},
        "split": {"validation_share": 0.25, "test_share": 0.25, "seed": 3},
        "model": {"conv_filters": [8, 16], "time_pools": [2, 2], "gru_units": [16]},
        "training": {"run_name": TINY_RUN, "epochs": 2, "batch_size": 16, "learning_rate": 0.003, "seed": 1},
        "analysis": {"overlap": 0.5},
    }
    for section, values in overrides.items():
        sections[section] = {**sections.get(section, {}), **values}
    return write_config(root / "pipeline_parameters.json", **sections)


def run_pipeline(config: Path, *scripts: str) -> None:
    """Run top-level scripts in order with ``--config``; fail the test with the script's stderr."""
    for script in scripts:
        result = run_script(script, "--config", str(config))
        assert result.returncode == 0, f"{script} failed:\n{result.stderr[-3000:]}"


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory) -> TrainedRun:
    """12 generated 8 s tracks (3 labels) through build_dataset.py, process_dataset.py and
    train_crnn.py (2 epochs of a tiny CRNN on the CPU). Read-only for the tests that use it.

    The quick suite's (`make test`) one end-to-end run: a test that needs a trained model takes
    this one rather than training its own."""
    root = tmp_path_factory.mktemp("trained_run")
    make_corpus(root / "audio", TINY_LABELS, seconds=8.0, fmt="wav")
    config = tiny_config(root, root / "audio")
    run_pipeline(config, "build_dataset.py", "process_dataset.py", "train_crnn.py")
    return TrainedRun(config, root / "output" / "models" / TINY_RUN)
