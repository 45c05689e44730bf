"""One place for the numba decorator settings every kernel uses.

``cache=True`` writes compiled machine code beside the source, which a Lambda package cannot do
at run time (read-only file system). When ``NUMBA_CACHE_DIR`` is set (the container image sets
it to a directory filled at build time, or to /tmp) numba uses that directory instead.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import numba

F = TypeVar("F", bound=Callable[..., Any])


def jit(fn: F) -> F:
    """Compile ``fn`` in nopython mode with caching; no fastmath, so IEEE NaN semantics hold."""
    compiled: F = numba.njit(cache=True, nogil=True)(fn)  # type: ignore[assignment]
    return compiled
