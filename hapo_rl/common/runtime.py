"""Process settings for training small networks on a few CPU cores."""

from __future__ import annotations

import ctypes
import ctypes.util

import torch as th

_M_MMAP_THRESHOLD = -3  # glibc mallopt parameter


def tune_process(malloc: bool = True) -> None:
    """One torch thread (small networks: more threads only contend with env workers), and on
    glibc a fixed 1 MiB mmap threshold: the default dynamic threshold lets the heap fragment
    under torch's varying batch sizes (peak memory of a KeyCorridor iteration: 994 MB with it,
    892 MB with 1 MiB at the same speed; 64 KiB gave 547 MB but slowed learning by 40%)."""
    th.set_num_threads(1)
    libc_name = ctypes.util.find_library("c")
    if malloc and libc_name:
        try:
            ctypes.CDLL(libc_name).mallopt(_M_MMAP_THRESHOLD, 1024 * 1024)
        except (OSError, AttributeError):
            pass
