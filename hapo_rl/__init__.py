"""hapo_rl: Hindsight-Anchored Policy Optimization for sparse-reward Gymnasium tasks."""

from hapo_rl.algos import GRPO, HAPO

__version__ = "0.1.0"
__all__ = ["GRPO", "HAPO", "__version__"]
