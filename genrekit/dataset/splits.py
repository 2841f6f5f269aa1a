"""Track-wise train/val/test split: stratified per label, seeded, group-aware.

Every track belongs to one *unit*: its group from the group file (an artist, an
album), or itself. Units are sorted by name and shuffled with the seed, so the
result depends only on the seed and the set of tracks, never on directory
listing order. Each unit then goes, whole, to the split whose per-label target
it fills best (its tracks' summed relative deficit), so every label is split in
the configured shares and no group straddles two splits. Tracks named in a
custom split file keep their split and count towards the targets; a group with
such a track follows it.
"""

from __future__ import annotations

import csv
import json
import math
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from genrekit.core.errors import ConfigError

SPLIT_NAMES = ("train", "val", "test")


def split_targets(n_tracks: int, validation_share: float, test_share: float) -> dict[str, int]:
    """How many of a label's tracks go to each split.

    Shares are rounded half up; a non-zero share gives at least one track once a
    label has three or more, so val and test are never silently empty.
    """

    def count(share: float) -> int:
        n = math.floor(n_tracks * share + 0.5)
        return max(n, 1) if share > 0 and n_tracks >= 3 else n

    test = count(test_share)
    val = min(count(validation_share), max(0, n_tracks - test - 1))
    return {"train": n_tracks - val - test, "val": val, "test": test}


def read_mapping(path: Path, value_name: str, key: str) -> dict[str, str]:
    """Read a ``path -> value`` mapping from a CSV (header ``path,<value_name>``) or a JSON object.

    ``key`` is the config key, used in error messages.
    """
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise ConfigError(f"{key}: cannot read {path} ({exc.strerror})") from None
    if path.suffix.lower() == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"{key}: {path}: invalid JSON ({exc.msg} at line {exc.lineno})") from None
        if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
            raise ConfigError(f"{key}: {path}: must be a JSON object of path -> {value_name} strings")
        return {str(k).replace("\\", "/"): v for k, v in data.items()}
    rows = list(csv.reader(text.splitlines()))
    if not rows or [c.strip().lower() for c in rows[0][:2]] != ["path", value_name]:
        raise ConfigError(f"{key}: {path}: the first line must be the header 'path,{value_name}'")
    mapping: dict[str, str] = {}
    for line_no, row in enumerate(rows[1:], start=2):
        if not row or all(not c.strip() for c in row):
            continue
        if len(row) < 2 or not row[0].strip() or not row[1].strip():
            raise ConfigError(f"{key}: {path}: line {line_no}: expected 'path,{value_name}'")
        mapping[row[0].strip().replace("\\", "/")] = row[1].strip()
    return mapping


def read_custom_splits(path: Path) -> dict[str, str]:
    mapping = read_mapping(path, "split", "split.custom_split_file")
    for track, split in mapping.items():
        if split not in SPLIT_NAMES:
            raise ConfigError(
                f"split.custom_split_file: {path}: {track}: split must be train, val or test, got {split!r}"
            )
    return mapping


def assign_splits(
    tracks: Iterable[tuple[str, str]],
    validation_share: float,
    test_share: float,
    seed: int,
    custom: dict[str, str] | None = None,
    groups: dict[str, str] | None = None,
) -> dict[str, str]:
    """Assign every track to ``train``, ``val`` or ``test``.

    Parameters
    ----------
    tracks : iterable of (path, label)
        Paths are unique track keys (relative, POSIX).
    validation_share, test_share : float
        Target share of each label's tracks.
    seed : int
        Seed of the unit shuffle.
    custom : dict, optional
        ``path -> split`` for tracks whose split is fixed.
    groups : dict, optional
        ``path -> group``; a group's tracks always share a split.

    Returns
    -------
    dict
        ``path -> split``.
    """
    tracks = sorted(set(tracks))
    custom = custom or {}
    groups = groups or {}
    label_of = dict(tracks)
    per_label: dict[str, int] = defaultdict(int)
    for _, label in tracks:
        per_label[label] += 1
    targets = {label: split_targets(n, validation_share, test_share) for label, n in per_label.items()}

    units: dict[str, list[str]] = defaultdict(list)
    for path, _ in tracks:
        units[f"group:{groups[path]}" if path in groups else f"track:{path}"].append(path)

    assigned: dict[str, str] = {}
    filled = {label: dict.fromkeys(SPLIT_NAMES, 0) for label in per_label}
    free_units = []
    for name in sorted(units):
        members = units[name]
        fixed = sorted(p for p in members if p in custom)
        if fixed:
            for path in members:  # members without an entry follow the group's first fixed track
                assigned[path] = custom.get(path, custom[fixed[0]])
                filled[label_of[path]][assigned[path]] += 1
        else:
            free_units.append(name)

    order = np.random.default_rng(seed).permutation(len(free_units))
    for index in order:
        members = units[free_units[index]]

        def fit(split: str, members=members) -> float:
            return sum(
                (targets[label_of[p]][split] - filled[label_of[p]][split]) / max(targets[label_of[p]][split], 1)
                for p in members
            )

        best = max(SPLIT_NAMES, key=fit)  # ties go to the earlier name: train, then val
        for path in members:
            assigned[path] = best
            filled[label_of[path]][best] += 1
    return assigned
