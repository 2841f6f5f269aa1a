"""Turn slice scores into one verdict per track (the "conquer" step).

``sum`` adds the slices' softmax scores (the article's method); ``mean-log``
averages log-probabilities (a product of probabilities, as if slices were
independent evidence); ``vote`` counts each slice's top label.

``mean`` averages the scores: the method for taggers (``musicnn-msd``), whose
sigmoid outputs are one independent probability per tag, not a distribution
over labels. Their track score is the tag's mean probability over the slices.
"""

from __future__ import annotations

import numpy as np

METHODS = ("sum", "mean-log", "vote", "mean")
LOG_FLOOR = 1e-7


def aggregate(slice_scores: np.ndarray, method: str = "sum") -> np.ndarray:
    """Combine the scores of one track's slices.

    Parameters
    ----------
    slice_scores : np.ndarray, shape (n_slices, n_labels)
        Softmax outputs, one row per slice.
    method : {"sum", "mean-log", "vote", "mean"}

    Returns
    -------
    np.ndarray, shape (n_labels,)
        Track scores; higher is better. For ``mean-log`` they are log-probabilities.
    """
    scores = np.asarray(slice_scores, dtype=np.float64)
    if scores.ndim != 2 or scores.shape[0] == 0:
        raise ValueError(f"expected (n_slices >= 1, n_labels) scores, got shape {scores.shape}")
    if method == "sum":
        return scores.sum(axis=0)
    if method == "mean":
        return scores.mean(axis=0)
    if method == "mean-log":
        return np.log(np.maximum(scores, LOG_FLOOR)).mean(axis=0)
    if method == "vote":
        return np.bincount(scores.argmax(axis=1), minlength=scores.shape[1]).astype(np.float64)
    raise ValueError(f"unknown aggregation {method!r} (choose from {', '.join(METHODS)})")


def shares(track_scores: np.ndarray, method: str = "sum", multi_label: bool = False) -> np.ndarray:
    """Track scores as shares that add up to 1 (for display: ``metal 71.3 %``).

    For a multi-label model (a tagger) the share of a tag is its mean probability
    instead (``rock 62.0 %  guitar 41.5 %``): tags are not exclusive, so their
    shares need not add up to 1.
    """
    scores = np.asarray(track_scores, dtype=np.float64)
    if multi_label:
        return np.clip(scores, 0.0, 1.0)
    if method == "mean-log":  # geometric-mean probabilities, renormalized
        scores = np.exp(scores - scores.max())
    total = scores.sum()
    return scores / total if total > 0 else np.full_like(scores, 1.0 / len(scores))


def track_predictions(
    slice_scores: np.ndarray, track_ids: np.ndarray, method: str = "sum"
) -> tuple[np.ndarray, np.ndarray]:
    """Aggregate many tracks' slices at once.

    Returns
    -------
    ids : np.ndarray, shape (n_tracks,)
        The distinct track ids, ascending.
    scores : np.ndarray, shape (n_tracks, n_labels)
        Each track's aggregated scores.
    """
    track_ids = np.asarray(track_ids)
    ids = np.unique(track_ids)
    scores = (
        np.stack([aggregate(slice_scores[track_ids == i], method) for i in ids])
        if len(ids)
        else np.zeros((0, np.shape(slice_scores)[1]))
    )
    return ids, scores
