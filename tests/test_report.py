"""track_analyzer/report.py: the ``--html`` pages, written by the real command line with the model trained
in the test session (``trained_run`` in conftest.py), read as text and used in headless Chromium from
``file://`` URLs (tests/browser.py).

The browser tests skip, saying why, where Chromium, chromedriver or selenium is missing; with the
environment variable CI=true (as .ci/run sets it) they fail instead: CI must not skip them.
"""

from __future__ import annotations

import ast
import csv
import json
import os
import re
import shutil
from html.parser import HTMLParser
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pytest

from genrekit.audio.features import TrackSlices
from genrekit.inference.analyzer import TrackAnalysis
from tests.browser import browser_missing, distinct_colours, javascript_errors, open_browser, open_page, wait_for
from tests.conftest import TINY_LABELS
from tests.helpers import analyze_cli, analyzer_cli, label_signal, one_error_line, write_audio
from track_analyzer import report

KINDS = {name: kind for kind, name in enumerate(TINY_LABELS)}  # make_corpus's label_signal kind per label
SONG_SECONDS = 20.0
LIBRARY = {
    "bass/low 1.wav": ("bass", 4.0),
    "treble/high & bright.mp3": ("treble", 3.0),
    "hiss/noise.flac": ("hiss", 5.0),
    "hiss/more/n2.wav": ("hiss", 2.0),
}
BROKEN = "hiss/broken.wav"
ADDED = "added/late.wav"  # added to the library before its analysis is run again
AUDIO = "document.getElementById('audio')"
TEMPLATES = Path(report.__file__).parent / "templates"  # the pages' templates, styles and scripts
# labels and a file name that would be markup, or end the page's JSON or script, were they not escaped
MARKUP_LABELS = ("<b>bold</b>", 'say "hi" & </script><!--', "it's <i>")
MARKUP_NAME = '<img src=x onerror="alert(1)"> & it\'s.mp3'


def signal(label: str, seconds: float, seed: int) -> np.ndarray:
    return label_signal(KINDS[label], seconds, seed=seed)


def make_library(root: Path) -> Path:
    """:data:`LIBRARY` as audio files under ``root``, and an unreadable file."""
    for seed, (name, (label, seconds)) in enumerate(LIBRARY.items()):
        write_audio(root / name, signal(label, seconds, seed=300 + seed))
    (root / BROKEN).write_bytes(b"RIFF" + b"\0" * 40)
    return root


def track_pages(index: Path) -> dict[str, Path]:
    """The track pages beside an index, by the relative path of their audio file."""
    folder = index.parent / f"{index.stem}_tracks"
    return {page.relative_to(folder).as_posix()[: -len(".html")]: page for page in sorted(folder.rglob("*.html"))}


class TrackRun(NamedTuple):
    stdout: str
    page: Path
    data: dict  # what --json wrote


class LibraryRun(NamedTuple):
    index: Path
    results: Path  # the --csv results file
    first: dict[str, int]  # the pages of the first run and their mtime_ns after it
    again: str  # stderr of the run that resumed the analysis


class EvaluateRun(NamedTuple):
    stdout: str
    index: Path
    data: dict  # what --json wrote


@pytest.fixture(scope="module")
def track(trained_run, tmp_path_factory) -> TrackRun:
    """A 20 s mp3 (bass, then treble) in a folder of its own, its page written to another folder."""
    root = tmp_path_factory.mktemp("track")
    song = write_audio(
        root / "my music" / "song #1.mp3",
        np.concatenate([signal("bass", SONG_SECONDS / 2, 1), signal("treble", SONG_SECONDS / 2, 2)]),
    )
    page = root / "pages" / "song.html"
    proc = analyze_cli(trained_run, song, "--html", page, "--json", root / "song.json")
    assert proc.returncode == 0, proc.stderr
    return TrackRun(proc.stdout, page, json.loads((root / "song.json").read_text()))


