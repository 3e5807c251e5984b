"""Group-relative advantages (pure functions on a ``(groups, group_size)`` array of returns)."""

from __future__ import annotations

from typing import Literal

import numpy as np

Baseline = Literal["mean", "loo"]
Scale = Literal["std", "none"]


def group_advantages(
    returns: np.ndarray,
    baseline: Baseline = "mean",
    scale: Scale = "std",
    eps: float = 1e-6,
) -> np.ndarray:
    """Advantage of each episode relative to its group.

    ``baseline="mean"`` subtracts the group mean (GRPO); ``"loo"`` the mean of the other
    episodes (RLOO). ``scale="std"`` divides by the group's population standard deviation plus
    ``eps``; ``"none"`` leaves the difference unscaled (Dr. GRPO). A group whose returns are all
    equal gets zero advantages (advantage collapse).
    """
    r = np.asarray(returns, dtype=np.float64)
    if r.ndim != 2:
        raise ValueError(f"returns must be (groups, group_size), got shape {r.shape}")
    g = r.shape[1]
    mean = r.mean(axis=1, keepdims=True)
    if baseline == "mean":
        adv = r - mean
    elif baseline == "loo":
        if g < 2:
            raise ValueError("a leave-one-out baseline needs groups of at least 2")
        adv = (r - mean) * g / (g - 1)
    else:
        raise ValueError(f"unknown baseline {baseline!r}")
    if scale == "std":
        adv = adv / (r.std(axis=1, keepdims=True) + eps)
    elif scale != "none":
        raise ValueError(f"unknown scale {scale!r}")
    return adv
