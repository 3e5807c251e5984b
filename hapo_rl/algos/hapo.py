"""HAPO: GRPO plus Synthetic Success Injection behind a Thompson-sampling gate.

The delta on GRPO: after an iteration's on-policy groups are collected, each group's outcome
updates the gate of its start state; an all-failure group whose gate fires gets ``n_inject`` of
its failed episodes replaced by successful teacher episodes from the same start state. Teacher
steps are off-policy and use the policy-shaping loss ``-pi/(pi+gamma) * A`` (or imitation
``-A log pi``) instead of the clipped ratio. With ``mix_every_group`` (the mixed-policy
baseline) every group instead gets one teacher episode added, failed or not, with no gate.
With ``warm_start_demos`` the first iteration clones that many teacher episodes (bc-grpo).
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch as th

from hapo_rl.algos.bc import clone
from hapo_rl.algos.grpo import IterationStats
from hapo_rl.algos.guided import Guided
from hapo_rl.config import HAPOConfig
from hapo_rl.gate import BetaGate
from hapo_rl.rollout import Episode
from hapo_rl.tasks import Task
from hapo_rl.teachers.base import Teacher, covered


class HAPO(Guided):
    """Hindsight-Anchored Policy Optimization.

    :param teacher: a ``Teacher``, a ``"module:callable"`` spec, or None for the task's
        built-in scripted teacher.
    """

    config_class: ClassVar[type[HAPOConfig]] = HAPOConfig
    config: HAPOConfig

    def __init__(
        self, env: str | Task | None, teacher: Teacher | str | None = None, **kwargs: Any
    ) -> None:
        super().__init__(env, teacher, **kwargs)
        if self.config is not None:
            cfg = self.config
            self.gate = BetaGate(
                mode=cfg.gate,  # type: ignore[arg-type]
                tau=cfg.tau,
                forgetting=cfg.forgetting,
                per_key=cfg.gate_key == "start_state",
                prior=cfg.gate_prior,  # type: ignore[arg-type]
                adaptive_tau=cfg.adaptive_tau,
                fixed_prob=cfg.fixed_prob,
            )
            self.warm_started = cfg.warm_start_demos == 0

    def _iteration(self) -> IterationStats:
        if self.warm_started:
            return super()._iteration()
        cfg = self.config
        n = cfg.warm_start_demos
        seeds = self.rng.choice(self.task.train_seeds, size=n, replace=n > self.task.n_train)
        demos = self._demos(self._covered(seeds))
        steps = sum(d.length for d in demos)
        good = [d for d in demos if d.success]
        with self.watch.section("learn"):
            loss = (
                clone(
                    self.policy,
                    good,
                    cfg.warm_start_epochs,
                    cfg.batch_size,
                    self.rng,
                    cfg.max_grad_norm,
                )
                if good
                else 0.0
            )
        self.warm_started = True
        return IterationStats(
            env_steps=steps,
            teacher_steps=steps,
            train_success_rate=float("nan"),
            injection_rate=0.0,
            teacher_step_share=1.0,
            zero_adv_group_frac=float("nan"),
            loss=loss,
        )

    def _augment_groups(self, groups: list[list[Episode]]) -> tuple[list[list[Episode]], int]:
        cfg = self.config
        steps = 0
        for group in groups:
            key = group[0].seed
            successes = sum(e.success for e in group)
            self.gate.update(key, successes, len(group) - successes)
            if not covered(key, cfg.teacher_coverage):
                continue
            if cfg.mix_every_group:
                n = 1
            elif successes or not self.gate.should_inject(key, self.rng):
                continue
            else:
                n = cfg.n_inject
            demos = self._demos([key] * n)
            steps += sum(d.length for d in demos)
            good = [d for d in demos if d.success]
            if cfg.mix_every_group:
                group.extend(good)
            else:
                group[: len(good)] = good
        return groups, steps

    def _step_loss(
        self, log_probs: th.Tensor, old_log_probs: th.Tensor, adv: th.Tensor, teacher: th.Tensor
    ) -> th.Tensor:
        on_policy = super()._step_loss(log_probs, old_log_probs, adv, teacher)
        if self.config.teacher_loss == "shaping":
            p = th.exp(log_probs)
            off_policy = -(p / (p + self.config.shaping_gamma)) * adv
        else:
            off_policy = -adv * log_probs
        return th.where(teacher, off_policy, on_policy)