@pytest.fixture(scope="module")
def library(trained_run, tmp_path_factory) -> LibraryRun:
    """A library analyzed with --csv and --html, then a file added and the same command run again
    with --embed-audio: it resumes, analyzing the new file only."""
    root = tmp_path_factory.mktemp("library")
    music = make_library(root / "music")
    index = root / "site" / "library.html"
    command = (music, "--csv", root / "library.csv", "--html", index)
    proc = analyze_cli(trained_run, *command)
    assert proc.returncode == 0, proc.stderr
    first = {name: page.stat().st_mtime_ns for name, page in track_pages(index).items()}
    write_audio(music / ADDED, signal("treble", 3.0, seed=9))
    again = analyze_cli(trained_run, *command, "--embed-audio")
    assert again.returncode == 0, again.stderr
    return LibraryRun(index, root / "library.csv", first, again.stderr)


@pytest.fixture(scope="module")
def evaluation(trained_run, tmp_path_factory) -> EvaluateRun:
    root = tmp_path_factory.mktemp("evaluate")
    labelled = make_library(root / "labelled")
    index = root / "site" / "evaluation.html"
    proc = analyze_cli(trained_run, "--evaluate", labelled, "--html", index, "--json", root / "eval.json")
    assert proc.returncode == 0, proc.stderr
    return EvaluateRun(proc.stdout, index, json.loads((root / "eval.json").read_text()))


@pytest.fixture(scope="module")
def browser():
    """One headless Chromium for the module's tests."""
    reason = browser_missing()
    if reason and os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{reason}; CI must not skip the browser tests (.ci/run installs chromium and chromium-driver)")
    if reason:
        pytest.skip(reason)
    with open_browser() as driver:
        yield driver


def analysis(seconds: float, labels: tuple[str, ...], overlap: float = 2.0, multi_label: bool = False) -> dict:
    """What ``--json`` writes for a track of ``seconds`` analyzed with 3 s slices: the real TrackAnalysis,
    its scores drawn at random (a genre model's softmax, or a tagger's independent probabilities)."""
    rng = np.random.default_rng(0)
    starts = np.arange(0.0, seconds - 3.0 + 1e-9, 3.0 - overlap)
    scores = (
        rng.random((len(starts), len(labels))) if multi_label else rng.dirichlet(np.full(len(labels), 0.3), len(starts))
    )
    result = TrackAnalysis.from_scores(
        Path("music/song.mp3"),
        labels,
        TrackSlices(None, starts, seconds, False),
        scores.astype(np.float32),
        "mean" if multi_label else "sum",
        3.0,
        overlap,
        multi_label,
    )
    return json.loads(json.dumps({"model": "output/models/crnn", **result.to_dict()}))


# --------------------------------------------------------------------------- the pages as files


def test_pages_are_self_contained(track, library, evaluation):
    pages = [
        track.page,
        library.index,
        *track_pages(library.index).values(),
        evaluation.index,
        *track_pages(evaluation.index).values(),
    ]
    assert len(pages) == 1 + 1 + (len(LIBRARY) + 1) + 1 + len(LIBRARY)
    for page in pages:
        text = page.read_text(encoding="utf-8")
        assert text.startswith("<!DOCTYPE html>") and "<style>" in text and "<script>" in text
        # no URL with a scheme but data:, no protocol-relative URL, no external script, style or image
        assert not re.search(r"""(src|href)=["'](?!data:)[a-z][a-z0-9+.-]*:|(src|href)=["']//""", text), page
        assert not re.search(r"<link|<script[^>]* src=|<img", text), page
        assert "http://" not in text and "https://" not in text, page
        assert not list(page.parent.glob("*.tmp-*"))  # written atomically, nothing left over


def test_track_page_text(track):
    text = track.page.read_text(encoding="utf-8")
    assert track.stdout.strip().replace("  ", ", ") in text  # the verdict line
    assert str(track.data["model"]) in text and f"{len(track.data['slices'])} of 1 s" in text
    assert 'src="../my%20music/song%20%231.mp3"' in text  # relative to the page's folder, URL-quoted
    assert text.count("<polygon") == len(TINY_LABELS)  # three labels stacked, no "other"
    assert text.count('<th scope="row" class="num">') == len(track.data["slices"])  # every slice as text


