"""The analysis-only install (make venv-analysis: requirements-analysis.txt, no TensorFlow) analyzes a song
with an exported run folder (issue 23). .ci/run makes that environment and points this test at it."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import numpy as np
import pytest

from tests.helpers import label_signal, write_audio

ANALYSIS_PYTHON = os.environ.get("GENREKIT_ANALYSIS_PYTHON")

# Within `make test` and `make test-all` it skips; .ci/run runs it again, after `make venv-analysis`, with the
# variable set.
pytestmark = pytest.mark.skipif(
    not ANALYSIS_PYTHON,
    reason="set GENREKIT_ANALYSIS_PYTHON to the python of an analysis-only install (make venv-analysis)",
)


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}  # the install alone, from another folder
    return subprocess.run([ANALYSIS_PYTHON, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


def test_it_has_no_tensorflow_and_analyzes_a_song_with_an_exported_run(trained_run, tmp_path):
    assert run("-c", "import tensorflow", cwd=tmp_path).returncode != 0
    assert run("-c", "import keras", cwd=tmp_path).returncode != 0
    song = write_audio(
        tmp_path / "song.mp3",
        np.concatenate([label_signal(k, 6.0, seed=k) for k in range(3)]),
        out_rate=44100,
        channels=2,
    )
    proc = run(
        "-m",
        "track_analyzer",
        str(song),
        "--model",
        str(trained_run.run_folder),
        "--config",
        str(trained_run.config),
        "--json",
        str(tmp_path / "song.json"),
        "--html",
        str(tmp_path / "song.html"),  # the report's templates come with the install
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    assert re.fullmatch(r"(\w+ \d+\.\d %  ){2}\w+ \d+\.\d %\n", proc.stdout)
    page = (tmp_path / "song.html").read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>") and proc.stdout.strip().replace("  ", ", ") in page
    tagged = run(  # --write-tags needs mutagen only (issue 35)
        *(
            "-m",
            "track_analyzer",
            str(song),
            "--model",
            str(trained_run.run_folder),
            "--config",
            str(trained_run.config),
        ),
        *("--json", str(tmp_path / "song.json"), "--write-tags", "--min-share", "0"),
        cwd=tmp_path,
    )
    assert tagged.returncode == 0, tagged.stderr
    assert tagged.stdout.splitlines()[1].startswith(f"{song}\tgenre: (none) -> ")
    folder = run(
        "-m", "track_analyzer", str(tmp_path), "--model", "musicnn-msd", "--csv", str(tmp_path / "t.csv"), cwd=tmp_path
    )
    assert folder.returncode == 0, folder.stderr
    assert folder.stdout.startswith("song.mp3\t")
