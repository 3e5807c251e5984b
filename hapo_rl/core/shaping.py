"""The probability that LUFFY's policy shaping ``p / (p + gamma)`` takes on a teacher step.

For discrete actions ``p`` is the policy's probability of the teacher's action. A Gaussian
policy has a density there instead, which depends on the action scale and can be far above 1,
where ``p / (p + gamma)`` saturates and the teacher's gradient vanishes (or, at a small scale,
stays near 0). For continuous actions ``p`` is therefore the probability the policy puts on a
small box around the teacher's action, ``box`` times each dimension's half-range wide on
either side, per dimension, with the geometric mean taken over dimensions (so that it does not
shrink with their number): a probability in [0, 1] that does not change when the action space
is rescaled.
"""

from __future__ import annotations

import torch as th
from stable_baselines3.common.distributions import DiagGaussianDistribution, Distribution

#: Smallest per-dimension box probability before its log (a step whose action lies far in the
#: tail contributes no gradient, as a discrete action of probability 0 would not).
TINY = 1e-12


def teacher_probability(
    dist: Distribution,
    actions: th.Tensor,
    log_probs: th.Tensor,
    half_range: th.Tensor | None,
    box: float,
) -> th.Tensor:
    """``p`` of each step's teacher ``actions`` under ``dist``: ``exp(log_probs)`` for
    discrete actions; for a diagonal Gaussian (``half_range`` the action space's per-dimension
    half-range) the geometric mean over dimensions of ``P(|A - a| <= box * half_range)``."""
    if not isinstance(dist, DiagGaussianDistribution):
        return th.exp(log_probs)
    assert half_range is not None, "a Gaussian policy needs the action space's half-range"
    normal = dist.distribution
    width = box * half_range
    upper = th.special.ndtr((actions + width - normal.loc) / normal.scale)
    lower = th.special.ndtr((actions - width - normal.loc) / normal.scale)
    return th.exp(th.log((upper - lower).clamp_min(TINY)).mean(dim=-1))
