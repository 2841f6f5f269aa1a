"""The results file of a library analysis: written a file at a time, resumable, in a stable order.

A folder analysis with ``--csv PATH`` (or ``--json PATH``, JSON Lines) appends each file's
record the moment the file is done: one ``write`` of the whole line, then ``fsync``, so a
crash or ``kill -9`` leaves every finished record and at most half of the last line, which
the next run cuts off (that file is analyzed again). Running the same command again reads
the records that are there and skips their files, unreadable files included (they stay
skipped). At the end the file is rewritten, sorted by path, atomically: a finished results
file is the same whatever the interruptions and the order the files finished in.

What the records depend on (the model's content, its labels and features, the analysis
overlap and aggregation, the kind of run) is stored with them: in the header line of the
JSON Lines file, and for a CSV in a ``<PATH>.settings.json`` beside it (a CSV stays a plain
table). A file made with other settings is refused with one line naming what differs,
unless the caller asks to start over.

Each analyzed file's record also holds its ``size`` and ``mtime_ns`` as they were before its
analysis, so that ``--write-tags`` can tell a file changed since (:mod:`.tagging`). Results
written before those were recorded (a CSV without the two columns) are still resumed, in their
own columns; tags are not written from them.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import NamedTuple

from genrekit.core.atomic import fsync_path, write_bytes, write_json
from genrekit.core.config import changed_keys, to_jsonable
from genrekit.core.errors import GenrekitError
from genrekit.models.bundle import Bundle

RESULTS_VERSION = 1
# Test hook: write each record in two halves this many seconds apart, so a test can kill -9 the
# analysis in the middle of a write (tests/inference/test_results.py).
WRITE_PAUSE_ENV = "GENREKIT_TEST_WRITE_PAUSE"
CSV_FIXED = ("path", "status", "top_label", "top_share", "duration", "n_slices")
CSV_FILE_STAT = ("size", "mtime_ns")  # after CSV_FIXED; results made before them lack them
SETTINGS_SUFFIX = ".settings.json"


class FileStat(NamedTuple):
    """What tells a file changed: its size in bytes and its modification time in ns."""

    size: int
    mtime_ns: int


def file_stat(path: os.PathLike | str) -> FileStat:
    """The :class:`FileStat` of ``path`` (symbolic links followed); raises ``OSError``."""
    st = os.stat(path)
    return FileStat(st.st_size, st.st_mtime_ns)


def stat_or_none(path: os.PathLike | str) -> FileStat | None:
    """:func:`file_stat`, or None for a file that cannot be stat'ed (missing...)."""
    try:
        return file_stat(path)
    except OSError:
        return None


def recorded_stat(record: dict) -> FileStat | None:
    """The :class:`FileStat` a record holds (taken before the file's analysis), or None."""
    if record.get("size") is None or record.get("mtime_ns") is None:
        return None
    return FileStat(int(record["size"]), int(record["mtime_ns"]))


def model_fingerprint(bundle: Bundle) -> str:
    """A hash of what the model is, not where it is: a run folder copied elsewhere keeps it."""
    if bundle.pretrained is not None:
        return f"tagger:{bundle.pretrained}"
    digest = hashlib.sha256()
    for path in sorted(p for p in bundle.folder.iterdir() if p.name in ("bundle.json", bundle.model_path.name)):
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def results_settings(
    bundle: Bundle, *, overlap: float, aggregation: str, evaluate: bool, precision: str = "float"
) -> dict:
    """What a results file's records depend on; two runs with equal settings make equal records
    (``precision``: the export that scored the slices, float or int8)."""
    return {
        "format_version": RESULTS_VERSION,
        "mode": "evaluate" if evaluate else "folder",
        "model": model_fingerprint(bundle),
        "labels": list(bundle.labels),
        "features": to_jsonable(bundle.features),
        "slicing": to_jsonable(bundle.slicing),
        "overlap": float(overlap),
        "aggregation": aggregation,
        "precision": precision,
    }


def csv_header(labels: Sequence[str], with_truth: bool = False, with_stat: bool = True) -> list[str]:
    """Fixed columns, ``size`` and ``mtime_ns`` (unless ``with_stat`` is False: results made before
    them), ``true_label`` in evaluate mode, then one ``share_<label>`` per label (model order)."""
    return [
        *CSV_FIXED,
        *(CSV_FILE_STAT if with_stat else ()),
        *(["true_label"] if with_truth else []),
        *(f"share_{name}" for name in labels),
    ]


