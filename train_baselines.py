#!/usr/bin/env python3
"""Fit the classical baselines on <output_folder>/dataset.h5: logistic regression, k nearest
neighbours, Gaussian naive Bayes and an RBF support vector machine (scikit-learn).

Each slice's stored log-mel spectrogram becomes one feature vector (per-band mean and
standard deviation, MFCC statistics, spectral centroid, bandwidth, flatness and loudness:
see genrekit/models/baselines.py); the vectors are standardized on the train split, the
hyper-parameters chosen on the validation split, and the test split is scored per slice and
per track like train_crnn.py does. Writes <output_folder>/models/baseline-<family>/ per model
(model.npz, bundle.json, report.json, confusion.png, predictions.npz: a run folder that
python -m track_analyzer takes) and <output_folder>/models/baselines.json. Needs no
processed.h5. A finished model is left alone unless --restart is given.
"""

from __future__ import annotations

import sys

from genrekit.core import cli

FAMILIES = ("logreg", "knn", "gnb", "svm")  # genrekit.models.baselines.FAMILIES (not imported before --help)


def main(argv=None) -> int:
    parser = cli.make_parser(__doc__)
    parser.add_argument(
        "--models",
        nargs="+",
        choices=FAMILIES,
        default=list(FAMILIES),
        metavar="FAMILY",
        help=f"which baselines to fit (default: all of {', '.join(FAMILIES)})",
    )
    parser.add_argument(
        "--run-prefix",
        default="baseline-",
        metavar="PREFIX",
        help="run folders are models/<PREFIX><family> (default: %(default)s)",
    )
    parser.add_argument("--restart", action="store_true", help="fit finished models again")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    args = parser.parse_args(argv)
    if not args.run_prefix or "/" in args.run_prefix or args.run_prefix in (".", ".."):
        parser.error("--run-prefix must be a plain folder name prefix")
    cfg = cli.config_from_args(args)

    from genrekit.training.baselines import train_baselines  # scikit-learn, scipy: only after the arguments are fine

    summary = train_baselines(
        cfg,
        families=tuple(dict.fromkeys(args.models)),
        prefix=args.run_prefix,
        restart=args.restart,
        progress=not args.quiet,
    )
    print(summary)
    return 0


if __name__ == "__main__":
    sys.exit(cli.run(main))
