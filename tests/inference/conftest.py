"""A small library (15 files, one unreadable) and its uninterrupted analysis, shared by the library tests."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import TINY_LABELS
from tests.helpers import label_signal, run_script, write_audio

SIGNALS = {name: kind for kind, name in enumerate(TINY_LABELS)}
# Shares are written with 6 decimals. Slices of other files share a forward pass in a different
# order after a resume, which may change a score by float32 rounding (~1e-7): one last digit at most.
SHARE_TOLERANCE = 1.5e-6


@pytest.fixture(scope="session")
def library(tmp_path_factory) -> Path:
    """15 files of 2-9 s in nested folders, one of them unreadable."""
    root = tmp_path_factory.mktemp("library") / "music"
    for k in range(14):
        label = list(TINY_LABELS)[k % 3]
        suffix = ("wav", "mp3", "flac")[k % 3]
        write_audio(
            root / f"part{k % 2}" / f"{label}_{k:02d}.{suffix}",
            label_signal(SIGNALS[label], 2.0 + (k * 7) % 8, seed=900 + k),
        )
    (root / "part1" / "broken.mp3").write_bytes(b"not audio" * 100)
    return root


def analyze_args(trained_run, library: Path, out: Path, *extra: str) -> list[str]:
    return [
        str(library),
        "--model",
        str(trained_run.run_folder),
        "--config",
        str(trained_run.config),
        "--csv",
        str(out / "results.csv"),
        "--json",
        str(out / "results.json"),
        *extra,
    ]


def read_results(out: Path) -> tuple[list[dict], list[dict]]:
    with open(out / "results.csv", newline="") as handle:
        table = list(csv.DictReader(handle))
    lines = (out / "results.json").read_text().splitlines()
    return table, [json.loads(line) for line in lines[1:]]


def assert_same_results(out: Path, reference: Path) -> None:
    """Every file once, in path order, with the same statuses, verdicts and shares."""
    (table, records), (ref_table, ref_records) = read_results(out), read_results(reference)
    assert [r["path"] for r in table] == sorted(r["path"] for r in table) == [r["path"] for r in ref_table]
    for row, ref in zip(table, ref_table):
        assert (row["path"], row["status"], row["top_label"], row["n_slices"]) == (
            ref["path"],
            ref["status"],
            ref["top_label"],
            ref["n_slices"],
        )
        shares = [float(v or "nan") for k, v in row.items() if k.startswith("share_")]
        ref_shares = [float(v or "nan") for k, v in ref.items() if k.startswith("share_")]
        np.testing.assert_allclose(shares, ref_shares, atol=SHARE_TOLERANCE)
    assert [r["path"] for r in records] == [r["path"] for r in ref_records]
    for record, ref in zip(records, ref_records):
        assert record["status"] == ref["status"]
        got = {e["label"]: e["score"] for e in record.get("ranking", [])}
        want = {e["label"]: e["score"] for e in ref.get("ranking", [])}
        assert got.keys() == want.keys()
        np.testing.assert_allclose([got[k] for k in sorted(got)], [want[k] for k in sorted(want)], rtol=1e-5, atol=1e-5)


@pytest.fixture(scope="session")
def uninterrupted(trained_run, library, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("uninterrupted")
    proc = run_script("-m track_analyzer", *analyze_args(trained_run, library, out))
    assert proc.returncode == 0, proc.stderr
    table, records = read_results(out)
    assert len(table) == len(records) == 15
    assert [r["status"].startswith("skipped: cannot decode audio") for r in table].count(True) == 1
    return out
