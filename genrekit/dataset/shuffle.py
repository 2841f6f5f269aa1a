"""The two-pass out-of-core shuffle of the train rows through a scratch file.

The permutation is exactly ``numpy.random.default_rng(seed).permutation(n)``. Pass 1 writes
each input row into the region of the output block it will end up in (:func:`scatter_to_scratch`),
so the rows of one block lie together; pass 2 reads one block at a time, each row straight
into its place (:func:`gather_from_scratch`).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from genrekit.core.errors import GenrekitError

IOV_MAX = 1024  # buffers per preadv/pwritev call (Linux's limit)


@dataclass(frozen=True)
class ShufflePlan:
    """Where every train row goes, for the two-pass out-of-core shuffle.

    Attributes
    ----------
    order : ndarray
        The permutation: output row ``i`` is input row ``order[i]``.
    scratch_row : ndarray
        Input row ``j`` goes to scratch row ``scratch_row[j]``: the rows of output
        block ``b`` (rows ``[b * block_rows, (b + 1) * block_rows)``) fill scratch
        rows of the same range, in input order.
    scratch_dest : ndarray
        Scratch row ``k`` holds output row ``scratch_dest[k]``.
    block_rows : int
        Rows per output block.
    """

    order: np.ndarray
    scratch_row: np.ndarray
    scratch_dest: np.ndarray
    block_rows: int


def shuffle_plan(n_rows: int, seed: int, block_rows: int) -> ShufflePlan:
    """Plan the seeded permutation ``numpy.random.default_rng(seed).permutation(n_rows)`` in blocks."""
    order = np.random.default_rng(seed).permutation(n_rows)
    dest = np.empty(n_rows, dtype=np.int64)
    dest[order] = np.arange(n_rows)
    by_block = np.argsort(dest // block_rows, kind="stable")  # input rows, grouped by output block
    scratch_row = np.empty(n_rows, dtype=np.int64)
    scratch_row[by_block] = np.arange(n_rows)
    return ShufflePlan(order, scratch_row, dest[by_block], block_rows)


def _vector_io(call: Callable, fd: int, array: np.ndarray, rows: np.ndarray, offset: int) -> None:
    """``os.pwritev``/``os.preadv`` of ``array[rows]`` (whole rows, in that order) at ``offset``,
    resuming after short transfers."""
    views = [memoryview(array[i]).cast("B") for i in rows]
    first = 0
    while first < len(views):
        done = call(fd, views[first : first + IOV_MAX], offset)
        if done == 0:
            raise GenrekitError("the shuffle's scratch file ended early; run process_dataset.py again")
        offset += done
        while first < len(views) and done >= len(views[first]):
            done -= len(views[first])
            first += 1
        if done:
            views[first] = views[first][done:]


def scatter_to_scratch(fd: int, plan: ShufflePlan, start: int, chunk: np.ndarray) -> None:
    """Pass 1: write the input rows ``start:start+len(chunk)`` to their scratch rows.

    The rows of one chunk bound for the same output block have consecutive
    scratch rows: one vectored write per block the chunk touches.
    """
    row_bytes = chunk[0].nbytes
    targets = plan.scratch_row[start : start + len(chunk)]
    rows = np.argsort(targets)
    targets = targets[rows]
    runs = np.flatnonzero(np.diff(targets) != 1) + 1
    for a, b in zip(np.r_[0, runs], np.r_[runs, len(targets)]):
        _vector_io(os.pwritev, fd, chunk, rows[a:b], int(targets[a]) * row_bytes)


def gather_from_scratch(fd: int, plan: ShufflePlan, start: int, stop: int, block: np.ndarray) -> None:
    """Pass 2: read output rows ``start:stop`` from their scratch rows straight into place in ``block``."""
    _vector_io(os.preadv, fd, block, plan.scratch_dest[start:stop] - start, start * block[0].nbytes)
