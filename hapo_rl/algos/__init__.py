"""One module per method."""

from hapo_rl.algos.grpo import GRPO
from hapo_rl.algos.hapo import HAPO

__all__ = ["GRPO", "HAPO"]