def test_a_page_whose_audio_is_missing_says_so(track, tmp_path):
    page = report.write_track_page(tmp_path / "song.html", track.data, tmp_path / "gone.mp3")
    text = page.read_text(encoding="utf-8")
    assert "<audio" not in text
    assert "Audio not available" in text and f"{tmp_path / 'gone.mp3'} does not exist" in text


def test_embedded_audio(track, tmp_path):
    audio = Path(track.data["path"])
    page = report.write_track_page(tmp_path / "song.html", track.data, audio, embed=True)
    size, audio_size = page.stat().st_size, audio.stat().st_size
    assert re.search(r'<audio [^>]*src="data:audio/[\w.-]+;base64,', page.read_text(encoding="utf-8"))
    assert 4 / 3 * audio_size < size < 4 / 3 * audio_size + track.page.stat().st_size + 100  # as --help says


def test_page_size_of_a_four_minute_track():
    """The page of a 4-minute track, 10 labels, 3 s slices a second apart (the defaults): under 100 KB,
    as docs/GUIDE.md says."""
    labels = tuple(f"genre{k}" for k in range(10))
    size = len(report.track_page(analysis(240.0, labels), audio_src="song.mp3").encode())
    assert 60_000 < size < 100_000, size


def test_tagger_page_draws_its_best_tags_as_lines():
    tags = tuple(f"tag{k}" for k in range(50))
    data = analysis(30.0, tags, overlap=0.0, multi_label=True)
    text = report.track_page(data, audio_src=None, missing_reason="none given")
    svg = text[text.index("<svg") : text.index("</svg>")]
    assert svg.count("<polyline") == report.TIMELINE_LABELS and "<polygon" not in svg
    assert len(set(re.findall(r'stroke-dasharray="([^"]+)"', svg))) == report.TIMELINE_LABELS - 1  # and a solid one
    assert "independent tag probabilities" in text and "the 5 best of 50 tags" in text


def test_resumed_library_analysis_keeps_the_earlier_pages(library):
    assert f"{len(LIBRARY) + 1} of {len(LIBRARY) + 2} files are in the results already" in library.again
    pages = track_pages(library.index)
    assert sorted(pages) == sorted([*LIBRARY, ADDED])  # one per analyzed file, none for the broken one
    assert {name: pages[name].stat().st_mtime_ns for name in library.first} == library.first
    assert re.search(r'<audio [^>]*src="data:audio/[\w.-]+;base64,', pages[ADDED].read_text(encoding="utf-8"))
    text = pages["treble/high & bright.mp3"].read_text(encoding="utf-8")
    assert 'src="../../../music/treble/high%20%26%20bright.mp3"' in text
    assert 'href="../../library.html" rel="up"' in text
    index = library.index.read_text(encoding="utf-8")
    assert index.count("<tr class=") == len(LIBRARY) + 2 and 'href="library_tracks/added/late.wav.html"' in index
    assert "skipped: cannot decode audio" in index


def test_evaluation_index_lists_the_files_of_each_cell(evaluation):
    text = evaluation.index.read_text(encoding="utf-8")
    matrix = evaluation.data["report"]["confusion_matrix"]
    labels = evaluation.data["labels"]
    body = text[text.index('id="confusion"') : text.index('id="recall"')]
    cells = re.findall(r"<td[^>]*>(.*?)</td>", body.split("<tbody>")[1])
    assert len(cells) == len(labels) ** 2
    for cell, count in zip(cells, np.ravel(matrix)):
        assert re.search(r">(\d+)<", cell).group(1) == str(count) and cell.count("<li>") == count
    for record in evaluation.data["tracks"]:
        if "ranking" in record:
            i, j = labels.index(record["true_label"]), labels.index(record["ranking"][0]["label"])
            assert record["path"].replace("&", "&amp;") in cells[i * len(labels) + j]
    accuracy = re.search(r"track accuracy (\d+\.\d) %", evaluation.stdout).group(1)
    assert re.search(rf'id="accuracy">{accuracy} %', text)


