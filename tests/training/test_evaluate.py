"""Slice- and track-level metrics on hand-made predictions; the plots."""

from __future__ import annotations

import numpy as np
import pytest

from genrekit.training.evaluate import (
    classification_report,
    confusion_matrix,
    evaluate_predictions,
    mean_std,
    plot_confusion,
    plot_confusions,
    plot_curves,
    track_labels,
)

LABELS = ["blues", "metal", "pop"]

# Track 7 (blues): two slices lean weakly to metal, one is surely blues. Summed scores
# say blues (1.0 + 0.35 + 0.35 = 1.7 against 1.3 for metal) although most slices say metal.
# Track 3 (pop): both slices right. Track 5 (metal): one slice right, one wrong; the sum says pop.
SCORES = np.array(
    [
        [0.35, 0.60, 0.05],  # track 7
        [0.35, 0.60, 0.05],  # track 7
        [1.00, 0.00, 0.00],  # track 7
        [0.10, 0.10, 0.80],  # track 3
        [0.20, 0.10, 0.70],  # track 3
        [0.10, 0.50, 0.40],  # track 5
        [0.20, 0.30, 0.50],  # track 5
    ]
)
TRUE = np.array([0, 0, 0, 2, 2, 1, 1])
TRACKS = np.array([7, 7, 7, 3, 3, 5, 5])


def test_track_verdict_is_the_highest_sum_of_slice_scores():
    result = evaluate_predictions(SCORES, TRUE, TRACKS, LABELS)
    # slices: right are rows 2, 3, 4, 5 -> 4 of 7
    assert result["slice_accuracy"] == pytest.approx(4 / 7)
    # tracks: 7 -> blues (sums 1.7 / 1.2 / 0.1), 3 -> pop, 5 -> pop (0.3 / 0.8 / 0.9), wrong
    assert result["track_accuracy"] == pytest.approx(2 / 3)
    assert result["track"]["confusion_matrix"] == [[1, 0, 0], [0, 0, 1], [0, 0, 1]]
    assert result["track"]["count"] == 3 and result["slice"]["count"] == 7
    assert result["aggregation"] == "sum"


def test_vote_differs_from_sum_on_the_same_slices():
    voted = evaluate_predictions(SCORES, TRUE, TRACKS, LABELS, method="vote")
    # track 7 by majority vote: metal (two of three slices) -> wrong; track 5: a tie broken towards metal
    assert voted["track"]["confusion_matrix"][0] == [0, 1, 0]


def test_track_labels_and_disagreeing_slices():
    ids, labels = track_labels(TRUE, TRACKS)
    assert list(ids) == [3, 5, 7] and list(labels) == [2, 1, 0]
    with pytest.raises(ValueError):
        track_labels(np.array([0, 1]), np.array([4, 4]))


def test_report_per_label_precision_recall():
    report = classification_report(np.array([0, 0, 1, 2]), np.array([0, 1, 1, 1]), LABELS)
    assert report["accuracy"] == 0.5
    assert report["per_label"]["metal"]["precision"] == pytest.approx(1 / 3)
    assert report["per_label"]["blues"]["recall"] == 0.5
    assert report["per_label"]["pop"]["precision"] == 0.0  # never predicted: 0, not NaN
    assert confusion_matrix(np.array([0, 0, 1, 2]), np.array([0, 1, 1, 1]), 3).tolist() == report["confusion_matrix"]


def test_mean_std():
    assert mean_std([0.5]) == {"mean": 0.5, "std": 0.0, "values": [0.5]}
    result = mean_std([0.6, 0.8])
    assert result["mean"] == pytest.approx(0.7)
    assert result["std"] == pytest.approx(np.std([0.6, 0.8], ddof=1))


def test_plots_write_pngs(tmp_path):
    history = {
        "loss": [1.0, 0.6, 0.4],
        "val_loss": [1.1, 0.8, 0.7],
        "accuracy": [0.4, 0.7, 0.8],
        "val_accuracy": [0.3, 0.6, 0.7],
        "learning_rate": [1e-3] * 3,
    }
    for path in (
        plot_curves(history, tmp_path / "curves.png"),
        plot_confusion(np.eye(3, dtype=int), LABELS, tmp_path / "one.png", title="t"),
        plot_confusions(
            {"slices": np.eye(3, dtype=int), "tracks": np.ones((3, 3), dtype=int)}, LABELS, tmp_path / "two.png"
        ),
    ):
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_mean_aggregation_and_tagger_shares():
    from genrekit.models.aggregate import aggregate, shares

    tags = np.array([[0.9, 0.6, 0.1], [0.7, 0.8, 0.0]])  # sigmoid scores: not exclusive
    np.testing.assert_allclose(aggregate(tags, "mean"), [0.8, 0.7, 0.05])
    # a tagger's share of a tag is its mean probability; a softmax model's shares add up to 1
    np.testing.assert_allclose(shares(aggregate(tags, "mean"), "mean", multi_label=True), [0.8, 0.7, 0.05])
    assert shares(aggregate(SCORES[:3], "mean"), "mean").sum() == pytest.approx(1.0)
