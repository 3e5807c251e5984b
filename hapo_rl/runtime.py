"""Process settings for training small networks on a few CPU cores."""

from __future__ import annotations

import ctypes
import ctypes.util

import torch as th

_M_MMAP_THRESHOLD = -3  # glibc mallopt parameter


def tune_process(malloc: bool = True) -> None:
    """One torch thread (small networks: more threads only contend with env workers), and on
    glibc a fixed 64 KiB mmap threshold: the default dynamic threshold lets the heap fragment
    under torch's varying batch sizes, which was seen to double peak memory."""
    th.set_num_threads(1)
    libc_name = ctypes.util.find_library("c")
    if malloc and libc_name:
        try:
            ctypes.CDLL(libc_name).mallopt(_M_MMAP_THRESHOLD, 64 * 1024)
        except (OSError, AttributeError):
            pass