def test_pages_carry_the_package_styles_and_scripts(track, library):
    """The styles and scripts are the files in track_analyzer/templates/, copied into each page as they are
    (and none holds what would end its element early)."""
    pages = {
        track.page: ("report.css", "track.css", "track.js"),
        library.index: ("report.css", "index.css", "index.js"),
    }
    for page, names in pages.items():
        text = page.read_text(encoding="utf-8")
        for name in names:
            asset = (TEMPLATES / name).read_text(encoding="utf-8")
            assert asset in text, (page, name)
            assert not re.search(r"</(style|script)|<!--", asset, re.IGNORECASE), name
    assert (TEMPLATES / "track.js").read_text(encoding="utf-8") not in library.index.read_text(encoding="utf-8")


def test_report_module_holds_no_markup():
    """The pages' HTML, styles and scripts live in the templates: no string in report.py but its docstrings
    holds a tag."""
    tree = ast.parse(Path(report.__file__).read_text(encoding="utf-8"))
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Module | ast.FunctionDef | ast.ClassDef)
        and node.body
        and isinstance(node.body[0], ast.Expr)
    }
    strings = [
        node.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings
    ]
    assert strings  # the walk sees the module's strings
    assert [text for text in strings if re.search(r"<[a-z/!]", text, re.IGNORECASE)] == []


class PageParts(HTMLParser):
    """The tags of a page, the text of its h1, and its elements' attributes, as a browser's parser reads them."""

    def __init__(self, text: str):
        super().__init__(convert_charrefs=True)
        self.tags: list[str] = []
        self.attributes: list[dict[str, str | None]] = []
        self.h1 = ""
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self.attributes.append(dict(attrs))

    def handle_data(self, data):
        if self.tags and self.tags[-1] == "h1" and not self.h1:
            self.h1 = data


def markup_track_page() -> str:
    data = analysis(12.0, MARKUP_LABELS)
    data["path"] = f"music/{MARKUP_NAME}"
    return report.track_page(data, audio_src=None, missing_reason=f"{MARKUP_NAME} is gone")


def test_labels_and_file_names_are_text_not_markup():
    """Labels and names are escaped, in the HTML and in the script's JSON: read back as written, never as tags."""
    text = markup_track_page()
    page = PageParts(text)
    assert not {"b", "i", "img"} & set(page.tags)
    assert page.h1 == MARKUP_NAME
    data = re.search(r'<script type="application/json" id="timeline-data">(.*?)</script>', text, re.DOTALL)
    assert json.loads(data.group(1))["labels"] == list(MARKUP_LABELS)
    records = [
        {"path": f"a/{MARKUP_NAME}", "status": "ok", "duration": 3.0, "ranking": [{"label": label, "share": 0.6}]}
        for label in MARKUP_LABELS
    ]
    index = PageParts(report.index_page(records, title=MARKUP_NAME, pages={records[0]["path"]: "a b&c.html"}))
    assert not {"b", "i", "img"} & set(index.tags) and index.h1 == MARKUP_NAME
    assert [a["data-label"] for a in index.attributes if "data-label" in a] == list(MARKUP_LABELS)
    options = [a["value"] for a in index.attributes if "value" in a and "id" not in a]  # the label filter's
    assert options == ["", *sorted(MARKUP_LABELS)]
    assert {"href": "a b&c.html"} in index.attributes


def test_html_options_help_and_errors(trained_run, track):
    help_text = analyzer_cli("--help").stdout
    assert "--html PATH" in help_text and "--embed-audio" in help_text and "4/3" in help_text
    line = one_error_line(analyze_cli(trained_run, track.data["path"], "--embed-audio"))
    assert "--html" in line


# --------------------------------------------------------------------------- in Chromium


@pytest.mark.slow
def test_track_page_in_the_browser(browser, track, tmp_path):
    from selenium.webdriver.common.by import By

    open_page(browser, track.page)
    duration = wait_for(browser, f"{AUDIO}.readyState >= 1 && {AUDIO}.duration", what="the audio's metadata")
    assert abs(duration - SONG_SECONDS) < 0.2
    assert browser.find_element(By.ID, "verdict").text == track.stdout.strip().replace("  ", ", ")
    timeline = browser.find_element(By.ID, "timeline")
    assert timeline.get_attribute("role") == "slider" and timeline.get_attribute("tabindex") == "0"
    bands = browser.execute_script(
        "return Array.from(arguments[0].querySelectorAll('polygon'))"
        ".map(function(p){var b=p.getBBox();return [b.width,b.height];})",
        timeline,
    )
    assert len(bands) == len(TINY_LABELS) and all(w > 900 and h > 0 for w, h in bands)
    assert distinct_colours(timeline.screenshot_as_png) > len(TINY_LABELS)
    assert distinct_colours(browser.get_screenshot_as_png()) > 20  # not blank
    assert javascript_errors(browser) == []