def csv_row(record: dict, labels: Sequence[str], with_truth: bool = False, with_stat: bool = True) -> list:
    """One file's CSV row from its record (see :func:`record_of`); a skipped file has empty scores."""
    truth = [record.get("true_label", "")] if with_truth else []
    ranking = record.get("ranking")
    if not ranking:
        return [record["path"], record["status"], *([""] * (4 + 2 * with_stat)), *truth, *([""] * len(labels))]
    share = {entry["label"]: entry["share"] for entry in ranking}
    top = ranking[0]
    stat = recorded_stat(record)
    return [
        record["path"],
        record["status"],
        top["label"],
        f"{top['share']:.6f}",
        f"{record['duration']:.3f}",
        record["n_slices"],
        *((stat or ("", "")) if with_stat else ()),
        *truth,
        *(f"{share[name]:.6f}" for name in labels),
    ]


def record_of(path: str, status: str, result=None, true_label: str | None = None, stat: FileStat | None = None) -> dict:
    """A file's record: ``path`` (relative, POSIX), ``status``, and for an analyzed file its
    ``duration``, ``n_slices``, ``ranking`` (label, score, share; best first) and, given ``stat``
    (taken before the analysis), ``size`` and ``mtime_ns``."""
    record: dict = {"path": path, "status": status}
    if true_label is not None:
        record["true_label"] = true_label
    if result is not None:
        record.update(
            duration=float(result.duration),
            n_slices=len(result.starts),
            ranking=[entry._asdict() for entry in result.ranking],
        )
        if stat is not None:
            record.update(size=stat.size, mtime_ns=stat.mtime_ns)
    return record


def _record_from_row(row: dict, labels: Sequence[str]) -> dict:
    """A record read back from a CSV row (shares only: the CSV holds no aggregated scores)."""
    record = {"path": row["path"], "status": row["status"]}
    if "true_label" in row:
        record["true_label"] = row["true_label"]
    if row["top_label"]:
        shares = {name: float(row[f"share_{name}"]) for name in labels}
        order = sorted(labels, key=lambda name: -shares[name])  # stable: ties keep model order
        order.remove(row["top_label"])
        record.update(
            duration=float(row["duration"]),
            n_slices=int(row["n_slices"]),
            ranking=[{"label": name, "share": shares[name]} for name in [row["top_label"], *order]],
        )
        if row.get("size") and row.get("mtime_ns"):
            record.update(size=int(row["size"]), mtime_ns=int(row["mtime_ns"]))
    return record


