"""The analyzer's HTML reports (``--html``): a page per track and an index of a library.

Every page is one self-contained file: styles, scripts and data are inline, nothing is fetched
from the network, and the pages work from ``file://`` URLs. Without JavaScript they still show
the verdict, the settings, the timeline (an inline SVG) and its data as tables, and the library's
table; JavaScript adds the playhead that follows playback, click-to-seek and keyboard control of
the timeline, and sorting and filtering of the index.

The pages are Jinja2 templates in ``track_analyzer/templates/`` (``track.html.j2``,
``index.html.j2`` and their parts), whose styles and scripts (``*.css``, ``*.js``) are copied into
each page as it is rendered. This module computes what they show: :func:`track_context` and
:func:`index_context` build a template's context, :func:`track_page` and :func:`index_page` render it.

A track page takes what ``python -m track_analyzer FILE --json`` writes,
``{"model": ..., **TrackAnalysis.to_dict()}``; the index takes the records of a library analysis
(:func:`genrekit.inference.results.record_of`).
"""

from __future__ import annotations

import base64
import functools
import mimetypes
import os
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple
from urllib.parse import quote, unquote

import jinja2
import numpy as np
from markupsafe import Markup

from genrekit.core import atomic

TIMELINE_LABELS = 5  # labels drawn in the timeline (the track's best); a genre model's rest is "other"
# (a sixth label is drawn itself rather than as an "other" of one)
VERDICT_LABELS = 5  # labels listed with their share under the verdict
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9")  # Okabe-Ito, colour-blind safe
OTHER_COLOR = "#c8c8c8"
DASHES = ("", "8 3", "2 3", "10 3 2 3", "4 4", "1 2")  # a tagger's lines differ in dashes, not only in colour
VIEW_W, VIEW_H = 1000, 240  # SVG user units of the timeline's plot area
TRACKS_SUFFIX = "_tracks"  # the track pages of index.html go to index_tracks/

# --------------------------------------------------------------------------- text helpers and the templates


def _pct(share: float | None, digits: int = 1) -> str:
    """``0.713`` as ``71.3 %``; None as an empty string."""
    return "" if share is None else f"{100 * float(share):.{digits}f} %"