@pytest.mark.slow
def test_clicking_or_keys_on_the_timeline_seek_the_audio(browser, track):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    open_page(browser, track.page)
    wait_for(browser, f"{AUDIO}.readyState >= 1", what="the audio's metadata")
    timeline = browser.find_element(By.ID, "timeline")
    ActionChains(browser).move_to_element(timeline).click().perform()  # the middle of the timeline
    middle = wait_for(browser, f"{AUDIO}.currentTime > 0 && {AUDIO}.currentTime", what="the seek")
    assert abs(middle - SONG_SECONDS / 2) < 0.5
    playhead = float(browser.find_element(By.ID, "playhead").get_attribute("x1"))
    assert abs(playhead - report.VIEW_W / 2) < report.VIEW_W * 0.03
    assert browser.find_element(By.ID, "readout").text.startswith("0:10")
    assert browser.switch_to.active_element == timeline  # the keys go to it now
    timeline.send_keys(Keys.ARROW_RIGHT)
    wait_for(browser, f"Math.abs({AUDIO}.currentTime - {middle + 5}) < 0.05", what="ArrowRight: 5 s on")
    timeline.send_keys(Keys.HOME)
    wait_for(browser, f"{AUDIO}.currentTime === 0", what="Home: the start")
    assert timeline.get_attribute("aria-valuetext").startswith("0:00")


@pytest.mark.slow
def test_playhead_follows_playback(browser, track):
    from selenium.webdriver.common.by import By

    open_page(browser, track.page)
    wait_for(browser, f"{AUDIO}.readyState >= 1", what="the audio's metadata")
    browser.execute_script(f"{AUDIO}.currentTime = 4; return {AUDIO}.play()")
    wait_for(browser, f"{AUDIO}.currentTime > 4.5", what="playback")
    browser.execute_script(f"{AUDIO}.pause()")
    now = wait_for(browser, f"{AUDIO}.paused && {AUDIO}.currentTime", what="the pause")
    axis = float(browser.find_element(By.ID, "timeline").get_attribute("aria-valuemax"))
    playhead = float(browser.find_element(By.ID, "playhead").get_attribute("x1"))
    assert abs(playhead / report.VIEW_W * axis - now) < 0.3


@pytest.mark.slow
def test_page_says_when_the_audio_cannot_be_found(browser, track, tmp_path):
    from selenium.webdriver.common.by import By

    moved = Path(shutil.copy(track.page, tmp_path / "song.html"))  # its relative audio path leads nowhere now
    open_page(browser, moved)
    notice = browser.find_element(By.ID, "audio-missing")
    wait_for(browser, "!document.getElementById('audio-missing').hidden", what="the notice")
    assert "Audio not available" in notice.text and "cannot be found" in notice.text
    assert not browser.find_element(By.ID, "audio").is_displayed()
    browser.find_element(By.ID, "timeline").click()  # without audio the timeline still reads out
    assert browser.find_element(By.ID, "readout").text.startswith("0:10")


def visible_files(driver) -> list[str]:
    return driver.execute_script(
        "return Array.from(document.querySelectorAll('#library tbody tr'))"
        ".filter(function(r){return !r.hidden}).map(function(r){return r.cells[0].textContent})"
    )


