"""hapo_rl: Hindsight-Anchored Policy Optimization for sparse-reward Gymnasium tasks."""

from hapo_rl.algos import BC, GRPO, HAPO, JSRL, HERBaseline, PPOBaseline

__version__ = "0.1.0"
__all__ = ["BC", "GRPO", "HAPO", "HERBaseline", "JSRL", "PPOBaseline", "__version__"]
