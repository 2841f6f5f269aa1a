"""The beets plugin ``genrekit`` (beetsplug/genrekit.py) in the real beets, run as ``beet`` would be:
a temporary library, ``beet import -A``, ``beet genrekit``, ``beet ls -f`` (issue 35)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import mutagen
import pytest

from genrekit.inference.analyzer import analyze
from genrekit.inference.tagging import GTZAN_TAG_NAMES, tag_name
from tests.helpers import label_signal, script_env, write_audio

# beets 2.x keeps an item's genres in the multi-valued field `genres` ($genres in a format; `genre:` queries
# still work); `genre`, a single string before, is deprecated there.
FORMAT = "$path|$genres|$genrekit_genre|$genrekit_share|$genrekit_model"


def beet(beetsdir: Path, *args: str) -> subprocess.CompletedProcess:
    """``beet ARGS`` with the configuration of ``beetsdir`` (BEETSDIR), this checkout's plugin on the path."""
    return subprocess.run(
        [sys.executable, "-m", "beets", *args],
        cwd=beetsdir,
        env={**script_env(), "BEETSDIR": str(beetsdir)},
        capture_output=True,
        text=True,
        timeout=300,
    )


def library(root: Path, write: bool, genrekit: str = "min_share: 0") -> Path:
    """A beets configuration (library and database under ``root``) with the plugin, and three songs
    to import: ``music/bass.mp3`` (no genre), ``music/hiss.flac`` (genre Jazz), ``music/pulse.m4a``."""
    root.mkdir(parents=True, exist_ok=True)
    genrekit_config = "\n".join(f"  {line}" for line in genrekit.splitlines())
    (root / "config.yaml").write_text(
        f"directory: {root / 'library'}\n"
        f"library: {root / 'library.db'}\n"
        "plugins: genrekit\n"
        f"import:\n  copy: no\n  write: {'yes' if write else 'no'}\n"
        f"genrekit:\n{genrekit_config}\n"
    )
    for kind, name, genre in ((0, "bass.mp3", None), (2, "hiss.flac", "Jazz"), (3, "pulse.m4a", None)):
        tags = {"title": name, "artist": "genrekit", **({"genre": genre} if genre else {})}
        write_audio(root / "music" / name, label_signal(kind, 4.0, seed=kind), tags=tags)
    return root


def listing(beetsdir: Path) -> dict[str, list[str]]:
    """``{file name: [genres, genrekit_genre, genrekit_share, genrekit_model]}`` from ``beet ls -f``."""
    proc = beet(beetsdir, "ls", "-f", FORMAT)
    assert proc.returncode == 0, proc.stderr
    return {Path(line.split("|")[0]).name: line.split("|")[1:] for line in proc.stdout.splitlines()}


@pytest.fixture(scope="module")
def verdicts(tmp_path_factory) -> dict[str, tuple[str, float]]:
    """What the ready genre model says of each song, from the package itself."""
    root = library(tmp_path_factory.mktemp("reference"), write=False)
    return {
        path.name: (tag_name(result.top_label), result.ranking[0].share)
        for path in sorted((root / "music").iterdir())
        for result in [analyze(path)]
    }


def test_beet_genrekit_sets_the_genre_and_its_attributes_and_writes_the_files(tmp_path, verdicts):
    root = library(tmp_path, write=True)
    imported = beet(root, "import", "-A", "-q", str(root / "music"))
    assert imported.returncode == 0, imported.stderr
    before = listing(root)
    assert before["hiss.flac"][:2] == ["Jazz", "$genrekit_genre"]  # beets prints an unset field's name
    assert before["bass.mp3"][0] == ""

    proc = beet(root, "genrekit")
    assert proc.returncode == 0, proc.stderr
    assert len(proc.stdout.splitlines()) == 3
    after = listing(root)
    for name, (genre, share) in verdicts.items():
        assert genre in GTZAN_TAG_NAMES.values()
        assert after[name][1:] == [genre, f"{share:.3f}", "gtzan-genres"]
        # fill (the default): a song without a genre gets the verdict, hiss.flac keeps Jazz
        assert after[name][0] == ("Jazz" if name == "hiss.flac" else genre)
        # import.write: yes, so the file's own tags hold it too
        assert mutagen.File(root / "music" / name).tags is not None
    assert str(mutagen.File(root / "music" / "bass.mp3").tags["TCON"]) == verdicts["bass.mp3"][0]
    queried = beet(root, "ls", "-f", "$title", f"genre:{verdicts['pulse.m4a'][0]}")
    assert "pulse.m4a" in queried.stdout.splitlines()

    again = beet(root, "genrekit")
    assert again.returncode == 0 and again.stdout.strip() == "genrekit: 3 of 3 items analyzed before (-f: again)"
    (root / "replace.yaml").write_text("genrekit:\n  mode: replace\n")
    forced = beet(root, "-c", str(root / "replace.yaml"), "genrekit", "-f", "hiss")
    assert forced.returncode == 0, forced.stderr
    assert len(forced.stdout.splitlines()) == 1  # the query: hiss.flac only
    assert listing(root)["hiss.flac"][0] == verdicts["hiss.flac"][0]  # replace: Jazz replaced


def test_write_no_keeps_the_files_and_a_high_min_share_keeps_the_genre(tmp_path, verdicts):
    root = library(tmp_path, write=False, genrekit="min_share: 1")
    assert beet(root, "import", "-A", "-q", str(root / "music")).returncode == 0
    files = {path: path.read_bytes() for path in (root / "music").iterdir()}
    proc = beet(root, "genrekit")
    assert proc.returncode == 0, proc.stderr
    assert all(path.read_bytes() == content for path, content in files.items())  # import.write: no
    after = listing(root)
    assert after["bass.mp3"][:2] == ["", verdicts["bass.mp3"][0]]  # analyzed, genre left: share < 1
    assert "below min_share 1" in proc.stdout


def test_auto_analyzes_on_import(tmp_path, verdicts):
    root = library(tmp_path, write=False, genrekit="auto: yes\nmin_share: 0")
    imported = beet(root, "import", "-A", "-q", str(root / "music"))
    assert imported.returncode == 0, imported.stderr
    after = listing(root)
    assert {name: values[1] for name, values in after.items()} == {name: v[0] for name, v in verdicts.items()}
    assert after["bass.mp3"][0] == verdicts["bass.mp3"][0]


def test_bad_settings_are_refused(tmp_path):
    for k, (setting, message) in enumerate(
        (
            ("mode: overwrite", "genrekit.mode"),
            ("min_share: 2", "genrekit.min_share: must be between 0 and 1"),
            ("model: musicnn-msd", "genrekit.model: musicnn-msd is a tagger"),
            (f"model: {tmp_path / 'nowhere'}", "genrekit.model:"),
        )
    ):
        root = library(tmp_path / str(k), write=False, genrekit=setting)
        assert beet(root, "import", "-A", "-q", str(root / "music")).returncode == 0
        proc = beet(root, "genrekit")
        assert proc.returncode != 0 and message in proc.stderr, (setting, proc.stderr)