@pytest.mark.slow
def test_library_index_sorts_filters_and_opens_the_track_pages(browser, library):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    with open(library.results, newline="") as handle:
        rows = {row["path"]: row for row in csv.DictReader(handle)}
    share_of = {name: float(row["top_share"]) for name, row in rows.items() if row["top_share"]}
    open_page(browser, library.index)
    assert visible_files(browser) == sorted(rows)  # path order
    share = browser.find_element(By.CSS_SELECTOR, 'th[data-key="share"] button')
    share.click()
    by_share = sorted(share_of, key=lambda name: -share_of[name])
    assert visible_files(browser) == [*by_share, BROKEN]  # the unreadable file last
    share.click()
    assert visible_files(browser) == [*by_share[::-1], BROKEN]
    top = rows[by_share[0]]["top_label"]
    Select(browser.find_element(By.ID, "label-filter")).select_by_value(top)
    assert sorted(visible_files(browser)) == sorted(name for name, row in rows.items() if row["top_label"] == top)
    Select(browser.find_element(By.ID, "label-filter")).select_by_value("")
    minimum = browser.find_element(By.ID, "min-share")
    minimum.clear()
    minimum.send_keys(f"{50 * (share_of[by_share[1]] + share_of[by_share[2]]):.4f}")  # between the 2nd and the 3rd
    assert sorted(visible_files(browser)) == sorted(by_share[:2])
    assert browser.find_element(By.ID, "count").text == f"Showing 2 of {len(rows)} files."
    minimum.clear()
    assert len(visible_files(browser)) == len(rows)
    assert distinct_colours(browser.get_screenshot_as_png()) > 20
    assert javascript_errors(browser) == []

    browser.find_element(By.LINK_TEXT, ADDED).click()  # its page, audio embedded
    wait_for(browser, f"{AUDIO} && {AUDIO}.readyState >= 1", what="the embedded audio")
    browser.find_element(By.LINK_TEXT, "Library index").click()
    browser.find_element(By.LINK_TEXT, "treble/high & bright.mp3").click()  # audio by its relative path
    wait_for(browser, f"{AUDIO} && {AUDIO}.readyState >= 1", what="the audio's metadata")
    assert javascript_errors(browser) == []


@pytest.mark.slow
def test_evaluation_index_in_the_browser(browser, evaluation):
    from selenium.webdriver.common.by import By

    open_page(browser, evaluation.index)
    cell = browser.find_element(By.CSS_SELECTOR, "#confusion details")
    cell.find_element(By.TAG_NAME, "summary").click()
    link = cell.find_element(By.TAG_NAME, "a")
    name = link.text
    link.click()
    wait_for(browser, f"{AUDIO} && {AUDIO}.readyState >= 1", what=f"the page of {name}")
    assert browser.find_element(By.TAG_NAME, "h1").text == Path(name).name


@pytest.mark.slow
def test_markup_in_labels_stays_text_in_the_browser(browser, tmp_path):
    from selenium.webdriver.common.by import By

    page = tmp_path / "page.html"
    page.write_text(markup_track_page(), encoding="utf-8")
    open_page(browser, page)
    assert browser.find_element(By.TAG_NAME, "h1").text == MARKUP_NAME
    assert browser.execute_script("return document.querySelectorAll('b, i, img').length") == 0
    browser.find_element(By.ID, "timeline").click()  # the script read the labels from the page's JSON
    readout = browser.find_element(By.ID, "readout").text
    assert all(label in readout for label in MARKUP_LABELS), readout
    assert javascript_errors(browser) == []


@pytest.mark.slow
def test_verdict_and_tables_without_javascript(browser, track, library):
    from selenium.webdriver.common.by import By

    browser.execute_cdp_cmd("Emulation.setScriptExecutionDisabled", {"value": True})
    try:
        open_page(browser, track.page)
        assert browser.find_element(By.ID, "verdict").text == track.stdout.strip().replace("  ", ", ")
        assert browser.find_element(By.ID, "timeline").is_displayed()
        assert not browser.find_element(By.ID, "timeline-help").is_displayed()  # it describes what scripts do
        open_page(browser, library.index)
        rows = browser.find_elements(By.CSS_SELECTOR, "#library tbody tr")
        assert len(rows) == len(LIBRARY) + 2 and all(row.is_displayed() for row in rows)
        assert not browser.find_element(By.ID, "filters").is_displayed()
    finally:
        browser.execute_cdp_cmd("Emulation.setScriptExecutionDisabled", {"value": False})
