"""Export run folders (and the ready taggers) to LiteRT, for analysis without TensorFlow.

``train_crnn.py`` writes ``model.tflite`` beside ``model.keras`` itself, and the analyzer exports
a run folder made before that on first use; this command does it ahead of time, for instance
before copying run folders to a machine with the analysis-only install (docs/GUIDE.md):

    .venv/bin/python tools/export_models.py output/models/crnn output/models/crnn-big
    .venv/bin/python tools/export_models.py --taggers     # genrekit/models/exports/musicnn-*.tflite

Each is exported twice where the model has layers worth int8 weights: ``model.tflite`` (float32) and
``model.int8.tflite`` (the taggers: ``<name>.int8.tflite``), and each export is checked against its
Keras model before it is kept. The ready genre model is a run folder too:

    .venv/bin/python tools/export_models.py --taggers genrekit/models/ready/gtzan-genres
"""

import argparse
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from anywhere without installing

from genrekit.core import cli
from genrekit.core.errors import GenrekitError
from genrekit.models import registry
from genrekit.models.bundle import load_bundle


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="*", type=Path, metavar="RUN", help="run folders written by train_crnn.py")
    parser.add_argument(
        "--taggers",
        action="store_true",
        help=f"export the ready taggers ({', '.join(registry.PRETRAINED)}) into the package",
    )
    args = parser.parse_args(argv)
    if not args.runs and not args.taggers:
        parser.error("give run folders, or --taggers")
    for folder in args.runs:
        bundle = load_bundle(folder)
        if registry.family(bundle) != registry.KERAS:
            raise GenrekitError(f"{folder}: a {registry.family(bundle)} run has no Keras model to export")
        print(*registry.export_run(bundle), sep="\n")
    if args.taggers:
        for name in registry.PRETRAINED:
            print(*registry.export_tagger(name), sep="\n")
    return 0


if __name__ == "__main__":
    sys.exit(cli.run(main))
