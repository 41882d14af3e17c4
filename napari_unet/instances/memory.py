"""Returning freed memory to the system, where the C library keeps it."""

from __future__ import annotations

import ctypes
import functools
import sys


def release_freed_memory() -> None:
    """Give memory freed by Python back to the system (glibc's malloc_trim; a no-op elsewhere).

    glibc keeps freed blocks up to 32 MiB (the prediction's block buffers) in its heaps for
    reuse; after predicting an 8192^2 plane that is 0.4 GiB the instance step cannot use.
    """
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


@functools.cache
def _malloc_trim():
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL("libc.so.6").malloc_trim
    except (OSError, AttributeError):  # musl or another libc: nothing to trim
        return None
