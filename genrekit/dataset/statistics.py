"""Normalization statistics of the train split, out of core and independent of the chunk size.

Per group of :data:`STATS_GROUP_ROWS` rows, a float64 mean and sum of squared deviations (two
passes over the group), merged group by group with Chan et al.'s formula: numerically stable,
one pass over the data.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from genrekit.dataset.normalization import STATELESS, NormStats

STATS_GROUP_ROWS = 8  # statistics are merged per this many rows (a divisor of every chunk size)


@dataclass(frozen=True)
class ChunkBuffers:
    """The reusable arrays of one chunk in flight (allocating per chunk would page-fault
    the same memory in again and again).

    Attributes
    ----------
    raw : ndarray
        ``(rows, frames, n_mels)`` float16: the rows as read.
    work : ndarray
        The same shape in float32: the transform's working copy.
    out : ndarray
        The same shape in float16: the normalized rows to write.
    group : ndarray
        ``(STATS_GROUP_ROWS * frames, n_mels)`` float64: one statistics group.
    """

    raw: np.ndarray
    work: np.ndarray
    out: np.ndarray
    group: np.ndarray

    @classmethod
    def allocate(cls, rows: int, row_shape: tuple[int, int]) -> ChunkBuffers:
        frames, n_mels = row_shape
        return cls(
            np.empty((rows, frames, n_mels), np.float16),
            np.empty((rows, frames, n_mels), np.float32),
            np.empty((rows, frames, n_mels), np.float16),
            np.empty((STATS_GROUP_ROWS * frames, n_mels), np.float64),
        )


@dataclass(frozen=True)
class Moments:
    """Per-band count, mean and sum of squared deviations (M2) of consecutive row groups."""

    counts: np.ndarray  # (groups,)
    means: np.ndarray  # (groups, n_mels) float64
    m2s: np.ndarray  # (groups, n_mels) float64


def chunk_moments(chunk: np.ndarray, group: np.ndarray | None = None) -> Moments:
    """Moments of every group of :data:`STATS_GROUP_ROWS` rows of ``chunk`` ``(rows, frames, n_mels)``.

    Each group is converted to float64 on its own (into ``group``, a float64
    buffer of ``(STATS_GROUP_ROWS * frames, n_mels)``, when given) and gets an
    exact two-pass mean and M2.
    """
    n_mels = chunk.shape[-1]
    if group is None:
        group = np.empty((STATS_GROUP_ROWS * int(np.prod(chunk.shape[1:-1])), n_mels), np.float64)
    counts, means, m2s = [], [], []
    for start in range(0, len(chunk), STATS_GROUP_ROWS):
        rows = chunk[start : start + STATS_GROUP_ROWS].reshape(-1, n_mels)
        values = group[: len(rows)]
        np.copyto(values, rows)
        mean = values.mean(axis=0)
        values -= mean
        counts.append(len(values))
        means.append(mean)
        m2s.append(np.einsum("ij,ij->j", values, values))
    if not counts:
        return Moments(np.zeros(0, np.int64), np.zeros((0, n_mels)), np.zeros((0, n_mels)))
    return Moments(np.asarray(counts, dtype=np.int64), np.stack(means), np.stack(m2s))


class StatsAccumulator:
    """Normalization statistics of a stream of spectrogram chunks ``(rows, frames, n_mels)``.

    Parameters
    ----------
    method : str
        One of :data:`genrekit.dataset.normalization.METHODS`.
    n_mels : int
        Number of mel bands (the last axis).

    Notes
    -----
    ``standard`` keeps, per band, the count, the mean and the sum of squared
    deviations (M2) in float64. Group moments (:func:`chunk_moments`) are merged
    one group at a time with Chan et al.'s formula, so the result depends only
    on the rows and their order, not on how they were chunked (as long as chunks
    are multiples of :data:`STATS_GROUP_ROWS` rows). The per-chunk part,
    :meth:`summarize`, can run in a worker thread; :meth:`merge` takes its
    results in row order.
    """

    def __init__(self, method: str, n_mels: int):
        self.method = method
        self.count = 0
        self.mean = np.zeros(n_mels, dtype=np.float64)
        self.m2 = np.zeros(n_mels, dtype=np.float64)
        self.minimum = np.inf
        self.maximum = -np.inf

    def summarize(self, chunk: np.ndarray, buffers: ChunkBuffers | None = None) -> Any:
        """What :meth:`merge` needs from one chunk; changes nothing in ``self``."""
        if self.method in STATELESS:
            return None
        if self.method == "standard":
            return chunk_moments(chunk, None if buffers is None else buffers.group)
        if chunk.dtype == np.float16 and buffers is not None:
            # numpy's float16 min/max run an order of magnitude slower than a float32 copy and its min/max
            work = buffers.work[: len(chunk)]
            np.copyto(work, chunk)
            chunk = work
        return float(chunk.min()), float(chunk.max())

    def merge(self, summary: Any) -> None:
        """Add a chunk summary; summaries must come in row order."""
        if self.method in STATELESS:
            return
        if self.method != "standard":
            self.minimum = min(self.minimum, summary[0])
            self.maximum = max(self.maximum, summary[1])
            return
        for count, mean, m2 in zip(summary.counts, summary.means, summary.m2s):
            total = self.count + int(count)
            delta = mean - self.mean
            self.mean = self.mean + delta * (count / total)
            self.m2 = self.m2 + m2 + delta**2 * (self.count * count / total)
            self.count = total

    def update(self, chunk: np.ndarray) -> None:
        """Add the rows of ``chunk``."""
        if len(chunk):
            self.merge(self.summarize(chunk))

    def result(self) -> NormStats:
        """The statistics so far; population standard deviation (ddof 0)."""
        if self.method in STATELESS:
            return NormStats(self.method)
        if self.method == "standard":
            if self.count == 0:
                raise ValueError("no rows seen")
            return NormStats("standard", mean=self.mean.copy(), std=np.sqrt(self.m2 / self.count))
        if not np.isfinite(self.minimum):
            raise ValueError("no rows seen")
        return NormStats(self.method, minimum=self.minimum, maximum=self.maximum)
