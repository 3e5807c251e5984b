"""Behaviour cloning: maximise the policy's log-likelihood of teacher actions.

``clone`` is the update (also HAPO's warm start); ``BC`` is static teacher forcing as a method:
each iteration the teacher runs from ``demos_per_iter`` training start states (those it has
not run from yet first; every step charged), its successful episodes replace the dataset's
earlier episode from the same start state, and the policy takes ``n_epochs`` passes' worth of
random minibatches from the dataset. With ``demo_noise`` (DART, Laskey et al. 2017) the env
executes perturbed teacher actions, so the demonstrations visit states off the teacher's own
path and show how it recovers; each stores the teacher's actions and joins the dataset, failed
or not (its labels are still the teacher's).
With a recorded teacher (a Minari dataset) each iteration draws start states the dataset holds
and BC has not used yet, each charged once; the run ends when the dataset is used up, after
``n_epochs`` passes' worth of minibatches over its steps (raise ``n_epochs`` for more).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

import numpy as np
import torch as th
from stable_baselines3.common.policies import ActorCriticPolicy

from hapo_rl.algos.grpo import IterationStats, NumericalError
from hapo_rl.algos.guided import Guided
from hapo_rl.core.config import BCConfig
from hapo_rl.core.policies import update_statistics
from hapo_rl.core.rollout import Episode
from hapo_rl.teachers.base import is_recorded
from hapo_rl.teachers.episodes import perturbation


def _nll_step(
    policy: ActorCriticPolicy, obs: th.Tensor, actions: th.Tensor, max_grad_norm: float
) -> float:
    loss = -policy.get_distribution(obs).log_prob(actions).mean()
    if not th.isfinite(loss):
        raise NumericalError("non-finite behaviour-cloning loss")
    policy.optimizer.zero_grad()
    loss.backward()
    th.nn.utils.clip_grad_norm_(policy.parameters(), max_grad_norm)
    policy.optimizer.step()
    return loss.item()


def _stack(episodes: list[Episode]) -> tuple[th.Tensor, th.Tensor]:
    obs = th.as_tensor(np.concatenate([e.obs for e in episodes]))
    return obs, th.as_tensor(np.concatenate([e.actions for e in episodes]))


def clone(
    policy: ActorCriticPolicy,
    episodes: list[Episode],
    epochs: int,
    batch_size: int,
    rng: np.random.Generator,
    max_grad_norm: float = 0.5,
) -> float:
    """``epochs`` passes of minibatch negative log-likelihood on the episodes' steps with the
    policy's own optimiser, after adding them to its observation statistics; returns the last
    epoch's mean loss."""
    obs, actions = _stack(episodes)
    update_statistics(policy, obs.numpy())
    policy.set_training_mode(True)
    mean_loss = float("nan")
    for _ in range(epochs):
        perm = th.as_tensor(rng.permutation(len(obs)))
        losses = [
            _nll_step(policy, obs[mb], actions[mb], max_grad_norm) for mb in perm.split(batch_size)
        ]
        mean_loss = float(np.mean(losses))
    return mean_loss


class BC(Guided):
    """Behaviour cloning on the teacher's successful episodes (every noise-injected one with
    ``demo_noise``), nothing else."""

    config_class: ClassVar[type[BCConfig]] = BCConfig
    uses_groups: ClassVar[bool] = False
    config: BCConfig

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.config is not None and self.config.demo_noise and is_recorded(self.teacher):
            raise ValueError("demo_noise needs a teacher that acts; a recorded one only replays")

    def _setup_model(self) -> None:
        super()._setup_model()
        if getattr(self, "dataset", None) is None:  # a loaded model keeps its saved dataset
            self.dataset: dict[int, Episode] = {}  # by start state, or by arrival with noise
            self.drawn: set[int] = set()  # start states the teacher has been run from

    def _perturbation(self) -> Callable[[Any], Any] | None:
        noise = self.config.demo_noise
        return perturbation(self._teacher_env.action_space, noise, self.rng) if noise else None

    def _unused(self) -> list[int]:
        """A recorded teacher's training start states BC has not used yet."""
        return [s for s in self._covered(self.task.train_seeds) if s not in self.teacher_paid]

    def _draw(self) -> np.ndarray:
        """This iteration's start states: ``demos_per_iter`` of the training pool, those the
        teacher has not been run from first (a scripted teacher would repeat its episode), or
        of a recorded teacher's unused ones."""
        n = self.config.demos_per_iter
        if is_recorded(self.teacher):
            pool = self._unused()
            return self.rng.choice(pool, size=min(n, len(pool)), replace=False)
        fresh = [s for s in self.task.train_seeds if s not in self.drawn]
        if len(fresh) >= n:
            keys = self.rng.choice(fresh, size=n, replace=False)
        else:
            rest = [s for s in self.task.train_seeds if s in self.drawn]
            keys = np.concatenate(
                [fresh, self.rng.choice(rest, size=n - len(fresh), replace=False)]
            )
        self.drawn.update(int(k) for k in keys)
        return keys.astype(int)

    def exhausted(self) -> bool:
        """Whether a recorded teacher's dataset is used up, so nothing is left to spend."""
        return is_recorded(self.teacher) and not self._unused()

    def _iteration(self) -> IterationStats:
        cfg = self.config
        keys = self._draw()
        demos = self._demos(self._covered(keys))
        steps = self._charge(demos)
        if cfg.demo_noise:
            new = demos
            self.dataset.update({len(self.dataset) + i: d for i, d in enumerate(new)})
        else:
            new = [d for d in demos if d.success]
            self.dataset.update({d.seed: d for d in new})
        if new:
            update_statistics(self.policy, np.concatenate([d.obs for d in new]))
        loss = float("nan")
        if self.dataset:
            with self.watch.section("learn"):
                obs, actions = _stack(list(self.dataset.values()))
                idx = th.as_tensor(self.rng.integers(len(obs), size=cfg.n_epochs * max(steps, 1)))
                self.policy.set_training_mode(True)
                losses = [
                    _nll_step(self.policy, obs[mb], actions[mb], cfg.max_grad_norm)
                    for mb in idx.split(cfg.batch_size)
                ]
                loss = float(np.mean(losses))
        return IterationStats(
            env_steps=steps,
            teacher_steps=steps,
            train_success_rate=float("nan"),
            injection_rate=float("nan"),
            teacher_step_share=1.0,
            zero_adv_group_frac=float("nan"),
            loss=loss,
        )
