"""The beets plugin ``genrekit``: each item's genre from its audio, with genrekit's genre model.

Enable it in beets' ``config.yaml`` (every key optional; the defaults shown)::

    plugins: genrekit
    genrekit:
      model: gtzan-genres   # the ready genre model, or a run folder of train_crnn.py / train_baselines.py
      min_share: 0.6        # set the genre only where the top label's share is at least this
      mode: fill            # fill: only items without a genre; replace: replace it; add: add it beside
      auto: no              # analyze on import

``beet genrekit [-f] [QUERY]`` analyzes the matching items and stores, for each, the flexible
attributes ``genrekit_genre`` (the top label, named as players spell it: ``Hip-Hop``),
``genrekit_share`` (its share, 0 to 1) and ``genrekit_model``, and sets the genre (beets'
``genres`` field) as ``mode`` says where the share reaches ``min_share``. It writes the files'
tags where beets' ``import.write`` says so (as ``beet modify`` does); items analyzed before are
left alone unless ``-f``. With ``auto: yes`` the importer analyzes what it imports, and writes the
tags itself when it writes the others. The analysis is genrekit's own (:mod:`genrekit.inference`):
the CLI's slices, model and aggregation, decoding in worker processes ahead of the model.
"""

from __future__ import annotations

import os

from beets import ui
from beets.dbcore import types
from beets.plugins import BeetsPlugin

from genrekit.inference.tagging import DEFAULT_MIN_SHARE, MODES, planned_genres, tag_name
from genrekit.models.registry import DEFAULT_MODEL, PRETRAINED, READY


class GenrekitPlugin(BeetsPlugin):
    item_types = {  # noqa: RUF012 (beets reads the class attribute)
        "genrekit_genre": types.STRING,
        "genrekit_share": types.Float(3),
        "genrekit_model": types.STRING,
    }

    def __init__(self):
        super().__init__()
        self.config.add({"model": DEFAULT_MODEL, "min_share": DEFAULT_MIN_SHARE, "mode": "fill", "auto": False})
        self._analyzer = None
        if self.config["auto"].get(bool):
            self.import_stages = [self.imported]

    # ------------------------------------------------------------------ settings and model

    @property
    def model_name(self) -> str:
        """``model`` from the config: a ready model's name as it is, a folder relative to the config's."""
        name = self.config["model"].as_str()
        return name if name in READY or name in PRETRAINED else self.config["model"].as_filename()

    def settings(self) -> tuple[str, float]:
        """``mode`` and ``min_share``, checked."""
        mode = self.config["mode"].as_choice(MODES)
        min_share = float(self.config["min_share"].as_number())
        if not 0 <= min_share <= 1:
            raise ui.UserError(f"genrekit.min_share: must be between 0 and 1, got {min_share:g}")
        return mode, min_share

    def analyzer(self):
        """The model, loaded once (a tagger is refused: it names no single genre)."""
        if self._analyzer is None:
            from genrekit.core.errors import GenrekitError
            from genrekit.inference.analyzer import Analyzer

            os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # quiet native logs, as python -m track_analyzer
            try:
                analyzer = Analyzer(self.model_name, warm_up_features=False)
            except GenrekitError as exc:
                raise ui.UserError(f"genrekit.model: {exc}") from exc
            if analyzer.bundle.multi_label:
                raise ui.UserError(
                    f"genrekit.model: {self.model_name} is a tagger (independent tag probabilities, no top "
                    f"label's share): use the ready genre model or a run folder"
                )
            self._analyzer = analyzer
        return self._analyzer

    # ------------------------------------------------------------------ beets hooks

    def commands(self) -> list[ui.Subcommand]:
        command = ui.Subcommand("genrekit", help="set the genre from the audio, with genrekit's genre model")
        command.parser.add_option(
            "-f", "--force", action="store_true", default=False, help="analyze items analyzed before again"
        )
        command.func = self.command
        return [command]

    def command(self, lib, opts, args) -> None:
        items = list(lib.items(args))
        todo = [item for item in items if opts.force or not item.get("genrekit_genre")]
        if len(todo) < len(items):
            ui.print_(f"genrekit: {len(items) - len(todo)} of {len(items)} items analyzed before (-f: again)")
        self.label(todo, write=ui.should_write(), verbose=True)

    def imported(self, session, task) -> None:
        # the importer stores and writes the items afterwards, as it does their other fields
        self.label(task.imported_items(), write=False, verbose=False)

    # ------------------------------------------------------------------ the work

    def label(self, items, write: bool, verbose: bool) -> None:
        """Analyze ``items``, store what genrekit says on each, set its genre where the share is high enough."""
        if not items:
            return
        from genrekit.inference.analyzer import choose_aggregation, default_overlap
        from genrekit.inference.folder import analyze_files

        mode, min_share = self.settings()
        analyzer = self.analyzer()
        by_path = {item.filepath: item for item in items}
        outcomes = analyze_files(
            analyzer,
            list(by_path),
            overlap=default_overlap(analyzer.bundle),
            aggregation=choose_aggregation(analyzer.bundle),
            workers=None if len(by_path) > 1 else 0,
        )
        for outcome in outcomes:
            item = by_path[outcome.path]
            if outcome.result is None:
                self._log.warning("{}: not analyzed: {}", outcome.path, outcome.status)
                continue
            top = outcome.result.ranking[0]
            genre = tag_name(top.label)
            item["genrekit_genre"] = genre
            item["genrekit_share"] = top.share
            item["genrekit_model"] = self.config["model"].as_str()
            genres = planned_genres(list(item.genres), genre, mode) if top.share >= min_share else None
            if genres is not None:
                item.genres = genres
            note = "" if top.share >= min_share else f" (below min_share {min_share:g}: genre left as it is)"
            message = f"{item}: {genre} {100 * top.share:.1f} %{note}"
            if verbose:
                ui.print_(message)
            else:
                self._log.info("{}", message)
            item.try_sync(write=write, move=False)
