"""A library analysis is resumable: results written a file at a time, kill -9 loses at most the files
in flight, a rerun completes them, and the results equal an uninterrupted run's (issue 22)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from genrekit.core.errors import GenrekitError
from genrekit.inference.results import WRITE_PAUSE_ENV, FileStat, ResultsFile, recorded_stat
from tests.helpers import REPO_ROOT, kill_group_when, run_script, start_script
from tests.inference.conftest import analyze_args, assert_same_results, read_results


def data_rows(path: Path) -> int:
    return max(0, path.read_bytes().count(b"\n") - 1) if path.exists() else 0


def test_kill_9_mid_run_then_rerun_completes_with_the_same_results(trained_run, library, uninterrupted, tmp_path):
    proc = start_script("-m track_analyzer", *analyze_args(trained_run, library, tmp_path, "--batch-size", "4"))
    assert kill_group_when(proc, lambda: data_rows(tmp_path / "results.csv") >= 3), "finished before the kill"
    done = data_rows(tmp_path / "results.csv")
    assert 3 <= done < 15
    rows = (tmp_path / "results.csv").read_text().splitlines()[1:]
    assert all(row.count(",") == rows[0].count(",") for row in rows)  # only whole rows
    rerun = run_script("-m track_analyzer", *analyze_args(trained_run, library, tmp_path))
    assert rerun.returncode == 0, rerun.stderr
    assert "files are in the results already" in rerun.stderr
    # a file read back is not analyzed again: the rerun prints only the others' lines
    assert len(rerun.stdout.splitlines()) <= 15 - min(done, data_rows(tmp_path / "results.json"))
    assert_same_results(tmp_path, uninterrupted)


@pytest.mark.slow
def test_kill_9_during_the_write_of_a_result(trained_run, library, uninterrupted, tmp_path):
    """With the test hook, each record is written in two halves 3 s apart: the kill comes between."""
    csv_path = tmp_path / "results.csv"

    def half_written() -> bool:
        data = csv_path.read_bytes() if csv_path.exists() else b""
        return data.count(b"\n") >= 2 and not data.endswith(b"\n")

    proc = start_script("-m track_analyzer", *analyze_args(trained_run, library, tmp_path), env={WRITE_PAUSE_ENV: "3"})
    assert kill_group_when(proc, half_written)
    assert not csv_path.read_bytes().endswith(b"\n")
    rerun = run_script("-m track_analyzer", *analyze_args(trained_run, library, tmp_path))
    assert rerun.returncode == 0, rerun.stderr
    assert_same_results(tmp_path, uninterrupted)


def test_a_finished_run_again_changes_nothing_and_skips_the_unreadable_file(
    trained_run, library, uninterrupted, tmp_path
):
    for name in ("results.csv", "results.csv.settings.json", "results.json"):
        (tmp_path / name).write_bytes((uninterrupted / name).read_bytes())
    again = run_script("-m track_analyzer", *analyze_args(trained_run, library, tmp_path))
    assert again.returncode == 0, again.stderr
    assert "15 of 15 files are in the results already" in again.stderr and "broken.mp3" not in again.stderr
    for name in ("results.csv", "results.json"):
        assert (tmp_path / name).read_bytes() == (uninterrupted / name).read_bytes()


def test_results_of_other_settings_are_refused_unless_restart(trained_run, library, uninterrupted, tmp_path):
    for name in ("results.csv", "results.csv.settings.json", "results.json"):
        (tmp_path / name).write_bytes((uninterrupted / name).read_bytes())
    before = (tmp_path / "results.csv").read_bytes()
    for flags, key in ((("--overlap", "0.25"), "overlap"), (("--aggregation", "vote"), "aggregation")):
        refused = run_script("-m track_analyzer", *analyze_args(trained_run, library, tmp_path, *flags))
        assert refused.returncode == 1
        (line,) = refused.stderr.strip().splitlines()
        assert line.startswith("error: ") and "results.csv: made with other analysis settings" in line
        assert f"changed: {key}" in line and "--restart" in line
        assert (tmp_path / "results.csv").read_bytes() == before  # nothing a user made is touched
    restarted = run_script(
        "-m track_analyzer", *analyze_args(trained_run, library, tmp_path, "--overlap", "0.25", "--restart")
    )
    assert restarted.returncode == 0, restarted.stderr
    settings = json.loads((tmp_path / "results.csv.settings.json").read_text())
    assert settings["overlap"] == 0.25
    table, records = read_results(tmp_path)
    assert len(table) == len(records) == 15


def test_results_file_cuts_a_half_written_line_and_sorts_when_done(tmp_path):
    settings = {
        "format_version": 1,
        "mode": "folder",
        "model": "m",
        "labels": ["a", "b"],
        "overlap": 1.0,
        "aggregation": "sum",
    }
    record = {
        "path": "z.wav",
        "status": "ok",
        "duration": 3.0,
        "n_slices": 2,
        "ranking": [{"label": "b", "score": 1.5, "share": 0.75}, {"label": "a", "score": 0.5, "share": 0.25}],
    }
    with ResultsFile(tmp_path / "r.csv", settings) as results:
        results.add(record)
        results.add({"path": "a.wav", "status": "skipped: silent"})
    with open(tmp_path / "r.csv", "ab") as handle:
        handle.write(b"m.wav,ok,a,0.6")  # a crash in the middle of a row
    resumed = ResultsFile(tmp_path / "r.csv", settings)
    assert set(resumed.records) == {"z.wav", "a.wav"}
    assert (tmp_path / "r.csv").read_bytes().endswith(b"\n")
    resumed.add({**record, "path": "m.wav", "size": 1234, "mtime_ns": 1700000000123456789})
    resumed.add({**record, "path": "m.wav", "status": "padded"})  # a second report of a file: ignored
    ordered = resumed.finish()
    assert [r["path"] for r in ordered] == ["a.wav", "m.wav", "z.wav"]
    lines = (tmp_path / "r.csv").read_text().splitlines()
    assert lines == [
        "path,status,top_label,top_share,duration,n_slices,size,mtime_ns,share_a,share_b",
        "a.wav,skipped: silent,,,,,,,,",
        "m.wav,ok,b,0.750000,3.000,2,1234,1700000000123456789,0.250000,0.750000",
        "z.wav,ok,b,0.750000,3.000,2,,,0.250000,0.750000",  # a record without them: empty
    ]
    assert [recorded_stat(r) for r in ResultsFile(tmp_path / "r.csv", settings).records.values()] == [
        None,
        FileStat(1234, 1700000000123456789),  # read back exactly (ns do not fit a float)
        None,
    ]
    with pytest.raises(GenrekitError, match=r"r.csv: made with other analysis settings \(changed: overlap\)"):
        ResultsFile(tmp_path / "r.csv", {**settings, "overlap": 2.0})
    (tmp_path / "r.csv.settings.json").unlink()
    with pytest.raises(GenrekitError, match="cannot be read"):
        ResultsFile(tmp_path / "r.csv", settings)


@pytest.mark.skipif(not (REPO_ROOT / ".venv" / "bin" / "python").exists(), reason="no .venv: make venv makes it")
def test_the_package_imports_from_any_folder(tmp_path):
    """make venv installs the checkout in editable mode (pyproject.toml): a Dask worker started from any
    folder with the venv's Python imports the project, no PYTHONPATH needed."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    probe = subprocess.run(
        [
            str(REPO_ROOT / ".venv" / "bin" / "python"),
            "-c",
            "import genrekit, track_analyzer; print(genrekit.__file__)",
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
    )
    assert probe.returncode == 0, probe.stderr
    assert Path(probe.stdout.strip()).resolve() == (REPO_ROOT / "genrekit" / "__init__.py").resolve()
