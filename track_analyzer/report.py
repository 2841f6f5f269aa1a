"""The analyzer's HTML reports (``--html``): a page per track and an index of a library.

Every page is one self-contained file: styles, scripts and data are inline, nothing is fetched
from the network, and the pages work from ``file://`` URLs. Without JavaScript they still show
the verdict, the settings, the timeline (an inline SVG drawn here) and its data as tables, and the
library's table; JavaScript adds the playhead that follows playback, click-to-seek and keyboard
control of the timeline, and sorting and filtering of the index.

A track page takes what ``python -m track_analyzer FILE --json`` writes,
``{"model": ..., **TrackAnalysis.to_dict()}``; the index takes the records of a library analysis
(:func:`genrekit.inference.results.record_of`). Only the standard library and NumPy are used.
"""

from __future__ import annotations

import base64
import html
import json
import mimetypes
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import NamedTuple
from urllib.parse import quote, unquote

import numpy as np

from genrekit.core import atomic

TIMELINE_LABELS = 5  # labels drawn in the timeline (the track's best); a genre model's rest is "other"
# (a sixth label is drawn itself rather than as an "other" of one)
VERDICT_LABELS = 5  # labels listed with their share under the verdict
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9")  # Okabe-Ito, colour-blind safe
OTHER_COLOR = "#c8c8c8"
DASHES = ("", "8 3", "2 3", "10 3 2 3", "4 4", "1 2")  # a tagger's lines differ in dashes, not only in colour
DASH = "\u2014"  # an empty cell
VIEW_W, VIEW_H = 1000, 240  # SVG user units of the timeline's plot area
TRACKS_SUFFIX = "_tracks"  # the track pages of index.html go to index_tracks/

# --------------------------------------------------------------------------- text helpers


def _e(text: object) -> str:
    """``text`` escaped for HTML content and attribute values."""
    return html.escape(str(text), quote=True)


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


