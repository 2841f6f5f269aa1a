"""Normalize and shuffle <output_folder>/dataset.h5 into <output_folder>/processed.h5.

Run it after build_dataset.py with the same --config. The normalization statistics
(processing.norm_method) come from the train split and are applied unchanged to val
and test; the train split is shuffled with processing.seed when processing.shuffle is
true. Memory stays bounded (processing.memory_limit_mb), an interrupted run leaves no
partial processed.h5, and a run finding processed.h5 up to date does nothing.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from genrekit.core.cli import config_from_args, make_parser, run
from genrekit.dataset.process import process_dataset


def main(argv: Sequence[str] | None = None) -> int:
    parser = make_parser(__doc__)
    parser.add_argument("--force", action="store_true", help="rewrite processed.h5 even when it is up to date")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    args = parser.parse_args(argv)
    process_dataset(config_from_args(args), force=args.force, progress=not args.quiet)
    return 0


if __name__ == "__main__":
    sys.exit(run(main))