def _clock(seconds: float | None) -> str:
    """Seconds as ``m:ss`` (``h:mm:ss`` from an hour); None as an empty string."""
    if seconds is None:
        return ""
    hours, rest = divmod(int(round(float(seconds))), 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def _num(value: float, digits: int = 1) -> str:
    """A number with at most ``digits`` decimals and no trailing zeros."""
    text = f"{value:.{digits}f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def _href(source: Path, target: Path) -> str:
    """The URL of ``target`` relative to the folder of the page ``source``, URL-quoted."""
    relative = os.path.relpath(Path(target).resolve(), Path(source).resolve().parent)
    return quote(Path(relative).as_posix())


@jinja2.pass_environment
def _inline(env: jinja2.Environment, name: str) -> Markup:
    """The file ``name`` of the templates' folder as it is, for a page's ``<style>`` or ``<script>``."""
    return Markup(env.loader.get_source(env, name)[0])


@functools.cache
def _templates() -> jinja2.Environment:
    """The pages' templates (made once: each is compiled on its first use)."""
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("track_analyzer", "templates"),
        autoescape=True,  # every template is HTML (or SVG inside it)
        undefined=jinja2.StrictUndefined,  # a name missing from the context is an error, not an empty string
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters.update(pct=_pct, clock=_clock, num=_num)
    env.globals["inline"] = _inline
    # tojson: compact, and no NaN (not JSON); it also escapes <, >, & and ' so the data cannot end its <script>
    env.policies["json.dumps_kwargs"] = {"separators": (",", ":"), "allow_nan": False}
    return env


def _render(template: str, context: dict) -> str:
    return _templates().get_template(template).render(context)


# --------------------------------------------------------------------------- the track page


class TrackView(NamedTuple):
    """What a track page shows, read from the analyzer's JSON (see :func:`track_view`)."""

    name: str  # the file's name
    file: str  # its path as analyzed
    labels: list[str]  # model order
    starts: np.ndarray  # (n_slices,) seconds
    scores: np.ndarray  # (n_slices, n_labels)
    slice_duration: float
    axis: float  # seconds the timeline spans
    ranking: list[dict]  # label, share (and score), best first
    tagger: bool  # independent tag probabilities (lines), not exclusive labels (stacked bands)
    shown: list[str]  # the labels drawn in the timeline: the track's best


def track_view(result: dict) -> TrackView:
    """The track page's view of ``{"model", **TrackAnalysis.to_dict()}``.

    Parameters
    ----------
    result : dict
        ``path``, ``labels``, ``multi_label``, ``duration``, ``slice_duration``, ``ranking``
        (best first) and ``slices`` (``start``, ``scores`` in model order), as the analyzer writes them.

    Returns
    -------
    TrackView
    """
    labels = [str(name) for name in result["labels"]]
    slices = result["slices"]
    starts = np.array([float(s["start"]) for s in slices], dtype=np.float64)
    scores = np.array([s["scores"] for s in slices], dtype=np.float64).reshape(-1, len(labels))
    slice_duration = float(result["slice_duration"])
    axis = max(float(result["duration"]), float(starts[-1]) + slice_duration if len(starts) else 0.0, 1e-3)
    ranking = list(result["ranking"])
    file = str(result["path"])
    shown = ranking if len(ranking) <= TIMELINE_LABELS + 1 else ranking[:TIMELINE_LABELS]  # "other": 2 or more
    return TrackView(
        Path(file).name or file,
        file,
        labels,
        starts,
        scores,
        slice_duration,
        axis,
        ranking,
        bool(result["multi_label"]),
        [r["label"] for r in shown],
    )


def _ticks(axis: float) -> list[float]:
    """Time-axis ticks: at most about 10, at a round step."""
    for step in (1, 2, 5, 10, 15, 20, 30, 60, 120, 300, 600, 900, 1800, 3600):
        if axis / step <= 10:
            break
    return [float(v) for v in np.arange(0, axis + 1e-9, step)]


def _points(xs: np.ndarray, ys: np.ndarray) -> str:
    """SVG ``points``, rounded to whole units (a unit is about a pixel)."""
    return " ".join(f"{x:.0f},{y:.0f}" for x, y in zip(xs, ys))


def _curves(view: TrackView) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """The timeline's curves: x in SVG units, one row of values per layer, and the layers' names.

    Each slice is drawn at its centre, the first and the last held to the ends of their slices;
    a genre model's labels not shown are summed into a last layer, "other".
    """
    index = [view.labels.index(name) for name in view.shown]
    values = view.scores[:, index].T
    if len(view.starts):
        times = np.concatenate(
            [
                [view.starts[0]],
                view.starts + view.slice_duration / 2,
                [min(view.starts[-1] + view.slice_duration, view.axis)],
            ]
        )
        values = np.concatenate([values[:, :1], values, values[:, -1:]], axis=1)
    else:
        times = np.zeros(0)
    names = list(view.shown)
    if not view.tagger and len(names) < len(view.labels):
        values = np.vstack([values, np.clip(1 - values.sum(axis=0), 0, 1)])
        names.append("other")
    return times / view.axis * VIEW_W, values, names


class Layer(NamedTuple):
    """A label drawn in the timeline (and its legend): a band of a genre model, a line of a tagger."""

    name: str  # a label, or "other" (a genre model's labels not shown)
    color: str
    dash: str  # a tagger's line's stroke-dasharray; "" solid
    points: str  # SVG points: a line's, or a band's outline (its top, then the bottom corners)
    share: float | None  # the label's share of the track; None for "other"


def _timeline_layers(view: TrackView) -> list[Layer]:
    """The timeline's layers, bottom first: stacked bands for a genre model (the best label at the bottom,
    "other" on top), one line per tag for a tagger."""
    xs, values, names = _curves(view)

    def y(row: np.ndarray) -> np.ndarray:
        return VIEW_H * (1 - np.clip(row, 0, 1))

    if view.tagger:
        outlines = [_points(xs, y(row)) for row in values]
    else:  # each band from its top down to 0 (the template draws the highest first, each covered by the next)
        corners = f" {xs[-1]:.0f},{VIEW_H} {xs[0]:.0f},{VIEW_H}" if len(xs) else ""
        outlines = [_points(xs, y(top)) + corners for top in np.cumsum(values, axis=0)]
    share = {r["label"]: r["share"] for r in view.ranking}
    return [
        Layer(
            name,
            OTHER_COLOR if name == "other" else PALETTE[k % len(PALETTE)],
            DASHES[k % len(DASHES)] if view.tagger else "",
            outline,
            share.get(name),
        )
        for k, (name, outline) in enumerate(zip(names, outlines))
    ]


class Run(NamedTuple):
    """Consecutive slices with the same top label."""

    start: float  # seconds
    end: float
    label: str
    score: float  # the slices' mean top score
    slices: int


def _segments(view: TrackView) -> list[Run]:
    """The runs of consecutive slices with the same top label."""
    top = view.scores.argmax(axis=1)
    best = view.scores.max(axis=1)
    runs = []
    begin = 0
    for end in range(1, len(top) + 1):
        if end == len(top) or top[end] != top[begin]:
            until = view.starts[end] if end < len(top) else min(view.axis, view.starts[-1] + view.slice_duration)
            runs.append(
                Run(
                    float(view.starts[begin]),
                    float(until),
                    view.labels[top[begin]],
                    float(best[begin:end].mean()),
                    end - begin,
                )
            )
            begin = end
    return runs


class SliceRow(NamedTuple):
    """A slice in the table of every slice."""

    start: float  # seconds
    top: str  # its top label
    scores: list[float]  # of the labels shown in the timeline


def _timeline_data(view: TrackView) -> dict:
    """What the page's script needs to describe any moment of the track."""
    index = [view.labels.index(name) for name in view.shown]
    return {
        "w": VIEW_W,
        "axis": round(view.axis, 3),
        "sd": view.slice_duration,
        "labels": view.labels,
        "shown": view.shown,
        "starts": [round(float(v), 3) for v in view.starts],
        "scores": [[round(float(v), 3) for v in row] for row in view.scores[:, index].T],
        "top": [int(v) for v in view.scores.argmax(axis=1)],
        "topScore": [round(float(v), 3) for v in view.scores.max(axis=1)],
    }


def verdict_line(ranking: Sequence[dict], top_k: int) -> str:
    """``metal 71.3 %, rock 20.1 %``: the ``top_k`` best labels of a ranking and their shares."""
    return ", ".join(f"{r['label']} {_pct(r['share'])}" for r in ranking[: max(1, top_k)])


def _unplayable_reason(audio_src: str) -> str:
    """Why a page's audio may not load, for the notice its script shows when it does not."""
    where = "embedded in this page" if audio_src.startswith("data:") else f"looked for at {unquote(audio_src)}"
    return f"{where}: moved or deleted since this page was written, or in a format this browser cannot play"


def track_context(
    result: dict,
    *,
    audio_src: str | None,
    missing_reason: str = "",
    top_k: int = 3,
    index_href: str | None = None,
) -> dict:
    """What ``templates/track.html.j2`` shows of an analyzed track (the parameters: :func:`track_page`)."""
    view = track_view(result)
    verdict = verdict_line(view.ranking, top_k)
    duration = float(result["duration"])
    kind = (
        "tagger: independent tag probabilities, the shares need not add up to 100 %"
        if view.tagger
        else "genre classifier: the shares add up to 100 %"
    )
    index = [view.labels.index(name) for name in view.shown]
    return {
        "title": f"{view.name}: {verdict}",
        "view": view,
        "verdict": verdict,
        "index_href": index_href,
        "ranking": [
            {"label": r["label"], "share": r["share"], "bar": 100 * min(max(float(r["share"]), 0), 1)}
            for r in view.ranking[:VERDICT_LABELS]
        ],
        "more": len(view.ranking) - VERDICT_LABELS,
        "settings": [
            ("Model", result.get("model")),
            ("Aggregation", result.get("aggregation")),
            ("Kind", kind),
            ("Duration", f"{_clock(duration)} ({duration:.1f} s)"),
            ("Slices", f"{len(view.starts)} of {view.slice_duration:g} s, overlap {float(result['overlap']):g} s"),
            ("Padded", "yes (shorter than one slice)" if result.get("padded") else None),
            ("File", view.file),
        ],
        "audio_src": audio_src,
        "audio_missing": missing_reason if audio_src is None else _unplayable_reason(audio_src),
        "view_w": VIEW_W,
        "view_h": VIEW_H,
        "layers": _timeline_layers(view),
        "ticks": [v for v in _ticks(view.axis) if v <= view.axis],
        "runs": _segments(view),
        "slices": [
            SliceRow(float(start), view.labels[row.argmax()], [float(row[j]) for j in index])
            for start, row in zip(view.starts, view.scores)
        ],
        "timeline_data": _timeline_data(view),
    }


def track_page(
    result: dict,
    *,
    audio_src: str | None,
    missing_reason: str = "",
    top_k: int = 3,
    index_href: str | None = None,
) -> str:
    """One self-contained HTML page for an analyzed track.

    Parameters
    ----------
    result : dict
        ``{"model": ..., **TrackAnalysis.to_dict()}``, as ``--json`` writes it for a file.
    audio_src : str or None
        The ``src`` of the page's player: a URL relative to the page, or a ``data:`` URI
        (:func:`audio_source`); None: the page says that the audio cannot be found.
    missing_reason : str
        Why there is no audio, shown when ``audio_src`` is None.
    top_k : int
        Labels named in the verdict line.
    index_href : str, optional
        The URL of the library index, relative to the page.

    Returns
    -------
    str
        The page.
    """
    context = track_context(
        result, audio_src=audio_src, missing_reason=missing_reason, top_k=top_k, index_href=index_href
    )
    return _render("track.html.j2", context)


def audio_source(page: Path, audio: Path, *, embed: bool = False) -> tuple[str | None, str]:
    """The ``src`` of a page's player, or None and the reason why there is none.

    Parameters
    ----------
    page : Path
        Where the page goes.
    audio : Path
        The audio file.
    embed : bool
        Put the audio inside the page as a ``data:`` URI (base64: about 4/3 of the file's size)
        instead of referring to it by its path relative to the page's folder.

    Returns
    -------
    tuple of (str or None, str)
        The ``src`` and an empty string, or None and why the audio cannot be found.
    """
    if not Path(audio).is_file():
        return None, f"{audio} does not exist"
    if embed:
        mime = mimetypes.guess_type(str(audio))[0] or "application/octet-stream"
        return f"data:{mime};base64,{base64.b64encode(Path(audio).read_bytes()).decode('ascii')}", ""
    try:
        return _href(page, audio), ""
    except ValueError:  # Windows: another drive, no relative path
        return None, f"{audio} is on another drive than the page; write the page with --embed-audio"


def write_track_page(
    page: Path, result: dict, audio: Path, *, embed: bool = False, top_k: int = 3, index: Path | None = None
) -> Path:
    """Write the :func:`track_page` of ``result`` to ``page`` (atomically), its player on ``audio``.

    Parameters
    ----------
    page : Path
        The page to write (its folder is made).
    result : dict
        ``{"model": ..., **TrackAnalysis.to_dict()}``.
    audio : Path
        The analyzed file.
    embed : bool
        Embed the audio in the page (see :func:`audio_source`).
    top_k : int
        Labels named in the verdict line.
    index : Path, optional
        The library index the page links back to.

    Returns
    -------
    Path
        ``page``.
    """
    page = Path(page)
    page.parent.mkdir(parents=True, exist_ok=True)
    audio_src, reason = audio_source(page, audio, embed=embed)
    text = track_page(
        result,
        audio_src=audio_src,
        missing_reason=reason,
        top_k=top_k,
        index_href=_href(page, index) if index else None,
    )
    return atomic.write_text(page, text)


# --------------------------------------------------------------------------- the library index


def track_page_path(index: Path, name: str) -> Path:
    """Where the index ``index`` keeps the page of the file ``name`` (relative, POSIX):
    ``<index stem>_tracks/<name>.html`` beside the index."""
    index = Path(index)
    return index.parent / f"{index.stem}{TRACKS_SUFFIX}" / f"{name}.html"


def _top(record: dict) -> tuple[str | None, float | None]:
    """A record's top label and share; None and None for a file that was not analyzed."""
    ranking = record.get("ranking")
    return (ranking[0]["label"], float(ranking[0]["share"])) if ranking else (None, None)


def _file_row(record: dict) -> dict:
    """One file's row of the index: what it shows, and the keys it sorts by ("" for a file not analyzed)."""
    label, share = _top(record)
    duration = record.get("duration") if label is not None else None
    return {
        "path": record["path"],
        "truth": record.get("true_label"),
        "label": label,
        "share": share,
        "share_key": "" if share is None else _num(share, 6),
        "duration": duration,
        "duration_key": "" if duration is None else _num(duration, 3),
        "status": record["status"],
    }


def _evaluation(records: Sequence[dict], labels: Sequence[str], report: dict) -> dict:
    """The confusion matrix, each cell with its files, and each label's recall, for ``index.html.j2``."""
    matrix = np.asarray(report["confusion_matrix"], dtype=int).reshape(len(labels), len(labels))
    cells: dict[tuple[str, str], list[str]] = {}
    for record in records:
        label, _ = _top(record)
        if label is not None:
            cells.setdefault((record["true_label"], label), []).append(record["path"])
    rows = [
        {
            "label": true,
            "cells": [
                {
                    "predicted": predicted,
                    "count": int(matrix[i, j]),
                    "files": cells.get((true, predicted), []),
                    "diagonal": i == j,
                }
                for j, predicted in enumerate(labels)
            ],
        }
        for i, true in enumerate(labels)
    ]
    recall = [
        {
            "label": name,
            "recall": report["per_label"][name]["recall"],
            "correct": int(matrix[i, i]),
            "total": int(matrix[i].sum()),
        }
        for i, name in enumerate(labels)
    ]
    return {
        "labels": list(labels),
        "rows": rows,
        "recall": recall,
        "total": int(matrix.sum()),
        "correct": int(np.trace(matrix)),
    }


def index_context(
    records: Sequence[dict],
    *,
    title: str,
    settings: Sequence[tuple[str, object]] = (),
    pages: dict[str, str] | None = None,
    labels: Sequence[str] = (),
    report: dict | None = None,
) -> dict:
    """What ``templates/index.html.j2`` shows of a library (the parameters: :func:`index_page`)."""
    top_labels = {label for label, _ in map(_top, records) if label is not None}
    return {
        "title": title,
        "settings": list(settings),
        "pages": pages or {},
        "analyzed": sum(_top(record)[0] is not None for record in records),
        "files": [_file_row(record) for record in records],
        "truth": any("true_label" in record for record in records),
        "top_labels": sorted(top_labels, key=str.lower),
        "evaluation": _evaluation(records, labels, report) if report else None,
    }


def index_page(
    records: Sequence[dict],
    *,
    title: str,
    settings: Sequence[tuple[str, object]] = (),
    pages: dict[str, str] | None = None,
    labels: Sequence[str] = (),
    report: dict | None = None,
) -> str:
    """A library index: a row per file, sortable and filterable by label and by share (with JavaScript).

    Parameters
    ----------
    records : sequence of dict
        The files' records (:func:`genrekit.inference.results.record_of`): ``path``, ``status``,
        ``true_label`` with ``--evaluate``, and for an analyzed file ``duration`` and ``ranking``.
    title : str
        The page's title.
    settings : sequence of (str, object)
        Shown under the title (model, aggregation...).
    pages : dict, optional
        ``{path: URL of its track page, relative to the index}``; a file without one has no link.
    labels : sequence of str
        The model's labels, in the order of ``report``'s confusion matrix.
    report : dict, optional
        :func:`genrekit.training.evaluate.classification_report` of the records: the page then shows
        the accuracy, the confusion matrix with each cell's files, and each label's recall.

    Returns
    -------
    str
        The page.
    """
    context = index_context(records, title=title, settings=settings, pages=pages, labels=labels, report=report)
    return _render("index.html.j2", context)


def write_index_page(
    index: Path,
    records: Sequence[dict],
    *,
    title: str,
    settings: Sequence[tuple[str, object]] = (),
    labels: Sequence[str] = (),
    report: dict | None = None,
) -> Path:
    """Write the :func:`index_page` of ``records`` to ``index`` (atomically), linking each file to its
    track page (:func:`track_page_path`) where that page exists.

    Parameters
    ----------
    index : Path
        The page to write (its folder is made).
    records, title, settings, labels, report
        As for :func:`index_page`.

    Returns
    -------
    Path
        ``index``.
    """
    index = Path(index)
    index.parent.mkdir(parents=True, exist_ok=True)
    pages = {
        record["path"]: _href(index, page)
        for record in records
        if (page := track_page_path(index, record["path"])).is_file()
    }
    text = index_page(records, title=title, settings=settings, pages=pages, labels=labels, report=report)
    return atomic.write_text(index, text)
