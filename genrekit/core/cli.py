"""What every script shares: the ``--config`` option and turning errors into one line."""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from genrekit.core.config import Config, load_config
from genrekit.core.errors import GenrekitError

REPO_ROOT = Path(__file__).resolve().parents[2]  # genrekit/core/cli.py
DEFAULT_CONFIG = REPO_ROOT / "pipeline_parameters.json"


def make_parser(description: str) -> argparse.ArgumentParser:
    """An argument parser with the ``--config`` option every script takes."""
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--config",
        type=Path,
        default=DEFAULT_CONFIG,
        metavar="PATH",
        help="pipeline parameters file (default: %(default)s); relative paths inside it resolve against its folder",
    )
    return parser


def config_from_args(args: argparse.Namespace) -> Config:
    return load_config(args.config)


def log(message: str) -> None:
    """A progress or status message: stderr, at once (stdout is for results)."""
    print(message, file=sys.stderr, flush=True)


def error(message: str) -> None:
    """One line on stderr."""
    print(f"error: {message}", file=sys.stderr, flush=True)


def run(main: Callable[[Sequence[str] | None], int], argv: Sequence[str] | None = None) -> int:
    """Call ``main`` and turn user-facing errors into one stderr line and an exit status."""
    try:
        return main(argv)
    except GenrekitError as exc:
        error(str(exc))
        return exc.exit_code
    except KeyboardInterrupt:
        print("\ninterrupted: run the same command again to continue", file=sys.stderr)
        return 130


@contextlib.contextmanager
def quiet_native_logs() -> Iterator[None]:
    """Hide what native libraries print to fd 2 while they load: TensorFlow (oneDNN, CUDA probing,
    before ``TF_CPP_MIN_LOG_LEVEL`` takes effect) and the LiteRT interpreter (its XNNPACK delegate).

    Set ``TF_CPP_MIN_LOG_LEVEL=0`` to see it. Python exceptions are raised after fd 2 is back.
    """
    if os.environ.get("TF_CPP_MIN_LOG_LEVEL", "0") == "0":
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "wb") as devnull:
            os.dup2(devnull.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
