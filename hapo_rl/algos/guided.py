"""What every teacher-using method shares: the teacher, its episodes and their bookkeeping.

HAPO, JSRL and BC derive from ``Guided``. A teacher episode runs in an env of its own and
every step of it is charged to the budget. A teacher that declares ``deterministic = True``
plans once per start state; its actions are replayed after that (the env still steps). A
recorded teacher (a dataset, ``is_recorded``) is data: each start state's episode is charged
once, when first used, and start states it holds no episode for have no teacher.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import cloudpickle

from hapo_rl.algos.grpo import GRPO
from hapo_rl.core.config import TeacherConfig
from hapo_rl.core.rollout import Episode
from hapo_rl.core.tasks import Task
from hapo_rl.teachers.base import (
    FailingTeacher,
    NoisyTeacher,
    Teacher,
    covered,
    has_episode,
    is_recorded,
)
from hapo_rl.teachers.episodes import teacher_episode
from hapo_rl.teachers.registry import load_teacher

#: After this many teacher episodes without one success, training stops with an error.
TEACHER_GIVE_UP = 20


class TeacherError(RuntimeError):
    """The teacher failed in a way that makes the method meaningless (it never succeeds)."""


class Guided(GRPO):
    """GRPO's machinery plus a teacher.

    :param teacher: a ``Teacher``, a ``"module:callable"`` spec, or None for the task's
        built-in scripted teacher.
    """

    config: TeacherConfig

    def __init__(
        self, env: str | Task | None, teacher: Teacher | str | None = None, **kwargs: Any
    ) -> None:
        super().__init__(env, **kwargs)
        if self.config is not None:
            self.teacher_attempts = 0
            self.teacher_successes = 0
            self.teacher_spec = teacher if isinstance(teacher, str) else None
            self.teacher = self._make_teacher(teacher)

    def _make_teacher(self, teacher: Teacher | str | None) -> Teacher:
        cfg = self.config
        if teacher is None or isinstance(teacher, str):
            teacher = load_teacher(
                self.task.env_id, teacher, cfg.teacher_detour, cfg.teacher_detour_stops
            )
        if cfg.teacher_fail > 0:
            teacher = FailingTeacher(teacher, cfg.teacher_fail)
        if cfg.teacher_epsilon > 0:
            teacher = NoisyTeacher(teacher, cfg.teacher_epsilon, rng_seed=self.seed or 0)
        return teacher

    def _setup_model(self) -> None:
        super()._setup_model()
        self._teacher_env = self.task.make()
        if getattr(self, "_teacher_plans", None) is None:  # a loaded model keeps its plans
            self._teacher_plans: dict[int, list[Any]] = {}
            self.teacher_paid: set[int] = set()  # a recorded teacher's start states charged
        if getattr(self, "teacher", None) is None and hasattr(self, "teacher_spec"):
            self.teacher = self._make_teacher(self.teacher_spec)  # loaded, teacher not pickled

    def _excluded_save_params(self) -> list[str]:
        excluded = [*super()._excluded_save_params(), "_teacher_env"]
        try:
            cloudpickle.dumps(self.teacher)
        except Exception:  # a user's teacher need not pickle: pass it to load() instead
            excluded.append("teacher")
        return excluded

    def _perturbation(self) -> Callable[[Any], Any] | None:
        """What the env executes in place of each teacher action, the episode keeping the
        teacher's (``teacher_episode``); None: the action itself."""
        return None

    def _teacher_episode(self, seed: int) -> Episode:
        """The teacher's episode from ``seed`` (replayed for a deterministic teacher unless
        its actions are perturbed)."""
        perturb = self._perturbation()
        plan = self._teacher_plans.get(seed) if perturb is None else None
        try:
            episode = teacher_episode(
                self._teacher_env, self.teacher, seed, plan, self.watch, perturb
            )
        except Exception as exc:
            raise TeacherError(f"the teacher failed on start state {seed}: {exc}") from exc
        if getattr(self.teacher, "deterministic", False) and perturb is None:
            self._teacher_plans[seed] = list(episode.actions)
        return episode

    def _demos(self, seeds: Iterable[int]) -> list[Episode]:
        """Teacher episodes from ``seeds`` (successful or not); raises ``TeacherError`` once
        ``TEACHER_GIVE_UP`` episodes have brought no success at all."""
        demos = [self._teacher_episode(int(seed)) for seed in seeds]
        self.teacher_attempts += len(demos)
        self.teacher_successes += sum(d.success for d in demos)
        if self.teacher_attempts >= TEACHER_GIVE_UP and self.teacher_successes == 0:
            raise TeacherError(
                f"the teacher never produced a success in {self.teacher_attempts} episodes "
                f"on {self.task.env_id}"
            )
        return demos

    def _charge(self, demos: Iterable[Episode]) -> int:
        """The env steps the budget is charged for ``demos``: all of their steps, or for a
        recorded teacher the steps of start states not charged before."""
        if not is_recorded(self.teacher):
            return sum(d.length for d in demos)
        steps = 0
        for demo in demos:
            if demo.seed not in self.teacher_paid:
                self.teacher_paid.add(demo.seed)
                steps += demo.length
        return steps

    def _has_teacher(self, seed: int) -> bool:
        """Whether start state ``seed`` has a teacher: within ``teacher_coverage``, and held
        by the teacher's dataset for a recorded one."""
        return covered(seed, self.config.teacher_coverage) and has_episode(self.teacher, seed)

    def _covered(self, seeds: Iterable[int]) -> list[int]:
        """The start states among ``seeds`` that have a teacher (``_has_teacher``)."""
        return [int(s) for s in seeds if self._has_teacher(int(s))]

    def check_teacher(self) -> None:
        """Run the teacher on training start states until it succeeds once; raise
        ``TeacherError`` if it raises, acts outside the action space, or never succeeds."""
        seeds = self._covered(self.task.train_seeds)[:TEACHER_GIVE_UP]
        if not seeds:
            raise TeacherError(
                f"no training start state (reset seeds 0..{self.task.n_train - 1}) has a "
                "teacher: the dataset holds none of them, or teacher_coverage is 0"
            )
        for seed in seeds:
            if self._teacher_episode(seed).success:
                return
        raise TeacherError(
            f"the teacher never produced a success in {len(seeds)} episodes on {self.task.env_id}"
        )
