"""HAPO: GRPO plus Synthetic Success Injection behind a Thompson-sampling gate.

The delta on GRPO: after an iteration's on-policy groups are collected, each group's outcome
updates the gate of its start state; an all-failure group whose gate fires gets ``n_inject`` of
its failed episodes replaced by successful teacher episodes from the same start state. Teacher
steps are off-policy and use the policy-shaping loss ``-pi/(pi+gamma) * A`` (or imitation
``-A log pi``) instead of the clipped ratio. With ``mix_every_group`` (the mixed-policy
baseline) every group instead gets one teacher episode added, failed or not, with no gate.
With ``warm_start_demos`` the first iteration clones that many teacher episodes (bc-grpo),
noise-injected with ``warm_start_noise`` (DART, as ``bc``'s ``demo_noise``).

What this project adds for sample efficiency, each a setting that is off in ``hapo-paper``:
``horizon_cut`` ends the on-policy episodes of a start state whose gate is open after a
multiple of its teacher episode's length; ``teacher_reuse`` keeps each start state's first
successful teacher episode and injects it again without running the teacher; and
``teacher_replay`` adds kept episodes of other open start states to each update. All three
depend on the gate being open, so they fade with it, and once no group fails and every gate is
shut the update is GRPO's.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
import torch as th
from stable_baselines3.common.distributions import Distribution

from hapo_rl.algos.bc import clone
from hapo_rl.algos.grpo import IterationStats
from hapo_rl.algos.guided import Guided
from hapo_rl.core.config import HAPOConfig
from hapo_rl.core.gate import BetaGate
from hapo_rl.core.rollout import Episode
from hapo_rl.core.shaping import teacher_probability
from hapo_rl.core.tasks import Task
from hapo_rl.teachers.base import Teacher, is_recorded
from hapo_rl.teachers.episodes import perturbation, teacher_episode


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
                forget_by=cfg.forget_by,  # type: ignore[arg-type]
            )
            self.warm_started = cfg.warm_start_demos == 0
            if cfg.warm_start_noise and is_recorded(self.teacher):
                raise ValueError(
                    "warm_start_noise needs a teacher that acts; a recorded one only replays"
                )

    def _iteration(self) -> IterationStats:
        if self.warm_started:
            return super()._iteration()
        cfg = self.config
        n = cfg.warm_start_demos
        seeds = self.rng.choice(self.task.train_seeds, size=n, replace=n > self.task.n_train)
        demos = self._demos(self._covered(seeds))
        steps = self._charge(demos)
        good = demos if cfg.warm_start_noise else [d for d in demos if d.success]
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

    def _perturbation(self) -> Callable[[Any], Any] | None:
        noise = self.config.warm_start_noise
        if self.warm_started or not noise:
            return None
        return perturbation(self._teacher_env.action_space, noise, self.rng)

    # -- the teacher's kept episodes ---------------------------------------------------------

    def _setup_model(self) -> None:
        super()._setup_model()
        if getattr(self, "kept_actions", None) is None:  # a loaded model keeps its own
            self.kept_actions: dict[int, np.ndarray] = {}
            self.kept_advantage: dict[int, float] = {}
            # replay draws have a generator of their own, so that an iteration that replays
            # nothing leaves the update exactly GRPO's
            self.replay_rng = np.random.default_rng([self.seed or 0, 1])
        # a checkpoint stores a dict of floats as JSON, whose keys come back as strings
        self.kept_advantage = {int(k): a for k, a in self.kept_advantage.items()}
        self._kept: dict[int, Episode] = {}  # rebuilt from kept_actions after a load

    def _excluded_save_params(self) -> list[str]:
        return [*super()._excluded_save_params(), "_kept"]

    def _gate_open(self, key: int) -> bool:
        """Whether ``key``'s posterior puts the policy's success below the gate threshold with
        probability at least 0.5 (for HAPO's Thompson gate: an all-failure group would get a
        teacher episode with probability at least 0.5); a start state without a teacher, or a
        gate that never injects, is never open."""
        open_probability = self.gate.open_probability(key)
        return self._has_teacher(key) and open_probability >= 0.5

    def _kept_episode(self, key: int) -> tuple[Episode | None, int]:
        """The kept successful teacher episode of ``key`` and the env steps spent on it now:
        none if one is kept (rebuilt by replaying its actions after a load, not charged
        again), else the teacher runs (charged) and a success is kept."""
        if key in self._kept:
            return self._kept[key], 0
        if key in self.kept_actions:
            episode = teacher_episode(
                self._teacher_env, self.teacher, key, list(self.kept_actions[key]), self.watch
            )
            self._kept[key] = episode
            return episode, 0
        demo = self._demos([key])[0]
        if demo.success:
            self._kept[key] = demo
            self.kept_actions[key] = demo.actions
        return (demo if demo.success else None), self._charge([demo])

    def _injected(self, key: int, n: int) -> tuple[list[Episode], int]:
        """``n`` successful teacher episodes of ``key`` (fewer if the teacher fails) and their
        env steps: the kept one again with ``teacher_reuse``, else fresh teacher runs."""
        if self.config.teacher_reuse:
            episode, steps = self._kept_episode(key)
            return ([episode] * n if episode is not None else []), steps
        demos = self._demos([key] * n)
        for demo in demos:
            if demo.success and key not in self.kept_actions:
                self._kept[key], self.kept_actions[key] = demo, demo.actions
        return [d for d in demos if d.success], self._charge(demos)

    # -- the hooks into GRPO's iteration ---------------------------------------------------

    def _horizons(self, keys: np.ndarray) -> tuple[list[int | None] | None, int]:
        """With ``horizon_cut`` c: ``ceil(c * L)`` for a start state whose gate is open, L the
        length of its kept teacher episode (the teacher runs first where none is kept)."""
        cut = self.config.horizon_cut
        if not cut:
            return None, 0
        horizons: list[int | None] = []
        steps = 0
        for key in map(int, keys):
            episode = None
            if self._gate_open(key):
                episode, cost = self._kept_episode(key)
                steps += cost
            horizons.append(None if episode is None else math.ceil(cut * episode.length))
        return horizons, steps

    def _augment_groups(self, groups: list[list[Episode]]) -> tuple[list[list[Episode]], int]:
        cfg = self.config
        steps = 0
        self.gate.tick()
        for group in groups:
            key = group[0].seed
            successes = sum(e.success for e in group)
            self.gate.update(key, successes, len(group) - successes)
            if not self._has_teacher(key):
                continue
            if cfg.mix_every_group:
                n = 1
            elif cfg.gate == "group-mean":
                if not self.gate.group_mean_fires(successes, len(group)):
                    continue
                n = cfg.n_inject
            elif successes or not self.gate.should_inject(key, self.rng):
                continue
            else:
                n = cfg.n_inject
            good, cost = self._injected(key, n)
            steps += cost
            if cfg.mix_every_group:
                group.extend(good)
            else:  # the lowest returns go (the first ones among equals: all of a failed group)
                worst = sorted(range(len(group)), key=lambda i: group[i].ret)
                for i, episode in zip(worst, good):
                    group[i] = episode
        return groups, steps

    def _replays(
        self, groups: list[list[Episode]], advantages: list[np.ndarray]
    ) -> list[tuple[Episode, float]]:
        """Note each injected teacher episode's advantage; then, with ``teacher_replay`` R,
        draw up to R kept episodes of start states not in ``groups`` at random, and replay each
        whose gate is open by a Thompson draw now, with the advantage it last had in a group:
        the expected number replayed is R times the mean open probability of the states drawn,
        so replay fades as the gates shut."""
        for group, adv in zip(groups, advantages):
            for episode, a in zip(group, adv):
                if episode.from_teacher:
                    self.kept_advantage[episode.seed] = float(a)
        limit = self.config.teacher_replay
        if not limit:
            return []
        drawn = {g[0].seed for g in groups}
        candidates = [k for k in self.kept_advantage if k not in drawn and k in self.kept_actions]
        if not candidates:
            return []
        offered = self.replay_rng.choice(
            candidates, size=min(limit, len(candidates)), replace=False
        )
        fires = [int(k) for k in offered if self.gate.draw_open(int(k), self.replay_rng)]
        return [(self._kept_episode(k)[0], self.kept_advantage[k]) for k in fires]

    def _step_loss(
        self,
        log_probs: th.Tensor,
        old_log_probs: th.Tensor,
        adv: th.Tensor,
        teacher: th.Tensor,
        dist: Distribution,
        actions: th.Tensor,
    ) -> th.Tensor:
        on_policy = super()._step_loss(log_probs, old_log_probs, adv, teacher, dist, actions)
        if self.config.teacher_loss == "shaping":
            space = self.action_space
            half = (
                th.as_tensor((space.high - space.low) / 2, dtype=th.float32)
                if isinstance(space, gym.spaces.Box)
                else None
            )
            p = teacher_probability(dist, actions, log_probs, half, self.config.shaping_box)
            off_policy = -(p / (p + self.config.shaping_gamma)) * adv
        else:
            off_policy = -adv * log_probs
        return th.where(teacher, off_policy, on_policy)