def _json_script(data: object) -> str:
    """JSON for a ``<script>`` element: no ``</script>`` or ``<!--`` inside can end or confuse it."""
    text = json.dumps(data, separators=(",", ":"), allow_nan=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _href(source: Path, target: Path) -> str:
    """The URL of ``target`` relative to the folder of the page ``source``, URL-quoted."""
    relative = os.path.relpath(Path(target).resolve(), Path(source).resolve().parent)
    return quote(Path(relative).as_posix())


def _settings_html(pairs: Sequence[tuple[str, object]]) -> str:
    """A definition list of the ``(name, value)`` pairs whose value is set."""
    items = "".join(f"<dt>{_e(name)}</dt><dd>{_e(value)}</dd>" for name, value in pairs if value not in (None, ""))
    return f'<dl class="settings">{items}</dl>'


def _document(title: str, css: str, body: str, script: str) -> str:
    """A whole HTML page: ``body`` inside ``<body>``, then the inline ``script``."""
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>{_e(title)}</title>
<style>{BASE_CSS}{css}</style>
</head>
<body>
{body}
<script>{script}</script>
</body>
</html>
"""


BASE_CSS = """
:root{color-scheme:light;--fg:#1a1a1a;--muted:#555;--line:#d0d0d0;--accent:#0b5cad;--bg2:#f4f5f7}
*{box-sizing:border-box}
[hidden]{display:none!important}
body{font:16px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif;color:var(--fg);
background:#fff;margin:0 auto;max-width:64rem;padding:1rem 1.25rem 3rem}
h1{font-size:1.5rem;margin:.2rem 0 .6rem;overflow-wrap:anywhere}
h2{font-size:1.15rem;margin:1.6rem 0 .5rem}
a{color:var(--accent)}
table{border-collapse:collapse;font-variant-numeric:tabular-nums}
th,td{padding:.3rem .6rem;border-bottom:1px solid var(--line);text-align:left;vertical-align:top}
thead th{background:var(--bg2)}
td.num,th.num{text-align:right}
caption{text-align:left;font-weight:600;padding:.3rem 0}
.muted{color:var(--muted)}
:focus-visible{outline:3px solid #f0a000;outline-offset:2px}
details>summary{cursor:pointer}
dl.settings{display:grid;grid-template-columns:max-content 1fr;gap:.1rem 1rem;margin:.6rem 0}
dl.settings dt{color:var(--muted)}dl.settings dd{margin:0;overflow-wrap:anywhere}
.sr-only{position:absolute;width:1px;height:1px;overflow:hidden;clip:rect(0 0 0 0);white-space:nowrap}
"""

# --------------------------------------------------------------------------- the track page

TRACK_CSS = """
.verdict{font-size:1.25rem;margin:.2rem 0 .8rem}
.ranking{list-style:none;padding:0;margin:0;max-width:34rem}
.ranking li{display:grid;grid-template-columns:9rem 1fr 4.5rem;gap:.6rem;align-items:center;margin:.15rem 0}
.ranking .bar{height:.8rem;background:var(--bg2);border-radius:2px;overflow:hidden}
.ranking .bar span{display:block;height:100%;background:var(--accent)}
.ranking .val{text-align:right;font-variant-numeric:tabular-nums}
audio{width:100%;margin:.4rem 0}
.missing{border-left:4px solid #c0392b;background:#fdf0ef;padding:.5rem .8rem;margin:.4rem 0}
.chart{display:grid;grid-template-columns:2.6rem 1fr;gap:0 .4rem;margin-top:.6rem}
.yaxis{position:relative;font-size:.75rem;color:var(--muted)}
.yaxis span{position:absolute;right:0;transform:translateY(-50%)}
.timeline{position:relative;height:15rem;border:1px solid var(--line);background:#fff;cursor:pointer;
touch-action:none}
.timeline svg{display:block;width:100%;height:100%}
.xaxis{grid-column:2;position:relative;height:1.4rem;font-size:.75rem;color:var(--muted)}
.xaxis span{position:absolute;top:.15rem;transform:translateX(-50%)}
.legend{list-style:none;padding:0;margin:.5rem 0 0;display:flex;flex-wrap:wrap;gap:.3rem 1.2rem}
.legend li{display:flex;align-items:center;gap:.35rem}
.legend svg{vertical-align:middle}
.sw{display:inline-block;width:1.6rem;height:.8rem;border:1px solid #0003}
#readout{min-height:1.5em;margin:.4rem 0;font-variant-numeric:tabular-nums}
table.slices td+td{text-align:right}
.help{font-size:.85rem;color:var(--muted)}
"""

TRACK_JS = r"""
(function(){
"use strict";
var data=JSON.parse(document.getElementById("timeline-data").textContent);
var box=document.getElementById("timeline"),head=document.getElementById("playhead");
var readout=document.getElementById("readout"),audio=document.getElementById("audio");
var W=data.w,axis=data.axis,n=data.starts.length,t=0,pending=null,raf=0;
var centres=data.starts.map(function(s){return s+data.sd/2;});
function clock(s){s=Math.max(0,Math.round(s));var m=Math.floor(s/60),r=s%60;
  if(m>=60){return Math.floor(m/60)+":"+String(m%60).padStart(2,"0")+":"+String(r).padStart(2,"0");}
  return m+":"+String(r).padStart(2,"0");}
function pct(v){return (100*v).toFixed(0)+" %";}
function sliceAt(x){var lo=0,hi=n-1;if(n===0)return -1;
  while(lo<hi){var mid=(lo+hi)>>1;if(centres[mid]<x)lo=mid+1;else hi=mid;}
  if(lo>0&&Math.abs(centres[lo-1]-x)<=Math.abs(centres[lo]-x))lo--;return lo;}
function describe(x){var i=sliceAt(x);if(i<0)return clock(x);
  var parts=data.shown.map(function(name,k){return name+" "+pct(data.scores[k][i]);});
  return clock(x)+" \u2014 slice "+clock(data.starts[i])+"\u2013"+clock(data.starts[i]+data.sd)+
    ": top "+data.labels[data.top[i]]+" "+pct(data.topScore[i])+" ("+parts.join(", ")+")";}
function usable(){return audio&&!audio.error;}
function limit(){return usable()&&isFinite(audio.duration)&&audio.duration>0?audio.duration:axis;}
function draw(x){t=Math.max(0,Math.min(x,axis));var px=(t/axis)*W;
  head.setAttribute("x1",px);head.setAttribute("x2",px);head.style.display="";
  box.setAttribute("aria-valuenow",t.toFixed(1));
  var text=describe(t);box.setAttribute("aria-valuetext",text);readout.textContent=text;}
function seek(x){x=Math.max(0,Math.min(x,limit()));
  if(usable()){if(audio.readyState>=1){audio.currentTime=x;}else{pending=x;}}
  draw(x);}
function loop(){if(!audio||audio.paused||audio.ended){raf=0;return;}
  draw(audio.currentTime);raf=requestAnimationFrame(loop);}
function missing(){document.getElementById("audio-missing").hidden=false;audio.hidden=true;}
box.setAttribute("tabindex","0");box.setAttribute("role","slider");
box.setAttribute("aria-valuemin","0");box.setAttribute("aria-valuemax",axis.toFixed(1));
box.addEventListener("click",function(ev){var r=box.getBoundingClientRect();
  if(r.width>0){seek((ev.clientX-r.left)/r.width*axis);}box.focus();});
box.addEventListener("keydown",function(ev){var x=null;
  switch(ev.key){case "ArrowLeft":case "ArrowDown":x=t-5;break;case "ArrowRight":case "ArrowUp":x=t+5;break;
  case "PageDown":x=t-30;break;case "PageUp":x=t+30;break;case "Home":x=0;break;case "End":x=limit();break;
  case " ":case "k":if(usable()){if(audio.paused){audio.play();}else{audio.pause();}ev.preventDefault();}return;
  default:return;}
  ev.preventDefault();seek(x);});
if(audio){
  if(audio.error){missing();}
  audio.addEventListener("error",missing);
  audio.addEventListener("loadedmetadata",function(){if(pending!==null){audio.currentTime=pending;pending=null;}});
  audio.addEventListener("timeupdate",function(){if(!raf)draw(audio.currentTime);});
  audio.addEventListener("seeked",function(){draw(audio.currentTime);});
  audio.addEventListener("play",function(){if(!raf)raf=requestAnimationFrame(loop);});
}
document.getElementById("timeline-help").hidden=false;
draw(0);
window.trackPage={seek:seek,time:function(){return t;}};
})();
"""


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


def _layers(view: TrackView) -> tuple[np.ndarray, np.ndarray, list[str]]:
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


def _layer_color(k: int, name: str) -> str:
    return OTHER_COLOR if name == "other" else PALETTE[k % len(PALETTE)]


def _dash_attribute(k: int) -> str:
    dash = DASHES[k % len(DASHES)]
    return f' stroke-dasharray="{dash}"' if dash else ""


def _timeline_svg(view: TrackView) -> str:
    """The timeline's plot area: stacked bands for a genre model (the best label at the bottom, "other"
    on top), one line per tag for a tagger; and the playhead, hidden until JavaScript places it."""
    xs, values, names = _layers(view)

    def y(row: np.ndarray) -> np.ndarray:
        return VIEW_H * (1 - np.clip(row, 0, 1))

    kind = "tag probabilities" if view.tagger else "label probabilities"
    out = [
        f'<svg viewBox="0 0 {VIEW_W} {VIEW_H}" preserveAspectRatio="none" role="img" '
        f'aria-labelledby="timeline-title" focusable="false">',
        f'<title id="timeline-title">Timeline of {kind} over the track: {_e(", ".join(names))}</title>',
        '<g stroke="#e3e3e3" stroke-width="1">',
    ]
    out += [
        f'<line x1="0" x2="{VIEW_W}" y1="{_num(VIEW_H * f)}" y2="{_num(VIEW_H * f)}" '
        f'vector-effect="non-scaling-stroke"/>'
        for f in (0.25, 0.5, 0.75)
    ]
    out.append("</g>")
    if view.tagger:
        out += [
            f'<polyline points="{_points(xs, y(values[k]))}" fill="none" stroke="{_layer_color(k, name)}" '
            f'stroke-width="2.5"{_dash_attribute(k)} vector-effect="non-scaling-stroke">'
            f"<title>{_e(name)}</title></polyline>"
            for k, name in enumerate(names)
        ]
    else:  # each band from its top down to 0, the highest first: a lower band covers the rest of the one above
        tops = np.cumsum(values, axis=0)
        corners = f" {xs[-1]:.0f},{VIEW_H} {xs[0]:.0f},{VIEW_H}" if len(xs) else ""
        out += [
            f'<polygon points="{_points(xs, y(tops[k]))}{corners}" fill="{_layer_color(k, names[k])}" '
            f'stroke="#fff" stroke-width="0.5" vector-effect="non-scaling-stroke"><title>{_e(names[k])}</title>'
            f"</polygon>"
            for k in reversed(range(len(names)))
        ]
    out.append(
        f'<line id="playhead" x1="0" x2="0" y1="0" y2="{VIEW_H}" stroke="#111" stroke-width="2" '
        f'vector-effect="non-scaling-stroke" style="display:none"/></svg>'
    )
    return "".join(out)


def _legend_html(view: TrackView) -> str:
    """The legend: each layer's colour (and a tagger's dash pattern) with its name and share as text."""
    share = {r["label"]: r["share"] for r in view.ranking}
    items = []
    for k, name in enumerate(_layers(view)[2]):
        color = _layer_color(k, name)
        if name == "other":
            items.append(
                f'<li><span class="sw" style="background:{color}"></span>'
                f"other ({len(view.labels) - len(view.shown)} labels)</li>"
            )  # always 2 or more
            continue
        swatch = (
            f'<svg width="28" height="10" aria-hidden="true"><line x1="0" x2="28" y1="5" y2="5" '
            f'stroke="{color}" stroke-width="3"{_dash_attribute(k)}/></svg>'
            if view.tagger
            else f'<span class="sw" style="background:{color}"></span>'
        )
        items.append(f"<li>{swatch}{_e(name)} {_pct(share.get(name))}</li>")
    return f'<ul class="legend" aria-label="Legend">{"".join(items)}</ul>'


def _segments(view: TrackView) -> list[tuple[float, float, str, float, int]]:
    """Runs of consecutive slices with the same top label: (from, to, label, mean top score, slices)."""
    top = view.scores.argmax(axis=1)
    best = view.scores.max(axis=1)
    runs = []
    begin = 0
    for end in range(1, len(top) + 1):
        if end == len(top) or top[end] != top[begin]:
            until = view.starts[end] if end < len(top) else min(view.axis, view.starts[-1] + view.slice_duration)
            runs.append(
                (
                    float(view.starts[begin]),
                    float(until),
                    view.labels[top[begin]],
                    float(best[begin:end].mean()),
                    end - begin,
                )
            )
            begin = end
    return runs


def _timeline_tables_html(view: TrackView) -> str:
    """The timeline as text, in two folded tables: where the top label changes, and every slice."""
    runs = "".join(
        f'<tr><td class="num">{_clock(a)}</td><td class="num">{_clock(b)}</td><td>{_e(label)}</td>'
        f'<td class="num">{_pct(score, 0)}</td><td class="num">{count}</td></tr>'
        for a, b, label, score, count in _segments(view)
    )
    index = [view.labels.index(name) for name in view.shown]
    head = "".join(f'<th scope="col" class="num">{_e(name)}</th>' for name in view.shown)
    rows = "".join(
        f'<tr><th scope="row" class="num">{_clock(start)}</th><td>{_e(view.labels[row.argmax()])}</td>'
        + "".join(f"<td>{100 * row[j]:.0f}</td>" for j in index)
        + "</tr>"
        for start, row in zip(view.starts, view.scores)
    )
    return f"""<details>
<summary>Timeline as text: where the top label changes</summary>
<table>
<caption>Top label of consecutive slices</caption>
<thead><tr><th scope="col" class="num">From</th><th scope="col" class="num">To</th><th scope="col">Top label</th>
<th scope="col" class="num">Mean score</th><th scope="col" class="num">Slices</th></tr></thead>
<tbody>{runs}</tbody>
</table>
</details>
<details>
<summary>Every slice ({len(view.starts)}): top label and scores in %</summary>
<table class="slices">
<caption>Scores of each slice (%)</caption>
<thead><tr><th scope="col" class="num">Start</th><th scope="col">Top label</th>{head}</tr></thead>
<tbody>{rows}</tbody>
</table>
</details>"""


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


def _timeline_html(view: TrackView) -> str:
    """The timeline section: axes, plot, legend, the readout of the playhead's moment, the text tables."""
    yaxis = "".join(
        f'<span style="top:{_num(100 * (1 - v))}%">{_num(100 * v, 0)} %</span>' for v in (0, 0.25, 0.5, 0.75, 1)
    )
    xaxis = "".join(
        f'<span style="left:{_num(100 * v / view.axis, 2)}%">{_clock(v)}</span>'
        for v in _ticks(view.axis)
        if v <= view.axis
    )
    what = "tags" if view.tagger else "labels"
    shown = (
        f"the {len(view.shown)} best of {len(view.labels)} {what}"
        if len(view.shown) < len(view.labels)
        else f"all {len(view.labels)} {what}"
    )
    kind = "Tag probabilities" if view.tagger else "Label probabilities"
    return f"""<section aria-labelledby="timeline-h">
<h2 id="timeline-h">Timeline</h2>
<p class="muted">{kind} of each {view.slice_duration:g} s slice, drawn at its centre: {_e(shown)}{
        "" if view.tagger else ", stacked"
    }.</p>
<div class="chart">
<div class="yaxis" aria-hidden="true">{yaxis}</div>
<div class="timeline" id="timeline" aria-label="Timeline of {_e(view.name)}">{_timeline_svg(view)}</div>
<div class="xaxis" aria-hidden="true">{xaxis}</div>
</div>
{_legend_html(view)}
<p id="readout" class="muted"></p>
<p class="help" id="timeline-help" hidden>Click the timeline to jump there; when it has focus, the left and
right arrow keys move 5 s, Page Up/Down 30 s, Home and End go to the start and the end, Space plays or pauses.</p>
{_timeline_tables_html(view)}
<script type="application/json" id="timeline-data">{_json_script(_timeline_data(view))}</script>
</section>"""


def _verdict_html(view: TrackView, result: dict, top_k: int) -> str:
    """The verdict: the ``top_k`` best labels and shares as a line, bars for the best few, the settings."""
    items = "".join(
        f'<li><span>{_e(r["label"])}</span><span class="bar" aria-hidden="true"><span style="width:'
        f'{_num(100 * min(max(float(r["share"]), 0), 1))}%"></span></span>'
        f'<span class="val">{_pct(r["share"])}</span></li>'
        for r in view.ranking[:VERDICT_LABELS]
    )
    more = len(view.ranking) - VERDICT_LABELS
    kind = (
        "tagger: independent tag probabilities, the shares need not add up to 100 %"
        if view.tagger
        else "genre classifier: the shares add up to 100 %"
    )
    duration = float(result["duration"])
    settings = [
        ("Model", result.get("model")),
        ("Aggregation", result.get("aggregation")),
        ("Kind", kind),
        ("Duration", f"{_clock(duration)} ({duration:.1f} s)"),
        ("Slices", f"{len(view.starts)} of {view.slice_duration:g} s, overlap {float(result['overlap']):g} s"),
        ("Padded", "yes (shorter than one slice)" if result.get("padded") else None),
        ("File", view.file),
    ]
    return f"""<section aria-labelledby="verdict-h">
<h2 id="verdict-h">Verdict</h2>
<p class="verdict" id="verdict">{_e(verdict_line(view.ranking, top_k))}</p>
<ol class="ranking" aria-label="Best {"tags" if view.tagger else "labels"} and their shares">{items}</ol>
{f'<p class="muted">and {more} more.</p>' if more > 0 else ""}
{_settings_html(settings)}
</section>"""


def verdict_line(ranking: Sequence[dict], top_k: int) -> str:
    """``metal 71.3 %, rock 20.1 %``: the ``top_k`` best labels of a ranking and their shares."""
    return ", ".join(f"{r['label']} {_pct(r['share'])}" for r in ranking[: max(1, top_k)])


def _audio_html(view: TrackView, audio_src: str | None, missing_reason: str) -> str:
    """The player; or, when there is no audio, a notice saying so (also shown by the page's script
    when the browser cannot load the audio, e.g. a file moved since the page was written)."""
    notice = (
        '<p class="missing" id="audio-missing" role="alert"{hidden}><strong>Audio not available:</strong> '
        "the audio file cannot be found ({reason}). The timeline can still be explored with the mouse "
        "or the arrow keys.</p>"
    )
    if audio_src is None:
        return notice.format(hidden="", reason=_e(missing_reason))
    where = "embedded in this page" if audio_src.startswith("data:") else f"looked for at {unquote(audio_src)}"
    reason = f"{where}: moved or deleted since this page was written, or in a format this browser cannot play"
    return (
        f'<audio id="audio" controls preload="metadata" src="{_e(audio_src)}" aria-label="Play {_e(view.name)}">'
        f"Your browser cannot play this audio.</audio>\n" + notice.format(hidden=" hidden", reason=_e(reason))
    )


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
    view = track_view(result)
    up = f'<p><a href="{_e(index_href)}" rel="up">Library index</a></p>\n' if index_href else ""
    body = f"""<header>
{up}<h1>{_e(view.name)}</h1>
</header>
<main>
{_verdict_html(view, result, top_k)}
<section aria-labelledby="listen-h">
<h2 id="listen-h">Listen</h2>
{_audio_html(view, audio_src, missing_reason)}
</section>
{_timeline_html(view)}
</main>"""
    return _document(f"{view.name}: {verdict_line(view.ranking, top_k)}", TRACK_CSS, body, TRACK_JS)


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

INDEX_CSS = """
form.filters{display:flex;flex-wrap:wrap;gap:.6rem 1.5rem;align-items:end;margin:.6rem 0}
form.filters label{display:flex;flex-direction:column;font-size:.9rem;gap:.15rem}
form.filters select,form.filters input{font:inherit;padding:.2rem .3rem;min-width:9rem}
th button{font:inherit;font-weight:600;background:none;border:0;padding:0;cursor:pointer;color:inherit}
.js th button::after{content:" \\2195";color:#999}
th[aria-sort=ascending] button::after{content:" \\2191";color:inherit}
th[aria-sort=descending] button::after{content:" \\2193";color:inherit}
#library td.file{overflow-wrap:anywhere;max-width:28rem}
tr.unreadable td{color:#8a1f11}
table.confusion td,table.confusion th{text-align:center;border:1px solid var(--line)}
table.confusion th[scope=row]{text-align:left}
table.confusion td.diag{background:#e8f3ea}
table.confusion td ul{list-style:none;margin:.2rem 0 0;padding:0;text-align:left;font-size:.85rem}
table.confusion td.zero{color:#aaa}
.scroll{overflow-x:auto;margin-bottom:1rem}
.side{display:flex;flex-wrap:wrap;gap:0 2.5rem;align-items:flex-start}
"""

INDEX_JS = r"""
(function(){
"use strict";
document.documentElement.classList.add("js");
var table=document.getElementById("library"),body=table.tBodies[0];
var rows=Array.prototype.slice.call(body.rows);
var form=document.getElementById("filters"),labelSel=document.getElementById("label-filter");
var minShare=document.getElementById("min-share"),count=document.getElementById("count");
form.hidden=false;
form.addEventListener("submit",function(ev){ev.preventDefault();});
function key(row,k){var cell=row.querySelector('[data-col="'+k+'"]');return cell?cell.getAttribute("data-sort"):"";}
function sortBy(th){var k=th.getAttribute("data-key"),numeric=th.hasAttribute("data-numeric");
  var cur=th.getAttribute("aria-sort");
  var dir=cur==="none"||!cur?(numeric?"descending":"ascending"):(cur==="ascending"?"descending":"ascending");
  Array.prototype.forEach.call(table.tHead.rows[0].cells,function(c){if(c.hasAttribute("data-key"))c.setAttribute("aria-sort","none");});
  th.setAttribute("aria-sort",dir);var sign=dir==="ascending"?1:-1;
  var sorted=rows.slice().sort(function(a,b){var x=key(a,k),y=key(b,k);
    if(x===""&&y!=="")return 1;if(y===""&&x!=="")return -1;  /* unreadable files last */
    var c=numeric?(parseFloat(x)-parseFloat(y)):x.localeCompare(y,undefined,{numeric:true,sensitivity:"base"});
    if(c===0)c=rows.indexOf(a)-rows.indexOf(b);else c*=sign;return c;});
  sorted.forEach(function(r){body.appendChild(r);});}
Array.prototype.forEach.call(table.querySelectorAll("th[data-key] button"),function(b){
  b.addEventListener("click",function(){sortBy(b.parentNode);});});
function filter(){var label=labelSel.value,min=parseFloat(minShare.value);if(!isFinite(min))min=0;
  var shown=0;rows.forEach(function(r){var ok=true;
    if(label&&r.getAttribute("data-label")!==label)ok=false;
    var s=r.getAttribute("data-share");
    if(min>0&&(s===""||100*parseFloat(s)<min-1e-9))ok=false;
    r.hidden=!ok;if(ok)shown++;});
  count.textContent="Showing "+shown+" of "+rows.length+" files.";}
labelSel.addEventListener("change",filter);minShare.addEventListener("input",filter);
minShare.addEventListener("change",filter);
filter();
})();
"""


def track_page_path(index: Path, name: str) -> Path:
    """Where the index ``index`` keeps the page of the file ``name`` (relative, POSIX):
    ``<index stem>_tracks/<name>.html`` beside the index."""
    index = Path(index)
    return index.parent / f"{index.stem}{TRACKS_SUFFIX}" / f"{name}.html"


def _top(record: dict) -> tuple[str | None, float | None]:
    """A record's top label and share; None and None for a file that was not analyzed."""
    ranking = record.get("ranking")
    return (ranking[0]["label"], float(ranking[0]["share"])) if ranking else (None, None)


def _class(*names: str) -> str:
    """A ``class`` attribute of the names given (empty ones left out), or nothing."""
    names = " ".join(name for name in names if name)
    return f' class="{names}"' if names else ""


def _sort_cell(column: str, sort_key: str, text: str, numeric: bool = False, klass: str = "") -> str:
    """A table cell that the index's script sorts by ``sort_key`` (empty: last, whatever the order)."""
    return f'<td{_class(klass, "num" if numeric else "")} data-col="{column}" data-sort="{_e(sort_key)}">{text}</td>'


def _index_row(record: dict, link: Callable[[str], str], truth: bool) -> str:
    """One file's row: its link, (true label,) top label, share, duration and status."""
    label, share = _top(record)
    duration = record.get("duration") if label is not None else None
    share_key = "" if share is None else _num(share, 6)
    cells = [_sort_cell("file", record["path"], link(record["path"]), klass="file")]
    if truth:
        cells.append(_sort_cell("truth", record.get("true_label", ""), _e(record.get("true_label", DASH))))
    cells += [
        _sort_cell("label", label or "", _e(label or DASH)),
        _sort_cell("share", share_key, _pct(share) or DASH, numeric=True),
        _sort_cell("duration", "" if duration is None else _num(duration, 3), _clock(duration) or DASH, numeric=True),
        f"<td>{_e(record['status'])}</td>",
    ]
    return (
        f'<tr class="{"ok" if label is not None else "unreadable"}" data-label="{_e(label or "")}" '
        f'data-share="{share_key}">{"".join(cells)}</tr>'
    )


def _sort_header(key: str, text: str, numeric: bool = False) -> str:
    """A column header whose button sorts the table (numbers start with the largest)."""
    return (
        f'<th scope="col" data-key="{key}"{" data-numeric" if numeric else ""} aria-sort="none"'
        f'{_class("num" if numeric else "")}><button type="button">{_e(text)}</button></th>'
    )


def _files_html(records: Sequence[dict], link: Callable[[str], str]) -> str:
    """The files table with its filter form (shown by the page's script)."""
    truth = any("true_label" in record for record in records)
    labels = sorted({label for label, _ in map(_top, records) if label is not None}, key=str.lower)
    options = "".join(f'<option value="{_e(name)}">{_e(name)}</option>' for name in labels)
    heads = [
        _sort_header("file", "File"),
        *([_sort_header("truth", "True label")] if truth else []),
        _sort_header("label", "Top label"),
        _sort_header("share", "Share", True),
        _sort_header("duration", "Duration", True),
        '<th scope="col">Status</th>',
    ]
    return f"""<section aria-labelledby="files-h">
<h2 id="files-h">Files</h2>
<form class="filters" id="filters" hidden aria-label="Filter the files">
<label>Top label<select id="label-filter"><option value="">All labels</option>{options}</select></label>
<label>Minimum share (%)<input id="min-share" type="number" min="0" max="100" step="1" value="0"
 inputmode="decimal"></label>
<p id="count" aria-live="polite"></p>
</form>
<div class="scroll">
<table id="library">
<caption class="sr-only">Analyzed files; the column headers sort the table</caption>
<thead><tr>{"".join(heads)}</tr></thead>
<tbody>{"".join(_index_row(record, link, truth) for record in records)}</tbody>
</table>
</div>
</section>"""


def _evaluation_html(records: Sequence[dict], labels: Sequence[str], report: dict, link: Callable[[str], str]) -> str:
    """Track accuracy, the confusion matrix (each cell lists its files) and the recall of each label."""
    matrix = np.asarray(report["confusion_matrix"], dtype=int).reshape(len(labels), len(labels))
    cells: dict[tuple[str, str], list[str]] = {}
    for record in records:
        label, _ = _top(record)
        if label is not None:
            cells.setdefault((record["true_label"], label), []).append(record["path"])
    rows = []
    for i, true in enumerate(labels):
        tds = []
        for j, predicted in enumerate(labels):
            count = int(matrix[i, j])
            said = _e(f"{count} {'file' if count == 1 else 'files'} of {true} predicted as {predicted}")
            files = cells.get((true, predicted))
            content = (
                f'<details><summary aria-label="{said}">{count}</summary><ul>'
                f"{''.join(f'<li>{link(name)}</li>' for name in files)}</ul></details>"
                if files
                else f'<span aria-label="{said}">{count}</span>'
            )
            tds.append(f"<td{_class('diag' if i == j else '', 'zero' if count == 0 else '')}>{content}</td>")
        rows.append(f'<tr><th scope="row">{_e(true)}</th>{"".join(tds)}</tr>')
    recall = "".join(
        f'<tr><th scope="row">{_e(name)}</th><td class="num">'
        f"{_pct(report['per_label'][name]['recall']) if matrix[i].sum() else DASH}</td>"
        f'<td class="num">{int(matrix[i, i])} of {int(matrix[i].sum())}</td></tr>'
        for i, name in enumerate(labels)
    )
    total, correct = int(matrix.sum()), int(np.trace(matrix))
    accuracy = f"{100 * correct / total:.1f} % ({correct} of {total} files)" if total else "no files"
    head = "".join(f'<th scope="col">{_e(name)}</th>' for name in labels)
    return f"""<section aria-labelledby="eval-h">
<h2 id="eval-h">Accuracy, confusion matrix and recall</h2>
<p>Track accuracy: <strong id="accuracy">{accuracy}</strong>. Open a count in the matrix to list its files.</p>
<div class="side">
<div class="scroll">
<table class="confusion" id="confusion">
<caption>Confusion matrix (rows: true label, columns: predicted)</caption>
<thead><tr><td></td>{head}</tr></thead>
<tbody>{"".join(rows)}</tbody>
</table>
</div>
<table id="recall">
<caption>Recall per label</caption>
<thead><tr><th scope="col">Label</th><th scope="col" class="num">Recall</th>
<th scope="col" class="num">Correct</th></tr></thead>
<tbody>{recall}</tbody>
</table>
</div>
</section>"""


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
    pages = pages or {}

    def link(name: str) -> str:
        return f'<a href="{_e(pages[name])}">{_e(name)}</a>' if name in pages else _e(name)

    analyzed = sum(_top(record)[0] is not None for record in records)
    body = f"""<header><h1>{_e(title)}</h1>
<p class="muted">{analyzed} of {len(records)} files analyzed.</p>
{_settings_html(settings)}</header>
<main>
{_evaluation_html(records, labels, report, link) if report else ""}
{_files_html(records, link)}
</main>"""
    return _document(title, INDEX_CSS, body, INDEX_JS)


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
