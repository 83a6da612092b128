"""Process memory: keep freed memory for reuse, so that each training step does not ask the kernel for it again.

PyTorch's CPU tensors come from the C library's ``malloc``. glibc serves a large block (over 128 KiB at first, up to
32 MiB as it adapts) with a fresh ``mmap`` and hands it back to the kernel when it is freed, and trims the heap's
free top the same way. A training step frees its activations and allocates the same sizes again the next step, so
every step touches fresh pages, and each first touch is a page fault in which the kernel zeroes 4 KiB. On a 2-core
Intel Xeon VM (fp32, 2 threads) that was a third of a style step at the recipe's size (benchmark i,
``python -m benchmarks.freed_memory``):

======================  ==================  ==================  ===========
step (batch 4)          glibc's default     freed memory kept   peak memory
======================  ==================  ==================  ===========
style, 256 px           5.57 s (2.5 s sys)  3.67 s (0.0 s sys)  +9%
superres, 288 px        2.36 s (1.1 s sys)  1.84 s (0.0 s sys)  +14%
restore, 64 px          0.313 s             0.311 s             +3%
======================  ==================  ==================  ===========

:func:`keep_freed_memory` tells glibc (``mallopt``) to serve every block from its heap and never to trim it, so that
freed memory is reused in-process. The arithmetic is the same, bit for bit; the process keeps its peak memory until
it ends, which a training or inference process reaches again on every step anyway. Where the sizes change from one
job to the next (``apply``'s and ``eval``'s images), :func:`release_freed_memory` hands it back between jobs. The
CLI calls :func:`keep_freed_memory` for every command and :func:`lossnet.train.train` for every run; a library
user's own loop may call it. Where the C library is not glibc (macOS, Windows, musl) both do nothing.
``LOSSNET_KEEP_FREED_MEMORY=0`` turns it off.

>>> keep_freed_memory() in (True, False)
True
"""

from __future__ import annotations

import ctypes
import functools
import logging
import os

log = logging.getLogger(__name__)

#: ``mallopt`` parameters (glibc's ``malloc.h``).
_M_TRIM_THRESHOLD = -1
_M_MMAP_MAX = -4
#: The switch that turns it off.
ENV = "LOSSNET_KEEP_FREED_MEMORY"


@functools.cache
def keep_freed_memory() -> bool:
    """Serve large blocks from the heap and keep freed memory (glibc); returns whether it is now in effect.

    Called once per process (later calls return the first answer). ``False`` where the C library is not glibc,
    where ``mallopt`` refused, or where the environment variable ``LOSSNET_KEEP_FREED_MEMORY`` is ``0``.
    """
    if os.environ.get(ENV, "1").strip() in {"0", "false", "no", "off"}:
        return False
    libc = _glibc()
    if libc is None:
        return False
    # M_MMAP_MAX 0: no block is served by mmap (glibc itself still falls back to mmap if the heap cannot grow).
    # M_TRIM_THRESHOLD -1: the heap's free top is never handed back (mallopt(3)).
    done = libc.mallopt(_M_MMAP_MAX, 0) == 1 and libc.mallopt(_M_TRIM_THRESHOLD, -1) == 1
    log.debug("glibc malloc %s freed memory for reuse", "keeps" if done else "refused to keep")
    return done


def release_freed_memory() -> None:
    """Hand the free memory the process kept back to the kernel (glibc's ``malloc_trim``), if it keeps it.

    For work whose sizes change from one job to the next, such as ``apply``'s images: kept across them, each image's
    pattern of blocks adds to the last one's (x4 super-resolution of 10 mixed images peaked at 8.0 GB, against 5.0 GB
    with glibc's default). Called between images, the tiles of one image still reuse their memory. A no-op where
    :func:`keep_freed_memory` has not been called or did not take effect.
    """
    if keep_freed_memory.cache_info().currsize and keep_freed_memory():
        libc = _glibc()
        if libc is not None:
            libc.malloc_trim(0)


@functools.cache
def _glibc() -> ctypes.CDLL | None:
    """The process's C library, where it is glibc (it has ``gnu_get_libc_version`` and ``mallopt``)."""
    try:
        libc = ctypes.CDLL(None)
        libc.gnu_get_libc_version  # noqa: B018  (absent outside glibc: AttributeError)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return None
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return libc
