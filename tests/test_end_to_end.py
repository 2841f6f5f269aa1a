"""The whole pipeline over the real scripts, as a user runs it, on a tiny synthesized corpus.

demo/make_corpus.py -> build_dataset.py -> process_dataset.py -> train_crnn.py (1 epoch, a tiny
model) -> python -m track_analyzer on a genre-changing song; then demo/run_demo.py over the same
files, which must find every step already done and still print the report and the verdict.
"""

from __future__ import annotations

import json
import re

import h5py
import pytest

from tests.helpers import run_script, write_config

GENRES = ["glasswing", "ironclad", "dustwaltz"]
CORPUS_ARGS = [
    "--genres",
    ",".join(GENRES),
    "--tracks-per-genre",
    "5",
    "--seconds",
    "7.5",
    "--song-genres",
    "dustwaltz,ironclad",
    "--song-seconds",
    "16",
    "--seed",
    "3",
]


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory):
    """Run the four steps once for the whole module; each test checks one step's output."""
    root = tmp_path_factory.mktemp("e2e")
    config = write_config(
        root / "pipeline_parameters.json",
        paths={"audio_folder": "corpus", "output_folder": "output"},
        features={"n_mels": 32},
        split={"validation_share": 0.2, "test_share": 0.2, "seed": 1},
        build={"workers": 2},
        model={"conv_filters": [8, 8], "time_pools": [2, 2], "gru_units": [8]},
        training={"run_name": "tiny", "epochs": 1, "batch_size": 8, "learning_rate": 0.003},
    )
    song = root / "out" / "demo_song.mp3"
    steps = {}

    def step(name: str, *args: str) -> None:
        result = run_script(*args, timeout=300)
        steps[name] = result
        if result.returncode != 0:
            pytest.fail(f"{name} failed with exit status {result.returncode}:\n{result.stderr[-3000:]}")

    step("corpus", "demo/make_corpus.py", str(root / "corpus"), "--song", str(song), *CORPUS_ARGS)
    step("build", "build_dataset.py", "--config", str(config), "--quiet")
    step("process", "process_dataset.py", "--config", str(config))
    step("train", "train_crnn.py", "--config", str(config), "--epochs", "1", "--run-name", "tiny")
    run_folder = root / "output" / "models" / "tiny"
    step(
        "analyze",
        "-m track_analyzer",
        str(song),
        "--model",
        str(run_folder),
        "--config",
        str(config),
        "--plot",
        str(root / "out" / "timeline.png"),
        "--json",
        str(root / "out" / "analysis.json"),
    )
    return {"root": root, "config": config, "song": song, "run": run_folder, "steps": steps}


@pytest.mark.slow
def test_build_writes_the_dataset(pipeline):
    with h5py.File(pipeline["root"] / "output" / "dataset.h5", "r") as h5:
        assert json.loads(h5.attrs["labels"]) == sorted(GENRES)
        assert sum(len(h5[split]["labels"]) for split in ("train", "val", "test")) == 15 * 3  # 3 slices a track
        assert len(h5["test"]["labels"]) > 0


@pytest.mark.slow
def test_process_writes_the_normalized_dataset(pipeline):
    with h5py.File(pipeline["root"] / "output" / "processed.h5", "r") as h5:
        assert "normalization" in h5.attrs
        assert h5["train"]["specs"].shape[1:] == (126, 32)


@pytest.mark.slow
def test_train_writes_a_complete_run_folder(pipeline):
    run = pipeline["run"]
    for name in ("model.keras", "bundle.json", "history.csv", "report.json", "confusion.png", "curves.png"):
        assert (run / name).is_file(), name
    report = json.loads((run / "report.json").read_text())
    assert report["labels"] == sorted(GENRES)
    assert report["epochs_trained"] == 1
    assert 0.0 <= report["track_accuracy"] <= 1.0


@pytest.mark.slow
def test_analyzer_prints_a_ranking_and_writes_the_timeline(pipeline):
    line = pipeline["steps"]["analyze"].stdout.strip()
    ranking = re.findall(r"(\w+) (\d+\.\d) %", line)
    assert len(ranking) == 3, line  # analysis.top_k labels with their shares
    assert {label for label, _ in ranking} <= set(GENRES)
    assert all(0.0 <= float(share) <= 100.0 for _, share in ranking)
    analysis = json.loads((pipeline["root"] / "out" / "analysis.json").read_text())
    assert len(analysis["slices"]) >= 9  # 16 s analysed with a slice every 1.5 s
    assert (pipeline["root"] / "out" / "timeline.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.slow
def test_demo_runner_reuses_the_finished_steps_and_prints_report_and_verdict(pipeline):
    root = pipeline["root"]
    mtime = (pipeline["run"] / "model.keras").stat().st_mtime_ns
    result = run_script(
        "demo/run_demo.py", "--config", str(pipeline["config"]), "--out", str(root / "out"), *CORPUS_ARGS, timeout=300
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "demo corpus up to date" in result.stderr
    assert (pipeline["run"] / "model.keras").stat().st_mtime_ns == mtime  # not retrained
    assert re.search(r"test split: \d+ tracks, \d+ slices, 3 genres \(chance 33\.3%\)", result.stdout)
    assert re.search(r"track accuracy \d+\.\d%", result.stdout)
    assert "verdict for" in result.stdout and "made as dustwaltz then ironclad" in result.stdout
    assert re.search(r"0-\d+ s, made as dustwaltz: the slices say \w+", result.stdout)


@pytest.mark.slow
def test_demo_runner_says_how_to_go_on_when_a_new_default_changed_its_run(pipeline):
    # a run made before training.augmentation.eq_db existed, as after an update of the tool
    settings_path = pipeline["run"] / "run_settings.json"
    original = settings_path.read_text()
    settings = json.loads(original)
    del settings["training"]["augmentation"]["eq_db"]
    settings_path.write_text(json.dumps(settings))
    try:
        result = run_script(
            "demo/run_demo.py",
            "--config",
            str(pipeline["config"]),
            "--out",
            str(pipeline["root"] / "out"),
            *CORPUS_ARGS,
            timeout=300,
        )
    finally:
        settings_path.write_text(original)
    assert result.returncode == 1
    assert "changed: training.augmentation.eq_db" in result.stderr
    assert "step 4 (train_crnn.py) failed" in result.stderr and "demo/run_demo.py --restart" in result.stderr


def test_demo_runner_fails_loudly_when_a_step_fails(tmp_path):
    (tmp_path / "not_a_folder").write_text("the corpus cannot be written here")
    config = write_config(tmp_path / "bad.json", paths={"audio_folder": "not_a_folder"})
    result = run_script("demo/run_demo.py", "--config", str(config), "--out", str(tmp_path), timeout=60)
    assert result.returncode == 1
    assert "step 1 (synthesize the demo corpus) failed with exit status 2" in result.stderr
    assert "not a folder" in result.stderr


def test_demo_runner_refuses_a_bad_config_before_any_work(tmp_path):
    config = write_config(tmp_path / "bad.json", model={"conv_filters": [8], "time_pools": [2, 2]})
    result = run_script("demo/run_demo.py", "--config", str(config), "--out", str(tmp_path), timeout=60)
    assert result.returncode == 2
    assert "model.time_pools" in result.stderr
    assert "step 1" not in result.stderr
