"""One module per method."""

from hapo_rl.algos.bc import BC
from hapo_rl.algos.grpo import GRPO
from hapo_rl.algos.hapo import HAPO
from hapo_rl.algos.her import HERBaseline
from hapo_rl.algos.jsrl import JSRL
from hapo_rl.algos.ppo import PPOBaseline

__all__ = ["BC", "GRPO", "HAPO", "HERBaseline", "JSRL", "PPOBaseline"]
