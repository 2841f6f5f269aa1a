"""One BLAS thread for the products whose results must not depend on the machine's thread count.

OpenBLAS splits a matrix product across its threads, and how it splits changes the
order in which each sum is formed: the mel projection of one track then differs in
the last bit between a build with one worker (the calling process, all cores) and a
pool of single-threaded workers. Running those products on one thread everywhere
makes ``dataset.h5`` the same, bit for bit, whatever ``build.workers`` and the core
count; the build's workers are single-threaded anyway, so it costs them nothing.
"""

from __future__ import annotations

import contextlib
from functools import lru_cache


@lru_cache(maxsize=1)
def _controller():
    # Scanning the loaded libraries takes milliseconds; the limit itself about 30 µs.
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()


def single_threaded() -> contextlib.AbstractContextManager:
    """Context manager: BLAS runs on one thread inside it, as many as before after it."""
    return _controller().limit(limits=1, user_api="blas")
