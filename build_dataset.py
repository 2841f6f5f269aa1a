#!/usr/bin/env python3
"""Build <output_folder>/dataset.h5 from <audio_folder>/<label>/<track> audio files.

Every track is decoded once, cut into overlapping slices, and each slice becomes a
log-mel spectrogram; the result is split track-wise into train/val/test. The build
is resumable: interrupt it any way you like and run the same command again.
"""

from __future__ import annotations

import sys

from genrekit.core import cli
from genrekit.core.config import require_audio_folder
from genrekit.core.errors import ConfigError
from genrekit.dataset.build import REPORT_FILE, build_dataset, summary_line


def main(argv=None) -> int:
    parser = cli.make_parser(__doc__)
    parser.add_argument(
        "--restart",
        action="store_true",
        help="rebuild although the settings changed since the last (or interrupted) build; "
        "finished tracks whose features are unaffected are reused",
    )
    parser.add_argument(
        "--workers", type=int, metavar="N", help="worker processes (overrides build.workers; default: all cores)"
    )
    parser.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        help="run the tracks on the Dask cluster of this scheduler, e.g. tcp://10.0.0.5:8786 "
        '(sets build.executor "dask" and build.dask_scheduler; the workers must see the '
        "audio and output folders at the same paths: see docs/SCALING.md)",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    args = parser.parse_args(argv)
    if args.workers is not None and args.workers < 1:
        parser.error("--workers must be >= 1")
    cfg = cli.config_from_args(args)
    if args.workers is not None or args.scheduler is not None:
        import dataclasses

        from genrekit.core.config import config_from_dict, to_jsonable

        build = dataclasses.replace(cfg.build, workers=args.workers or cfg.build.workers)
        if args.scheduler is not None:
            build = dataclasses.replace(build, executor="dask", dask_scheduler=args.scheduler)
            try:  # the same checks as the config key
                config_from_dict({"build": to_jsonable(build)})
            except ConfigError as exc:
                raise ConfigError(f"--scheduler: {exc}") from None
        cfg = dataclasses.replace(cfg, build=build)
    require_audio_folder(cfg)
    outcome = build_dataset(cfg, restart=args.restart, show_progress=not args.quiet)
    if outcome.report is not None:
        print(summary_line(outcome.report), file=sys.stderr)
        print(f"report: {cfg.paths.output_folder / REPORT_FILE}", file=sys.stderr)
    print(outcome.dataset)
    return 0


if __name__ == "__main__":
    sys.exit(cli.run(main))