class ResultsFile:
    """One results file (``.csv`` table, or JSON Lines otherwise) that grows a record at a time.

    Parameters
    ----------
    path : Path
        The file; a missing one is started, an existing one resumed.
    settings : dict
        :func:`results_settings` of this run.
    restart : bool
        Start over even if ``path`` holds records made with other settings.
    """

    def __init__(self, path: Path, settings: dict, *, restart: bool = False):
        self.path = Path(path)
        self.settings = settings
        self.labels = list(settings["labels"])
        self.csv = self.path.suffix.lower() == ".csv"
        self.with_truth = settings["mode"] == "evaluate"
        self.with_stat = True  # False for a CSV made before the size and mtime_ns columns
        self.records: dict[str, dict] = {}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if self.path.exists() and not restart:
            self._check_settings()
            self._read()
        else:
            self._start()
        self._handle = open(self.path, "ab")  # noqa: SIM115 (held open across calls, closed by close())
        self._write_pause = float(os.environ.get(WRITE_PAUSE_ENV, "0"))

    @property
    def settings_path(self) -> Path:
        return self.path.with_name(self.path.name + SETTINGS_SUFFIX)

    # ------------------------------------------------------------------ reading back

    def _stored_settings(self) -> dict | None:
        try:
            if self.csv:
                return json.loads(self.settings_path.read_text(encoding="utf-8"))
            with open(self.path, "rb") as handle:
                return json.loads(handle.readline())["settings"]
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def _check_settings(self) -> None:
        stored = self._stored_settings()
        if stored is None:
            where = self.settings_path if self.csv else f"{self.path}'s first line"
            raise GenrekitError(
                f"{self.path}: exists, but its analysis settings ({where}) cannot be read, so "
                f"its results cannot be resumed; give --restart to analyze everything again "
                f"into it, or choose another file"
            )
        changed = changed_keys(stored, self.settings)
        if changed:
            raise GenrekitError(
                f"{self.path}: made with other analysis settings (changed: {', '.join(changed)}); "
                f"give --restart to analyze everything again into it, or choose another file"
            )

    def _read(self) -> None:
        data = self.path.read_bytes()
        complete = data[: data.rfind(b"\n") + 1]  # a line cut by a crash is that file's: it is redone
        if len(complete) != len(data):
            with open(self.path, "r+b") as handle:
                handle.truncate(len(complete))
                handle.flush()
                os.fsync(handle.fileno())
        lines = complete.decode("utf-8").splitlines(keepends=True)
        if self.csv:
            rows = list(csv.DictReader(io.StringIO("".join(lines))))
            if lines and next(csv.reader(lines[:1])) == csv_header(self.labels, self.with_truth, with_stat=False):
                self.with_stat = False  # resumed in its own columns
            elif lines and next(csv.reader(lines[:1])) != self.header():
                raise GenrekitError(
                    f"{self.path}: its columns are not those of this analysis; give --restart "
                    f"to analyze everything again into it, or choose another file"
                )
            records = [_record_from_row(row, self.labels) for row in rows]
        else:
            records = [json.loads(line) for line in lines[1:]]
        for record in records:
            self.records[record["path"]] = record
        if not lines:  # a file that a crash left empty: start it again
            self._start()

    # ------------------------------------------------------------------ writing

    def header(self) -> list[str]:
        return csv_header(self.labels, self.with_truth, self.with_stat)

    def _line(self, record: dict) -> bytes:
        if not self.csv:
            return (json.dumps(record, ensure_ascii=False) + "\n").encode("utf-8")
        buffer = io.StringIO()
        csv.writer(buffer, lineterminator="\n").writerow(csv_row(record, self.labels, self.with_truth, self.with_stat))
        return buffer.getvalue().encode("utf-8")

    def _first_line(self) -> bytes:
        if not self.csv:
            return (json.dumps({"settings": self.settings}, ensure_ascii=False) + "\n").encode("utf-8")
        buffer = io.StringIO()
        csv.writer(buffer, lineterminator="\n").writerow(self.header())
        return buffer.getvalue().encode("utf-8")

    def _start(self) -> None:
        self.with_stat = True
        if self.csv:
            write_json(self.settings_path, self.settings)
        write_bytes(self.path, self._first_line())
        self.records = {}

    @property
    def lacks_file_stats(self) -> bool:
        """Whether it was made before the records held each file's size and mtime (``--write-tags`` needs them)."""
        return not self.with_stat or any(
            "ranking" in record and recorded_stat(record) is None for record in self.records.values()
        )

    def __contains__(self, path: str) -> bool:
        return path in self.records

    def add(self, record: dict) -> None:
        """Append one file's record durably (one write of the whole line, then fsync)."""
        if record["path"] in self.records:
            return  # a task a cluster ran twice: the first result stands
        line = self._line(record)
        if self._write_pause:
            self._handle.write(line[: len(line) // 2])
            self._handle.flush()
            time.sleep(self._write_pause)
            line = line[len(line) // 2 :]
        self._handle.write(line)
        self._handle.flush()
        os.fsync(self._handle.fileno())
        self.records[record["path"]] = record

    def finish(self) -> list[dict]:
        """Rewrite the file sorted by path (atomically) and close it; return the records in that order."""
        self.close()
        ordered = [self.records[path] for path in sorted(self.records)]
        write_bytes(self.path, self._first_line() + b"".join(self._line(record) for record in ordered))
        fsync_path(self.path.parent)
        return ordered

    def close(self) -> None:
        if not self._handle.closed:
            self._handle.close()

    def __enter__(self) -> ResultsFile:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()


def done_paths(files: Iterable[ResultsFile]) -> set[str]:
    """Paths every one of the results files already holds: those a resumed run skips."""
    files = list(files)
    if not files:
        return set()
    return set.intersection(*(set(f.records) for f in files))
