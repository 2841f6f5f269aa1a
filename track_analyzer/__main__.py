"""``python -m track_analyzer``: see ``--help``."""

import os
import sys

# Before anything imports TensorFlow; a user who wants its logs can set it to 0.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from genrekit.core.cli import run
from track_analyzer.cli import main

if __name__ == "__main__":
    sys.exit(run(main))
