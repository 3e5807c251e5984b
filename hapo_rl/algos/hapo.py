"""HAPO: GRPO plus Synthetic Success Injection behind a Thompson-sampling gate.

The delta on GRPO: after an iteration's on-policy groups are collected, each group's outcome
updates the gate of its start state; an all-failure group whose gate fires gets ``n_inject`` of
its failed episodes replaced by successful teacher episodes from the same start state. Teacher
steps are off-policy and use the policy-shaping loss ``-pi/(pi+gamma) * A`` (or imitation
``-A log pi``) instead of the clipped ratio. With ``mix_every_group`` (the mixed-policy
baseline) every group instead gets one teacher episode added, failed or not, with no gate.
"""

from __future__ import annotations

from typing import Any, ClassVar

import cloudpickle
import torch as th

from hapo_rl.algos.grpo import GRPO
from hapo_rl.config import HAPOConfig
from hapo_rl.gate import BetaGate
from hapo_rl.rollout import Episode, teacher_episode
from hapo_rl.tasks import Task
from hapo_rl.teachers.base import NoisyTeacher, Teacher, covered
from hapo_rl.teachers.registry import load_teacher

#: After this many teacher episodes without one success, training stops with an error.
TEACHER_GIVE_UP = 20


class TeacherError(RuntimeError):
    """The teacher failed in a way that makes HAPO meaningless (it never succeeds)."""


class HAPO(GRPO):
    """Hindsight-Anchored Policy Optimization.

    :param teacher: a ``Teacher``, a ``"module:callable"`` spec, or None for the task's
        built-in scripted teacher.
    """

    config_class: ClassVar[type[HAPOConfig]] = HAPOConfig
    config: HAPOConfig

    def __init__(
        self, env: str | Task | None, teacher: Teacher | str | None = None, **kwargs: Any
    ) -> None:
        super().__init__(env, **kwargs)
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
            self.teacher_attempts = 0
            self.teacher_successes = 0
            self.teacher_spec = teacher if isinstance(teacher, str) else None
            self.teacher = self._make_teacher(teacher)

    def _make_teacher(self, teacher: Teacher | str | None) -> Teacher:
        cfg = self.config
        if teacher is None or isinstance(teacher, str):
            teacher = load_teacher(self.task.env_id, teacher, detour=cfg.teacher_detour)
        if cfg.teacher_epsilon > 0:
            teacher = NoisyTeacher(teacher, cfg.teacher_epsilon, rng_seed=self.seed or 0)
        return teacher

    def _setup_model(self) -> None:
        super()._setup_model()
        self._teacher_env = self.task.make()
        self._teacher_plans: dict[int, list[Any]] = {}
        if getattr(self, "teacher", None) is None and hasattr(self, "teacher_spec"):
            self.teacher = self._make_teacher(self.teacher_spec)  # loaded, teacher not pickled

    def _teacher_episode(self, seed: int) -> Episode:
        """The teacher's episode from ``seed``; a teacher that declares ``deterministic = True``
        plans once per start state and its actions are replayed after that (env steps are
        taken, and charged, every time)."""
        try:
            episode = teacher_episode(
                self._teacher_env, self.teacher, seed, self._teacher_plans.get(seed), self.watch
            )
        except Exception as exc:
            raise TeacherError(f"the teacher failed on start state {seed}: {exc}") from exc
        if getattr(self.teacher, "deterministic", False):
            self._teacher_plans[seed] = list(episode.actions)
        return episode

    def check_teacher(self) -> None:
        """Run the teacher on training start states until it succeeds once; raise
        ``TeacherError`` if it raises, acts outside the action space, or never succeeds."""
        seeds = [s for s in self.task.train_seeds if covered(s, self.config.teacher_coverage)]
        for seed in seeds[:TEACHER_GIVE_UP]:
            if self._teacher_episode(int(seed)).success:
                return
        raise TeacherError(
            f"the teacher never produced a success in {min(len(seeds), TEACHER_GIVE_UP)} "
            f"episodes on {self.task.env_id}"
        )

    def _excluded_save_params(self) -> list[str]:
        excluded = [*super()._excluded_save_params(), "_teacher_env", "_teacher_plans"]
        try:
            cloudpickle.dumps(self.teacher)
        except Exception:  # a user's teacher need not pickle: pass it to load() instead
            excluded.append("teacher")
        return excluded

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
            demos = [self._teacher_episode(key) for _ in range(n)]
            steps += sum(d.length for d in demos)
            good = [d for d in demos if d.success]
            self.teacher_attempts += len(demos)
            self.teacher_successes += len(good)
            if cfg.mix_every_group:
                group.extend(good)
            else:
                group[: len(good)] = good
        if self.teacher_attempts >= TEACHER_GIVE_UP and self.teacher_successes == 0:
            raise TeacherError(
                f"the teacher never produced a success in {self.teacher_attempts} episodes "
                f"on {self.task.env_id}"
            )
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
