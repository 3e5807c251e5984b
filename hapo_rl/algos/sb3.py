"""What the stable-baselines3 baselines (PPO, SAC+HER) share to fit the run folder: the RNG
states in the checkpoint, and the statistics of each update (``last_stats``) from the training
episodes that ended since the last one."""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import torch as th

from hapo_rl.algos.grpo import IterationStats


class RunFolderMixin:
    """Mix into an SB3 algorithm before it (``class X(RunFolderMixin, PPO)``)."""

    rng_states: dict[str, Any] | None
    _outcomes: list[bool]
    last_stats: IterationStats | None

    def _setup_run_folder(self) -> None:
        """Call at the end of ``_setup_model``: reset the statistics, restore saved RNGs."""
        self._outcomes = []
        self.last_stats = None
        if getattr(self, "rng_states", None) is not None:
            th.set_rng_state(self.rng_states["torch"])
            np.random.set_state(self.rng_states["numpy"])
            random.setstate(self.rng_states["python"])

    def _capture_rng_states(self) -> None:
        """Call before saving a checkpoint."""
        self.rng_states = {
            "torch": th.get_rng_state(),
            "numpy": np.random.get_state(),
            "python": random.getstate(),
        }

    def _update_info_buffer(self, infos: list[dict[str, Any]], dones: np.ndarray | None = None):
        super()._update_info_buffer(infos, dones)  # type: ignore[misc]
        if dones is not None:
            self._outcomes += [bool(i["is_success"]) for i, d in zip(infos, dones) if d]

    def _record_update(self, env_steps: int, loss: float = 0.0) -> None:
        """Set ``last_stats`` for an update after ``env_steps`` env steps."""
        outcomes = self._outcomes
        self.last_stats = IterationStats(
            env_steps=env_steps,
            teacher_steps=0,
            train_success_rate=float(np.mean(outcomes)) if outcomes else float("nan"),
            injection_rate=0.0,
            teacher_step_share=0.0,
            zero_adv_group_frac=float("nan"),
            loss=loss,
        )
        self._outcomes = []
