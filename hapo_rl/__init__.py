"""hapo_rl: Hindsight-Anchored Policy Optimization for sparse-reward Gymnasium tasks.

The package in layers, each importing only those before it: ``common`` (plumbing), ``envs``
(the tasks' envs), ``core`` (the algorithm's building blocks), ``teachers``, ``algos`` (the
methods' algorithms), ``methods`` (what ``--algo`` names), the commands ``run`` (with
``recording``), ``play`` and ``experiment``, and ``report``.
"""

import importlib
import sys

from hapo_rl.algos import BC, GRPO, HAPO, JSRL, HERBaseline, PPOBaseline

# Checkpoints saved before these modules moved into core/ name them by their old paths.
for _name in ("config", "gate", "policies", "rollout", "tasks"):
    sys.modules.setdefault(f"hapo_rl.{_name}", importlib.import_module(f"hapo_rl.core.{_name}"))

__version__ = "0.1.0"
__all__ = ["BC", "GRPO", "HAPO", "HERBaseline", "JSRL", "PPOBaseline", "__version__"]
