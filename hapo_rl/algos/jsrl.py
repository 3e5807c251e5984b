"""Jump-start RL (Uchendu et al., arXiv 2204.02372) on GRPO: the teacher acts for the first h
steps of every episode, then the policy takes over; h shrinks as the policy's success rises.

Each group's G episodes share one roll-in (the teacher's first h actions from the group's start
state, replayed in every env of the group), so the group still compares episodes from one
state. At curriculum stage k of ``jsrl_stages`` the roll-in covers ``(stages - k) / stages``
of the teacher's episode from that start state; when the training success rate of an iteration
reaches ``jsrl_threshold`` the next stage begins, and the last stage is plain GRPO. Only the
policy's steps enter the gradient; every env step, roll-in and teacher run included, is charged.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from hapo_rl.algos.grpo import IterationStats
from hapo_rl.algos.guided import Guided
from hapo_rl.core.config import JSRLConfig
from hapo_rl.core.rollout import collect_episodes, success_rate


class JSRL(Guided):
    """Jump-start RL with a roll-in curriculum over the teacher's episode length."""

    config_class: ClassVar[type[JSRLConfig]] = JSRLConfig
    config: JSRLConfig

    def _setup_model(self) -> None:
        super()._setup_model()
        if getattr(self, "stage", None) is None:  # a loaded model keeps its saved stage
            self.stage = 1

    @property
    def rollin_fraction(self) -> float:
        """Share of the teacher's episode that the roll-in covers at the current stage."""
        return (self.config.jsrl_stages - self.stage) / self.config.jsrl_stages

    def _rollins(self, keys: np.ndarray) -> tuple[list[list], int]:
        """Per start state, the teacher's first h actions; and the env steps the teacher took
        to produce them (none for a deterministic teacher's start state seen before)."""
        fraction = self.rollin_fraction
        deterministic = getattr(self.teacher, "deterministic", False)
        rollins: list[list] = []
        steps = 0
        for key in map(int, keys):
            if fraction == 0 or not self._has_teacher(key):
                rollins.append([])
                continue
            plan = self._teacher_plans.get(key) if deterministic else None
            if plan is None:
                demo = self._demos([key])[0]
                steps += self._charge([demo])
                plan = list(demo.actions)
            rollins.append(plan[: int(fraction * len(plan))])
        return rollins, steps

    def _iteration(self) -> IterationStats:
        cfg = self.config
        keys = self.rng.choice(self.task.train_seeds, size=cfg.groups_per_iter, replace=False)
        rollins, teacher_run_steps = self._rollins(keys)
        prefixes = [r for r in rollins for _ in range(cfg.group_size)]
        teacher_steps = teacher_run_steps + sum(len(p) for p in prefixes)
        remaining = self._remaining()
        self.policy.set_training_mode(False)
        episodes = collect_episodes(
            self._envs,
            np.repeat(keys, cfg.group_size),
            self.policy,
            watch=self.watch,
            prefixes=prefixes,
            max_steps=None if remaining is None else max(remaining - teacher_steps, 1),
        )
        train_success = success_rate(episodes)
        stats = self._learn_from_groups(
            self._complete_groups(episodes),
            sum(e.length for e in episodes) + teacher_steps,
            teacher_steps,
            train_success,
        )
        stats.extra["jsrl_stage"] = self.stage
        if train_success >= cfg.jsrl_threshold and self.stage < cfg.jsrl_stages:
            self.stage += 1
        return stats
