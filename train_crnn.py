#!/usr/bin/env python3
"""Train the CRNN on <output_folder>/processed.h5 and write <output_folder>/models/<run_name>/.

The run folder holds model.keras, bundle.json (what the analyzer needs besides the
model), history.csv, curves.png, report.json (test accuracy per slice and per track),
confusion.png and predictions.npz. Interrupt training any way you like and run the
same command again: it continues from the last finished epoch. A finished run is
left alone unless --restart is given.
"""

from __future__ import annotations

import os
import sys

from genrekit.core import cli


def main(argv=None) -> int:
    parser = cli.make_parser(__doc__)
    parser.add_argument("--run-name", metavar="NAME", help="run folder name (overrides training.run_name)")
    parser.add_argument("--epochs", type=int, metavar="N", help="maximum epochs (overrides training.epochs)")
    parser.add_argument(
        "--restart",
        action="store_true",
        help="discard an unfinished or finished run of that name and train from scratch",
    )
    args = parser.parse_args(argv)
    if args.epochs is not None and args.epochs < 1:
        parser.error("--epochs must be >= 1")
    cfg = cli.config_from_args(args)

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # keep TensorFlow's start-up chatter off stderr
    from genrekit.training.train import train  # imports Keras: slow, so only after the arguments are fine

    train(cfg, run_name=args.run_name, epochs=args.epochs, restart=args.restart)
    return 0


if __name__ == "__main__":
    sys.exit(cli.run(main))
