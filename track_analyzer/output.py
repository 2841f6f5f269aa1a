"""What the analyzer writes besides the results files (:mod:`genrekit.inference.results`): a track's
JSON, the timeline plot and the evaluation summary."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from genrekit.core import atomic
from genrekit.inference.analyzer import TrackAnalysis


def write_json(path: Path, data: object) -> Path:
    """Write JSON atomically (a crash leaves the old file or none, never half of one)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return atomic.write_json(path, data)


TAGGER_LINES = 10  # tags drawn in a tagger's timeline


def plot_timeline(result: TrackAnalysis, path: Path) -> Path:
    """Save a PNG of each label's probability over the track (stacked, so the height is always 1;
    for a tagger, whose tags are not exclusive, one line for each of its best tags).

    Each slice is drawn at its centre; where the colours change, the track changes character.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    times = result.starts + result.slice_duration / 2
    scores = result.scores
    if len(times) == 1:  # one slice: draw it as a band over its duration instead of a single point
        times = np.array([result.starts[0], result.starts[0] + result.slice_duration])
        scores = np.repeat(scores, 2, axis=0)
    colors = matplotlib.colormaps["tab10" if len(result.labels) <= 10 else "tab20"].colors
    fig, ax = plt.subplots(figsize=(10, 4))
    if result.multi_label:
        # A tagger's tags are not exclusive: one line per tag, for the TAGGER_LINES best ones.
        best = [result.labels.index(r.label) for r in result.ranking[:TAGGER_LINES]]
        for color, index in zip(colors, best):
            ax.plot(times, scores[:, index], color=color, label=result.labels[index])
    else:
        ax.stackplot(times, scores.T, labels=result.labels, colors=colors[: len(result.labels)], linewidth=0)
    ax.set_xlim(times[0], times[-1])
    ax.set_ylim(0, 1)
    ax.set_xlabel("time (s)")
    ax.set_ylabel("probability")
    ax.set_title(f"{result.path.name}: {result.summary()}", fontsize=10)
    ax.legend(loc="center left", bbox_to_anchor=(1.01, 0.5), fontsize=8, frameon=False)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100, format="png")
    plt.close(fig)
    return path


def confusion_text(matrix: np.ndarray, labels: Sequence[str]) -> str:
    """The confusion matrix as aligned text (rows: true label, columns: predicted)."""
    width = max(5, *(len(name) for name in labels), len(str(int(np.max(matrix, initial=0)))))
    lines = [" " * width + "  " + "  ".join(f"{name:>{width}}" for name in labels)]
    for name, row in zip(labels, np.asarray(matrix)):
        lines.append(f"{name:<{width}}  " + "  ".join(f"{int(v):>{width}}" for v in row))
    return "\n".join(lines)


def evaluation_summary(report: dict, labels: Sequence[str], aggregation: str) -> str:
    """Track accuracy, per-label recall and the confusion matrix, for stdout."""
    correct = int(np.trace(np.asarray(report["confusion_matrix"])))
    lines = [
        f"track accuracy {100 * report['accuracy']:.1f} % ({correct}/{report['count']} tracks, "
        f"aggregation {aggregation})"
    ]
    for name in labels:
        stats = report["per_label"][name]
        if stats["support"]:
            lines.append(
                f"  {name}: recall {100 * stats['recall']:.1f} % of {stats['support']}, "
                f"precision {100 * stats['precision']:.1f} %"
            )
    lines.append("confusion matrix (rows: true label, columns: predicted):")
    lines.append(confusion_text(np.asarray(report["confusion_matrix"]), labels))
    return "\n".join(lines)
